"""``toolkit import``: rebuild a float Keras 3 model from a (uint8 / int8 quantized, or float) ``.tflite`` graph.

>>> model = import_tflite("mobilenet_v2_1.0_224_quant.tflite")                  # takes (pixel - 128) / 128
>>> model = import_tflite("mobilenet_v2_1.0_224_quant.tflite", input_range="uint8")   # takes 0-255 pixels
>>> backbone = import_tflite("mobilenet_v2_1.0_224_quant.tflite",
...                          outputs=["MobilenetV2_expanded_conv_12_add", "MobilenetV2_Conv_1_Relu6"])

Weights are dequantized (``(q - zero_point) * scale``, per channel where the file has per-channel scales), so
the Keras model computes in float what the integer graph approximates: expect a few output quantization steps
of difference, not bit equality. Inputs: by default the real value the quantized input represents (for Coral's
MobileNetV2, ``(pixel - 128) / 128``); ``input_range="uint8"`` prepends a ``Rescaling`` layer that takes 0-255
pixels as the uint8 input does, ``"unit"`` one that takes pixel / 255 (the toolkit's image-model convention).
Outputs: real (dequantized) values; ARG_MAX outputs stay integer indices.

:func:`import_to_file` is what the CLI runs: rebuild, measure agreement against the original through LiteRT,
then write ``OUT.keras`` and its ``OUT.json`` sidecar atomically (nothing is written if any step fails).
Limits: subgraph 0, batch-1 graphs, the ops of :data:`~toolkit.convert.tflite_graph.SUPPORTED_OPS`; a model with
registered layers (ARG_MAX, an align_corners resize...) needs ``toolkit.models.tflite_layers`` imported before
``keras.saving.load_model`` (call :func:`register_layers`).
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from toolkit import __version__
from toolkit.config import SEED_RANGE, THREADS_RANGE, Limits, check_ranges
from toolkit.convert.tflite_graph import (
    SIZE_FREE,
    FeatureTensor,
    Graph,
    check_supported,
    feature_tensors,
    graph_inputs,
    is_index,
    load_graph,
    needed_ops,
    resolve_outputs,
)
from toolkit.errors import UsageError
from toolkit.fileio import library_versions
from toolkit.runtime.tflite_file import OpInfo

MANIFEST_SCHEMA = "edge-toolkit/import-manifest@1"
INPUT_RANGES = ("real", "uint8", "unit")  # what the Keras model takes (see input_convention)


@dataclass(frozen=True)
class ImportConfig:
    """Settings of ``toolkit import`` (CLI flags mirror the fields)."""

    # cut at these tensors / layers (see --list); None = the graph's outputs
    outputs: tuple[str, ...] | None = None
    input_range: str = "real"  # "real": the dequantized input; "uint8": 0-255 pixels; "unit": pixel / 255
    input_size: tuple[int, int] | None = None  # build for another (H, W): fully convolutional cuts only
    check_images: str | None = None  # folder of images for the agreement check; None = seeded random pixels
    check_samples: int = 4  # inputs in the agreement check (0 skips it)
    seed: int = 0  # seed of the random check inputs
    threads: int | None = None  # LiteRT threads in the check (None = every core)

    LIMITS: ClassVar[Limits] = {  # valid values of numeric fields (the CLI flags share them)
        "check_samples": (0, 10_000),
        "input_size": (1, 8192),
        "seed": SEED_RANGE,
        "threads": THREADS_RANGE,
    }

    def __post_init__(self) -> None:
        check_ranges(self, "import config")


@dataclass
class ImportedModel:
    """A rebuilt model plus what the manifest and the agreement check need to know about it."""

    model: Any  # keras.Model
    graph: Graph = field(repr=False)
    inputs: list[int]  # TFLite tensor indices, in Keras input order
    outputs: list[int]  # TFLite tensor indices as requested (Keras' outputs: a dict keyed by layer name)
    ops: list[OpInfo] = field(repr=False)
    notes: dict[str, int]  # how special ops were rebuilt
    input_range: str
    input_size: tuple[int, int] | None = None

    def describe(self) -> dict[str, Any]:
        """The manifest's description: I/O, input convention, op histogram, notes, tensor -> layer names."""
        g = self.graph
        return {
            "input_convention": input_convention(g, self.inputs, self.input_range),
            "inputs": [
                _io(g, i, tuple(self.model.inputs[k].shape[1:]) if k < len(self.model.inputs) else None)
                for k, i in enumerate(self.inputs)
            ],
            "outputs": [
                {**_io(g, i, None), "value": "indices" if is_index(g, i) else "real (dequantized)"}
                for i in self.outputs
            ],
            "op_histogram": dict(Counter(op.op for op in self.ops).most_common()),
            "ops_in_file": len(g.model.ops),
            "ops_rebuilt": len(self.ops),
            "rebuilt_as": self.notes,
            "parameters": int(self.model.count_params()),
            "tensor_layers": {g.tensor(i).name: g.layer_names[i] for op in self.ops for i in op.outputs},
        }


