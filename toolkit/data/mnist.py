"""MNIST in its original IDX format (gzip'd or plain) and the project's documented stratified split.

Only the 10k MNIST *test* images are available in the shared data, so every MNIST figure this project reports
uses :data:`SPLIT_DESCRIPTION`: those 10k images split 7k / 1k / 2k (train / val / test), stratified by label,
seed 0, by :func:`split_indices` with its defaults.

>>> images, labels = load_mnist(shared_dir() / "data" / "mnist")      # uint8 (10000, 28, 28), uint8 (10000,)
>>> train, val, test = split_indices(labels)                           # int64 index arrays, 7000 / 1000 / 2000
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from toolkit.errors import UsageError

IDX_LABELS = 0x801  # uint8, 1 dimension
IDX_IMAGES = 0x803  # uint8, 3 dimensions
SPLIT_DESCRIPTION = (
    "MNIST: the 10k official test images split 7000/1000/2000 (train/val/test), stratified by label, seed 0 "
    "(toolkit.data.mnist.split_indices)"
)
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str | Path, expect_magic: int | None = None) -> np.ndarray:
    """Read one uint8 IDX file (gzip'd or plain, detected from its bytes) into an array shaped as its header says.

    ``expect_magic`` (0x801 labels, 0x803 images) is checked when given. A bad magic number, a non-uint8 type,
    a truncated file or trailing bytes raise a UsageError naming the file.
    """
    file = Path(path)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"IDX file not found: {file}") from None
    except OSError as exc:
        raise UsageError(f"cannot read IDX file {file}: {exc.strerror or exc}") from None
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            # A cut-off download is the usual cause: gzip raises EOFError on a truncated stream.
            raise UsageError(
                f"{file}: corrupt or truncated gzip data ({exc or type(exc).__name__})"
            ) from None
    if len(raw) < 4:
        raise UsageError(f"{file}: truncated IDX file ({len(raw)} bytes, the header alone is at least 4)")
    magic = int.from_bytes(raw[:4], "big")
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] == 0:
        raise UsageError(
            f"{file}: not a uint8 IDX file (magic 0x{magic:08x}; expected 0x801 labels or 0x803 images)"
        )
    if expect_magic is not None and magic != expect_magic:
        raise UsageError(f"{file}: IDX magic 0x{magic:x}, expected 0x{expect_magic:x}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UsageError(
            f"{file}: truncated IDX header ({len(raw)} bytes, expected {header} for {ndim} dimensions)"
        )
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape, dtype=np.int64))
    found = len(raw) - header
    if found != expected:
        dims = "x".join(map(str, shape))
        kind = "truncated" if found < expected else "has trailing bytes"
        raise UsageError(f"{file}: {kind}: header says {dims} = {expected} bytes of data, found {found}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def _find(folder: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        if (folder / name).is_file():
            return folder / name
    raise UsageError(f"MNIST file not found: {folder / stem}[.gz] (expected the original IDX files)")


def load_mnist(folder: str | Path, prefix: str = "t10k") -> tuple[np.ndarray, np.ndarray]:
    """Load ``{prefix}-images-idx3-ubyte[.gz]`` and ``{prefix}-labels-idx1-ubyte[.gz]`` from ``folder``.

    Returns (images uint8 (N, 28, 28), labels uint8 (N,) in 0-9). Counts that disagree between the two files,
    images that are not 28x28, or labels above 9 are UsageErrors.
    """
    root = Path(folder)
    if not root.is_dir():
        raise UsageError(f"MNIST folder not found: {root}")
    image_file = _find(root, f"{prefix}-images-idx3-ubyte")
    label_file = _find(root, f"{prefix}-labels-idx1-ubyte")
    images = read_idx(image_file, IDX_IMAGES)
    labels = read_idx(label_file, IDX_LABELS)
    if images.shape[1:] != (28, 28):
        raise UsageError(f"{image_file}: images are {images.shape[1]}x{images.shape[2]}, expected 28x28")
    if len(images) != len(labels):
        raise UsageError(f"{image_file} has {len(images)} images but {label_file} has {len(labels)} labels")
    if len(labels) and labels.max() > 9:
        raise UsageError(f"{label_file}: label {int(labels.max())} found, MNIST labels are 0-9")
    return images, labels


def split_indices(
    labels: np.ndarray, fractions: Sequence[float] = (0.7, 0.1, 0.2), seed: int = 0
) -> tuple[np.ndarray, ...]:
    """Split sample indices into len(fractions) parts (train, val, test by default), stratified by label.

    Sizes are exact (largest remainder: 10000 -> 7000 / 1000 / 2000) and each class's share of each part is
    within one sample of its share of the whole. Deterministic for a given ``seed``. Returns sorted int64 arrays
    that together hold every index once.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise UsageError(f"split_indices: labels must be 1-D, got shape {labels.shape}")
    fracs = np.asarray(fractions, dtype=np.float64)
    if fracs.ndim != 1 or len(fracs) == 0 or np.any(fracs < 0) or abs(fracs.sum() - 1.0) > 1e-6:
        raise UsageError(f"split_indices: fractions must be >= 0 and sum to 1, got {tuple(fractions)}")
    n = len(labels)
    rng = np.random.default_rng(seed)
    # Stratify by spreading each (shuffled) class evenly over [0, 1) and cutting the merged order: any prefix
    # then holds every class in proportion (+-1), while the part sizes stay exact.
    position = np.empty(n, dtype=np.float64)
    for value in np.unique(labels):
        members = np.flatnonzero(labels == value)
        members = members[rng.permutation(len(members))]
        position[members] = (np.arange(len(members)) + 0.5) / len(members)
    order = np.lexsort((rng.random(n), position))  # random tie-break between classes at equal positions
    sizes = np.floor(fracs * n).astype(np.int64)
    remainder = fracs * n - sizes
    for i in np.argsort(-remainder, kind="stable")[: n - int(sizes.sum())]:
        sizes[i] += 1
    cuts = np.cumsum(sizes)[:-1]
    return tuple(np.sort(part).astype(np.int64) for part in np.split(order, cuts))
