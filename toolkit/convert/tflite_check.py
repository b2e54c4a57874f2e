"""Measure how closely an imported Keras model agrees with its .tflite original, through LiteRT.

Both run on the same inputs (given uint8 images, or seeded uniform pixels over the input's whole range); each
output's error is reported in real units and in units of that output's quantization scale ("output steps": one
step is the resolution of the int8 model itself), with top-1 agreement for (1, N) outputs and the share of equal
values for index outputs (ARG_MAX). Internal tensors (a cut model) are read with ``preserve_all_tensors`` on the
builtin kernels, because the XNNPACK delegate does not keep them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from toolkit.convert.tflite_graph import Graph, dequantize, is_index
from toolkit.errors import UsageError, one_line

if TYPE_CHECKING:
    from toolkit.convert.tflite_import import ImportedModel


def check_inputs(
    imported: ImportedModel, pixels: np.ndarray | None, samples: int, seed: int
) -> tuple[list[np.ndarray], list[np.ndarray], str]:
    """(TFLite feeds, Keras feeds, description) per input: uint8 ``pixels`` (N, H, W, C) for a single image
    input, or seeded uniform values over each input's whole range."""
    g = imported.graph
    rng = np.random.default_rng(seed)
    tfl, ker = [], []
    for index in imported.inputs:
        t = g.tensor(index)
        shape = (samples, *t.shape[1:])
        if t.dtype == "float32":
            values = pixels.astype(np.float32) / 255 if pixels is not None else rng.random(shape, np.float32)
            tfl.append(values)
            ker.append(values)
            continue
        px = pixels if pixels is not None else rng.integers(0, 256, shape).astype(np.uint8)
        q = (px.astype(np.int16) - (128 if t.dtype == "int8" else 0)).astype(t.dtype)
        tfl.append(q)
        if imported.input_range != "real":
            ker.append(px.astype(np.float32) / (255.0 if imported.input_range == "unit" else 1.0))
        else:
            ker.append(((q.astype(np.float32) - t.zero_points[0]) * t.scales[0]).astype(np.float32))
    what = "given images" if pixels is not None else f"seeded uniform random pixels (seed {seed})"
    return tfl, ker, what


def check_agreement(
    imported: ImportedModel,
    pixels: np.ndarray | None = None,
    samples: int = 4,
    seed: int = 0,
    threads: int | None = None,
) -> dict[str, Any]:
    """Run the original through LiteRT and the Keras model on the same inputs; per output: max / mean abs error
    (real units and in units of the output's quantization scale), top-1 agreement for (1, N) outputs, and the
    fraction of equal values for index (ARG_MAX) outputs."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from toolkit.fileio import captured_fd2
    from toolkit.runtime.runner import default_threads

    if imported.input_size is not None:
        raise UsageError("check_agreement needs the model at the file's own input size")
    n = len(pixels) if pixels is not None else samples
    tfl_feeds, keras_feeds, what = check_inputs(imported, pixels, n, seed)
    g = imported.graph
    internal = any(i not in g.model.outputs for i in imported.outputs)
    kwargs: dict[str, Any] = {}
    if internal:  # intermediate tensors are kept only without the XNNPACK delegate
        kwargs = {
            "experimental_preserve_all_tensors": True,
            "experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        }
    expected: dict[int, list[np.ndarray]] = {i: [] for i in imported.outputs}
    with captured_fd2():  # LiteRT's C++ "Created TensorFlow Lite XNNPACK delegate" line
        try:
            interpreter = Interpreter(
                model_content=bytes(g.data), num_threads=threads or default_threads(), **kwargs
            )
            interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as exc:  # e.g. a custom op the cut left out but LiteRT must resolve
            return {"samples": 0, "skipped": f"LiteRT cannot run the original: {one_line(str(exc), 200)}"}
        for k in range(n):
            for index, feed in zip(imported.inputs, tfl_feeds, strict=True):
                interpreter.set_tensor(index, feed[k : k + 1])
            interpreter.invoke()
            for index in imported.outputs:
                expected[index].append(np.array(interpreter.get_tensor(index)))
        got = imported.model.predict(
            keras_feeds[0] if len(keras_feeds) == 1 else keras_feeds, batch_size=4, verbose=0
        )
    per_output = {
        g.layer_names[i]: _compare(g, i, np.concatenate(expected[i]), np.asarray(got[g.layer_names[i]]))
        for i in imported.outputs
    }
    runtime = "LiteRT builtin kernels, no delegate" if internal else "LiteRT default (XNNPACK)"
    return {"samples": n, "inputs": what, "runtime": runtime, "outputs": per_output}


def _compare(graph: Graph, index: int, raw: np.ndarray, keras_out: np.ndarray) -> dict[str, Any]:
    t = graph.tensor(index)
    keras_out = keras_out.reshape(raw.shape)
    if is_index(graph, index):
        return {"kind": "indices", "agreement": float(np.mean(raw == keras_out))}
    ref = dequantize(t, raw) if t.dtype in ("int8", "uint8", "int16") else raw.astype(np.float32)
    err = np.abs(keras_out.astype(np.float32) - ref)
    out: dict[str, Any] = {
        "kind": "real",
        "max_abs_error": float(err.max()),
        "mean_abs_error": float(err.mean()),
        "tflite_range": [float(ref.min()), float(ref.max())],
    }
    if len(t.scales) == 1 and t.dtype != "float32":
        out.update(
            scale=t.scales[0],
            max_error_steps=float(err.max() / t.scales[0]),
            mean_error_steps=float(err.mean() / t.scales[0]),
        )
    if ref.ndim == 2 and ref.shape[1] > 1:
        out["top1_agreement"] = float(np.mean(ref.argmax(1) == keras_out.argmax(1)))
    return out


def load_check_images(folder: str | Path, hw: tuple[int, int], limit: int) -> np.ndarray:
    """Up to ``limit`` images of ``folder`` (sorted), stretched to ``hw``, as uint8 RGB (N, H, W, 3)."""
    from toolkit.adapters.image import resize_image
    from toolkit.data.image_folder import list_images, read_rgb

    paths = list_images(folder)[: max(1, limit)]
    return np.stack([resize_image(read_rgb(p), hw) for p in paths]).astype(np.uint8)
