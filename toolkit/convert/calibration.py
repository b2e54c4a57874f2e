"""Calibration data for full-int8 conversion: a folder of images or a .npy/.npz of model inputs.

The calibration samples decide every int8 range in the model, so they must come from the user (never a quiet
default set). A few samples are held back from calibration to measure parity against the Keras model.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from toolkit.errors import UsageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")
LETTERBOX_KINDS = ("detector", "segmenter")  # the camera pipeline letterboxes their frames
UNIT_RANGE_KINDS = (
    "classifier",
    "detector",
    "segmenter",
    "autoencoder",
    "vae",
    "vae_encoder",
)  # image in [0, 1]
FEW_SAMPLES = 100  # fewer calibration samples than this get a warning (100-500 is the usual advice)

CalibFormat = Literal["spec", "images", "npy", "npz"]  # a data SPEC, a folder of images, a .npy, a .npz


@dataclass(frozen=True)
class CalibrationSet:
    """Calibration inputs for an int8 conversion, split into the samples that set the ranges and those held
    back for the parity check, with where they came from and content hashes for the manifest."""

    calibrate: dict[str, np.ndarray]  # input name -> (N, *shape) float32 used for the representative dataset
    parity: dict[str, np.ndarray]  # input name -> (M, *shape) float32 held back for the parity check
    source: str
    format: CalibFormat  # where the samples came from
    files_sha256: str  # hash over the sorted (name, content-hash) list of what was read
    total: int  # samples available before sampling
    preprocessing: str = ""  # how the samples were made model inputs (resize mode, value range)
    warnings: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        """Number of calibration samples (N of the first input's ``(N, *shape)`` array)."""
        return len(next(iter(self.calibrate.values())))

    def samples_sha256(self) -> str:
        """Hash of the calibration samples in the order the converter saw them (input name, then float32 bytes)."""
        digest = hashlib.sha256()
        for name in sorted(self.calibrate):
            digest.update(name.encode() + np.ascontiguousarray(self.calibrate[name], np.float32).tobytes())
        return digest.hexdigest()

    def describe(self) -> dict[str, object]:
        """The set as a JSON-ready dict for the convert manifest: source, format, sample counts, both hashes,
        preprocessing and warnings."""
        return {
            "source": self.source,
            "format": self.format,
            "available": self.total,
            "count": self.count,
            "held_back_for_parity": len(next(iter(self.parity.values()))),
            "files_sha256": self.files_sha256,
            "samples_sha256": self.samples_sha256(),
            "preprocessing": self.preprocessing,
            "warnings": list(self.warnings),
        }


def is_data_spec(text: str) -> bool:
    """True when ``text`` names a dataset SPEC (e.g. ``mnist:split=train``) rather than a file or folder."""
    from toolkit.data.spec import DATASETS

    return not Path(text).exists() and text.partition(":")[0] in DATASETS


def load_calibration(
    path: str | Path,
    inputs: dict[str, tuple[int, ...]],
    max_samples: int,
    parity_samples: int,
    resize: str = "auto",
    seed: int = 0,
    kind: str | None = None,
) -> CalibrationSet:
    """Read calibration data for a model with ``inputs`` (name -> shape without batch).

    ``path`` is a folder of images, a .npy/.npz file, or a data SPEC; a SPEC is turned into model inputs by the
    evaluator of the model ``kind`` (the same preprocessing as evaluation and the camera pipeline).
    """
    src = Path(path)
    rng = np.random.default_rng(seed)
    if resize == "auto":
        resize = "letterbox" if kind in LETTERBOX_KINDS else "stretch"
    preprocessing = f"images {resize}ed to the input, RGB in [0, 1]"
    if is_data_spec(str(path)):
        preprocessing = (
            f"{kind or 'image'} evaluation preprocessing of the SPEC (as toolkit eval feeds the model)"
        )
        arrays, digest, total = _from_spec(str(path), inputs, max_samples + parity_samples, seed, kind)
        fmt = "spec"
    elif not src.exists():
        raise UsageError(
            f"calibration data not found: {src} (pass a folder of images, a .npy/.npz file or a "
            "data SPEC such as mnist:split=train)"
        )
    elif src.is_dir():
        arrays, digest, total = _from_images(src, inputs, max_samples + parity_samples, resize, rng)
        fmt = "images"
    elif src.suffix.lower() == ".npy":
        arrays, digest, total = _from_npy(src, inputs)
        fmt, preprocessing = "npy", "as given (model inputs)"
        _check_range(src, arrays, kind)
    elif src.suffix.lower() == ".npz":
        arrays, digest, total = _from_npz(src, inputs)
        fmt, preprocessing = "npz", "as given (model inputs)"
        _check_range(src, arrays, kind)
    else:
        raise UsageError(f"calibration data {src}: expected a folder of images or a .npy/.npz file")
    _check_finite(src, arrays)
    n = len(next(iter(arrays.values())))
    order = rng.permutation(n)
    hold = min(parity_samples, max(1, n // 5)) if n > 1 else 0
    if n - hold < 1:
        raise UsageError(
            f"calibration data {src}: {n} sample(s) is too few; give at least 20 (100-500 advised)"
        )
    parity_idx, calib_idx = order[:hold], order[hold : hold + max_samples]
    calibrate = {k: v[calib_idx] for k, v in arrays.items()}
    parity = {k: v[parity_idx] for k, v in arrays.items()}
    count = len(calib_idx)
    warnings: tuple[str, ...] = ()
    if count < FEW_SAMPLES:
        warnings += (
            f"only {count} calibration samples: int8 ranges from fewer than {FEW_SAMPLES} are often too "
            "narrow (100-500 advised)",
        )
    if hold < parity_samples:
        warnings += (
            f"parity is checked on {hold} held-back sample(s), not the {parity_samples} asked for: at most "
            f"a fifth of the {n} available samples is held back from calibration (give more data, or "
            f"check parity with --eval DATA)",
        )
    return CalibrationSet(calibrate, parity, str(src), fmt, digest, total, preprocessing, warnings)


def _check_finite(src: Path, arrays: dict[str, np.ndarray]) -> None:
    """NaN or infinite inputs would set int8 ranges from garbage (or fail deep in the converter): refuse them."""
    for name, array in arrays.items():
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            bad = np.flatnonzero(~np.isfinite(array.reshape(len(array), -1)).all(axis=1))
            raise UsageError(
                f"{src}: calibration input '{name}' holds NaN or infinite values in {len(bad)} "
                f"sample(s) (first: sample {int(bad[0])}); remove or repair them"
            )


def _check_range(src: Path, arrays: dict[str, np.ndarray], kind: str | None) -> None:
    """Our image models take pixels in [0, 1] (as the camera pipeline and eval feed them): 0-255 arrays or
    [-1, 1] ones would calibrate ranges the device never sees."""
    if kind not in UNIT_RANGE_KINDS or "image" not in arrays:
        return
    low, high = float(arrays["image"].min()), float(arrays["image"].max())
    if low < -0.01 or high > 1.01:
        hint = "divide 0-255 pixels by 255" if high > 1.5 else "map the values to [0, 1]"
        raise UsageError(
            f"{src}: calibration images span {low:.3g}..{high:.3g}, but a {kind} takes pixels in [0, 1] "
            f"(as the device feeds it): {hint}"
        )


def _from_spec(
    text: str, inputs: dict[str, tuple[int, ...]], limit: int, seed: int, kind: str | None
) -> tuple[dict[str, np.ndarray], str, int]:
    from toolkit.data.model_inputs import model_inputs
    from toolkit.data.spec import parse_spec

    spec = parse_spec(text)
    if (
        list(inputs) != ["image"]
        and len(inputs) == 1
        and len(next(iter(inputs.values()))) == 3
        and kind in (None, "classifier", "detector", "segmenter", "autoencoder", "vae", "vae_encoder")
    ):
        arrays = _generic_images(spec, inputs, limit, seed, letterbox_first=kind in LETTERBOX_KINDS)
    else:
        arrays = model_inputs(kind, spec, inputs, limit, seed, where=text)
    missing = [k for k in inputs if k not in arrays]
    if missing:
        raise UsageError(f"calibration SPEC {text} gives no data for input(s) {', '.join(missing)}")
    out = {k: _check_shape(Path(text), k, np.asarray(arrays[k]), inputs[k]) for k in inputs}
    digest = hashlib.sha256()
    for k in sorted(out):
        digest.update(k.encode() + np.ascontiguousarray(out[k]).tobytes())
    return out, digest.hexdigest(), len(next(iter(out.values())))


def _generic_images(
    spec: Any, inputs: dict[str, tuple[int, ...]], limit: int, seed: int, letterbox_first: bool = False
) -> dict[str, np.ndarray]:
    """A model with one (H, W, C) input under another name than ``image`` (no toolkit kind, or one declared with
    --task): the SPEC's images as our image models see them -- labelled-image SPECs (mnist, image folders) resized
    as the classifier's, detection and segmentation SPECs letterboxed as the detector's; RGB (or grey) in [0, 1]."""
    from toolkit.data.model_inputs import classifier_inputs, detector_inputs

    name, shape = next(iter(inputs.items()))
    loaders = [classifier_inputs, detector_inputs]
    if letterbox_first:
        loaders.reverse()
    try:
        images = loaders[0](spec, {"image": shape}, limit, seed)["image"]
    except UsageError as first:
        try:
            images = loaders[1](spec, {"image": shape}, limit, seed)["image"]
        except UsageError:
            raise first from None
    return {name: images}


def _check_shape(src: Path, name: str, array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if array.dtype == object or not np.issubdtype(array.dtype, np.number):
        raise UsageError(f"{src}: input '{name}' must be a numeric array, got dtype {array.dtype}")
    if tuple(array.shape[1:]) == tuple(shape):
        return array.astype(np.float32, copy=False)
    if tuple(array.shape) == tuple(shape):
        return array[None].astype(np.float32)
    raise UsageError(
        f"{src}: input '{name}' expects samples of shape {list(shape)} (array (N, "
        f"{', '.join(map(str, shape))})), got array of shape {list(array.shape)}"
    )


def _from_npy(src: Path, inputs: dict[str, tuple[int, ...]]) -> tuple[dict[str, np.ndarray], str, int]:
    if len(inputs) != 1:
        raise UsageError(
            f"{src}: the model has {len(inputs)} inputs ({', '.join(inputs)}); pass a .npz with one "
            "array per input name"
        )
    try:
        array = np.load(src, allow_pickle=False)
    except ValueError as exc:
        raise UsageError(
            f"{src}: cannot read as .npy without pickle ({exc}); save plain numeric arrays"
        ) from None
    except (OSError, EOFError) as exc:
        raise UsageError(f"{src}: not a readable .npy file ({exc})") from None
    name, shape = next(iter(inputs.items()))
    return {name: _check_shape(src, name, array, shape)}, _hash_file(src), len(array)


def _from_npz(src: Path, inputs: dict[str, tuple[int, ...]]) -> tuple[dict[str, np.ndarray], str, int]:
    try:
        with np.load(src, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UsageError(f"{src}: not a readable .npz file without pickle ({exc})") from None
    missing = [k for k in inputs if k not in arrays]
    if missing:
        raise UsageError(
            f"{src}: missing array(s) {', '.join(missing)}; the model's inputs are "
            f"{', '.join(inputs)} and the file has {', '.join(arrays) or 'none'}"
        )
    out = {k: _check_shape(src, k, arrays[k], inputs[k]) for k in inputs}
    lengths = {len(v) for v in out.values()}
    if len(lengths) != 1:
        raise UsageError(f"{src}: arrays have different sample counts {sorted(lengths)}")
    return out, _hash_file(src), lengths.pop()


def _from_images(
    src: Path, inputs: dict[str, tuple[int, ...]], limit: int, resize: str, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], str, int]:
    import cv2

    if len(inputs) != 1:
        raise UsageError(f"{src}: an image folder can only calibrate a single-input model; pass a .npz")
    name, shape = next(iter(inputs.items()))
    if len(shape) != 3 or shape[-1] not in (1, 3):
        raise UsageError(
            f"{src}: the model input '{name}' {list(shape)} is not an image (H, W, 1|3); pass a .npy"
        )
    files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UsageError(
            f"{src}: no images found ({', '.join(IMAGE_SUFFIXES)}); pass a folder of images or a .npy"
        )
    chosen = [files[i] for i in sorted(rng.permutation(len(files))[:limit])]
    h, w, c = shape
    batch = np.empty((len(chosen), h, w, c), np.float32)
    digest = hashlib.sha256()
    for i, file in enumerate(chosen):
        raw = file.read_bytes()
        digest.update(f"{file.relative_to(src)}\0{hashlib.sha256(raw).hexdigest()}\n".encode())
        image = cv2.imdecode(
            np.frombuffer(raw, np.uint8), cv2.IMREAD_GRAYSCALE if c == 1 else cv2.IMREAD_COLOR
        )
        if image is None:
            raise UsageError(f"{file}: cannot decode image; remove it from the calibration folder")
        if c == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        batch[i] = fit_image(image, h, w, resize).reshape(h, w, c).astype(np.float32) / 255.0
    return {name: batch}, digest.hexdigest(), len(files)


def fit_image(image: np.ndarray, h: int, w: int, resize: str) -> np.ndarray:
    """Resize ``image`` to (h, w): stretched, or letterboxed with grey padding exactly as the camera pipeline."""
    from toolkit.adapters.image import letterbox, resize_image

    if resize == "stretch":
        return resize_image(image, (h, w))
    return letterbox(image, (h, w))[0]


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