def register_layers() -> None:
    """Register the layers an imported model may use (call before ``keras.saving.load_model``)."""
    from toolkit.models import tflite_layers

    tflite_layers.register()


def rebuild(
    path: str | Path,
    outputs: Sequence[str] | None = None,
    input_range: str = "real",
    input_size: tuple[int, int] | None = None,
) -> ImportedModel:
    """Rebuild ``path`` as a Keras model (see the module docstring); UsageError for anything it cannot do."""
    if input_range not in INPUT_RANGES:
        raise UsageError(f"input_range must be one of {', '.join(INPUT_RANGES)}, got {input_range!r}")
    graph = load_graph(path)
    targets = resolve_outputs(graph, list(outputs) if outputs else None)
    ops = needed_ops(graph, targets)
    check_supported(ops)
    inputs = graph_inputs(graph, ops)
    _validate_inputs(graph, inputs, ops, input_range, input_size)
    from toolkit.models.tf_env import quiet_tensorflow

    quiet_tensorflow()
    from toolkit.convert.tflite_build import build_model

    model, ctx = build_model(graph, ops, inputs, targets, input_range, input_size, _model_name(Path(path)))
    return ImportedModel(model, graph, inputs, targets, ops, dict(ctx.notes), input_range, input_size)


def import_tflite(
    path: str | Path,
    outputs: Sequence[str] | None = None,
    input_range: str = "real",
    input_size: tuple[int, int] | None = None,
) -> Any:
    """A float ``keras.Model`` rebuilt from the .tflite file at ``path``.

    ``outputs``: cut at these tensors (TFLite tensor names, their first ';' part or the Keras layer names that
    :func:`list_features` shows); None keeps the graph's outputs. ``input_range``: "real" (the dequantized input
    the graph represents), "uint8" (0-255 pixels, through a Rescaling layer) or "unit" (pixel / 255 in [0, 1],
    the toolkit's image-model convention, what ``toolkit convert --calib images/`` feeds). ``input_size``: an
    (H, W) other than the file's, for fully convolutional cuts (backbones). Outputs: a dict keyed by layer name.
    """
    return rebuild(path, outputs, input_range, input_size).model


def list_features(path: str | Path) -> list[FeatureTensor]:
    """Every 4-D activation of the graph with its shape and stride: candidate backbone cut points."""
    return feature_tensors(load_graph(path))


def _model_name(path: Path) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_]+", "_", path.stem).strip("_") or "imported"


def _validate_inputs(
    graph: Graph, inputs: list[int], ops: list[OpInfo], input_range: str, input_size: tuple[int, int] | None
) -> None:
    if not inputs:
        raise UsageError(
            "the chosen outputs do not depend on any model input; choose tensors computed from it"
        )
    for index in inputs:
        t = graph.tensor(index)
        if t.dtype not in ("float32", "uint8", "int8"):
            raise UsageError(
                f"input '{t.name}' is {t.dtype}; only float32, uint8 and int8 inputs can be rebuilt"
            )
        if input_range != "real" and (t.dtype == "float32" or len(t.scales) != 1):
            raise UsageError(
                f"input '{t.name}' is {t.dtype} without one quantization scale: its pixel range is "
                f"unknown; use --input-range real (not {input_range}) and feed the values it was "
                "trained on"
            )
    if input_size is not None:
        fixed = sorted({op.op for op in ops if op.op not in SIZE_FREE})
        if len(inputs) != 1 or len(graph.shape(inputs[0])) != 4:
            raise UsageError("--input-size needs a single NHWC image input")
        if fixed:
            raise UsageError(
                f"--input-size {input_size[0]}x{input_size[1]}: {', '.join(fixed)} "
                f"{'depends' if len(fixed) == 1 else 'depend'} on the "
                f"original {'x'.join(map(str, graph.shape(inputs[0])[1:3]))} size; cut before them "
                "with --outputs (a fully convolutional backbone) or drop --input-size"
            )


def input_convention(graph: Graph, inputs: list[int], input_range: str) -> dict[str, Any]:
    """How the Keras model's input relates to the TFLite model's (for the manifest and the CLI)."""
    out = {"range": input_range}
    for index in inputs:
        t = graph.tensor(index)
        if not t.scales or t.dtype == "float32":
            text = "same float values as the TFLite input"
        elif input_range != "real":
            text = (
                "0-255 pixels"
                if input_range == "uint8"
                else "pixel / 255 in [0, 1] (the toolkit's image convention)"
            )
            text += (
                f" for the {t.dtype} input"
                + (" (int8 value = pixel - 128)" if t.dtype == "int8" else "")
                + f"; a Rescaling layer maps them to (q - {t.zero_points[0]}) * {t.scales[0]:.8g}"
            )
        else:
            lo = (np.iinfo(t.dtype).min - t.zero_points[0]) * t.scales[0]
            hi = (np.iinfo(t.dtype).max - t.zero_points[0]) * t.scales[0]
            text = f"real values (q - {t.zero_points[0]}) * {t.scales[0]:.8g}, range [{lo:.4g}, {hi:.4g}]" + (
                " = (pixel - 128) / 128 for uint8 pixels"
                if (t.zero_points[0], t.scales[0]) == (128, 1 / 128) and t.dtype == "uint8"
                else ""
            )
        out[graph.layer_names[index]] = text
    return out


