"""Image files: reading RGB pixels, image sizes from headers, and class-per-sub-folder datasets.

>>> data = scan_image_folder("flowers/")          # flowers/<class>/<image>, classes sorted by name
>>> x = load_images(data.paths[:100], (96, 96))   # float32 (100, 96, 96, 3), RGB in [0, 1]

Pixels are read as stored, ignoring any EXIF orientation tag: COCO / YOLO boxes and masks are drawn on the
stored pixels, so rotating the image would misplace every label.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from toolkit.adapters.image import letterbox, resize_image
from toolkit.errors import UsageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
_READ_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode an image file into uint8 H x W x 3 RGB (grey and RGBA files are converted).

    A missing, empty or undecodable file is a UsageError naming it.
    """
    file = Path(path)
    try:
        # np.fromfile + imdecode: cv2.imread would print its own warning on stderr for a bad path.
        raw = np.fromfile(file, dtype=np.uint8)
    except FileNotFoundError:
        raise UsageError(f"image not found: {file}") from None
    except OSError as exc:
        raise UsageError(f"cannot read image {file}: {exc.strerror or exc}") from None
    bgr = cv2.imdecode(raw, _READ_FLAGS) if raw.size else None
    if bgr is None:
        raise UsageError(f"cannot decode image {file} (empty, truncated or not an image)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image file, from the PNG / JPEG header when possible (no decoding)."""
    file = Path(path)
    try:
        with open(file, "rb") as handle:
            head = handle.read(64 * 1024)
    except FileNotFoundError:
        raise UsageError(f"image not found: {file}") from None
    except OSError as exc:
        raise UsageError(f"cannot read image {file}: {exc.strerror or exc}") from None
    size = _png_size(head) or _jpeg_size(head)
    if size is None:
        h, w = read_rgb(file).shape[:2]
        size = (w, h)
    return size


def _png_size(head: bytes) -> tuple[int, int] | None:
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        w, h = struct.unpack(">II", head[16:24])
        return (w, h) if w and h else None
    return None


def _jpeg_size(head: bytes) -> tuple[int, int] | None:
    if head[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 < len(head):
        if head[i] != 0xFF:
            return None
        marker = head[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD9)):  # markers without a length field
            i += 2
            continue
        length = struct.unpack(">H", head[i + 2 : i + 4])[0]
        # SOF0-SOF15 carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", head[i + 5 : i + 9])
            return (w, h) if w and h else None
        i += 2 + length
    return None  # header longer than what we read (e.g. a big EXIF thumbnail): the caller decodes instead


def load_image(
    path: str | Path, size_hw: tuple[int, int], keep_aspect: bool = False, channels: int = 3
) -> np.ndarray:
    """Read an image as float32 (H, W, channels) in [0, 1], resized to ``size_hw`` = (height, width).

    ``keep_aspect`` letterboxes (grey 114/255 padding, as the detection pipeline does) instead of stretching.
    ``channels`` 1 converts to grey (MNIST-style models). Used for training, evaluation and int8 calibration.
    """
    if channels not in (1, 3):
        raise UsageError(f"load_image: channels must be 1 or 3, got {channels}")
    rgb = read_rgb(path)
    if channels == 1:
        rgb = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None]
    image = letterbox(rgb, size_hw)[0] if keep_aspect else resize_image(rgb, size_hw)
    return image.astype(np.float32) / 255.0


def load_images(
    paths: Sequence[str | Path], size_hw: tuple[int, int], keep_aspect: bool = False, channels: int = 3
) -> np.ndarray:
    """:func:`load_image` over many files -> float32 (N, H, W, channels)."""
    out = np.empty((len(paths), int(size_hw[0]), int(size_hw[1]), channels), dtype=np.float32)
    for i, path in enumerate(paths):
        out[i] = load_image(path, size_hw, keep_aspect, channels)
    return out


def list_images(folder: str | Path, recursive: bool = True) -> list[Path]:
    """Image files (by extension, case-insensitive) under ``folder``, sorted; none found is a UsageError."""
    root = Path(folder)
    if not root.is_dir():
        raise UsageError(f"image folder not found: {root}")
    pattern = root.rglob("*") if recursive else root.glob("*")
    paths = sorted(p for p in pattern if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not paths:
        raise UsageError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in {root}")
    return paths


@dataclass(frozen=True, eq=False)
class ImageFolder:
    """A classification dataset: ``paths[i]`` has class ``labels[i]``, named ``class_names[labels[i]]``."""

    paths: list[Path]
    labels: np.ndarray  # int64 (N,)
    class_names: tuple[str, ...]


def scan_image_folder(root: str | Path, class_names: Sequence[str] | None = None) -> ImageFolder:
    """One sub-folder per class (``root/<class>/**/<image>``) -> an :class:`ImageFolder`.

    Classes are the sub-folder names sorted, or ``class_names`` in that order (e.g. a trained model's classes);
    a sub-folder that is not among them, a listed class with no folder, or a class folder with no images is a
    UsageError. Order is deterministic: by class, then by path.
    """
    base = Path(root)
    if not base.is_dir():
        raise UsageError(f"image folder not found: {base}")
    folders = sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise UsageError(f"{base} has no class sub-folders (expected {base}/<class name>/<images>)")
    if class_names is None:
        names = tuple(folders)
    else:
        names = tuple(class_names)
        extra = sorted(set(folders) - set(names))
        if extra:
            raise UsageError(f"{base}: sub-folder '{extra[0]}' is not one of the classes {list(names)}")
        missing = [n for n in names if n not in folders]
        if missing:
            raise UsageError(f"{base}: no sub-folder for class '{missing[0]}'")
    paths: list[Path] = []
    labels: list[int] = []
    for index, name in enumerate(names):
        files = sorted(
            p for p in (base / name).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
        )
        if not files:
            raise UsageError(f"class folder {base / name} has no images ({', '.join(IMAGE_EXTENSIONS)})")
        paths.extend(files)
        labels.extend([index] * len(files))
    return ImageFolder(paths=paths, labels=np.asarray(labels, dtype=np.int64), class_names=names)
