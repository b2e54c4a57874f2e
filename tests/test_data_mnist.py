"""MNIST IDX reading (hand-made good and malformed files) and the documented stratified split."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from helpers_data import one_line_error

from toolkit.data.mnist import IDX_IMAGES, IDX_LABELS, load_mnist, read_idx, split_indices


def idx_bytes(magic: int, shape: tuple[int, ...], data: bytes) -> bytes:
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in shape) + data


def write_mnist(folder: Path, images: np.ndarray, labels: np.ndarray, gz: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, magic, array in (("images-idx3", IDX_IMAGES, images), ("labels-idx1", IDX_LABELS, labels)):
        raw = idx_bytes(magic, array.shape, array.astype(np.uint8).tobytes())
        path = folder / f"t10k-{name}-ubyte{'.gz' if gz else ''}"
        path.write_bytes(gzip.compress(raw) if gz else raw)


@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_round_trip(tmp_path, gz):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(12, 28, 28), dtype=np.uint8)
    labels = np.arange(12, dtype=np.uint8) % 10
    write_mnist(tmp_path, images, labels, gz=gz)
    got_images, got_labels = load_mnist(tmp_path)
    assert got_images.dtype == np.uint8 and got_images.shape == (12, 28, 28)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_bad_magic_names_file(tmp_path):
    path = tmp_path / "x-idx1-ubyte"
    path.write_bytes(idx_bytes(0x00000901, (3,), b"\x00\x01\x02"))  # dtype byte 0x09 = int8, not uint8
    assert str(path) in one_line_error(read_idx, path)
    path.write_bytes(idx_bytes(IDX_LABELS, (3,), b"\x00\x01\x02"))
    message = one_line_error(read_idx, path, IDX_IMAGES)
    assert str(path) in message and "0x801" in message and "0x803" in message
    path.write_bytes(b"PK\x03\x04not idx at all")
    assert "not a uint8 IDX file" in one_line_error(read_idx, path)


def test_truncated_and_oversized_idx(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(idx_bytes(IDX_IMAGES, (5, 28, 28), bytes(28 * 28 * 4)))  # one image short
    message = one_line_error(read_idx, path)
    assert str(path) in message and "truncated" in message and "5x28x28 = 3920" in message
    path.write_bytes(idx_bytes(IDX_IMAGES, (1, 28, 28), bytes(28 * 28 + 7)))
    assert "trailing bytes" in one_line_error(read_idx, path)
    path.write_bytes(struct.pack(">I", IDX_IMAGES) + b"\x00\x00")  # header cut inside the dimensions
    assert "truncated IDX header" in one_line_error(read_idx, path)
    path.write_bytes(b"\x00\x00")
    assert "truncated" in one_line_error(read_idx, path)


def test_truncated_gzip_names_file(tmp_path):
    raw = gzip.compress(idx_bytes(IDX_IMAGES, (4, 28, 28), bytes(range(256)) * 12 + bytes(64)))
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(raw[: len(raw) // 2])
    message = one_line_error(read_idx, path)
    assert str(path) in message and "gzip" in message


def test_load_mnist_inconsistent_files(tmp_path):
    write_mnist(tmp_path / "a", np.zeros((3, 28, 28)), np.zeros(4))
    assert "3 images" in one_line_error(load_mnist, tmp_path / "a")
    write_mnist(tmp_path / "b", np.zeros((2, 28, 28)), np.array([1, 12]))
    assert "label 12" in one_line_error(load_mnist, tmp_path / "b")
    write_mnist(tmp_path / "c", np.zeros((2, 20, 20)), np.array([1, 2]))
    assert "expected 28x28" in one_line_error(load_mnist, tmp_path / "c")
    assert "t10k-images-idx3-ubyte" in one_line_error(load_mnist, tmp_path)  # nothing there
    assert "not found" in one_line_error(load_mnist, tmp_path / "missing")


def test_split_sizes_exact_and_stratified():
    rng = np.random.default_rng(3)
    labels = rng.choice(10, size=1003, p=np.linspace(1, 2, 10) / np.linspace(1, 2, 10).sum())
    parts = split_indices(labels, (0.7, 0.1, 0.2), seed=5)
    assert [len(p) for p in parts] == [702, 100, 201]  # largest remainder: 702.1, 100.3, 200.6
    joined = np.concatenate(parts)
    assert len(np.unique(joined)) == len(labels) == len(joined)
    counts = np.bincount(labels, minlength=10)
    for part, fraction in zip(parts, (0.7, 0.1, 0.2), strict=True):
        assert np.all(np.diff(part) > 0)  # sorted
        expected = counts * len(part) / len(labels)
        assert np.all(np.abs(np.bincount(labels[part], minlength=10) - expected) <= 1.0 + fraction)


def test_split_reproducible_and_seeded():
    labels = np.repeat(np.arange(4), 50)
    first, again, other = (
        split_indices(labels, seed=0),
        split_indices(labels, seed=0),
        split_indices(labels, seed=1),
    )
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[2], other[2])
    two = split_indices(labels, (0.5, 0.5))
    assert [len(p) for p in two] == [100, 100]
    assert np.array_equal(np.bincount(labels[two[0]]), [25, 25, 25, 25])


def test_split_rejects_bad_fractions():
    assert "sum to 1" in one_line_error(split_indices, np.zeros(10), (0.7, 0.2))
    assert "sum to 1" in one_line_error(split_indices, np.zeros(10), (1.2, -0.2))
    assert "1-D" in one_line_error(split_indices, np.zeros((2, 5)))


@pytest.mark.shared
def test_real_mnist_and_documented_split(shared):
    images, labels = load_mnist(shared / "data" / "mnist")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    train, val, test = split_indices(labels)
    assert (len(train), len(val), len(test)) == (7000, 1000, 2000)
    for part, fraction in ((train, 0.7), (val, 0.1), (test, 0.2)):
        assert np.all(np.abs(np.bincount(labels[part], minlength=10) - np.bincount(labels) * fraction) <= 1)
    # Every reported MNIST figure uses this split: pin it so a change to the algorithm cannot pass unnoticed.
    assert test[:8].tolist() == [10, 15, 23, 25, 27, 30, 32, 38]
    assert (int(test.sum()), int(val.sum())) == (9893295, 4882795)
    train_labels = read_idx(shared / "data" / "mnist" / "train-labels-idx1-ubyte.gz", IDX_LABELS)
    assert train_labels.shape == (60000,) and np.bincount(train_labels)[0] == 5923
