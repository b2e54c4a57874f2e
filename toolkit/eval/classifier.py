"""Classifier evaluation (top-1, per-class recall/precision, confusion matrix, a 3-NN pixel baseline) and the
labelled-image loader behind the ``mnist`` and ``images`` data SPECs (numpy + OpenCV only: runs on a device).

The same loader feeds training (``toolkit.train.task_classifier`` / ``_autoencoder`` / ``_vae``), evaluation and
int8 calibration, so all three see identical preprocessing: float32 (N, H, W, C) in [0, 1].

>>> data = load_labelled_images("mnist:split=test", (28, 28, 1))     # the documented 2,000-image test split
>>> data.images.shape, data.labels[:3], data.describe               # (2000, 28, 28, 1) ...
"""

from __future__ import annotations

from typing import Any

import numpy as np

from toolkit.data.labelled_images import LabelledImages, load_labelled_images
from toolkit.data.spec import DataSpec, parse_spec
from toolkit.errors import UsageError
from toolkit.eval import metrics
from toolkit.eval.config import EvalConfig
from toolkit.eval.report import EvalReport

KNN_K = 3  # neighbours of the raw-pixel baseline (odd: fewer vote ties)


def knn_predict(
    train_x: np.ndarray, train_y: np.ndarray, query: np.ndarray, k: int = KNN_K, chunk: int = 512
) -> np.ndarray:
    """k-nearest-neighbour labels (Euclidean on flattened pixels, majority vote, ties -> the nearest's class)."""
    a = train_x.reshape(len(train_x), -1).astype(np.float32)
    a_sq = np.einsum("ij,ij->i", a, a)
    classes = int(train_y.max()) + 1
    out = np.empty(len(query), np.int64)
    for start in range(0, len(query), chunk):
        q = query[start : start + chunk].reshape(-1, a.shape[1]).astype(np.float32)
        dist = a_sq[None, :] - 2.0 * q @ a.T  # + |q|^2, constant per row
        near = np.argsort(dist, axis=1, kind="stable")[:, :k]
        votes = np.zeros((len(q), classes), np.float64)
        for rank in range(k):  # a vote is 1; the tiny rank bonus breaks ties toward closer neighbours
            np.add.at(votes, (np.arange(len(q)), train_y[near[:, rank]]), 1.0 + 1e-3 * (k - rank))
        out[start : start + len(q)] = votes.argmax(axis=1)
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
        raise UsageError(
            f"data spec '{spec}': labels go up to {int(data.labels.max())} but the model has "
            f"{num_classes} classes"
        )
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
    per_class = [
        {
            "class": names[c],
            "support": int(cm[c].sum()),
            "recall": _num(recall[c]),
            "precision": _num(precision[c]),
        }
        for c in range(num_classes)
    ]
    confusion = [
        {"true": names[c], **{f"pred_{names[p]}": int(cm[c, p]) for p in range(num_classes)}}
        for c in range(num_classes)
    ]
    report = EvalReport(
        kind="classifier",
        model=str(predictor.path),
        model_format=predictor.format,
        data=str(spec),
        samples=len(data.labels),
        primary="top1",
        metrics=result,
        tables={"per_class": per_class, "confusion": confusion},
        notes=[data.describe],
    )
    if config.baselines:
        _baseline(report, spec, shape, data, top1)
    return report


def _baseline(
    report: EvalReport, spec: DataSpec, shape: tuple[int, ...], data: LabelledImages, top1: float
) -> None:
    ref_spec = reference_split(spec)
    if ref_spec is None:
        report.notes.append(
            "baseline skipped: the scored samples are training data (score split=val or test)"
        )
        return
    reference = load_labelled_images(ref_spec, shape, "train")
    predicted = knn_predict(reference.images, reference.labels, data.images)
    report.tables["baselines"] = [
        {"method": "model", "top1": top1},
        {
            "method": f"{KNN_K}-NN on raw pixels (fit on {ref_spec})",
            "top1": metrics.accuracy(data.labels, predicted),
        },
    ]


def _num(value: float) -> float | None:
    return None if np.isnan(value) else float(value)
