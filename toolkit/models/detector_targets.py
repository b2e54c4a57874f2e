"""Detector targets and decoding in pure numpy (the device pipeline imports this: no TensorFlow here).

The detector predicts, at stride 4, a centre ``heatmap`` (h, w, 1) and a ``box`` map (h, w, 4) of
``(dx, dy, sw, sh)``: the centre offset inside its cell in [0, 1], and ``sw = sqrt(box_w / W)``,
``sh = sqrt(box_h / H)`` (the square root spreads small boxes over more int8 levels). Boxes are pixel
``(x1, y1, x2, y2)`` in the model input frame (H, W).

* :func:`encode_targets`: boxes -> CenterNet-style targets (a Gaussian per centre, radius from box size).
* :func:`decode`: model outputs -> boxes and scores (3x3 max-pool peaks, top-k). NMS happens elsewhere.
"""

from __future__ import annotations

import math

import numpy as np

NO_BOX = -1.0  # box-target value at cells without a box centre (see box_target_for_loss)
IGNORE = -1.0  # heatmap-target value of cells that are neither positive nor negative (see encode_targets)


def _check_hw(input_hw: tuple[int, int], stride: int) -> tuple[int, int]:
    height, width = (int(v) for v in input_hw)
    if stride < 1 or height % stride or width % stride:
        raise ValueError(f"input size {height}x{width} must be a multiple of the stride {stride}")
    return height, width


def gaussian_radius(height: float, width: float, min_overlap: float = 0.7) -> float:
    """CenterNet radius (in cells): how far a corner may move with the box keeping IoU >= ``min_overlap``.

    The corrected form of CornerNet's formula (the smaller root of each quadratic), as in mmdetection.
    """
    b1 = height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 - math.sqrt(b1 * b1 - 4 * c1)) / 2
    b2 = 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 - math.sqrt(b2 * b2 - 16 * c2)) / 8
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + math.sqrt(b3 * b3 - 4 * a3 * c3)) / (2 * a3)
    return min(r1, r2, r3)


def _splat(heatmap: np.ndarray, ix: int, iy: int, radius: int) -> None:
    """Max a (2r+1)^2 Gaussian (sigma = diameter / 6, peak exactly 1) into ``heatmap`` at cell (ix, iy)."""
    sigma = (2 * radius + 1) / 6.0
    offsets = np.arange(-radius, radius + 1, dtype=np.float32)
    gauss = np.exp(-(offsets[None, :] ** 2 + offsets[:, None] ** 2) / (2 * sigma * sigma))
    gauss[gauss < np.finfo(np.float32).eps * gauss.max()] = 0
    h, w = heatmap.shape
    left, right = min(ix, radius), min(w - ix, radius + 1)
    top, bottom = min(iy, radius), min(h - iy, radius + 1)
    region = heatmap[iy - top : iy + bottom, ix - left : ix + right]
    np.maximum(region, gauss[radius - top : radius + bottom, radius - left : radius + right], out=region)


