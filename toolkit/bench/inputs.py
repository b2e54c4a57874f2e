"""Realistic benchmark inputs: a real sample when the model's kind is known, else seeded random data.

The model's kind comes from its manifest sidecar (``model.json`` beside the file, key ``"kind"``). A known kind
gets one sample from :func:`toolkit.data.model_inputs.model_inputs` on the kind's default benchmark
data below -- the exact preprocessing evaluation, calibration and the camera pipeline use (letterboxed COCO128
photos with people, MNIST digits, real ETH tracks in the behaviour model's heading frame, prior latents for a VAE
decoder). Everything else, and any model whose sample cannot be made (shared data absent, shape does not fit),
gets seeded uniform random data of the right dtype and range. Which one was used is returned as a string and
stored with the result.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import UsageError

# kind -> data SPEC a benchmark sample is drawn from (one sample, seeded)
BENCH_DATA: dict[str, str] = {
    "classifier": "mnist:split=test",
    "autoencoder": "mnist:split=test",
    "vae": "mnist:split=test",
    "vae_encoder": "mnist:split=test",
    "vae_decoder": "mnist:split=test",
    "detector": "coco128:split=all",
    "segmenter": "coco128:split=all",
    "behaviour": "eth_ucy:scene=eth,split=test",
}


def manifest_path(model: Path) -> Path | None:
    """The JSON sidecar of ``model``: ``m.json``, else ``m.tflite.json``; None when neither file exists."""
    for candidate in (model.with_suffix(".json"), model.with_name(model.name + ".json")):
        if candidate.is_file():
            return candidate
    return None


def read_manifest(model: str | Path) -> dict[str, Any]:
    """The model's JSON sidecar as a dict ({} when there is none); a malformed one is a UsageError."""
    path = manifest_path(Path(model))
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{path}:{exc.lineno}: manifest is not valid JSON ({exc.msg}); fix or remove it"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read manifest {path}: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}:1: manifest must be a JSON object, got {type(data).__name__}")
    return data


def _real_sample(
    kind: str, name: str, shape: tuple[int, ...], seed: int = 0, batch: int = 1
) -> tuple[np.ndarray, str] | None:
    """One sample (the input's shape without its batch axis) for input ``name`` of a ``kind`` model from its
    evaluator -- ``batch`` > 1 samples stacked (batch, *body) for a model converted with ``--batch`` -- or None
    when none can be made."""
    spec_text = BENCH_DATA.get(kind)
    if spec_text is None:
        return None
    from toolkit.data.model_inputs import model_inputs
    from toolkit.data.spec import parse_spec

    body = tuple(shape[1:]) if len(shape) >= 2 and shape[0] == batch else tuple(shape)
    canonical = _canonical_input(kind) or name  # a third-party model may call its one input "input_1"
    try:
        arrays = model_inputs(kind, parse_spec(spec_text), {canonical: body}, batch, seed)
        values = _rows(arrays[canonical], batch)
    except (UsageError, OSError, KeyError, ValueError, IndexError):
        return None  # data absent or the model's shape is not the one that data fits
    if values.shape[1:] != body:
        return None
    return (
        values[0] if batch == 1 else values,
        f"{spec_text} sample{'s' if batch > 1 else ''} (seed {seed}), preprocessed as in evaluation",
    )


def _rows(array: np.ndarray, batch: int) -> np.ndarray:
    """The first ``batch`` rows of ``array`` as float32, repeated from the start when it has fewer."""
    values = np.asarray(array, dtype=np.float32)
    return values[np.arange(batch) % len(values)]


def _real_samples(
    kind: str, inputs: dict[str, Any], seed: int = 0, batch: int = 1
) -> dict[str, tuple[np.ndarray, str]]:
    """One sample for every input of a multi-input ``kind`` model (e.g. a social behaviour model's track and
    neighbours, which must come from the same window; ``batch`` > 1: that many stacked), or {} when none can be
    made."""
    spec_text = BENCH_DATA.get(kind)
    if spec_text is None:
        return {}
    from toolkit.data.model_inputs import model_inputs
    from toolkit.data.spec import parse_spec

    bodies = {n: tuple(s.shape[1:]) for n, s in inputs.items()}
    try:
        arrays = model_inputs(kind, parse_spec(spec_text), bodies, batch, seed)
    except (UsageError, OSError, KeyError, ValueError, IndexError):
        return {}
    source = f"{spec_text} sample{'s' if batch > 1 else ''} (seed {seed}), preprocessed as in evaluation"
    return {
        n: (_rows(arrays[n], batch)[0] if batch == 1 else _rows(arrays[n], batch), source)
        for n in bodies
        if n in arrays and len(arrays[n]) and np.shape(arrays[n])[1:] == bodies[n]
    }


def _canonical_input(kind: str) -> str | None:
    from toolkit.capabilities import MODEL_KINDS, MODEL_PARTS

    if kind in MODEL_KINDS:
        return MODEL_KINDS[kind].input_names[0]
    if kind in MODEL_PARTS:
        return MODEL_PARTS[kind][0][0]
    return None


def _random_real(rng: np.random.Generator, shape: tuple[int, ...], low: float, high: float) -> np.ndarray:
    return rng.uniform(low, high, size=shape).astype(np.float32)


def make_inputs(runner: Any, manifest: dict[str, Any], seed: int = 0) -> tuple[dict[str, np.ndarray], str]:
    """Inputs in the model's own dtypes (ready for ``Runner.set_inputs``) and a description of where they came from.

    ``runner`` is a :class:`toolkit.runtime.Runner`; ``manifest`` the model's sidecar dict (may be empty).
    """
    kind = str(manifest.get("kind") or "")
    low, high = _input_range(manifest)
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    sources = []
    single = len(runner.inputs) == 1
    batch = _batch(manifest)  # a model converted with --batch N gets N real samples per invoke
    together = _real_samples(kind, runner.inputs, seed, batch) if kind and not single else {}
    for name, spec in runner.inputs.items():
        sample = _real_sample(kind, name, spec.shape, seed, batch) if kind and single else together.get(name)
        if sample is not None:
            values, source = sample
            values = values.reshape(spec.shape)
        elif np.issubdtype(spec.dtype, np.floating) or spec.quantized:
            values = _random_real(rng, spec.shape, low, high)
            source = f"random uniform [{low:g}, {high:g}] seed {seed}"
        elif spec.dtype == np.bool_:
            values = rng.integers(0, 2, size=spec.shape).astype(np.bool_)
            source = f"random bool seed {seed}"
        else:
            info = np.iinfo(spec.dtype)
            values = rng.integers(max(info.min, 0), min(info.max, 255), size=spec.shape, endpoint=True)
            source = f"random integers [0, {min(info.max, 255)}] seed {seed}"
        feeds[name] = spec.quantize(values) if spec.quantized else np.asarray(values).astype(spec.dtype)
        sources.append(source if single else f"{name}: {source}")
        if kind and sample is None and single:
            sources[-1] += f" (no real {kind} sample fits shape {list(spec.shape)} or shared data is absent)"
    return feeds, "; ".join(sources)


def _batch(manifest: dict[str, Any]) -> int:
    """The fixed batch a ``toolkit convert --batch N`` manifest records (1 when absent or not a positive int)."""
    value = manifest.get("batch", 1)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else 1


def _input_range(manifest: dict[str, Any]) -> tuple[float, float]:
    value = manifest.get("input_range", [0.0, 1.0])
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise UsageError(f"manifest key 'input_range' must be [low, high], got {value!r}") from None
    if not high > low:
        raise UsageError(f"manifest key 'input_range' must have low < high, got {value!r}")
    return low, high
