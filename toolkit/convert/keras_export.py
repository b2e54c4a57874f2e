"""Keras / SavedModel -> TFLite flatbuffer bytes, one quantization mode at a time (imports TensorFlow).

Recipe (shared/STACK.md): a fixed-batch SavedModel (batch 1 unless ``toolkit convert --batch N``) written with
``keras.export.ExportArchive`` (a fixed batch removes the int32 SHAPE/STRIDED_SLICE/PACK ops a dynamic batch
adds), then ``TFLiteConverter.from_saved_model`` with builtin ops only, so an unsupported op fails here, by name,
instead of producing a Flex model that no device interpreter can run.
"""

from __future__ import annotations

import contextlib
import re
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.convert.keras_archive import check_keras_archive
from toolkit.errors import ToolkitError, UsageError, one_line
from toolkit.models.tf_env import captured_native_stderr, quiet_tensorflow


def load_keras_model(path: Path, part: str | None, trust: bool) -> Any:
    """Load a .keras file (safe mode unless ``trust``) or, with ``trust``, a SavedModel directory."""
    _check_model_path(path, trust)  # cheap checks first: no TensorFlow import for a wrong file
    tf = quiet_tensorflow()
    import keras

    from toolkit.models import register_custom_objects

    register_custom_objects()
    if path.is_dir():
        return _SavedModelAdapter(tf.saved_model.load(str(path)), path)
    check_keras_archive(path, trust, lambda name: keras.saving.get_registered_object(name) is not None)
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=not trust)
    except ValueError as exc:
        text = one_line(str(exc), 300)
        if "lambda" in text.lower() or "safe_mode" in text:
            raise UsageError(
                f"{path} contains a Lambda layer (arbitrary Python code), refused in safe mode; "
                "rewrite it as a registered layer, or pass --trust-model if you trust the file"
            ) from None
        raise UsageError(f"cannot load {path}: {text}") from None
    except Exception as exc:  # zip errors, bad configs, unknown classes: all mean "not a model we can load"
        raise UsageError(
            f"cannot load {path} as a Keras model: {type(exc).__name__}: {one_line(str(exc), 200)}"
        ) from None
    if part:
        try:
            model = model.get_layer(part)
        except ValueError:
            names = [layer.name for layer in model.layers if hasattr(layer, "layers")]
            raise UsageError(
                f"{path} has no sub-model '{part}'; sub-models: {', '.join(names) or 'none'}"
            ) from None
    return model


def _check_model_path(path: Path, trust: bool) -> None:
    if not path.exists():
        raise UsageError(f"model not found: {path}")
    if path.is_dir():
        if not (path / "saved_model.pb").is_file():
            raise UsageError(
                f"{path} is a directory without saved_model.pb; expected a .keras file or a SavedModel"
            )
        if not trust:
            raise UsageError(
                f"{path} is a SavedModel, which can run arbitrary graph code; pass --trust-model "
                "if you trust its source"
            )
        return
    if path.suffix != ".keras":
        raise UsageError(f"{path}: expected a .keras file (or a SavedModel directory with --trust-model)")
    if not zipfile.is_zipfile(path):
        head = path.read_bytes()[:8]
        what = (
            "a TFLite model"
            if head[4:8] == b"TFL3"
            else "a JPEG image"
            if head[:3] == b"\xff\xd8\xff"
            else "not a zip"
        )
        raise UsageError(
            f"{path} is not a Keras v3 .keras archive ({what}); save the model with model.save('m.keras')"
        )
    check_keras_archive(path, trust=True)  # sizes only (a zip bomb); the modules once Keras' registry is up


class _SavedModelAdapter:
    """Gives a loaded SavedModel's serving signature the few attributes the exporter uses."""

    def __init__(self, loaded: Any, path: Path) -> None:
        self.loaded = loaded
        self.path = path
        self.fn = loaded.signatures.get("serving_default") or next(iter(loaded.signatures.values()), None)
        if self.fn is None:
            raise UsageError(f"{path}: the SavedModel has no signatures to convert")


def _is_default(name: str | None) -> bool:
    """Keras' generated tensor names (``keras_tensor_3``, ``input_layer_1``): the model never named it."""
    return not name or name.startswith(("keras_tensor", "input_layer"))


