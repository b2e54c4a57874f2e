"""Generic metrics (toolkit.eval.metrics) on hand-checked numbers and brute-force oracles."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from toolkit.errors import UsageError
from toolkit.eval import metrics


def brute_auroc(scores, positives) -> float:
    """Count every (positive, negative) pair: 1 if the positive scores higher, 1/2 on a tie."""
    pos = [s for s, p in zip(scores, positives, strict=True) if p]
    neg = [s for s, p in zip(scores, positives, strict=True) if not p]
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_accuracy_and_top_k_hand_checked():
    assert metrics.accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == 0.75
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
    assert metrics.top_k_accuracy([2, 1, 0], scores, 1) == 0.0
    assert metrics.top_k_accuracy([2, 1, 0], scores, 2) == pytest.approx(
        2 / 3
    )  # 2 in top2 of row 0, 1 of row 1
    assert metrics.top_k_accuracy([2, 1, 0], scores, 3) == 1.0
    assert np.isnan(metrics.accuracy([], []))


def test_accuracy_rejects_mismatched_lengths_and_fractional_labels():
    with pytest.raises(UsageError, match="same length"):
        metrics.accuracy([0, 1], [0])
    with pytest.raises(UsageError, match="integer"):
        metrics.accuracy([0.5, 1.0], [0, 1])


def test_confusion_matrix_rows_are_true_classes():
    cm = metrics.confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], num_classes=3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    assert cm.dtype == np.int64


def test_confusion_matrix_flattens_masks_and_skips_ignore_index():
    labels = np.array([[0, 1], [255, 1]])
    preds = np.array([[0, 0], [1, 1]])
    cm = metrics.confusion_matrix(labels, preds, 2, ignore_index=255)
    np.testing.assert_array_equal(cm, [[1, 0], [1, 1]])
    with pytest.raises(UsageError, match="outside 0..1"):
        metrics.confusion_matrix(labels, preds, 2)


def test_iou_from_confusion_hand_checked():
    cm = np.array([[3, 1, 1], [1, 4, 0], [0, 0, 0]])
    # class 0: TP 3, FP = column - TP = 1, FN = row - TP = 2 -> 3 / 6
    # class 1: TP 4, FP 1, FN 1 -> 4 / 6;  class 2: TP 0, FP 1 (a 0 predicted as 2), FN 0 -> 0 / 1
    np.testing.assert_allclose(metrics.iou_per_class(cm), [0.5, 4 / 6, 0.0])
    assert metrics.mean_iou(cm) == pytest.approx((0.5 + 4 / 6 + 0.0) / 3)
    assert metrics.mean_iou(cm, classes=[0, 1]) == pytest.approx((0.5 + 4 / 6) / 2)


def test_iou_undefined_class_is_nan_and_ignored_by_the_mean():
    cm = np.array([[2, 0], [0, 0]])
    iou = metrics.iou_per_class(cm)
    assert iou[0] == 1.0 and np.isnan(iou[1])
    assert metrics.mean_iou(cm) == 1.0
    with pytest.raises(UsageError, match="square"):
        metrics.iou_per_class(np.zeros((2, 3)))


def test_recall_and_precision_per_class():
    cm = np.array([[3, 1], [0, 0]])
    np.testing.assert_allclose(metrics.recall_per_class(cm), [0.75, np.nan])
    np.testing.assert_allclose(metrics.precision_per_class(cm), [1.0, 0.0])


def test_auroc_hand_checked():
    assert metrics.auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    assert metrics.auroc([1, 2, 3], [0, 1, 1]) == 1.0
    assert metrics.auroc([3, 2, 1], [0, 1, 1]) == 0.0
    assert metrics.auroc([5, 5, 5, 5], [0, 1, 0, 1]) == 0.5  # all tied: chance, not 0 or 1


def test_auroc_matches_brute_force_pair_count_with_many_ties():
    rng = np.random.default_rng(3)
    for _ in range(20):
        n = int(rng.integers(2, 40))
        scores = rng.integers(0, 5, n).astype(float)  # few distinct values: many ties
        positives = rng.random(n) < 0.4
        if positives.all() or not positives.any():
            continue
        assert metrics.auroc(scores, positives) == pytest.approx(brute_auroc(scores, positives), abs=1e-12)


def test_auroc_undefined_and_bad_input():
    assert np.isnan(metrics.auroc([0.1, 0.2], [1, 1]))
    with pytest.raises(UsageError, match="NaN"):
        metrics.auroc([0.1, float("nan")], [0, 1])
    with pytest.raises(UsageError, match="0/1"):
        metrics.auroc([0.1, 0.2], [0, 2])


def test_rank_average_matches_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    values = np.array([3.0, 1.0, 3.0, 2.0, 3.0, 1.0])
    np.testing.assert_allclose(metrics.rank_average(values), scipy_stats.rankdata(values))
    np.testing.assert_allclose(metrics.rank_average(values), [5, 1.5, 5, 3, 5, 1.5])


def test_fpr_at_tpr_hand_checked():
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]
    positives = [1, 1, 0, 1, 0, 1, 0, 0]
    # all 4 positives flagged needs threshold 0.4 -> negatives 0.7 and 0.5 flagged: 2 of 4
    assert metrics.fpr_at_tpr(scores, positives, 1.0) == 0.5
    # 3 of 4 (0.75) -> threshold 0.6 -> negative 0.7 flagged: 1 of 4
    assert metrics.fpr_at_tpr(scores, positives, 0.75) == 0.25
    # ties with the threshold count as flagged
    assert metrics.fpr_at_tpr([1, 1, 0], [1, 0, 0], 1.0) == 0.5
    assert np.isnan(metrics.fpr_at_tpr([1, 2], [0, 0]))