def _io(graph: Graph, index: int, keras_shape: tuple | None) -> dict[str, Any]:
    t = graph.tensor(index)
    out = {
        "name": graph.layer_names[index],
        "tflite_tensor": t.name,
        "tflite_shape": list(t.shape),
        "tflite_dtype": t.dtype,
        "quantization": {"scale": t.scales[0], "zero_point": t.zero_points[0]}
        if len(t.scales) == 1
        else None,
    }
    if keras_shape is not None:
        out["keras_shape"] = [None, *keras_shape]
    return out


# ---------------------------------------------------------------------------------------------- files


@dataclass(frozen=True)
class ImportResult:
    """What ``toolkit import`` wrote: the ``.keras`` path, its JSON manifest path and the manifest as a dict."""

    keras_path: Path
    manifest_path: Path
    manifest: dict[str, Any]


def check_output_path(out: Path) -> None:
    """UsageError unless ``out`` ends in .keras and its folder exists (or can be made) and is writable."""
    if out.suffix != ".keras":
        raise UsageError(f"output {out} must end in .keras")
    folder = out.parent if str(out.parent) else Path(".")
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write {out}: {probe} is not a writable folder; choose another -o path")
    if out.is_dir():
        raise UsageError(f"output {out} is a directory; expected a .keras file path")


def import_to_file(
    src: str | Path,
    out: str | Path,
    config: ImportConfig = ImportConfig(),
    progress: Callable[[str], None] | None = None,
) -> ImportResult:
    """Rebuild ``src``, check it against the original, write ``out`` (.keras) and ``out``.json atomically."""
    from toolkit.convert.tflite_check import check_agreement, load_check_images
    from toolkit.fileio import AtomicFiles, json_text, sha256_file

    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    source, target = Path(src), Path(out)
    check_output_path(target)
    if config.check_images and not Path(config.check_images).is_dir():
        raise UsageError(f"--check-images folder not found: {config.check_images}")
    say(f"rebuilding {source.name}")
    imported = rebuild(source, config.outputs, config.input_range, config.input_size)
    agreement = None
    if config.check_samples > 0:
        say("checking agreement with the original through LiteRT")
        checked = (
            imported if config.input_size is None else rebuild(source, config.outputs, config.input_range)
        )
        pixels = None
        if config.check_images:
            shape = imported.graph.shape(imported.inputs[0])
            if len(imported.inputs) != 1 or len(shape) != 4 or shape[3] != 3:
                raise UsageError("--check-images needs a model with one (H, W, 3) image input")
            pixels = load_check_images(config.check_images, shape[1:3], config.check_samples)
        agreement = check_agreement(checked, pixels, config.check_samples, config.seed, config.threads)
        if config.input_size is not None:
            agreement["note"] = (
                "measured at the file's own input size; the resized model has the same weights"
            )
    say(f"writing {target}")
    try:  # model first, manifest last: a manifest on disk always describes the model beside it
        with AtomicFiles(manifest=target.with_suffix(".json")) as files:
            tmp = files.add(target)
            imported.model.save(tmp)
            output = {
                "path": str(target),
                "sha256": sha256_file(tmp),
                "size_bytes": tmp.stat().st_size,
                "load": _load_hint(imported.model),
            }
            manifest = {
                "schema": MANIFEST_SCHEMA,
                "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
                "tool": {"name": "edge-toolkit", "version": __version__, "command": " ".join(sys.argv)},
                "libraries": library_versions(("tensorflow", "keras", "ai-edge-litert", "numpy")),
                "source": {
                    "path": str(source),
                    "sha256": imported.graph.sha256,
                    "size_bytes": imported.graph.model.size_bytes,
                },
                "output": output,
                "config": asdict(config),
                **imported.describe(),
                "agreement": agreement,
                "seconds": round(time.perf_counter() - started, 2),
            }
            files.manifest_tmp.write_text(json_text(manifest))
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror or exc}; choose another -o path") from None
    return ImportResult(target, target.with_suffix(".json"), manifest)


def _load_hint(model: Any) -> str:
    custom = sorted(
        {type(layer).__name__ for layer in model.layers if type(layer).__name__.startswith("TFLite")}
    )
    if not custom:
        return "keras.saving.load_model(path): stock Keras layers only"
    return (
        f"keras.saving.load_model(path) after toolkit.convert.tflite_import.register_layers() "
        f"(uses {', '.join(custom)})"
    )
