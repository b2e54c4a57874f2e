"""Id stability of tracks without ground truth (``toolkit eval --data mot``'s ``id_stability`` table), the job of
the former scripts/track_clip.py: hand-checked counts, and the script's numbers on a slice of the shared clip."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

from toolkit.eval.track_artifacts import snapshot_frames
from toolkit.eval.track_stability import StabilityConfig, id_stability


def _tracks(frames: list[list[tuple[int, list[float]]]]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    return {
        f: (
            np.asarray([i for i, _ in tracks], np.int64),
            np.asarray([b for _, b in tracks], np.float64).reshape(-1, 4),
        )
        for f, tracks in enumerate(frames)
    }


def test_lifetimes_and_interior_births_and_ends() -> None:
    edge, middle = [0.0, 100.0, 20.0, 160.0], [200.0, 100.0, 230.0, 160.0]
    frames = []
    for frame in range(
        100
    ):  # 10 fps: id 1 lives the whole clip from the border, id 2 is born and dies mid-frame
        frames.append([(1, edge)] + ([(2, middle)] if 40 <= frame < 50 else []))
    table = id_stability(_tracks(frames), (480, 360), fps=10.0)
    assert table.ids == 2 and table.ids_living_2s_or_more == 1 and table.frames == 100
    assert table.interior_births == 1 and table.interior_ends == 1
    assert (
        table.per_id["2"]["first"] == 40
        and table.per_id["2"]["last"] == 49
        and table.per_id["2"]["frames"] == 10
    )
    assert (table.people_per_frame_median, table.people_per_frame_max) == (1.0, 2)
    # a track already there in the first 2 s is not an interior birth, wherever it is
    early = _tracks([[(3, middle)] for _ in range(100)])
    assert id_stability(early, (480, 360), 10.0).interior_births == 0


def test_static_ids_are_long_tracks_that_do_not_move() -> None:
    post = [100.0, 50.0, 110.0, 90.0]  # a lamp post: the same box for 15 s
    frames = []
    for frame in range(150):
        walker = [10.0 + 2 * frame, 200.0, 25.0 + 2 * frame, 240.0]  # walks 300 px to the right
        jitter = 3.0 * (frame % 2)  # the post's box wobbles a little, as detections do
        short = [(4, [300.0, 20.0, 310.0, 60.0])] if frame < 50 else []  # static, but only 5 s
        frames.append([(1, [post[0] + jitter, post[1], post[2] + jitter, post[3]]), (2, walker), *short])
    table = id_stability(_tracks(frames), (480, 360), 10.0)
    assert table.static_ids == [1] and table.row()["static_ids"] == 1
    assert table.per_id["1"]["centre_range"] == [3.0, 0.0]
    assert table.per_id["2"]["centre_range"] == [298.0, 0.0]
    assert id_stability(_tracks(frames), (480, 360), 10.0, StabilityConfig(static_s=4.0)).static_ids == [1, 4]


def test_empty_frames_count_and_no_tracks_is_all_zero() -> None:
    empty = {f: (np.zeros(0, np.int64), np.zeros((0, 4))) for f in range(5)}
    row = id_stability(empty, (480, 360), 7.0).row()
    assert row["frames"] == 5 and row["ids"] == 0 and row["people_per_frame_max"] == 0
    assert id_stability({}, (480, 360), 7.0).row()["frames"] == 0


def test_snapshot_frames_spread_over_the_sequence() -> None:
    assert snapshot_frames(795) == [99, 298, 496, 695]
    assert snapshot_frames(3) == [0, 1, 2] and snapshot_frames(0) == []


# What scripts/track_clip.py printed for the first 120 frames of the shared clip (toolkit demo with the shipped
# zoo; its event log read back). The demo ran on the video header's 10 fps; toolkit eval uses seqinfo's 7 fps.
TRACK_CLIP_120 = {
    "frames": 120,
    "ids": 18,
    "ids_living_2s_or_more": 15,
    "interior_births": 9,
    "interior_ends": 8,
    "static_ids": 0,
    "static_id_list": [],
    "people_per_frame_median": 7.0,
    "people_per_frame_max": 10,
}


@pytest.mark.shared
def test_the_old_scripts_numbers_on_a_pets_slice(shared: Path, tmp_path: Path) -> None:
    from toolkit.data.mot import mot_sequence_from_spec
    from toolkit.eval.tracking import track_sequence
    from toolkit.pipeline.config import PipelineConfig
    from toolkit.pipeline.demo import run_demo
    from toolkit.pipeline.events import read_events
    from toolkit.pipeline.offline import OfflineTracker

    # the script's way: the demo on the clip, its event log read back
    events_path = tmp_path / "events.jsonl"
    run_demo(
        PipelineConfig(
            source=str(shared / "data/pedestrian_video/pedestrians.avi"),
            realtime=False,
            events=str(events_path),
            max_frames=120,
            threads=1,
        )
    )
    events = read_events(events_path)
    source = events[0]["source"]
    demo_tracks = {
        e["frame"]: (
            np.asarray([t["id"] for t in e["tracks"]], np.int64),
            np.asarray([t["box"] for t in e["tracks"]], np.float64).reshape(-1, 4),
        )
        for e in events
    }
    assert (
        id_stability(demo_tracks, (source["width"], source["height"]), source["fps"]).row() == TRACK_CLIP_120
    )
    # the eval's way (the offline tracker on the MOT sequence) on the same clock gives the same numbers
    sequence = dataclasses.replace(mot_sequence_from_spec("mot:limit=120"), frame_rate=source["fps"])
    with OfflineTracker.open(None, threads=1) as run:
        tracks = track_sequence(sequence, run)[0]
    assert id_stability(tracks, sequence.size, sequence.frame_rate).row() == TRACK_CLIP_120


@pytest.mark.shared
def test_eval_reports_id_stability_and_writes_frames(shared: Path, tmp_path: Path) -> None:
    result = run_cli(
        "eval",
        "--data",
        "mot:limit=40",
        "--no-baselines",
        "--threads",
        "1",
        "--out-dir",
        tmp_path / "out",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    (row,) = report["tables"]["id_stability"]
    assert row["frames"] == 40 and 0 < row["ids"] <= report["metrics"]["pred_ids"]
    assert row["ids"] == report["metrics"]["pred_ids"]  # the same confirmed tracks the metrics score
    names = sorted(Path(p).name for p in report["artifacts"].values())
    assert names == [
        "PETS09-S2L1_frame_0005.png",
        "PETS09-S2L1_frame_0015.png",
        "PETS09-S2L1_frame_0025.png",
        "PETS09-S2L1_frame_0035.png",
        "PETS09-S2L1_tracks.json",
    ]
    per_id = json.loads((tmp_path / "out" / "PETS09-S2L1_tracks.json").read_text())
    assert per_id["frame_rate"] == 7.0 and len(per_id["tracks"]) == row["ids"]
