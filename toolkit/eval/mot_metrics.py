"""Multi-object tracking metrics in pure numpy: CLEAR MOT (MOTA, MOTP, IDSW...), IDF1 and HOTA, as TrackEval.

>>> seq = load_mot_sequence("MOT17-02")                     # toolkit.data.mot
>>> m = evaluate_tracking(seq.gt, predictions, seq.distractors, seq.ignored)
>>> m.mota, m.idf1, m.hota                                  # the three numbers every MOT table reports

Inputs are per-frame mappings ``{frame: (ids, boxes)}``: ids int (n,), unique within a frame; boxes float
(n, 4) pixel ``x1 y1 x2 y2``. Frames are scored in ascending order; a frame missing from one side is empty there.
Before scoring, each frame goes through TrackEval's MOTChallenge preprocessing
(``trackeval/datasets/mot_challenge_2d_box.py``, github.com/JonathonLuiten/TrackEval): predictions are matched
(Hungarian, IoU >= 0.5) against every annotated box -- scored, distractor and ignored -- and those matched to a
distractor (static person, reflection, person on a vehicle...) are removed; ignored boxes (zero-marked rows,
vehicles, occluders) only compete in that matching. The counts themselves are in :mod:`toolkit.eval.mot_scores`
(CLEAR MOT: Bernardin & Stiefelhagen 2008; identity: Ristani et al. 2016; HOTA: Luiten et al., IJCV 2020).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from toolkit.errors import UsageError
from toolkit.eval.mot_scores import EPS, PreparedSequence, clear_scores, hota_scores, identity_scores
from toolkit.pipeline.assignment import linear_sum_assignment

FrameBoxes = Mapping[int, tuple[np.ndarray, np.ndarray]]  # frame -> (ids (n,), boxes (n, 4) xyxy)
DISTRACTOR_IOU = 0.5  # TrackEval's preprocessing threshold, fixed whatever the metrics' threshold
_FIELDS = "mota motp idf1 hota deta assa loca detre detpr assre asspr idp idr tp fp fn idsw frag mt pt ml idtp idfp idfn"
_NAMES = "MOTA MOTP IDF1 HOTA DetA AssA LocA DetRe DetPr AssRe AssPr IDP IDR TP FP FN IDSW Frag MT PT ML IDTP IDFP IDFN"
# TrackingMetrics field -> its name in MOT tables (TrackEval's column headers)
PUBLISHED_NAMES = dict(zip(_FIELDS.split(), _NAMES.split(), strict=True))


@dataclass(frozen=True)
class TrackingMetrics:
    """The published tracking numbers of one sequence (ratios in [0, 1] except MOTA, which can be negative)."""

    mota: float  # 1 - (FN + FP + IDSW) / GT boxes
    motp: float  # mean IoU of the CLEAR matches
    idf1: float  # 2 IDTP / (2 IDTP + IDFP + IDFN)
    hota: float  # sqrt(DetA x AssA), averaged over alpha = 0.05 ... 0.95
    deta: float  # detection accuracy TP / (TP + FN + FP), mean over alpha
    assa: float  # association accuracy, mean over alpha
    loca: float  # mean IoU of the HOTA matches, mean over alpha
    detre: float  # HOTA detection recall, mean over alpha
    detpr: float  # HOTA detection precision, mean over alpha
    assre: float  # HOTA association recall, mean over alpha
    asspr: float  # HOTA association precision, mean over alpha
    idp: float  # IDTP / predicted boxes
    idr: float  # IDTP / GT boxes
    precision: float  # CLEAR TP / predicted boxes
    recall: float  # CLEAR TP / GT boxes
    tp: int  # CLEAR matches
    fp: int  # predicted boxes left unmatched
    fn: int  # GT boxes left unmatched (misses)
    idsw: int  # identity switches
    frag: int  # fragmentations: times a GT trajectory resumes being tracked after an interruption
    mt: int  # GT ids tracked in more than 80 % of their frames
    pt: int  # GT ids tracked in 20-80 % of their frames
    ml: int  # GT ids tracked in less than 20 % of their frames
    idtp: int  # identity true positives
    idfp: int  # identity false positives
    idfn: int  # identity false negatives
    gt_boxes: int  # scored GT boxes
    gt_ids: int  # scored GT trajectories
    pred_boxes: int  # predicted boxes after distractor removal
    pred_ids: int  # predicted track ids after distractor removal
    frames: int  # frames that appear in either input
    threshold: float  # IoU a CLEAR / identity match needs

    def as_dict(self) -> dict[str, float | int]:
        """The fields under their published names (MOTA, IDF1, HOTA, DetA, ...), for reports and JSON."""
        return {PUBLISHED_NAMES.get(key, key): value for key, value in asdict(self).items()}


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) IoU of xyxy boxes ``a`` (n, 4) and ``b`` (m, 4); 0 where either box has no area (as TrackEval)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.maximum(hi - lo, 0), axis=2)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    inter[area_a <= EPS, :] = 0
    inter[:, area_b <= EPS] = 0
    inter[union <= EPS] = 0
    return inter / np.where(union <= EPS, 1.0, union)


def remove_distractor_matches(
    pred_ids: np.ndarray,
    pred_boxes: np.ndarray,
    gt_boxes: np.ndarray,
    distractors: np.ndarray,
    ignored: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One frame's predictions without those matched to a distractor box (TrackEval's MOTChallenge preprocessing).

    Takes the predictions (ids (n,), boxes (n, 4)), the frame's scored GT boxes, distractor boxes and ignored
    boxes (all xyxy). Predictions are matched to all annotated boxes at once (Hungarian maximising IoU, pairs
    below IoU 0.5 never count); returns ``(ids, boxes)`` of the predictions not matched to a distractor.
    """
    distractors = np.asarray(distractors, np.float64).reshape(-1, 4)
    if len(distractors) == 0 or len(pred_ids) == 0:
        return pred_ids, pred_boxes
    others = np.zeros((0, 4)) if ignored is None else np.asarray(ignored, np.float64).reshape(-1, 4)
    annotated = np.concatenate([np.asarray(gt_boxes, np.float64).reshape(-1, 4), distractors, others])
    is_distractor = np.zeros(len(annotated), bool)
    is_distractor[len(annotated) - len(others) - len(distractors) : len(annotated) - len(others)] = True
    scores = box_iou(annotated, pred_boxes)
    scores[scores < DISTRACTOR_IOU - EPS] = 0
    rows, cols = linear_sum_assignment(-scores)
    matched = scores[rows, cols] > EPS
    keep = np.ones(len(pred_ids), bool)
    keep[cols[matched][is_distractor[rows[matched]]]] = False
    return pred_ids[keep], pred_boxes[keep]