def encode_targets(
    boxes_xyxy_pixels: np.ndarray,
    input_hw: tuple[int, int],
    stride: int = 4,
    min_overlap: float = 0.7,
    min_radius: int = 1,
    size_hw: tuple[int, int] | None = None,
    ignore_boxes: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes -> (heatmap_target (h, w, 1), box_target (h, w, 4), box_mask (h, w, 1)), float32, h = H / stride.

    ``boxes_xyxy_pixels``: (N, 4) pixel boxes in the (H, W) model input; N may be 0. Boxes are clipped to the
    image; boxes with no area left are skipped. Each centre gets a Gaussian whose radius is the CenterNet
    radius for ``min_overlap`` (at least ``min_radius`` cells: tiny pedestrians at stride 4 otherwise get a
    single hot cell, and an off-by-one peak would be punished as a full negative). When two centres share a
    cell the smaller box wins it (small people are the hard case).

    Box sizes are encoded relative to ``size_hw`` (default ``input_hw``): training on a window of a larger model
    input passes the model input here, so that the sizes decode right on the whole input.

    ``ignore_boxes`` (M, 4) pixel boxes are people the detector may or may not find -- mostly hidden, or cut by a
    training window down to their legs -- whose box would teach a wrong shape: the heatmap target is
    :data:`IGNORE` on the cells their box covers (at least the cell of their centre), except at positive
    centres, and they get no box target. The focal loss skips ignored cells (as COCO scoring skips crowd boxes).
    """
    height, width = _check_hw(input_hw, stride)
    norm_h, norm_w = (float(v) for v in (size_hw or (height, width)))
    boxes = np.asarray(boxes_xyxy_pixels, dtype=np.float64)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must be an (N, 4) array of x1, y1, x2, y2 pixels, got shape {boxes.shape}")
    out_h, out_w = height // stride, width // stride
    heatmap = np.zeros((out_h, out_w), np.float32)
    box_target = np.zeros((out_h, out_w, 4), np.float32)
    box_mask = np.zeros((out_h, out_w, 1), np.float32)

    boxes = np.clip(boxes, 0, [width, height, width, height])
    sizes = boxes[:, 2:] - boxes[:, :2]
    boxes = boxes[(sizes > 0).all(axis=1)]
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    for x1, y1, x2, y2 in boxes[np.argsort(-areas, kind="stable")]:
        bw, bh = x2 - x1, y2 - y1
        fx, fy = (x1 + x2) / 2 / stride, (y1 + y2) / 2 / stride
        ix, iy = min(int(fx), out_w - 1), min(int(fy), out_h - 1)
        radius = max(int(min_radius), int(gaussian_radius(bh / stride, bw / stride, min_overlap)))
        _splat(heatmap, ix, iy, radius)
        box_target[iy, ix] = (
            min(fx - ix, 1.0),
            min(fy - iy, 1.0),
            math.sqrt(bw / norm_w),
            math.sqrt(bh / norm_h),
        )
        box_mask[iy, ix] = 1.0
    if ignore_boxes is not None:
        _mark_ignored(heatmap, ignore_boxes, (height, width), stride)
    return heatmap[..., None], box_target, box_mask


def _mark_ignored(heatmap: np.ndarray, boxes: np.ndarray, input_hw: tuple[int, int], stride: int) -> None:
    """Set :data:`IGNORE` on the cells under each box (cell centres inside it, and its centre cell), except the
    positive centres (value 1)."""
    height, width = input_hw
    out_h, out_w = heatmap.shape
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    b = np.clip(b, 0, [width, height, width, height])
    ignore = np.zeros((out_h, out_w), dtype=bool)
    for x1, y1, x2, y2 in b[((b[:, 2:] - b[:, :2]) > 0).all(axis=1)]:
        c0, c1 = int(np.ceil(x1 / stride - 0.5)), int(np.floor(x2 / stride - 0.5))
        r0, r1 = int(np.ceil(y1 / stride - 0.5)), int(np.floor(y2 / stride - 0.5))
        ignore[max(r0, 0) : min(r1, out_h - 1) + 1, max(c0, 0) : min(c1, out_w - 1) + 1] = True
        ignore[min(int((y1 + y2) / 2 / stride), out_h - 1), min(int((x1 + x2) / 2 / stride), out_w - 1)] = (
            True
        )
    heatmap[ignore & (heatmap < 1.0)] = IGNORE


def box_target_for_loss(box_target: np.ndarray, box_mask: np.ndarray) -> np.ndarray:
    """Pack the mask into the box target for ``detector_losses``: cells without a centre become ``NO_BOX``.

    Keras passes a loss only its own output's target, so the box loss finds the positive cells this way.
    """
    return np.where(np.asarray(box_mask) > 0, box_target, np.float32(NO_BOX)).astype(np.float32)
