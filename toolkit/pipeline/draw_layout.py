"""Where the overlay's text goes: a greedy label placer and the packing of the status bar into rows.

Pure geometry on integer rectangles ``(x1, y1, x2, y2)`` (x2, y2 exclusive); no drawing, so it is tested on
hand-made boxes. :mod:`toolkit.pipeline.draw` measures the text and draws where these functions say.

>>> place_labels([(10, 40, 30, 90), (25, 42, 45, 95)], [(40, 14), (40, 14)], (480, 360))
[(10, 24, 50, 38), (47, 42, 87, 56)]

The placer is greedy (in the order given: the caller puts the labels that matter most first): each label tries
:func:`candidates` around its box in a fixed order and takes the first that stays inside the frame and overlaps
neither a label placed before it nor a ``blocked`` area (the status bar); among those it prefers one that covers
no person's box (a label clamped at the frame edge can land on its own). A label with no free position takes the candidate with the least overlap, clamped to the
frame. About 0.3 ms for 8 crowded labels at 480x360 (plain Python: numpy costs more on so few boxes).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Rect = tuple[int, int, int, int]  # x1, y1, x2, y2 in pixels, x2 and y2 exclusive
GAP = 2  # pixels between a box and its label


def candidates(box: Rect, size: tuple[int, int], gap: int = GAP) -> list[Rect]:
    """Label positions around ``box`` for a label of ``size`` (w, h), best first: above (left, then right
    aligned), beside the head (right, then left), below, beside the feet, then a second row above and below."""
    x1, y1, x2, y2 = box
    w, h = size
    corners = [
        (x1, y1 - h - gap),
        (x2 - w, y1 - h - gap),  # above
        (x2 + gap, y1),
        (x1 - w - gap, y1),  # beside the head
        (x1, y2 + gap),
        (x2 - w, y2 + gap),  # below (where the predicted path starts: later)
        (x2 + gap, y2 - h),
        (x1 - w - gap, y2 - h),  # beside the feet
        (x1, y1 - 2 * (h + gap)),
        (x2 - w, y1 - 2 * (h + gap)),  # a second row above
        (x1, y2 + h + 2 * gap),
        (x2 - w, y2 + h + 2 * gap),  # a second row below
    ]
    return [(x, y, x + w, y + h) for x, y in corners]


def clamp(rect: Rect, frame_size: tuple[int, int]) -> Rect:
    """``rect`` moved (not shrunk) to lie inside a ``frame_size`` (w, h) frame; larger than the frame: at 0."""
    x1, y1, x2, y2 = rect
    width, height = frame_size
    dx = max(-x1, min(0, width - x2))
    dy = max(-y1, min(0, height - y2))
    return x1 + dx, y1 + dy, x2 + dx, y2 + dy


def overlap_areas(rects: np.ndarray, others: np.ndarray) -> np.ndarray:
    """(k, 4) and (m, 4) rectangles -> (k,) total area each of ``rects`` shares with ``others``."""
    if len(others) == 0 or len(rects) == 0:
        return np.zeros(len(rects), np.int64)
    a, b = rects[:, None, :], others[None, :, :]
    w = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    h = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    return (np.maximum(w, 0) * np.maximum(h, 0)).sum(axis=1)


def place_labels(
    boxes: Sequence[Rect],
    sizes: Sequence[tuple[int, int]],
    frame_size: tuple[int, int],
    blocked: Sequence[Rect] = (),
    fallback_sizes: Sequence[tuple[int, int] | None] | None = None,
) -> list[Rect]:
    """One label rectangle per box, inside the frame, placed greedily in the given order (see the module doc).

    ``sizes``: (w, h) of each label; ``blocked``: areas no label may cover (the status bar);
    ``fallback_sizes``: a shorter form of each label (e.g. just the id) tried before accepting an overlap.
    Returns the rectangles in the order of ``boxes``; a rectangle narrower than ``sizes`` says the short form
    was used.
    """
    if len(boxes) != len(sizes):
        raise ValueError(f"{len(boxes)} boxes but {len(sizes)} label sizes")
    boxes = [tuple(int(v) for v in box) for box in boxes]
    taken = [tuple(int(v) for v in rect) for rect in blocked]  # blocked areas, then each label once placed
    placed: list[Rect] = []
    for i, box in enumerate(boxes):
        others = boxes  # its own box too: a label clamped at the frame edge must not sit on the person
        forms = [sizes[i]]
        if fallback_sizes is not None and fallback_sizes[i] is not None:
            forms.append(fallback_sizes[i])  # type: ignore[arg-type]
        rect = _first_free(box, forms, frame_size, taken, others)  # type: ignore[arg-type]
        placed.append(rect)
        taken.append(rect)
    return placed


def _area(a: Rect, b: Rect) -> int:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0


def _first_free(
    box: Rect,
    forms: Sequence[tuple[int, int]],
    frame_size: tuple[int, int],
    taken: Sequence[Rect],
    others: Sequence[Rect],
) -> Rect:
    """The first candidate (of each form in turn) clear of ``taken`` and ``others``; else the one clear of
    ``taken`` covering least of ``others``; else the one overlapping ``taken`` least. Plain Python with early
    exits: a few microseconds where the first candidate is free, the usual case (numpy costs more on 10 boxes)."""
    least_taken: tuple[int, Rect] | None = None
    for size in forms:
        least_other: tuple[int, Rect] | None = None
        for candidate in candidates(box, size):
            rect = clamp(candidate, frame_size)
            hard = sum(_area(rect, t) for t in taken)
            if hard:
                if least_taken is None or hard < least_taken[0]:
                    least_taken = (hard, rect)
                continue
            soft = sum(_area(rect, o) for o in others)
            if not soft:
                return rect
            if least_other is None or soft < least_other[0]:
                least_other = (soft, rect)
        if least_other is not None:
            return least_other[1]
    return least_taken[1]  # type: ignore[index]


def pack_rows(
    widths: Sequence[int], max_width: int, max_rows: int = 3, groups: Sequence[int] = ()
) -> list[list[int]]:
    """Item indices per row: items (in order) fill a row up to ``max_width`` and then start the next; at most
    ``max_rows`` rows (items that do not fit are left out; an item wider than a row gets a row of its own).

    ``groups``: indices where a new group begins (the legend after the stats): a group starts a new row unless
    all of it fits on the current one, so a row never ends with the first part of a group.
    """
    bounds = sorted({0, *groups, len(widths)})
    rows: list[list[int]] = []
    used = 0
    for start, stop in zip(bounds, bounds[1:], strict=False):
        if rows and used + sum(widths[start:stop]) <= max_width:
            rows[-1].extend(range(start, stop))
            used += sum(widths[start:stop])
            continue
        used = max_width + 1  # the group opens a row of its own
        for i in range(start, stop):
            if used + widths[i] > max_width:
                if len(rows) == max_rows:
                    return rows
                rows.append([])
                used = 0
            rows[-1].append(i)
            used += widths[i]
    return rows


def bar_edge(boxes: Sequence[Rect], bar: Sequence[Rect], frame_height: int, prefer: str = "top") -> str:
    """ "top" or "bottom": the edge where the bar's rectangles (laid out from the top, y from 0) cover less of
    the boxes; ``prefer`` on a tie."""
    if not len(boxes) or not len(bar):
        return prefer
    rects = np.array(bar, np.int64).reshape(-1, 4)
    depth = int(rects[:, 3].max())
    flipped = rects.copy()
    flipped[:, 1], flipped[:, 3] = frame_height - rects[:, 3], frame_height - rects[:, 1]
    box_array = np.array(boxes, np.int64).reshape(-1, 4)
    cover = {
        "top": int(overlap_areas(rects, box_array).sum()),
        "bottom": int(overlap_areas(flipped, box_array).sum()),
    }
    other = "bottom" if prefer == "top" else "top"
    return other if cover[other] < cover[prefer] and depth < frame_height else prefer
