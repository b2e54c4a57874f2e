#!/usr/bin/env python3
"""How stable are the demo's track ids on a real clip? Runs ``toolkit demo`` on it and reads the event log back.

    python scripts/track_clip.py [--clip FILE] [--models DIR] [--png-dir DIR] [--frames 60,250,500,700]
                                 [--out build/bench/track_clip.json]

The clip (default ``$TOOLKIT_SHARED/data/pedestrian_video/pedestrians.avi``, PETS09-S2L1 re-encoded, 795 frames,
2-8 people) has no ground truth, so the script reports what can be counted without it, from the same events a
user gets with ``--events``:

* ``ids``: distinct track ids over the clip, and how many of them live >= 2 s (short ones are clutter or
  fragments); per id: first/last frame, frames seen, where it was born and where it ended;
* ``interior_births`` / ``interior_ends``: ids that start or end more than ``--margin`` px inside the frame
  after the first 2 s. People enter and leave at the borders (or behind the lamp post), so every interior
  birth is a fragment, a false track or a person reappearing from an occlusion -- an upper bound on id switches;
* ``people_per_frame``: confirmed tracks per frame (median, max) beside the clip's 2-8 people;
* ``static_ids``: ids living >= ``--static-s`` seconds whose box centre stays within ``--static-px`` pixels
  (x and y range). The clip's people walk, so these are mostly a detector firing on street furniture (a lamp
  post, a bin) frame after frame: an upper bound on long false tracks. The number to watch when a detector
  is retrained on synthetic scenes (each id's ``centre_range`` is in ``tracks``).

It also saves annotated frames (boxes with ids, trails, predicted paths, segmentation) as PNG from the recorded
video, for the eye. Prints one line and writes JSON.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from toolkit.cli.common import positive_float  # noqa: E402
from toolkit.errors import UsageError, run_script  # noqa: E402
from toolkit.fileio import write_json_atomic  # noqa: E402
from toolkit.paths import shared_dir  # noqa: E402
from toolkit.pipeline.config import PipelineConfig  # noqa: E402
from toolkit.pipeline.demo import run_demo  # noqa: E402
from toolkit.pipeline.events import read_events  # noqa: E402


def track_table(events: list[dict[str, Any]], size: tuple[int, int], margin: float, fps: float,
                static_s: float = 10.0, static_px: float = 20.0) -> dict[str, Any]:
    """Per-id lifetimes, birth / end positions and static ids from the event log; see the module docstring."""
    width, height = size
    ids: dict[int, dict[str, Any]] = {}
    centres: dict[int, list[float]] = {}  # id -> [x min, y min, x max, y max] of the box centre
    per_frame = []
    for event in events:
        per_frame.append(len(event["tracks"]))
        for track in event["tracks"]:
            entry = ids.setdefault(track["id"], {"first": event["frame"], "frames": 0, "first_box": track["box"]})
            entry["last"], entry["last_box"] = event["frame"], track["box"]
            entry["frames"] += 1
            x1, y1, x2, y2 = track["box"]
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            c = centres.setdefault(track["id"], [cx, cy, cx, cy])
            c[:] = [min(c[0], cx), min(c[1], cy), max(c[2], cx), max(c[3], cy)]
    for i, c in centres.items():
        ids[i]["centre_range"] = [c[2] - c[0], c[3] - c[1]]

    def interior(box: list[float]) -> bool:
        x1, y1, x2, y2 = box
        return x1 > margin and y1 > margin and x2 < width - margin and y2 < height - margin

    settle = int(round(2 * fps))  # the first 2 s: everybody already in view is "born" there
    last_frame = events[-1]["frame"] if events else 0
    births = [i for i, e in ids.items() if e["first"] > settle and interior(e["first_box"])]
    ends = [i for i, e in ids.items() if e["last"] < last_frame - settle and interior(e["last_box"])]
    long_lived = [i for i, e in ids.items() if e["frames"] >= 2 * fps]
    static = [i for i, e in ids.items() if e["frames"] >= static_s * fps and max(e["centre_range"]) < static_px]
    return {
        "frames": len(events), "ids": len(ids), "ids_living_2s_or_more": len(long_lived),
        "interior_births": len(births), "interior_ends": len(ends),
        "static_ids": {"count": len(static), "ids": sorted(static), "min_seconds": static_s, "max_px": static_px},
        "people_per_frame": {"median": float(np.median(per_frame)) if per_frame else 0.0,
                             "max": int(max(per_frame, default=0))},
        "tracks": {str(i): {k: (v if not isinstance(v, list) else [round(c, 1) for c in v]) for k, v in e.items()}
                   for i, e in sorted(ids.items())},
    }


def save_frames(video: Path, indices: list[int], out_dir: Path) -> list[str]:
    """Frames ``indices`` of the recorded (annotated) video as PNG files in ``out_dir``."""
    import cv2

    out_dir.mkdir(parents=True, exist_ok=True)
    capture = cv2.VideoCapture(str(video))
    saved, index, wanted = [], 0, set(indices)
    while wanted:
        ok, frame = capture.read()
        if not ok:
            break
        if index in wanted:
            path = out_dir / f"frame_{index:04d}.png"
            cv2.imwrite(str(path), frame)
            saved.append(str(path))
            wanted.discard(index)
        index += 1
    capture.release()
    return saved


def _indices(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated frame numbers, got {text!r}") from None
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"frame numbers must be >= 0, got {text!r}")
    return values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", help="video file (default: the shared real clip)")
    parser.add_argument("--models", help="model folder (default: the shipped zoo, models/)")
    parser.add_argument("--png-dir", type=Path, help="save annotated frames here (default: next to --out)")
    parser.add_argument("--frames", type=_indices, default="60,250,500,700", help="frame indices to save as PNG")
    parser.add_argument("--margin", type=float, default=12.0, help="px from the border that count as 'interior'")
    parser.add_argument("--static-s", type=positive_float, default=10.0, help="static ids: living at least this long (s)")
    parser.add_argument("--static-px", type=positive_float, default=20.0, help="...with the box centre within this range")
    parser.add_argument("--out", type=Path, default=Path("build/bench/track_clip.json"), help="JSON output file")
    args = parser.parse_args()
    clip = Path(args.clip) if args.clip else shared_dir() / "data" / "pedestrian_video" / "pedestrians.avi"
    if not clip.is_file():
        raise UsageError(f"clip not found: {clip} (set TOOLKIT_SHARED or pass --clip)")
    with tempfile.TemporaryDirectory() as tmp:
        events_path, video = Path(tmp) / "events.jsonl", Path(tmp) / "annotated.avi"
        config = PipelineConfig(source=str(clip), models=args.models, realtime=False, record=str(video),
                                events=str(events_path))
        summary = run_demo(config)
        events = read_events(events_path)
        source = events[0]["source"] if events else {"width": 0, "height": 0, "fps": None}
        fps = float(source.get("fps") or 10.0)
        table = track_table(events, (source["width"], source["height"]), args.margin, fps, args.static_s,
                            args.static_px)
        png_dir = args.png_dir or args.out.parent / "track_clip"
        frames = save_frames(video, args.frames, png_dir)
    result = {"clip": str(clip), "fps_source": fps, "demo_fps": summary["fps"], **table, "png": frames}
    write_json_atomic(args.out, result)
    print(f"{table['frames']} frames: {table['ids']} ids ({table['ids_living_2s_or_more']} living >= 2 s), "
          f"interior births {table['interior_births']}, interior ends {table['interior_ends']}, static ids "
          f"{table['static_ids']['count']}, confirmed tracks "
          f"per frame median {table['people_per_frame']['median']:g} max {table['people_per_frame']['max']}; "
          f"PNG: {png_dir}; JSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main, "track_clip.py"))
