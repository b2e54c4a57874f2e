"""Overlay drawing, in place on the BGR frame: mask tint, boxes with ids, predicted paths, intent, stats panel.

>>> draw_frame(frame, tracks, predictions, labels=mask, fps=24.8, stage_ms={"detect": 11.2, "track": 0.4})

Every function writes into ``frame`` (uint8 BGR, H x W x 3) and returns it. Budget: a few milliseconds at
480x360 (measured ~3 ms with a mask and 8 tracks) -- the mask tint is one LUT, one blend and one masked copy;
everything else touches only a few hundred pixels.
"""

from __future__ import annotations

import colorsys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from toolkit.pipeline.behaviour import Prediction
from toolkit.pipeline.segment import PALETTE_BGR, colourise

FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class DrawConfig:
    mask_alpha: float = 0.4  # weight of the class colour where the mask is not background
    crossing_threshold: float = 0.5  # at or above this a track is labelled CROSSING in red
    box_thickness: int = 2  # pixels
    font_scale: float = 0.45  # OpenCV Hershey scale for labels
    dot_radius: int = 4  # radius of the first predicted point; later points shrink and fade


class HasBox(Protocol):
    id: int | None
    box: np.ndarray


def id_colour(track_id: int) -> tuple[int, int, int]:
    """A stable, well-separated BGR colour per id (golden-ratio hue steps)."""
    hue = (track_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


def draw_mask(frame: np.ndarray, labels: np.ndarray, alpha: float = 0.4, palette: np.ndarray = PALETTE_BGR) -> np.ndarray:
    """Blend class colours over ``frame`` where ``labels`` (H, W) is not 0 (background stays untouched)."""
    if labels.shape != frame.shape[:2]:
        raise ValueError(f"mask is {labels.shape}, frame is {frame.shape[:2]}: resize the labels to the frame")
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    blended = cv2.addWeighted(frame, 1.0 - alpha, _tint(labels, palette), alpha, 0.0)
    cv2.copyTo(blended, labels, frame)  # labels double as the mask: copy only where label != 0
    return frame


_last_tint: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (labels, palette, their colours)


def _tint(labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """colourise(labels), reused while the same labels array is drawn again (the pipeline segments every N-th
    frame and draws that mask N times). The cache holds the arrays themselves, so an id cannot be recycled."""
    global _last_tint
    cached = _last_tint
    if cached is not None and cached[0] is labels and cached[1] is palette:
        return cached[2]
    tint = colourise(labels, palette)
    _last_tint = (labels, palette, tint)
    return tint


def _label(frame: np.ndarray, text: str, org: tuple[int, int], colour: tuple[int, int, int], scale: float) -> None:
    """Text on a filled background box so it reads on any scene."""
    (w, h), base = cv2.getTextSize(text, FONT, scale, 1)
    x, y = org
    y = max(y, h + base)
    cv2.rectangle(frame, (x, y - h - base), (x + w + 2, y + 1), colour, -1)
    luminance = 0.114 * colour[0] + 0.587 * colour[1] + 0.299 * colour[2]
    ink = (0, 0, 0) if luminance > 140 else (255, 255, 255)
    cv2.putText(frame, text, (x + 1, y - base + 1), FONT, scale, ink, 1, cv2.LINE_AA)


def draw_path(frame: np.ndarray, path: np.ndarray, colour: tuple[int, int, int], origin: np.ndarray | None = None,
              radius: int = 4) -> np.ndarray:
    """A predicted path (n, 2) pixels as a polyline with dots that shrink and fade toward the far future.

    ``origin`` (the current foot point) starts the line. NaN points (beyond the horizon) end the path.
    """
    points = np.asarray(path, dtype=np.float64)
    finite = np.isfinite(points).all(axis=1)
    end = int(np.argmin(finite)) if not finite.all() else len(points)
    points = points[:end]
    if origin is not None and np.isfinite(origin).all():
        points = np.vstack([np.asarray(origin, np.float64)[None], points])
    if len(points) == 0:
        return frame
    limit = 4 * max(frame.shape[:2])  # keep far-off points inside OpenCV's coordinate range
    pts = np.clip(np.round(points), -limit, limit).astype(np.int32)
    cv2.polylines(frame, [pts.reshape(-1, 1, 2)], False, colour, 1, cv2.LINE_AA)
    n = len(pts) - (1 if origin is not None else 0)
    for i, (x, y) in enumerate(pts[len(pts) - n :]):
        fade = 1.0 - 0.7 * i / max(n - 1, 1)  # 1 -> 0.3 brightness along the path
        dot = tuple(int(c * fade) for c in colour)
        cv2.circle(frame, (int(x), int(y)), max(1, round(radius * (1.0 - 0.6 * i / max(n - 1, 1)))), dot, -1,
                   cv2.LINE_AA)
    return frame


def draw_tracks(
    frame: np.ndarray, tracks: Sequence[HasBox], predictions: Mapping[int, Prediction] | None = None,
    config: DrawConfig = DrawConfig(),
) -> np.ndarray:
    """Boxes with ``#id`` labels, predicted paths, and the crossing intent of each track."""
    predictions = predictions or {}
    for track in tracks:
        if track.id is None:
            continue
        colour = id_colour(track.id)
        x1, y1, x2, y2 = (int(round(v)) for v in track.box)
        cv2.rectangle(frame, (x1, y1), (x2, y2), colour, config.box_thickness)
        _label(frame, f"#{track.id}", (x1, y1 - 2), colour, config.font_scale)
        pred = predictions.get(track.id)
        if pred is None:
            continue
        foot = np.array([(x1 + x2) / 2, y2], np.float64)
        draw_path(frame, pred.path_image, colour, foot, config.dot_radius)
        if pred.crossing is not None:
            crossing = pred.crossing >= config.crossing_threshold
            text = f"{'CROSSING' if crossing else 'walking'} {pred.crossing:.2f}"
            _label(frame, text, (x1, y2 + 16), (0, 0, 230) if crossing else (90, 90, 90), config.font_scale)
    return frame


def draw_stats(frame: np.ndarray, fps: float | None = None, stage_ms: Mapping[str, float] | None = None,
               font_scale: float = 0.42) -> np.ndarray:
    """A translucent panel in the top-left corner: FPS and milliseconds per stage."""
    lines = [f"FPS {fps:5.1f}"] if fps is not None else []
    lines += [f"{name:<8}{ms:6.1f} ms" for name, ms in (stage_ms or {}).items()]
    if not lines:
        return frame
    line_h = int(22 * font_scale / 0.45)
    width = max(cv2.getTextSize(line, FONT, font_scale, 1)[0][0] for line in lines) + 12
    height = line_h * len(lines) + 8
    h, w = frame.shape[:2]
    roi = frame[0 : min(height, h), 0 : min(width, w)]
    roi[:] = (roi * 0.35).astype(np.uint8)  # darken instead of a second full-frame blend
    for i, line in enumerate(lines):
        cv2.putText(frame, line, (6, line_h * (i + 1)), FONT, font_scale, (255, 255, 255), 1, cv2.LINE_AA)
    return frame


def draw_frame(
    frame: np.ndarray, tracks: Sequence[HasBox], predictions: Mapping[int, Prediction] | None = None,
    labels: np.ndarray | None = None, fps: float | None = None, stage_ms: Mapping[str, float] | None = None,
    config: DrawConfig = DrawConfig(),
) -> np.ndarray:
    """Everything, in back-to-front order: mask tint, tracks and paths, stats panel. Returns ``frame``."""
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"draw expects a uint8 BGR frame (H, W, 3), got {frame.dtype} {frame.shape}")
    if labels is not None:
        draw_mask(frame, labels, config.mask_alpha)
    draw_tracks(frame, tracks, predictions, config)
    draw_stats(frame, fps, stage_ms)
    return frame
