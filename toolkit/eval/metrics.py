"""Generic metric functions on numpy arrays (no TensorFlow): accuracy, confusion matrix, AUROC, IoU.

Every function is pure and deterministic. Labels are integer class indices; scores are floats where higher means
"more positive" (e.g. an anomaly score: higher = more anomalous).

>>> cm = confusion_matrix([0, 1, 1], [0, 1, 0], num_classes=2)   # rows = true class, columns = predicted
>>> iou_per_class(cm), mean_iou(cm)                                # [0.5, 0.5], 0.5
>>> auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])                     # 0.75
"""

from __future__ import annotations

import numpy as np

from toolkit.errors import UsageError


def _labels(values: np.ndarray | list[int], name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise UsageError(f"{name} must be 1-D, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.mod(array, 1) == 0):
            raise UsageError(f"{name} must hold integer class indices, got dtype {array.dtype}")
        array = array.astype(np.int64)
    return array.astype(np.int64, copy=False)


def _same_length(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if len(a) != len(b):
        raise UsageError(f"{what}: {len(a)} vs {len(b)} samples; they must have the same length")


def accuracy(labels: np.ndarray | list[int], predictions: np.ndarray | list[int]) -> float:
    """Fraction of ``predictions`` equal to ``labels`` (both 1-D integer arrays); NaN for no samples."""
    y, p = _labels(labels, "labels"), _labels(predictions, "predictions")
    _same_length(y, p, "accuracy")
    return float(np.mean(y == p)) if len(y) else float("nan")


def top_k_accuracy(labels: np.ndarray | list[int], scores: np.ndarray, k: int) -> float:
    """Fraction of samples whose label is among the ``k`` highest of ``scores`` (N, C); ties go to the lower index."""
    y = _labels(labels, "labels")
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise UsageError(f"scores must be (samples, classes), got shape {s.shape}")
    _same_length(y, s, "top_k_accuracy")
    if not 1 <= k <= s.shape[1]:
        raise UsageError(f"k must be in 1..{s.shape[1]}, got {k}")
    if not len(y):
        return float("nan")
    top = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == y[:, None], axis=1)))


def confusion_matrix(
    labels: np.ndarray | list[int],
    predictions: np.ndarray | list[int],
    num_classes: int,
    ignore_index: int | None = None,
) -> np.ndarray:
    """(num_classes, num_classes) int64 counts: row = true class, column = predicted class.

    Inputs of any shape are flattened (so segmentation masks work directly). Pixels/samples whose label equals
    ``ignore_index`` are skipped; any other value outside ``0..num_classes-1`` is a UsageError.
    """
    y = np.asarray(labels).reshape(-1).astype(np.int64)
    p = np.asarray(predictions).reshape(-1).astype(np.int64)
    _same_length(y, p, "confusion_matrix")
    if num_classes < 1:
        raise UsageError(f"num_classes must be >= 1, got {num_classes}")
    if ignore_index is not None:
        keep = y != ignore_index
        y, p = y[keep], p[keep]
    for name, values in (("labels", y), ("predictions", p)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            bad = values[(values < 0) | (values >= num_classes)][0]
            raise UsageError(f"confusion_matrix: {name} hold {bad}, outside 0..{num_classes - 1}")
    return np.bincount(y * num_classes + p, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def recall_per_class(cm: np.ndarray) -> np.ndarray:
    """Per-class recall (diagonal / row sum) of a confusion matrix; NaN for classes with no true samples."""
    cm = _square(cm)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)


def precision_per_class(cm: np.ndarray) -> np.ndarray:
    """Per-class precision (diagonal / column sum); NaN for classes never predicted."""
    cm = _square(cm)
    predicted = cm.sum(axis=0)
    return np.where(predicted > 0, np.diag(cm) / np.maximum(predicted, 1), np.nan)


def iou_per_class(cm: np.ndarray) -> np.ndarray:
    """Per-class intersection over union from a confusion matrix: TP / (TP + FP + FN).

    NaN for a class absent from both labels and predictions (its IoU is undefined, not 0 or 1).
    """
    cm = _square(cm)
    tp = np.diag(cm).astype(np.float64)
    union = cm.sum(axis=0) + cm.sum(axis=1) - tp
    return np.where(union > 0, tp / np.maximum(union, 1), np.nan)


def mean_iou(cm: np.ndarray, classes: list[int] | None = None) -> float:
    """Mean of :func:`iou_per_class` over ``classes`` (default all), ignoring undefined (NaN) classes."""
    iou = iou_per_class(cm)
    if classes is not None:
        iou = iou[np.asarray(classes, dtype=np.int64)]
    defined = iou[~np.isnan(iou)]
    return float(defined.mean()) if defined.size else float("nan")


def _square(cm: np.ndarray) -> np.ndarray:
    array = np.asarray(cm)
    if array.ndim != 2 or array.shape[0] != array.shape[1]:
        raise UsageError(f"a confusion matrix must be square (C, C), got shape {array.shape}")
    return array


def rank_average(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values`` with tied values sharing the average of their ranks (as scipy's rankdata)."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    # Start index of each run of equal values; every member of a run gets the run's mean rank.
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], len(x)]
    mean_rank = (starts + ends + 1) / 2.0  # mean of ranks starts+1 .. ends
    ranks = np.empty(len(x), np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def auroc(scores: np.ndarray | list[float], positives: np.ndarray | list[int] | list[bool]) -> float:
    """Area under the ROC curve: P(score of a random positive > score of a random negative), ties counting 1/2.

    Rank-based (Mann-Whitney U with average ranks for ties), O(N log N). ``positives`` is a 1-D boolean / 0-1
    array. Returns NaN when either class is empty (AUROC is undefined); NaN scores are a UsageError.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    pos = np.asarray(positives).reshape(-1)
    _same_length(s, pos, "auroc")
    if np.isnan(s).any():
        raise UsageError("auroc: scores contain NaN")
    if pos.dtype != bool:
        if pos.size and not np.all((pos == 0) | (pos == 1)):
            raise UsageError("auroc: positives must be boolean or 0/1")
        pos = pos.astype(bool)
    n_pos = int(pos.sum())
    n_neg = len(pos) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rank_average(s)
    u = ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def fpr_at_tpr(
    scores: np.ndarray | list[float], positives: np.ndarray | list[int] | list[bool], tpr: float = 0.95
) -> float:
    """False-positive rate at the highest threshold that still flags at least ``tpr`` of the positives.

    A sample is flagged when its score >= the threshold (so tied scores are flagged together). The usual
    companion of AUROC for anomaly detection ("FPR at 95% TPR"). NaN when either class is empty.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    pos = np.asarray(positives).reshape(-1).astype(bool)
    _same_length(s, pos, "fpr_at_tpr")
    if not 0.0 < tpr <= 1.0:
        raise UsageError(f"tpr must be in (0, 1], got {tpr}")
    pos_scores, neg_scores = np.sort(s[pos]), s[~pos]
    if not len(pos_scores) or not len(neg_scores):
        return float("nan")
    need = int(np.ceil(tpr * len(pos_scores) - 1e-9))  # positives that must be flagged
    threshold = pos_scores[len(pos_scores) - need]
    return float(np.mean(neg_scores >= threshold))
