"""Classifier evaluation (top-1, per-class recall/precision, confusion matrix, a 3-NN pixel baseline) and the
labelled-image loader behind the ``mnist`` and ``images`` data SPECs (numpy + OpenCV only: runs on a device).

The same loader feeds training (``toolkit.train.task_classifier`` / ``_autoencoder`` / ``_vae``), evaluation and
int8 calibration, so all three see identical preprocessing: float32 (N, H, W, C) in [0, 1].

>>> data = load_labelled_images("mnist:split=test", (28, 28, 1))     # the documented 2,000-image test split
>>> data.images.shape, data.labels[:3], data.describe               # (2000, 28, 28, 1) ...
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.data.spec import DataSpec, parse_spec
from toolkit.errors import UsageError
from toolkit.eval import metrics
from toolkit.eval.config import EvalConfig
from toolkit.eval.report import EvalReport

SPLITS = ("train", "val", "test", "all")
KNN_K = 3  # neighbours of the raw-pixel baseline (odd: fewer vote ties)


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
        raise UsageError(f"data spec '{spec}': {key}={value} must be digits 0-9 written together, e.g. {key}=9 "
                         f"or {key}=89")
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


def load_labelled_images(spec: str | DataSpec, input_shape: tuple[int, ...] = (28, 28, 1),
                         default_split: str = "test", limit: int | None = None) -> LabelledImages:
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
    raise UsageError(f"data spec '{spec}': {spec.name} data has no class labels for images; use mnist:... or "
                     "images:path=DIR (one sub-folder per class)")


def _load_mnist(spec: DataSpec, shape: tuple[int, ...], split: str, limit: int | None) -> LabelledImages:
    from toolkit.paths import shared_path

    if shape != (28, 28, 1):
        raise UsageError(f"data spec '{spec}': MNIST images are 28x28x1 but the model input is "
                         f"{'x'.join(map(str, shape))}")
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
    filters = (f", without digits {''.join(map(str, exclude))}" if exclude else "") + \
              (f", only digits {''.join(map(str, only))}" if only else "")
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
        raise UsageError(f"data spec '{spec}': the model input has {channels} channels; image folders give 1 or 3")
    folder = scan_image_folder(spec.get("path") or "")
    index = _split(folder.labels, split, spec)
    index = index[subset(len(index), limit)]
    images = load_images([folder.paths[i] for i in index], (height, width), channels=channels)
    return LabelledImages(images, folder.labels[index], folder.class_names,
                          f"image folder {spec.get('path')}: split={split} of a stratified 70/10/20 split "
                          f"(seed 0), {len(index)} images, {len(folder.class_names)} classes")


def knn_predict(train_x: np.ndarray, train_y: np.ndarray, query: np.ndarray, k: int = KNN_K,
                chunk: int = 512) -> np.ndarray:
    """k-nearest-neighbour labels (Euclidean on flattened pixels, majority vote, ties -> the nearest's class)."""
    a = train_x.reshape(len(train_x), -1).astype(np.float32)
    a_sq = np.einsum("ij,ij->i", a, a)
    classes = int(train_y.max()) + 1
    out = np.empty(len(query), np.int64)
    for start in range(0, len(query), chunk):
        q = query[start:start + chunk].reshape(-1, a.shape[1]).astype(np.float32)
        dist = a_sq[None, :] - 2.0 * q @ a.T  # + |q|^2, constant per row
        near = np.argsort(dist, axis=1, kind="stable")[:, :k]
        votes = np.zeros((len(q), classes), np.float64)
        for rank in range(k):  # a vote is 1; the tiny rank bonus breaks ties toward closer neighbours
            np.add.at(votes, (np.arange(len(q)), train_y[near[:, rank]]), 1.0 + 1e-3 * (k - rank))
        out[start:start + len(q)] = votes.argmax(axis=1)
    return out


def reference_split(spec: DataSpec) -> DataSpec | None:
    """The training split of the same data (filters kept, limit dropped) for fitting a baseline, or None when
    ``spec`` is itself training data (a baseline fitted on the scored samples would be meaningless)."""
    if spec.get("split", "test") not in ("val", "test"):
        return None
    options = {k: v for k, v in spec.options.items() if k not in ("limit", "split", "only")}
    return DataSpec(spec.name, {**options, "split": "train"}, "").with_options()


def evaluate(predictor: Any, spec: DataSpec, config: EvalConfig = EvalConfig()) -> EvalReport:
    """Top-1 (primary), balanced accuracy, log loss, per-class table and confusion matrix of ``predictor``'s
    ``probs`` on a labelled-image SPEC (default split: test); a 3-NN raw-pixel baseline on the same images."""
    spec = parse_spec(spec)
    shape = tuple(predictor.input_shapes["image"])
    data = load_labelled_images(spec, shape, "test", config.limit)
    probs = predictor.predict({"image": data.images}, config.batch_size)["probs"].astype(np.float64)
    num_classes = probs.shape[1]
    if data.labels.max() >= num_classes:
        raise UsageError(f"data spec '{spec}': labels go up to {int(data.labels.max())} but the model has "
                         f"{num_classes} classes")
    predicted = probs.argmax(axis=1)
    cm = metrics.confusion_matrix(data.labels, predicted, num_classes)
    recall, precision = metrics.recall_per_class(cm), metrics.precision_per_class(cm)
    picked = np.clip(probs[np.arange(len(probs)), data.labels], 1e-7, 1.0)
    top1 = metrics.accuracy(data.labels, predicted)
    result = {
        "top1": top1,
        "top2": metrics.top_k_accuracy(data.labels, probs, min(2, num_classes)),
        "balanced_accuracy": float(np.nanmean(recall)),
        "log_loss": float(-np.log(picked).mean()),
        "errors": int((predicted != data.labels).sum()),
    }
    names = list(data.class_names) + [str(i) for i in range(len(data.class_names), num_classes)]
    per_class = [{"class": names[c], "support": int(cm[c].sum()), "recall": _num(recall[c]),
                  "precision": _num(precision[c])} for c in range(num_classes)]
    confusion = [{"true": names[c], **{f"pred_{names[p]}": int(cm[c, p]) for p in range(num_classes)}}
                 for c in range(num_classes)]
    report = EvalReport(kind="classifier", model=str(predictor.path), model_format=predictor.format,
                        data=str(spec), samples=len(data.labels), primary="top1", metrics=result,
                        tables={"per_class": per_class, "confusion": confusion}, notes=[data.describe])
    if config.baselines:
        _baseline(report, spec, shape, data, top1)
    return report


def _baseline(report: EvalReport, spec: DataSpec, shape: tuple[int, ...], data: LabelledImages,
              top1: float) -> None:
    ref_spec = reference_split(spec)
    if ref_spec is None:
        report.notes.append("baseline skipped: the scored samples are training data (score split=val or test)")
        return
    reference = load_labelled_images(ref_spec, shape, "train")
    predicted = knn_predict(reference.images, reference.labels, data.images)
    report.tables["baselines"] = [
        {"method": "model", "top1": top1},
        {"method": f"{KNN_K}-NN on raw pixels (fit on {ref_spec})", "top1": metrics.accuracy(data.labels, predicted)},
    ]


def _num(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def model_inputs(spec: str | DataSpec, input_shapes: dict[str, tuple[int, ...]], limit: int | None = None,
                 seed: int = 0) -> dict[str, np.ndarray]:
    """``{"image": float32 (N, H, W, C)}`` from a labelled-image SPEC (default split: train), preprocessed as in
    training and evaluation; ``limit`` takes a random subset seeded by ``seed``."""
    if "image" not in input_shapes:
        raise UsageError(f"model inputs {list(input_shapes)} have no 'image' input; not a classifier")
    data = load_labelled_images(spec, tuple(input_shapes["image"]), "train")
    return {"image": data.images[subset(len(data.images), limit, seed)]}
