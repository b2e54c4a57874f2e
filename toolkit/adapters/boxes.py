"""Box arithmetic on (..., 4) xyxy arrays: area, IoU, centre/size conversion and (class-wise) non-maximum
suppression. Pure numpy, shared by the detector's decoding, the tracker, evaluation and training targets."""

from __future__ import annotations

import numpy as np


def box_area(boxes: np.ndarray) -> np.ndarray:
    """(..., 4) xyxy -> (...) area; inverted boxes have area 0."""
    b = np.asarray(boxes, dtype=np.float64)
    return np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (n, 4) with every box in ``b`` (m, 4) -> (n, m); 0 where the union is empty."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def xyxy_to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    """(..., 4) corners -> (..., 4) centre x, centre y, width, height."""
    b = np.asarray(boxes, dtype=np.float64)
    return np.stack(
        [
            (b[..., 0] + b[..., 2]) / 2,
            (b[..., 1] + b[..., 3]) / 2,
            b[..., 2] - b[..., 0],
            b[..., 3] - b[..., 1],
        ],
        axis=-1,
    )


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """(..., 4) centre x, centre y, width, height -> (..., 4) corners."""
    b = np.asarray(boxes, dtype=np.float64)
    half_w, half_h = b[..., 2] / 2, b[..., 3] / 2
    return np.stack([b[..., 0] - half_w, b[..., 1] - half_h, b[..., 0] + half_w, b[..., 1] + half_h], axis=-1)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression.

    Takes (n, 4) xyxy boxes and (n,) scores. Returns the kept indices, best score first: a box is dropped when
    its IoU with an already kept box is > ``iou_threshold``. Ties in score keep the earlier box.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(b) != len(s):
        raise ValueError(f"nms: {len(b)} boxes but {len(s)} scores")
    order = np.argsort(-s, kind="stable")
    overlaps = (
        iou_matrix(b[order], b[order]) > iou_threshold
    )  # one (n, n) matrix: n is at most max_detections
    suppressed = np.zeros(len(order), dtype=bool)
    keep = []
    for i in range(len(order)):
        if not suppressed[i]:
            keep.append(order[i])
            suppressed |= overlaps[
                i
            ]  # later boxes overlapping a kept one go; earlier ones are already decided
    return np.asarray(keep, dtype=np.intp)


def batched_nms(
    boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou_threshold: float
) -> np.ndarray:
    """Class-wise NMS: boxes only suppress boxes of the same label. Returns kept indices, best score first."""
    lab = np.asarray(labels)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    keep = [
        np.flatnonzero(lab == value)[nms(np.asarray(boxes)[lab == value], s[lab == value], iou_threshold)]
        for value in np.unique(lab)
    ]
    merged = np.concatenate(keep) if keep else np.zeros(0, np.intp)
    return merged[np.argsort(-s[merged], kind="stable")]
