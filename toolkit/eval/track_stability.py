"""How stable are the track ids? Counts read from the tracks alone, beside the ground-truth metrics.

>>> table = id_stability(tracks, size=(480, 360), fps=7.0)     # tracks: {frame: (ids (K,), boxes (K, 4) xyxy)}
>>> table.row()["interior_births"], table.per_id["3"]["first"]

``toolkit eval --data mot`` reports these in its ``id_stability`` table:

* ``ids``: distinct track ids, and how many live >= 2 s (short ones are clutter or fragments); per id (the
  ``tracks`` artifact with ``--out-dir``): first / last frame, frames seen, first / last box, centre range;
* ``interior_births`` / ``interior_ends``: ids that start (end) more than ``margin`` px inside the frame after
  the first 2 s (before the last 2 s). People enter and leave at the borders (or behind the lamp post), so every
  interior birth is a fragment, a false track or a person reappearing from an occlusion -- an upper bound on id
  switches that needs no ground truth;
* ``people_per_frame``: confirmed tracks per frame (median, max);
* ``static_ids``: ids living >= ``static_s`` seconds whose box centre stays within ``static_px`` pixels (x and
  y range). People walk, so these are mostly a detector firing on street furniture frame after frame: an upper
  bound on long false tracks.

Seconds are frames / ``fps``: the sequence's own clock (seqinfo.ini), as the tracker's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

Tracks = Mapping[int, tuple[np.ndarray, np.ndarray]]  # frame -> (ids (K,), boxes (K, 4) xyxy pixels)


@dataclass(frozen=True)
class StabilityConfig:
    margin_px: float = 12.0  # a box further than this from every border is "interior"
    settle_s: float = 2.0  # births in the first / ends in the last this many seconds are not counted
    static_s: float = 10.0  # static ids: living at least this long ...
    static_px: float = 20.0  # ... with the box centre within this range (x and y)


@dataclass(frozen=True)
class IdStability:
    """The counts of the module docstring; ``per_id`` maps str(id) -> its lifetime record."""

    frames: int
    ids: int
    ids_living_2s_or_more: int
    interior_births: int
    interior_ends: int
    static_ids: list[int]
    people_per_frame_median: float
    people_per_frame_max: int
    per_id: dict[str, dict[str, Any]]

    def row(self) -> dict[str, Any]:
        """One table row (everything but ``per_id``)."""
        return {
            "frames": self.frames,
            "ids": self.ids,
            "ids_living_2s_or_more": self.ids_living_2s_or_more,
            "interior_births": self.interior_births,
            "interior_ends": self.interior_ends,
            "static_ids": len(self.static_ids),
            "static_id_list": list(self.static_ids),
            "people_per_frame_median": self.people_per_frame_median,
            "people_per_frame_max": self.people_per_frame_max,
        }


def id_stability(
    tracks: Tracks, size: tuple[int, int], fps: float, config: StabilityConfig = StabilityConfig()
) -> IdStability:
    """Per-id lifetimes, interior births / ends and static ids of ``tracks`` (every processed frame a key, in
    any order; a frame with no confirmed track maps to empty arrays) in a ``size`` = (width, height) frame."""
    width, height = size
    ids: dict[int, dict[str, Any]] = {}
    centres: dict[int, list[float]] = {}  # id -> [x min, y min, x max, y max] of the box centre
    per_frame = []
    for frame in sorted(tracks):
        frame_ids, boxes = tracks[frame]
        per_frame.append(len(frame_ids))
        for track_id, box in zip(
            np.asarray(frame_ids).tolist(), np.asarray(boxes, np.float64).reshape(-1, 4).tolist(), strict=True
        ):
            entry = ids.setdefault(track_id, {"first": frame, "frames": 0, "first_box": box})
            entry["last"], entry["last_box"] = frame, box
            entry["frames"] += 1
            x1, y1, x2, y2 = box
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            c = centres.setdefault(track_id, [cx, cy, cx, cy])
            c[:] = [min(c[0], cx), min(c[1], cy), max(c[2], cx), max(c[3], cy)]
    for track_id, c in centres.items():
        ids[track_id]["centre_range"] = [c[2] - c[0], c[3] - c[1]]

    margin = config.margin_px

    def interior(box: list[float]) -> bool:
        x1, y1, x2, y2 = box
        return x1 > margin and y1 > margin and x2 < width - margin and y2 < height - margin

    settle = int(round(config.settle_s * fps))  # everybody already in view at the start is "born" there
    last_frame = max(tracks, default=0)
    births = [i for i, e in ids.items() if e["first"] > settle and interior(e["first_box"])]
    ends = [i for i, e in ids.items() if e["last"] < last_frame - settle and interior(e["last_box"])]
    long_lived = [i for i, e in ids.items() if e["frames"] >= 2 * fps]
    static = [
        i
        for i, e in ids.items()
        if e["frames"] >= config.static_s * fps and max(e["centre_range"]) < config.static_px
    ]
    return IdStability(
        frames=len(per_frame),
        ids=len(ids),
        ids_living_2s_or_more=len(long_lived),
        interior_births=len(births),
        interior_ends=len(ends),
        static_ids=sorted(static),
        people_per_frame_median=float(np.median(per_frame)) if per_frame else 0.0,
        people_per_frame_max=int(max(per_frame, default=0)),
        per_id={
            str(i): {k: (v if not isinstance(v, list) else [round(c, 1) for c in v]) for k, v in e.items()}
            for i, e in sorted(ids.items())
        },
    )
