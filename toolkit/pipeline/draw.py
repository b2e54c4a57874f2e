"""Overlay drawing, in place on the BGR frame: mask tint, boxes, predicted paths, track labels, status bar.

>>> draw_frame(frame, tracks, predictions, labels=mask, fps=24.8, stage_ms={"detect": 11.2, "track": 0.4})

Each track gets one label, ``#id`` in its colour and the behaviour model's crossing probability (``12%`` in
grey, ``CROSS 75%`` in red at or above ``crossing_threshold``). Labels are placed by
:func:`toolkit.pipeline.draw_layout.place_labels`: inside the frame, not on each other, not on the status bar.
The status bar is one or more slim rows at the top or bottom edge (whichever covers fewer tracks): FPS and
milliseconds per stage, then the legend (the segmentation colours present in this frame and what the label's
number means). Boxes are drawn over the bar's darkened strip, so it hides no track.

Every ``draw_*`` function writes into ``frame`` (uint8 BGR, H x W x 3) and returns it. Budget: a few
milliseconds at 480x360 (about 1.4 ms with a mask and 8 crowded tracks on the 2-core build host,
docs/pipeline/README.md) -- the mask tint is one LUT, one blend and one masked copy; everything else touches only
a few hundred pixels.
"""

from __future__ import annotations

import colorsys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from toolkit.pipeline.behaviour import Prediction
from toolkit.pipeline.draw_layout import GAP, Rect, bar_edge, pack_rows, place_labels
from toolkit.pipeline.segment import CLASSES, PALETTE_BGR, colourise

FONT = cv2.FONT_HERSHEY_SIMPLEX
BAR_MODES = ("auto", "top", "bottom", "off")
CROSSING_BGR = (0, 0, 230)  # the label chip of a track at or above the crossing threshold
WALKING_BGR = (90, 90, 90)  # ... and below it


@dataclass(frozen=True)
class DrawConfig:
    """How the overlay looks: mask weight, label sizes, the status bar's edge and legend; checked on creation."""

    mask_alpha: float = 0.4  # weight of the class colour where the mask is not background
    crossing_threshold: float = 0.5  # at or above this a track is labelled CROSS in red
    box_thickness: int = 2  # pixels
    font_scale: float = 0.45  # OpenCV Hershey scale for labels
    dot_radius: int = 4  # radius of the first predicted point; later points shrink and fade
    hud: str = (
        "auto"  # the status bar's edge: auto (the one covering fewer tracks) | top | bottom | off (no stats)
    )
    legend: bool = True  # segmentation colours present and the meaning of the label's number, in the bar
    bar_font_scale: float = 0.38  # Hershey scale of the bar's text

    def __post_init__(self) -> None:
        if self.hud not in BAR_MODES:
            raise ValueError(f"DrawConfig.hud must be one of {', '.join(BAR_MODES)}, got {self.hud!r}")
        if not (0.0 <= self.mask_alpha <= 1.0):
            raise ValueError(f"DrawConfig.mask_alpha must be in 0..1, got {self.mask_alpha}")


class HasBox(Protocol):
    """Anything drawable as a box: a track (with an id) or a bare detection (id None)."""

    id: int | None
    box: np.ndarray


