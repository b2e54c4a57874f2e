"""Real people cut out along their instance polygons and pasted into training images at any size (copy-paste).

Copy-paste augmentation (Ghiasi et al., "Simple Copy-Paste is a Strong Data Augmentation Method for Instance
Segmentation", CVPR 2021) gives a detector real human appearance at sizes its photos rarely show: a COCO
close-up pasted 20 px tall into a street frame, or a far-away person 300 px tall into a street-level view.

>>> cutouts = person_cutouts(records, polygon_dir)            # from the training split only
>>> image, boxes, classes = paste_people(image, boxes, classes, cutouts, rng, PasteConfig())

A cutout keeps its polygon as a soft alpha (edges feathered by one pixel of blur). Pasting scales it to a height
drawn log-uniformly from ``PasteConfig.heights``, flips it half the time, blends it in, and adds its box as a
target. Boxes already in the image that a pasted person covers by more than ``cover_ignore`` of their area become
ignore regions (they are mostly hidden: neither a hit nor a miss). numpy + OpenCV only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from toolkit.data.image_folder import read_rgb
from toolkit.data.records import DetectionRecord
from toolkit.data.yolo import read_yolo_polygons

PANOPTIC_PERSON = 1  # COCO panoptic id of "person" in the COCO128 instance_segmentation labels


@dataclass(frozen=True)
class Cutout:
    """One person: an RGB crop around their polygon and its alpha (0-1), plus where it came from."""

    rgb: np.ndarray  # (h, w, 3) uint8
    alpha: np.ndarray  # (h, w) float32 in [0, 1]
    source: str  # image file name


@dataclass(frozen=True)
class PasteConfig:
    max_people: int = 3  # pasted people per image: 1..max_people
    heights: tuple[float, float] = (12.0, 320.0)  # pasted height in pixels, drawn log-uniformly
    cover_ignore: float = (
        0.6  # existing boxes covered more than this by a pasted person become ignore regions
    )
    min_alpha: float = 0.5  # a pixel belongs to the pasted person's box where its alpha exceeds this


def person_cutouts(
    records: Sequence[DetectionRecord],
    polygon_dir: str | Path,
    min_height: int = 40,
    min_fill: float = 0.3,
    border: int = 2,
) -> list[Cutout]:
    """Cutouts of the people in ``records``' images that have a polygon file in ``polygon_dir``.

    Kept: polygons at least ``min_height`` px tall, filling at least ``min_fill`` of their box (not mostly
    occluded or a thin sliver), and not touching the image border (a person cut by the frame would be pasted
    as half a person). Images without a polygon file are skipped.
    """
    out: list[Cutout] = []
    folder = Path(polygon_dir)
    for record in records:
        label = folder / f"{Path(record.path).stem}.txt"
        if not label.is_file():
            continue
        classes, polygons = read_yolo_polygons(label)
        people = [p for c, p in zip(classes, polygons, strict=True) if c == PANOPTIC_PERSON]
        if not people:
            continue
        image = read_rgb(record.path)
        h, w = image.shape[:2]
        for poly in people:
            points = poly * np.float32([w, h])
            x1, y1 = np.floor(points.min(0)).astype(int)
            x2, y2 = np.ceil(points.max(0)).astype(int)
            if y2 - y1 < min_height or x1 < border or y1 < border or x2 > w - border or y2 > h - border:
                continue
            mask = np.zeros((y2 - y1, x2 - x1), np.uint8)
            cv2.fillPoly(mask, [np.round(points - [x1, y1]).astype(np.int32).reshape(-1, 1, 2)], 255)
            if mask.mean() / 255.0 < min_fill:
                continue
            alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (3, 3), 0)
            out.append(Cutout(image[y1:y2, x1:x2].copy(), alpha, Path(record.path).name))
    return out


def paste_people(
    image: np.ndarray,
    boxes: np.ndarray,
    classes: np.ndarray,
    cutouts: Sequence[Cutout],
    rng: np.random.Generator,
    config: PasteConfig = PasteConfig(),
    target: int = 0,
    ignored: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Paste 1..``max_people`` random cutouts into a copy of ``image`` (uint8 (H, W, 3)).

    ``boxes`` (K, 4) xyxy and ``classes`` (K,) (``target`` / ``ignored``) are the image's labels; returns the
    new image, boxes and classes (pasted people appended as ``target``; covered ones turned ``ignored``).
    """
    if not cutouts:
        return image, boxes, classes
    out = image.copy()
    h, w = out.shape[:2]
    pasted: list[tuple[int, int, np.ndarray, list[int]]] = []  # (x, y, alpha, box) in paste order
    lo, hi = np.log(config.heights[0]), np.log(min(config.heights[1], 0.95 * h))
    for _ in range(int(rng.integers(1, config.max_people + 1))):
        cut = cutouts[int(rng.integers(len(cutouts)))]
        scale = float(np.exp(rng.uniform(lo, max(lo, hi)))) / cut.rgb.shape[0]
        ph, pw = max(2, round(cut.rgb.shape[0] * scale)), max(2, round(cut.rgb.shape[1] * scale))
        if pw >= w or ph >= h:
            continue
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        rgb = cv2.resize(cut.rgb, (pw, ph), interpolation=interp)
        alpha = cv2.resize(cut.alpha, (pw, ph), interpolation=cv2.INTER_LINEAR)
        if rng.random() < 0.5:
            rgb, alpha = rgb[:, ::-1], alpha[:, ::-1]
        x, y = int(rng.integers(0, w - pw + 1)), int(rng.integers(0, h - ph + 1))
        region = out[y : y + ph, x : x + pw].astype(np.float32)
        a = alpha[..., None]
        out[y : y + ph, x : x + pw] = np.clip(region * (1 - a) + rgb.astype(np.float32) * a, 0, 255).astype(
            np.uint8
        )
        rows, cols = np.nonzero(alpha > config.min_alpha)
        if len(rows):
            pasted.append(
                (x, y, alpha, [x + cols.min(), y + rows.min(), x + cols.max() + 1, y + rows.max() + 1])
            )
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    all_boxes = np.concatenate([b, np.asarray([p[3] for p in pasted], np.float32).reshape(-1, 4)])
    all_cls = np.concatenate([np.asarray(classes, np.int64), np.full(len(pasted), target, np.int64)])
    # A person mostly hidden by people pasted after them becomes an ignore region: walk the pastes backwards,
    # growing the map of what later pastes cover.
    hidden = np.zeros((h, w), bool)
    for k in range(len(pasted) - 1, -1, -1):
        _check_hidden(all_boxes, all_cls, len(b) + k, hidden, config.cover_ignore, ignored)
        x, y, alpha, _ = pasted[k]
        hidden[y : y + alpha.shape[0], x : x + alpha.shape[1]] |= alpha > config.min_alpha
    for i in range(len(b)):
        _check_hidden(all_boxes, all_cls, i, hidden, config.cover_ignore, ignored)
    return out, all_boxes, all_cls


def _check_hidden(
    boxes: np.ndarray, classes: np.ndarray, i: int, hidden: np.ndarray, limit: float, ignored: int
) -> None:
    h, w = hidden.shape
    x1, y1, x2, y2 = np.clip(np.round(boxes[i]).astype(int), 0, [w, h, w, h])
    if x2 > x1 and y2 > y1 and hidden[y1:y2, x1:x2].mean() > limit:
        classes[i] = ignored