def _raw_inputs(model: Any) -> tuple[list[tuple[str | None, tuple[Any, ...]]], bool]:
    """[(the model's own input name or None, shape without batch)] and whether the model takes a dict.

    Functional and Sequential models have symbolic ``inputs``; a subclassed model has only the shapes it was
    built with (``get_build_config``), so it must have been called once before it was saved."""
    try:
        tensors = list(model.inputs)
    except (AttributeError, ValueError):
        tensors = []
    if tensors:
        return [(_input_name(t), tuple(t.shape[1:])) for t in tensors], False
    shape = (model.get_build_config() or {}).get("input_shape") if getattr(model, "built", False) else None
    if shape is None:
        raise UsageError(
            f"{type(model).__name__} has no known input shape: a subclassed model must be called once "
            "on a sample (or built) before it is saved"
        )
    if isinstance(shape, dict):
        return [(str(k), tuple(v[1:])) for k, v in shape.items()], True
    if isinstance(shape, list | tuple) and shape and isinstance(shape[0], list | tuple):
        return [(None, tuple(s[1:])) for s in shape], False
    return [(None, tuple(shape[1:]))], False


def input_specs(model: Any) -> dict[str, tuple[int, ...]]:
    """Input name -> shape without batch, from a Keras model (functional, Sequential or subclassed) or a SavedModel
    signature. Inputs the model names keep their names; unnamed ones are ``input`` / ``input_0``, ``input_1``..."""
    if isinstance(model, _SavedModelAdapter):
        specs = model.fn.structured_input_signature[1]
        return {name: tuple(int(d) for d in spec.shape[1:]) for name, spec in specs.items()}
    raw, _ = _raw_inputs(model)
    out = {}
    for i, (name, shape) in enumerate(raw):
        key = ("input" if len(raw) == 1 else f"input_{i}") if _is_default(name) else str(name)
        if any(d is None for d in shape):
            raise UsageError(
                f"input '{key}' has an unknown dimension {[None, *shape]}; build the model with a fixed "
                "input size"
            )
        out[key] = tuple(int(d) for d in shape)
    return out


def _input_name(tensor: Any) -> str:
    name = getattr(tensor, "name", "input")
    return name.split(":")[0]


def output_names(model: Any) -> list[str]:
    """Output names in the model's output order: the names a functional model gives them (dict keys or its output
    layers), a Sequential model's last layer, else ``output`` / ``output_0``, ``output_1``... by position."""
    if isinstance(model, _SavedModelAdapter):
        return list(model.fn.structured_outputs)
    try:
        names = list(model.output_names)
    except AttributeError:
        names = []
    if names:
        return names
    out = _invoke(model, {k: np.zeros((1, *v), np.float32) for k, v in input_specs(model).items()})
    if isinstance(out, dict):
        return [str(k) for k in out]
    if not isinstance(out, list | tuple) and getattr(model, "layers", None) and hasattr(model, "pop"):
        return [model.layers[-1].name]  # Sequential: its output is its last layer's
    count = len(out) if isinstance(out, list | tuple) else 1
    return ["output"] if count == 1 else [f"output_{i}" for i in range(count)]


def _invoke(model: Any, feeds: dict[str, Any]) -> Any:
    """Call a Keras model on inputs keyed by :func:`input_specs` names, in the form the model takes them."""
    _, takes_dict = _raw_inputs(model)
    values = list(feeds.values())
    if takes_dict:
        raw = [name for name, _ in _raw_inputs(model)[0]]
        args: Any = dict(zip(raw, values, strict=True))
    else:
        args = values[0] if len(values) == 1 else values
        struct = getattr(model, "_inputs_struct", None)  # a functional model built on a dict of inputs
        if isinstance(struct, dict) and len(values) > 1:
            # model.inputs (and so the feeds) follow the flattened, key-sorted order; the call wants the dict
            by_tensor = {id(t): v for t, v in zip(model.inputs, values, strict=True)}
            args = {key: by_tensor[id(t)] for key, t in struct.items()}
    return model(args, training=False)


def call_model(model: Any, feeds: dict[str, Any], names: list[str] | None = None) -> dict[str, Any]:
    """Run a Keras model (or a SavedModel signature) and return its outputs keyed by :func:`output_names`."""
    if isinstance(model, _SavedModelAdapter):
        import tensorflow as tf

        return dict(model.fn(**{k: tf.constant(v) for k, v in feeds.items()}))
    out = _invoke(model, feeds)
    if isinstance(out, dict):
        return dict(out)
    names = names or output_names(model)
    return dict(zip(names, out if isinstance(out, list | tuple) else [out], strict=True))