def evaluate_tracking(
    gt: FrameBoxes,
    predictions: FrameBoxes,
    distractors: Mapping[int, np.ndarray] | None = None,
    ignored: Mapping[int, np.ndarray] | None = None,
    threshold: float = 0.5,
) -> TrackingMetrics:
    """Score tracker output against ground truth: CLEAR MOT, identity and HOTA metrics of one sequence.

    Takes ``gt`` and ``predictions`` as ``{frame: (ids, boxes xyxy)}``, optional ``distractors`` and ``ignored``
    as ``{frame: boxes (k, 4)}`` (see the module docstring; :class:`toolkit.data.mot.MotSequence` has all four),
    and the IoU ``threshold`` of a CLEAR / identity match (HOTA averages over its own thresholds). Returns
    :class:`TrackingMetrics`. Malformed input (shapes, duplicate ids in a frame) is a UsageError.
    """
    if not 0 < threshold <= 1:
        raise UsageError(f"tracking metrics: threshold must be an IoU in (0, 1], got {threshold}")
    seq = prepare_sequence(gt, predictions, distractors or {}, ignored or {})
    counts = {**clear_scores(seq, threshold), **identity_scores(seq, threshold)}
    counts.update({key: float(np.mean(value)) for key, value in hota_scores(seq).items()})  # mean over alpha
    return TrackingMetrics(
        **{field: counts[name] for field, name in PUBLISHED_NAMES.items()},
        precision=counts["precision"],
        recall=counts["recall"],
        gt_boxes=seq.num_gt_boxes,
        gt_ids=seq.num_gt_ids,
        pred_boxes=seq.num_pred_boxes,
        pred_ids=seq.num_pred_ids,
        frames=len(seq.gt_ids),
        threshold=threshold,
    )


