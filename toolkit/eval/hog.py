"""OpenCV's HOG + linear SVM people detector (Dalal & Triggs 2005), the classical baseline beside the detector.

``cv2.HOGDescriptor_getDefaultPeopleDetector()`` ships with OpenCV (no download, no TensorFlow). Its 64x128
window was trained on INRIA people about 96 px tall, so it cannot see anyone much shorter than that: images are
enlarged until they are at least ``min_height`` px tall before the multi-scale search, which lets it find people
down to about 96 * H / min_height px (the 12-40 px people of a 360-line street camera need 2x).

The SVM margin of a grouped window is its score (squashed to 0-1 by a logistic; AP only uses the order). The
window holds a margin around the person (INRIA windows: 96 of 128 rows, about 40 of 64 columns are person), so
boxes are shrunk to the central ``box_height`` x ``box_width`` share before matching ground-truth boxes.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class HogConfig:
    min_height: int = (
        720  # enlarge images shorter than this (px) so that small people fill the 128-row window
    )
    win_stride: int = 8  # window step in pixels of the (enlarged) image; 8 = one HOG cell
    padding: int = 8  # pixels added around the image so that windows can reach the border
    scale: float = 1.05  # pyramid step; OpenCV's default
    hit_threshold: float = 0.0  # SVM margin a window needs; 0 is the trained boundary
    group_threshold: int = 2  # overlapping windows needed to keep a detection (OpenCV's grouping)
    box_height: float = (
        0.8  # share of the window's height kept as the person box (INRIA people: 96 of 128 rows)
    )
    box_width: float = 0.6  # share of the window's width kept (people are narrower than the 64-px window)


class HogPeopleDetector:
    """``detect(image_rgb) -> (boxes (K, 4) float32 xyxy image pixels, scores (K,) float32)``, best first."""

    def __init__(self, config: HogConfig = HogConfig()) -> None:
        self.config = config
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def detect(self, image_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = self.config
        h = image_rgb.shape[0]
        factor = max(1.0, c.min_height / h)
        image = (
            image_rgb
            if factor == 1.0
            else cv2.resize(image_rgb, None, fx=factor, fy=factor, interpolation=cv2.INTER_LINEAR)
        )
        rects, weights = self.hog.detectMultiScale(
            image,
            hitThreshold=c.hit_threshold,
            winStride=(c.win_stride, c.win_stride),
            padding=(c.padding, c.padding),
            scale=c.scale,
            groupThreshold=c.group_threshold,
        )
        if len(rects) == 0:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        r = np.asarray(rects, np.float64).reshape(-1, 4) / factor
        x, y, w, hh = r.T
        cx, cy = x + w / 2, y + hh / 2
        bw, bh = w * c.box_width, hh * c.box_height
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        boxes = np.clip(boxes, 0, [image_rgb.shape[1], h, image_rgb.shape[1], h]).astype(np.float32)
        scores = (1.0 / (1.0 + np.exp(-np.asarray(weights, np.float64).reshape(-1)))).astype(np.float32)
        order = np.argsort(-scores, kind="stable")
        return boxes[order], scores[order]
