"""Realistic benchmark inputs: a real sample when the model's kind is known, else seeded random data.

The model's kind comes from its manifest sidecar (``model.json`` or ``model.tflite.json`` beside the file, key
``"kind"``, one of toolkit.capabilities.MODEL_KINDS). Image kinds get a real COCO128 photo containing people
(or an MNIST digit for 28x28x1 inputs), resized and scaled to the manifest's ``"input_range"`` (default [0, 1],
the zoo's convention); the behaviour kind gets a real ETH pedestrian track in metres relative to its last observed
point; a VAE decoder gets a seeded standard-normal latent (what it decodes in use). Everything else, and any model
whose real sample cannot be found or does not fit, gets seeded uniform random data of the right dtype and range. Which one was used is returned as a string and stored with the result.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import UsageError
from toolkit.paths import shared_dir

IMAGE_KINDS = frozenset({"classifier", "detector", "segmenter", "autoencoder", "vae", "vae_encoder"})
TRACK_KINDS = frozenset({"behaviour"})
LATENT_KINDS = frozenset({"vae_decoder"})  # input is a latent vector z: a standard normal sample is the real thing
COCO_IMAGES = ("data", "coco128", "images", "train2017")
COCO_LABELS = ("data", "coco128", "object_detection", "labels", "train2017")
MNIST_IMAGES = ("data", "mnist", "t10k-images-idx3-ubyte.gz")
ETH_TRACKS = ("data", "eth_ucy", "eth", "test", "biwi_eth.txt")


def manifest_path(model: Path) -> Path | None:
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
        raise UsageError(f"{path}:{exc.lineno}: manifest is not valid JSON ({exc.msg}); fix or remove it") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read manifest {path}: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}:1: manifest must be a JSON object, got {type(data).__name__}")
    return data


def _person_image() -> Path | None:
    """The first COCO128 image (sorted by name) whose labels contain a person (class 0)."""
    root = shared_dir()
    labels = root.joinpath(*COCO_LABELS)
    images = root.joinpath(*COCO_IMAGES)
    if not labels.is_dir() or not images.is_dir():
        return None
    for label in sorted(labels.glob("*.txt")):
        lines = label.read_text().splitlines()
        if any(line.split()[:1] == ["0"] for line in lines):
            image = images / (label.stem + ".jpg")
            if image.is_file():
                return image
    return None


def _image_sample(height: int, width: int, channels: int) -> tuple[np.ndarray, str] | None:
    """A real image as float32 in [0, 1], shape (H, W, C); None when the data is not there."""
    import cv2

    if (height, width, channels) == (28, 28, 1):
        path = shared_dir().joinpath(*MNIST_IMAGES)
        if path.is_file():
            with gzip.open(path, "rb") as handle:
                raw = handle.read(16 + 28 * 28)
            digit = np.frombuffer(raw[16:], dtype=np.uint8).reshape(28, 28, 1)
            return digit.astype(np.float32) / 255.0, "mnist t10k image 0"
    path = _person_image()
    if path is None:
        return None
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        return None
    resized = cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA)
    if channels == 1:
        pixels = cv2.cvtColor(resized, cv2.COLOR_BGR2GRAY)[..., None]
    else:
        pixels = cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)
    return pixels.astype(np.float32) / 255.0, f"coco128 {path.name} resized to {width}x{height}"


def _track_sample(steps: int) -> tuple[np.ndarray, str] | None:
    """``steps`` consecutive (x, y) positions of one real ETH pedestrian, relative to the last one, in metres."""
    path = shared_dir().joinpath(*ETH_TRACKS)
    if not path.is_file():
        return None
    rows = np.loadtxt(path, dtype=np.float64)
    for ped in np.unique(rows[:, 1]):
        track = rows[rows[:, 1] == ped]
        track = track[np.argsort(track[:, 0])]
        if len(track) >= steps and np.all(np.diff(track[:steps, 0]) == 10):  # consecutive frames (step 10)
            xy = track[:steps, 2:4]
            return (xy - xy[-1]).astype(np.float32), f"eth_ucy biwi_eth pedestrian {int(ped)}, {steps} steps"
    return None


def _real_sample(kind: str, shape: tuple[int, ...], seed: int = 0) -> tuple[np.ndarray, str] | None:
    body = shape[1:] if len(shape) >= 2 and shape[0] == 1 else shape
    if kind in LATENT_KINDS:
        z = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
        return z, f"latent z ~ N(0, 1) seed {seed}"
    if kind in IMAGE_KINDS and len(body) == 3 and body[2] in (1, 3):
        return _image_sample(*body)
    if kind in TRACK_KINDS and len(body) == 2 and body[1] == 2:
        return _track_sample(body[0])
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
    for name, spec in runner.inputs.items():
        sample = _real_sample(kind, spec.shape, seed) if kind and single else None
        if sample is not None:
            values, source = sample
            if kind in IMAGE_KINDS:
                values = low + values * (high - low)
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


def _input_range(manifest: dict[str, Any]) -> tuple[float, float]:
    value = manifest.get("input_range", [0.0, 1.0])
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise UsageError(f"manifest key 'input_range' must be [low, high], got {value!r}") from None
    if not high > low:
        raise UsageError(f"manifest key 'input_range' must have low < high, got {value!r}")
    return low, high