def prepare_sequence(
    gt: FrameBoxes,
    predictions: FrameBoxes,
    distractors: Mapping[int, np.ndarray],
    ignored: Mapping[int, np.ndarray],
) -> PreparedSequence:
    """Validate, remove distractor matches, relabel ids to 0..n-1 and compute each frame's IoU matrix."""
    frames = sorted(set(gt) | set(predictions))
    empty = (np.zeros(0, np.int64), np.zeros((0, 4)))
    gt_frames, pred_frames = [], []
    for frame in frames:
        gt_ids, gt_boxes = _frame_boxes(gt.get(frame, empty), "ground truth", frame)
        pred_ids, pred_boxes = _frame_boxes(predictions.get(frame, empty), "predictions", frame)
        if frame in distractors:
            pred_ids, pred_boxes = remove_distractor_matches(
                pred_ids, pred_boxes, gt_boxes, distractors[frame], ignored.get(frame)
            )
        gt_frames.append((gt_ids, gt_boxes))
        pred_frames.append((pred_ids, pred_boxes))
    gt_labels = np.unique(np.concatenate([ids for ids, _ in gt_frames] or [empty[0]]))
    pred_labels = np.unique(np.concatenate([ids for ids, _ in pred_frames] or [empty[0]]))
    return PreparedSequence(
        gt_ids=[np.searchsorted(gt_labels, ids) for ids, _ in gt_frames],
        pred_ids=[np.searchsorted(pred_labels, ids) for ids, _ in pred_frames],
        similarity=[box_iou(g, p) for (_, g), (_, p) in zip(gt_frames, pred_frames, strict=True)],
        num_gt_ids=len(gt_labels),
        num_pred_ids=len(pred_labels),
    )


def _frame_boxes(
    entry: tuple[np.ndarray, np.ndarray], what: str, frame: int
) -> tuple[np.ndarray, np.ndarray]:
    """One frame's (ids int64 (n,), boxes float64 (n, 4)), checked; UsageError naming the frame otherwise."""
    try:
        ids, boxes = entry
    except (TypeError, ValueError):
        raise UsageError(
            f"{what} frame {frame}: expected a pair (ids, boxes), got {type(entry).__name__}"
        ) from None
    ids, boxes = np.asarray(ids), np.asarray(boxes, np.float64)
    if ids.ndim != 1 or (ids.size and not np.all(np.mod(ids, 1) == 0)):
        raise UsageError(
            f"{what} frame {frame}: ids must be a 1-D array of whole numbers, got shape {ids.shape} {ids.dtype}"
        )
    if boxes.size == 0 and len(ids) == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.shape != (len(ids), 4) or not np.isfinite(boxes).all():
        raise UsageError(
            f"{what} frame {frame}: boxes must be finite ({len(ids)}, 4) x1 y1 x2 y2 for {len(ids)} "
            f"ids, got shape {boxes.shape}"
        )
    ids = ids.astype(np.int64)
    unique, counts = np.unique(ids, return_counts=True)
    if np.any(counts > 1):
        raise UsageError(
            f"{what} frame {frame}: id {int(unique[counts > 1][0])} appears more than once; ids must be "
            "unique within a frame"
        )
    return ids, boxes
