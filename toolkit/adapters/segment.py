"""Segmenter post-processing: per-pixel class scores on the letterboxed model input -> class labels on the frame.

:data:`CLASS_NAMES` is the order of our segmenter's output channels (the training task, the teachers' label
mapping, evaluation and the camera pipeline all read it here).

>>> labels = labels_at_frame(scores, transform, frame.shape[:2])   # (H, W) uint8 class index
"""

from __future__ import annotations

import cv2
import numpy as np

from toolkit.adapters.image import Letterbox

CLASS_NAMES: tuple[str, ...] = ("background", "road", "sidewalk", "person", "vehicle")


def labels_from_scores(scores: np.ndarray) -> np.ndarray:
    """(h, w, C) class scores (probabilities or raw int8) -> (h, w) uint8 argmax labels."""
    return np.argmax(scores, axis=-1).astype(np.uint8)


def labels_at_frame(scores: np.ndarray, transform: Letterbox, frame_hw: tuple[int, int]) -> np.ndarray:
    """(h, w, C) class scores (dequantized) on the letterboxed input -> (H, W) uint8 labels on the frame: crop the
    padding, resize the scores bilinearly to the frame (float32), argmax."""
    frame_h, frame_w = (int(v) for v in frame_hw)
    inner_h = min(scores.shape[0] - transform.pad_y, max(1, round(frame_h * transform.scale)))
    inner_w = min(scores.shape[1] - transform.pad_x, max(1, round(frame_w * transform.scale)))
    inner = scores[transform.pad_y : transform.pad_y + inner_h, transform.pad_x : transform.pad_x + inner_w]
    up = cv2.resize(
        np.ascontiguousarray(inner, dtype=np.float32), (frame_w, frame_h), interpolation=cv2.INTER_LINEAR
    )
    return np.argmax(up.reshape(frame_h, frame_w, -1), axis=-1).astype(np.uint8)
