"""Labelled images from a SPEC (MNIST from the shared data, or a folder of class sub-folders), resized and
scaled as the classifier, the autoencoder and the VAE take them; the one loader training, calibration and
evaluation use.

>>> data = load_labelled_images("mnist:split=test", (28, 28, 1))     # LabelledImages(images, labels, ...)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit.data.spec import DataSpec, parse_spec
from toolkit.errors import UsageError

SPLITS = ("train", "val", "test", "all")


@dataclass(frozen=True, eq=False)
class LabelledImages:
    images: np.ndarray  # float32 (N, H, W, C) in [0, 1]
    labels: np.ndarray  # int64 (N,) class indices
    class_names: tuple[str, ...]  # name of each class index
    describe: str  # one line: source, split rule, filters, count


def parse_digits(spec: DataSpec, key: str) -> tuple[int, ...]:
    """The digits of a comma-free ``key=...`` value (e.g. ``exclude=89`` -> (8, 9)); () when absent."""
    value = spec.get(key)
    if value is None:
        return ()
    if not value.isdigit():
        raise UsageError(
            f"data spec '{spec}': {key}={value} must be digits 0-9 written together, e.g. {key}=9 or {key}=89"
        )
    return tuple(sorted({int(c) for c in value}))


@functools.lru_cache(maxsize=4)
def _mnist_arrays(root: str) -> tuple[np.ndarray, np.ndarray]:
    from toolkit.data.mnist import load_mnist

    images, labels = load_mnist(root)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def _split(labels: np.ndarray, split: str, spec: DataSpec) -> np.ndarray:
    from toolkit.data.mnist import split_indices

    if split not in SPLITS:
        raise UsageError(f"data spec '{spec}': split={split} is not one of {', '.join(SPLITS)}")
    if split == "all":
        return np.arange(len(labels), dtype=np.int64)
    return split_indices(labels)[("train", "val", "test").index(split)]


def subset(count: int, limit: int | None, seed: int = 0) -> np.ndarray:
    """Sorted indices of a seeded random subset of ``limit`` out of ``count`` (all when limit is None or larger).

    A random subset, not the first N: MNIST's file order is not random (its first 5,000 images are the easier
    ones), and the split's class balance carries over to a random subset on average.
    """
    if limit is None or limit >= count:
        return np.arange(count, dtype=np.int64)
    if limit < 1:
        raise UsageError(f"limit must be >= 1, got {limit}")
    return np.sort(np.random.default_rng(seed).permutation(count)[:limit]).astype(np.int64)


def load_labelled_images(
    spec: str | DataSpec,
    input_shape: tuple[int, ...] = (28, 28, 1),
    default_split: str = "test",
    limit: int | None = None,
) -> LabelledImages:
    """Images and labels for a ``mnist`` or ``images`` SPEC, shaped for a model input ``(H, W, C)``.

    Order: split (documented stratified 70/10/20, seed 0; ``default_split`` when the SPEC has none) -> digit
    filters (mnist ``exclude=`` / ``only=``) -> ``limit=`` and ``limit`` (the smaller; a seeded random subset).
    MNIST must be fed to a 28x28x1 input; image folders are resized (stretched) to the input.
    """
    spec = parse_spec(spec)
    shape = tuple(int(v) for v in input_shape)
    if len(shape) != 3:
        raise UsageError(f"data spec '{spec}': the model input {list(shape)} is not an image (H, W, C)")
    split = spec.get("split", default_split) or default_split
    caps = [v for v in (spec.get_int("limit"), limit) if v is not None]
    if spec.name == "mnist":
        return _load_mnist(spec, shape, split, min(caps) if caps else None)
    if spec.name == "images":
        return _load_folder(spec, shape, split, min(caps) if caps else None)
    raise UsageError(
        f"data spec '{spec}': {spec.name} data has no class labels for images; use mnist:... or "
        "images:path=DIR (one sub-folder per class)"
    )


def _load_mnist(spec: DataSpec, shape: tuple[int, ...], split: str, limit: int | None) -> LabelledImages:
    from toolkit.paths import shared_path

    if shape != (28, 28, 1):
        raise UsageError(
            f"data spec '{spec}': MNIST images are 28x28x1 but the model input is {'x'.join(map(str, shape))}"
        )
    root = spec.get("root") or str(shared_path("data", "mnist"))
    images, labels = _mnist_arrays(str(Path(root).resolve()))
    index = _split(labels, split, spec)
    exclude, only = parse_digits(spec, "exclude"), parse_digits(spec, "only")
    if exclude and only:
        raise UsageError(f"data spec '{spec}': use exclude= or only=, not both")
    if exclude:
        index = index[~np.isin(labels[index], exclude)]
    if only:
        index = index[np.isin(labels[index], only)]
    if not len(index):
        raise UsageError(f"data spec '{spec}': no images left after the digit filters")
    index = index[subset(len(index), limit)]
    rule = f"split={split} of the documented 7000/1000/2000 stratified split (seed 0)"
    filters = (f", without digits {''.join(map(str, exclude))}" if exclude else "") + (
        f", only digits {''.join(map(str, only))}" if only else ""
    )
    return LabelledImages(
        images=(images[index].astype(np.float32) / 255.0)[..., None],
        labels=labels[index].astype(np.int64),
        class_names=tuple(str(d) for d in range(10)),
        describe=f"MNIST t10k {rule}{filters}: {len(index)} images",
    )


def _load_folder(spec: DataSpec, shape: tuple[int, ...], split: str, limit: int | None) -> LabelledImages:
    from toolkit.data.image_folder import load_images, scan_image_folder

    height, width, channels = shape
    if channels not in (1, 3):
        raise UsageError(
            f"data spec '{spec}': the model input has {channels} channels; image folders give 1 or 3"
        )
    folder = scan_image_folder(spec.get("path") or "")
    index = _split(folder.labels, split, spec)
    index = index[subset(len(index), limit)]
    images = load_images([folder.paths[i] for i in index], (height, width), channels=channels)
    return LabelledImages(
        images,
        folder.labels[index],
        folder.class_names,
        f"image folder {spec.get('path')}: split={split} of a stratified 70/10/20 split "
        f"(seed 0), {len(index)} images, {len(folder.class_names)} classes",
    )