def id_colour(track_id: int) -> tuple[int, int, int]:
    """A stable, well-separated BGR colour per id (golden-ratio hue steps)."""
    hue = (track_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


def draw_mask(
    frame: np.ndarray, labels: np.ndarray, alpha: float = 0.4, palette: np.ndarray = PALETTE_BGR
) -> np.ndarray:
    """Blend class colours over ``frame`` where ``labels`` (H, W) is not 0 (background stays untouched)."""
    if labels.shape != frame.shape[:2]:
        raise ValueError(
            f"mask is {labels.shape}, frame is {frame.shape[:2]}: resize the labels to the frame"
        )
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


Chip = tuple[str, tuple[int, int, int]]  # text and its background colour


def _ink(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white text, whichever reads on ``colour``."""
    luminance = 0.114 * colour[0] + 0.587 * colour[1] + 0.299 * colour[2]
    return (0, 0, 0) if luminance > 140 else (255, 255, 255)


def label_chips(track_id: int, crossing: float | None, threshold: float = 0.5) -> list[Chip]:
    """A track's label: ``#id`` in its colour, then the crossing probability (grey below ``threshold``, red
    ``CROSS`` at or above it); just the id without a probability (constant-velocity predictions)."""
    chips: list[Chip] = [(f"#{track_id}", id_colour(track_id))]
    if crossing is not None:
        percent = int(crossing * 100 + 1e-9)  # floor: a grey label never reads 50% under a 0.5 threshold
        chips.append(
            (f"CROSS {percent}%", CROSSING_BGR) if crossing >= threshold else (f"{percent}%", WALKING_BGR)
        )
    return chips


def _chips_size(chips: Sequence[Chip], scale: float) -> tuple[int, int]:
    """(w, h) of the chips side by side."""
    sizes = [cv2.getTextSize(text, FONT, scale, 1) for text, _ in chips]
    return sum(w + 4 for (w, _), _ in sizes), max(h + base for (_, h), base in sizes) + 2


def _draw_chips(frame: np.ndarray, rect: Rect, chips: Sequence[Chip], scale: float) -> None:
    """Text on filled background boxes, left to right from ``rect``'s corner, so it reads on any scene."""
    x, y1, _, y2 = rect
    for text, colour in chips:
        (w, _), base = cv2.getTextSize(text, FONT, scale, 1)
        cv2.rectangle(frame, (x, y1), (x + w + 3, y2 - 1), colour, -1)
        cv2.putText(frame, text, (x + 2, y2 - base), FONT, scale, _ink(colour), 1, cv2.LINE_AA)
        x += w + 4


def _leader(frame: np.ndarray, label: Rect, box: Rect, colour: tuple[int, int, int]) -> None:
    """A thin line from a label to its box where the placer had to put it away from the box."""
    lx1, ly1, lx2, ly2 = label
    bx1, by1, bx2, by2 = box
    if max(bx1 - lx2, lx1 - bx2, by1 - ly2, ly1 - by2) <= GAP + 2:
        return
    cx, cy = (lx1 + lx2) // 2, (ly1 + ly2) // 2
    on_box = (min(max(cx, bx1), bx2 - 1), min(max(cy, by1), by2 - 1))
    on_label = (min(max(on_box[0], lx1), lx2 - 1), min(max(on_box[1], ly1), ly2 - 1))
    cv2.line(frame, on_label, on_box, colour, 1, cv2.LINE_AA)


def _box_rect(box: np.ndarray, thickness: int) -> Rect:
    """The pixels a drawn box outline covers (OpenCV centres the line on the coordinates)."""
    x1, y1, x2, y2 = (round(v) for v in np.asarray(box, np.float64).tolist())  # plain floats: 5x faster
    pad = (thickness + 1) // 2
    return x1 - pad, y1 - pad, x2 + pad + 1, y2 + pad + 1


def draw_path(
    frame: np.ndarray,
    path: np.ndarray,
    colour: tuple[int, int, int],
    origin: np.ndarray | None = None,
    radius: int = 4,
) -> np.ndarray:
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
        cv2.circle(
            frame,
            (int(x), int(y)),
            max(1, round(radius * (1.0 - 0.6 * i / max(n - 1, 1)))),
            dot,
            -1,
            cv2.LINE_AA,
        )
    return frame


OTHER_MODE_MIN_PROB = (
    0.1  # less likely modes of a multi-modal prediction are drawn faintly from this probability
)


def _draw_other_modes(
    frame: np.ndarray, pred: Prediction, colour: tuple[int, int, int], origin: np.ndarray
) -> None:
    """The modes other than the most likely one (probability >= ``OTHER_MODE_MIN_PROB``): thin half-bright lines."""
    modes, probs = getattr(pred, "modes_image", None), getattr(pred, "mode_probs", None)
    if modes is None or probs is None or len(probs) < 2:
        return
    faint = tuple(int(c * 0.5) for c in colour)
    limit = 4 * max(frame.shape[:2])
    best = int(np.argmax(probs))
    for k, path in enumerate(np.asarray(modes, np.float64)):
        if k == best or probs[k] < OTHER_MODE_MIN_PROB:
            continue
        finite = np.isfinite(path).all(axis=1)
        points = np.vstack([origin[None], path[: int(np.argmin(finite)) if not finite.all() else len(path)]])
        pts = np.clip(np.round(points), -limit, limit).astype(np.int32)
        cv2.polylines(frame, [pts.reshape(-1, 1, 2)], False, faint, 1, cv2.LINE_AA)


def draw_tracks(
    frame: np.ndarray,
    tracks: Sequence[HasBox],
    predictions: Mapping[int, Prediction] | None = None,
    config: DrawConfig = DrawConfig(),
    blocked: Sequence[Rect] = (),
) -> np.ndarray:
    """Boxes and predicted paths, then one label per track (:func:`label_chips`), placed inside the frame where it
    covers no other label and nothing in ``blocked`` (the status bar). Crossing tracks are labelled first, then
    by id, so an older track keeps its label's place from frame to frame."""
    predictions = predictions or {}
    shown = [t for t in tracks if t.id is not None]
    boxes: list[Rect] = []
    chips: list[list[Chip]] = []
    for track in shown:
        colour = id_colour(track.id)  # type: ignore[arg-type]
        x1, y1, x2, y2 = (round(v) for v in np.asarray(track.box, np.float64).tolist())
        cv2.rectangle(frame, (x1, y1), (x2, y2), colour, config.box_thickness)
        boxes.append(_box_rect(track.box, config.box_thickness))
        pred = predictions.get(track.id)  # type: ignore[arg-type]
        if pred is not None:
            _draw_other_modes(frame, pred, colour, np.array([(x1 + x2) / 2, y2], np.float64))
            draw_path(
                frame, pred.path_image, colour, np.array([(x1 + x2) / 2, y2], np.float64), config.dot_radius
            )
        chips.append(
            label_chips(
                track.id,
                pred.crossing if pred is not None else None,  # type: ignore[arg-type]
                config.crossing_threshold,
            )
        )
    if not shown:
        return frame
    order = sorted(
        range(len(shown)), key=lambda i: (len(chips[i]) < 2 or chips[i][1][1] != CROSSING_BGR, shown[i].id)
    )
    full = [_chips_size(chips[i], config.font_scale) for i in order]
    short = [_chips_size(chips[i][:1], config.font_scale) if len(chips[i]) > 1 else None for i in order]
    rects = place_labels([boxes[i] for i in order], full, (frame.shape[1], frame.shape[0]), blocked, short)
    for i, size, rect in zip(order, full, rects, strict=True):
        _leader(frame, rect, boxes[i], id_colour(shown[i].id))  # type: ignore[arg-type]
        _draw_chips(
            frame, rect, chips[i] if rect[2] - rect[0] == size[0] else chips[i][:1], config.font_scale
        )
    return frame


# -- the status bar: stats and legend -----------------------------------------------------------------------------

SHORT_STAGE = {
    "detect": "det",
    "track": "trk",
    "behav": "beh",
    "behaviour": "beh",
    "segment": "seg",
    "output": "out",
}
BAR_DIM = (170, 170, 170)  # ink of the bar's captions
CROSSING_LEGEND = {  # the legend's words for the label's number, by crossing source (toolkit.pipeline.crossing)
    "road": "n%: chance of stepping onto the road,",
    "model": "n%: model's crossing guess (no road known),",
    None: "n%: chance of crossing,",
}
ROAD_OUTLINE_BGR = (200, 120, 120)  # the outline of a user-drawn road region
LEGEND_MIN_SHARE = 0.002  # a class enters the legend from this share of the frame (a few stray pixels do not)


@dataclass(frozen=True)
class BarItem:
    """One piece of the status bar: ``text`` in ``ink``, after a colour swatch where ``swatch`` is given."""

    text: str
    swatch: tuple[int, int, int] | None = None
    ink: tuple[int, int, int] = (255, 255, 255)


def stats_items(fps: float | None, stage_ms: Mapping[str, float] | None) -> list[BarItem]:
    """FPS, then milliseconds per stage (short names: det, trk, beh, seg, draw, out)."""
    items = [BarItem(f"{fps:.1f} FPS")] if fps is not None else []
    if stage_ms:
        items.append(BarItem("ms:", ink=BAR_DIM))
        items += [BarItem(f"{SHORT_STAGE.get(name, name)} {ms:.1f}") for name, ms in stage_ms.items()]
    return items


def legend_items(
    labels: np.ndarray | None,
    predictions: Mapping[int, Prediction] | None = None,
    threshold: float = 0.5,
    palette: np.ndarray = PALETTE_BGR,
    classes: Sequence[str] = CLASSES,
    crossing_source: str | None = None,
) -> list[BarItem]:
    """The segmentation classes present in ``labels`` (a colour swatch and the name each; background is never
    tinted), then what a label's number means where any prediction has a crossing probability
    (``crossing_source``: "road", "model" or None, :data:`CROSSING_LEGEND`)."""
    items: list[BarItem] = []
    if labels is not None and labels.size:
        sample = labels[::4, ::4]  # 1/16 of the pixels: ~20 us instead of ~0.3 ms, and enough to see a class
        counts = np.bincount(sample.ravel(), minlength=len(palette))
        least = max(1, LEGEND_MIN_SHARE * sample.size)
        items += [
            BarItem(classes[c], swatch=tuple(int(v) for v in palette[c]))  # type: ignore[arg-type]
            for c in range(1, min(len(classes), len(palette)))
            if counts[c] >= least
        ]
    if any(p.crossing is not None for p in (predictions or {}).values()):
        # What the number is (toolkit.pipeline.crossing): "road", the chance that the predicted paths reach the
        # road region within the horizon (4.8 s); "model", the behaviour model's learned guess (no road known).
        # Red text, not a red swatch: the person class's tint is a red too.
        items.append(BarItem(CROSSING_LEGEND.get(crossing_source, CROSSING_LEGEND[None])))
        items.append(BarItem(f"red at {int(threshold * 100 + 1e-9)}%+", ink=(130, 130, 255)))
    return items


BarRow = tuple[Rect, list[tuple[BarItem, int]]]  # a row's rectangle and each item with its x


def layout_bar(
    groups: Sequence[Sequence[BarItem]],
    frame_size: tuple[int, int],
    scale: float,
    mode: str = "auto",
    boxes: Sequence[Rect] = (),
) -> list[BarRow]:
    """Rows of the items of ``groups`` (stats, legend: each starts a row unless it fits on the previous one) along
    the top or bottom edge (``mode``; auto: the edge covering less of ``boxes``), each row as wide as its content,
    the first row at the edge."""
    items = [item for group in groups for item in group]
    if not items:
        return []
    starts = np.cumsum([len(group) for group in groups])[:-1].tolist()
    width, height = frame_size
    metrics = [cv2.getTextSize(item.text, FONT, scale, 1) for item in items]
    text_h = max(h for (_, h), _ in metrics)
    row_h = text_h + max(base for _, base in metrics) + 5
    swatch = text_h + 1
    widths = [
        w + (swatch + 3 if item.swatch else 0) + 6 for item, ((w, _), _) in zip(items, metrics, strict=True)
    ]
    rows: list[BarRow] = []
    for r, indices in enumerate(pack_rows(widths, width - 4, groups=starts)):
        x, placed = 4, []
        for i in indices:
            placed.append((items[i], x))
            x += widths[i]
        rows.append(((0, r * row_h, min(width, x - 2), (r + 1) * row_h), placed))
    edge = mode if mode in ("top", "bottom") else bar_edge(boxes, [rect for rect, _ in rows], height)
    if edge == "bottom":
        rows = [((x1, height - y2, x2, height - y1), placed) for (x1, y1, x2, y2), placed in rows]
    return rows


def _darken(frame: np.ndarray, rows: Sequence[BarRow]) -> None:
    for (x1, y1, x2, y2), _ in rows:
        roi = frame[max(y1, 0) : y2, max(x1, 0) : x2]
        roi[:] = (roi * 0.35).astype(np.uint8)  # darken instead of a second full-frame blend


def _bar_text(frame: np.ndarray, rows: Sequence[BarRow], scale: float) -> None:
    for (_, y1, _, y2), placed in rows:
        for item, x in placed:
            (_, h), base = cv2.getTextSize(item.text, FONT, scale, 1)
            if item.swatch is not None:
                top = y1 + (y2 - y1 - h - 1) // 2
                cv2.rectangle(frame, (x, top), (x + h, top + h), item.swatch, -1)
                x += h + 3
            cv2.putText(frame, item.text, (x, y2 - base - 2), FONT, scale, item.ink, 1, cv2.LINE_AA)


def draw_frame(
    frame: np.ndarray,
    tracks: Sequence[HasBox],
    predictions: Mapping[int, Prediction] | None = None,
    labels: np.ndarray | None = None,
    fps: float | None = None,
    stage_ms: Mapping[str, float] | None = None,
    config: DrawConfig = DrawConfig(),
    crossing_source: str | None = None,
    road_polygons: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """Everything, back to front: mask tint, the user's road region outline (``road_polygons``), the bar's dark
    strip, boxes and paths, labels, the bar's text (stats unless ``config.hud`` is "off", the legend if
    ``config.legend``, its crossing words by ``crossing_source``). Returns ``frame``."""
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"draw expects a uint8 BGR frame (H, W, 3), got {frame.dtype} {frame.shape}")
    if labels is not None:
        draw_mask(frame, labels, config.mask_alpha)
    if road_polygons:
        outlines = [np.round(p).astype(np.int32) for p in road_polygons]
        cv2.polylines(frame, outlines, True, ROAD_OUTLINE_BGR, 1, cv2.LINE_AA)
    stats = stats_items(fps, stage_ms) if config.hud != "off" else []
    legend = (
        legend_items(labels, predictions, config.crossing_threshold, crossing_source=crossing_source)
        if config.legend
        else []
    )
    boxes = [_box_rect(t.box, config.box_thickness) for t in tracks if t.id is not None]
    rows = layout_bar(
        [stats, legend],
        (frame.shape[1], frame.shape[0]),
        config.bar_font_scale,
        "auto" if config.hud == "off" else config.hud,
        boxes,
    )
    _darken(frame, rows)
    draw_tracks(frame, tracks, predictions, config, blocked=[rect for rect, _ in rows])
    _bar_text(frame, rows, config.bar_font_scale)
    return frame
