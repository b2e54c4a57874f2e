"""Files ``toolkit eval --data mot --out-dir DIR`` writes for the eye: annotated frames and per-id lifetimes.

* ``<seq>_frame_NNNN.png`` (four frames spread over the sequence): the confirmed track boxes with their ids (as
  the demo draws them) over thin white ground-truth boxes, so misses, loose boxes and false tracks show;
* ``<seq>_tracks.json``: per id, first / last frame, frames seen, first / last box and centre range
  (:func:`toolkit.eval.track_stability.id_stability`).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from toolkit.data.mot import MotSequence
from toolkit.eval.track_stability import IdStability, Tracks
from toolkit.fileio import write_json_atomic

SNAPSHOTS = 4  # annotated frames per sequence


def snapshot_frames(length: int, count: int = SNAPSHOTS) -> list[int]:
    """``count`` frame indices spread evenly over ``length`` frames (the middles of equal parts)."""
    return (
        sorted({min(length - 1, (2 * k + 1) * length // (2 * count)) for k in range(count)}) if length else []
    )


def write_track_artifacts(
    sequence: MotSequence, tracks: Tracks, stability: IdStability, out_dir: str | Path
) -> dict[str, str]:
    """Write the PNG frames and the per-id JSON into ``out_dir``; return {artifact name: path}."""
    import cv2

    from toolkit.pipeline.draw import draw_tracks

    folder = Path(out_dir).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    stem = sequence.name.replace("/", "_") or "sequence"
    artifacts: dict[str, str] = {}
    per_id = folder / f"{stem}_tracks.json"
    write_json_atomic(
        per_id, {"sequence": sequence.name, "frame_rate": sequence.frame_rate, "tracks": stability.per_id}
    )
    artifacts["tracks"] = str(per_id)
    wanted = snapshot_frames(sequence.length)
    for index, frame in sequence.frames() if wanted else ():
        if index > wanted[-1]:
            break
        if index not in wanted:
            continue
        _, gt_boxes = sequence.gt.get(index, (None, np.zeros((0, 4))))
        for x1, y1, x2, y2 in np.asarray(gt_boxes, np.float64).reshape(-1, 4).round().astype(int).tolist():
            cv2.rectangle(frame, (x1, y1), (x2, y2), (255, 255, 255), 1)
        ids, boxes = tracks.get(index, (np.zeros(0, np.int64), np.zeros((0, 4))))
        draw_tracks(frame, [SimpleNamespace(id=int(i), box=b) for i, b in zip(ids, boxes, strict=True)])
        path = folder / f"{stem}_frame_{index:04d}.png"
        if not cv2.imwrite(str(path), frame):
            raise OSError(f"cannot write {path}")
        artifacts[f"frame_{index:04d}"] = str(path)
    return artifacts