def keras_predict(model: Any, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run the float model one sample at a time (batch 1: the reference for any converted batch) and name the
    outputs."""
    names = list(feeds)
    n = len(feeds[names[0]])
    outputs = output_names(model)
    results: dict[str, list[np.ndarray]] = {}
    for i in range(n):
        sample = {k: v[i : i + 1] for k, v in feeds.items()}
        for key, value in call_model(model, sample, outputs).items():
            results.setdefault(key, []).append(np.asarray(value, np.float32))
    return {k: np.concatenate(v) for k, v in results.items()}


def write_batch1_savedmodel(
    model: Any, inputs: dict[str, tuple[int, ...]], out_dir: Path, batch: int = 1
) -> None:
    """Write a SavedModel whose serving signature takes inputs of a fixed ``batch`` (default 1) and returns
    outputs by name. Every dimension stays static, so the converted graph has no dynamic-shape ops either way."""
    tf = quiet_tensorflow()
    import keras

    if batch < 1:
        raise UsageError(f"batch must be >= 1, got {batch}")
    names = output_names(model)
    signature = [tf.TensorSpec((batch, *shape), tf.float32, name=name) for name, shape in inputs.items()]

    def serve(*tensors: Any) -> dict[str, Any]:
        return call_model(model, dict(zip(inputs, tensors, strict=True)), names)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve, input_signature=signature)
    archive.write_out(str(out_dir), verbose=False)


def convert_savedmodel(
    saved_model_dir: Path,
    mode: str,
    io: str,
    representative: Callable[[], Iterator[dict[str, np.ndarray]]] | None,
) -> bytes:
    """Run the TFLite converter in ``mode``; raise UsageError naming unsupported ops."""
    tf = quiet_tensorflow()
    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(saved_model_dir), signature_keys=["serving_default"]
    )
    builtins = tf.lite.OpsSet.TFLITE_BUILTINS
    converter.target_spec.supported_ops = [builtins]
    if mode == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode == "int8":
        if representative is None:
            raise UsageError(
                "int8 conversion needs calibration data: pass --calib DIR_OF_IMAGES or --calib FILE.npy"
            )
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        dtype = {"int8": tf.int8, "uint8": tf.uint8, "float32": tf.float32}[io]
        converter.inference_input_type = dtype
        converter.inference_output_type = dtype
    elif mode != "fp32":
        raise UsageError(f"unknown quantization mode '{mode}'")
    with warnings.catch_warnings(), captured_native_stderr() as log:
        warnings.simplefilter("ignore")
        try:
            return bytes(converter.convert())
        except Exception as exc:  # ConverterError and friends carry the op names in text
            failure = exc
    raise _conversion_error(failure, "".join(log))


_UNSUPPORTED = re.compile(r"'(?:tf|tfl)\.(\w+)' op is neither a custom op nor a flex op")
_NO_INT8 = re.compile(r"'(?:tfl)\.(\w+)' op (?:is not supported|.*quantiz)", re.IGNORECASE)


def quantize_with_aeq(
    float_flatbuffer: bytes, representative: Callable[[], Iterator[dict[str, np.ndarray]]]
) -> bytes:
    """Static int8 (int8 weights and activations, int8 I/O) of a float ``.tflite`` with ai-edge-quantizer, from the
    same calibration samples as the classic converter (``--backend aeq``)."""
    import io as _io

    try:
        from ai_edge_quantizer import quantizer, recipe
    except ImportError:
        raise UsageError("--backend aeq needs ai-edge-quantizer: pip install 'edge-toolkit[quant]'") from None
    samples = [{k: np.asarray(v, np.float32) for k, v in sample.items()} for sample in representative()]
    try:
        with (
            warnings.catch_warnings(),
            captured_native_stderr(),
            contextlib.redirect_stderr(_io.StringIO()),
            contextlib.redirect_stdout(_io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            qt = quantizer.Quantizer(float_flatbuffer, recipe.static_wi8_ai8())
            calibration = qt.calibrate({"serving_default": samples})
            result = qt.quantize(calibration, enable_progress_bar=False, enable_progress_report=False)
    except Exception as exc:  # the quantizer's own errors name the op or tensor it could not handle
        raise ToolkitError(f"ai-edge-quantizer failed: {one_line(str(exc), 300)}") from None
    return bytes(result.quantized_model)


def _conversion_error(exc: Exception, log: str) -> ToolkitError:
    text = f"{exc}\n{log}"
    ops = sorted(set(_UNSUPPORTED.findall(text)))
    if ops:
        return UsageError(
            f"the model uses op(s) that TFLite builtins do not support: {', '.join(ops)}; replace "
            "those layers (builtin ops only, no Flex/SELECT_TF_OPS)"
        )
    quant = sorted(set(_NO_INT8.findall(text)))
    if quant:
        return UsageError(
            f"op(s) without an int8 kernel: {', '.join(quant)}; use --quantize dynamic or fp16, or "
            "replace those layers"
        )
    lines = [line for line in str(exc).splitlines() if "error" in line.lower()] or [str(exc)]
    return ToolkitError(f"TFLite conversion failed: {one_line(lines[0], 300)}")
