"""Behaviour windows from a MOTChallenge sequence's world ground truth (``load_windows("mot:...")``): resampling
to 0.4 s inside contiguous runs, the ETH/UCY window cutter, refusals, and the shared PETS09-S2L1 case."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, run_cli
from helpers_data import one_line_error

from toolkit.data import trajectories as traj
from toolkit.data.behaviour_windows import load_windows, mot_rows, resample_runs, step_speeds
from toolkit.data.mot import read_mot_world

SEQINFO = "[Sequence]\nname=WALK-01\nimDir=img1\nframeRate=7\nseqLength={length}\nimWidth=640\nimHeight=480\n"
INT8 = REPO / "models" / "behaviour" / "behaviour_int8.tflite"


def walker_rows(
    track: int, frames: range, start: tuple[float, float], velocity: tuple[float, float]
) -> list[str]:
    """MOT15 gt lines of one person moving at ``velocity`` m/s from ``start`` (frames 1-based, 7 fps)."""
    lines = []
    for f in frames:
        t = (f - 1) / 7
        x, y = start[0] + velocity[0] * t, start[1] + velocity[1] * t
        lines.append(f"{f},{track},100,100,20,50,1,{x:.6f},{y:.6f},0")
    return lines


def make_seq(root: Path, lines: list[str], length: int = 200) -> Path:
    root.mkdir(parents=True)
    (root / "seqinfo.ini").write_text(SEQINFO.format(length=length))
    (root / "gt.txt").write_text("\n".join(lines) + "\n")
    return root


def test_straight_walker_gives_056_m_steps_and_a_neighbour(tmp_path):
    # 1.4 m/s along x for 60 frames (8.4 s) at 7 fps; a second person stands 2 m to the side.
    seq = make_seq(
        tmp_path / "walk",
        walker_rows(1, range(1, 61), (0.0, 0.0), (1.4, 0.0))
        + walker_rows(2, range(1, 61), (5.0, 2.0), (0, 0)),
    )
    windows = load_windows(f"mot:seq={seq}", neighbours=2)
    # frames 0..59 cover grid steps k = 0..21 (21 x 2.8 = 58.8): 22 samples -> 3 windows per person
    assert len(windows) == 6 and windows.obs.shape == (6, 8, 2) and windows.fut.shape == (6, 12, 2)
    moving = np.abs(windows.obs[:, 0, 0]) > 1  # the walker's windows start 7 steps behind the origin
    path = np.concatenate([windows.obs[moving], windows.fut[moving]], axis=1)
    assert np.allclose(np.diff(path, axis=1), [0.56, 0.0], atol=1e-5)  # 1.4 m/s x 0.4 s
    assert np.allclose(windows.fut[~moving], 0, atol=1e-5)  # the standing person stays put
    first = windows.neighbours[moving][0]  # walker at x = 7 x 0.56 (step 7), the other at (5, 2), still
    assert np.allclose(first[0], [5 - 7 * 0.56, 2.0, 0.0, 0.0, 1.0], atol=1e-5) and not first[1].any()
    assert "7 fps resampled to 0.4 s" in windows.source and "median step speed" in windows.source


def test_resampling_never_bridges_a_gap():
    frames = np.r_[0:4, 5:11]  # frame 4 missing: grid times 2.8 (k=1) and 5.6 (k=2) fall on either side of it
    xy = np.column_stack([frames * 0.2, np.zeros(len(frames))])
    runs = resample_runs(frames, xy, frame_rate=7.0)
    assert [k.tolist() for k, _ in runs] == [[0, 1], [2, 3]]
    assert np.allclose(runs[0][1][:, 0], [0.0, 0.56]) and np.allclose(runs[1][1][:, 0], [1.12, 1.68])


def test_a_gap_splits_the_track_into_separate_runs(tmp_path):
    # gt frame 30 missing (0-based 29): grid time 28 (k=10) ends the first run, 30.8 (k=11) starts the second,
    # so only the separate ped_ids keep make_windows from joining them
    lines = walker_rows(1, range(1, 30), (0, 0), (1.0, 0.5)) + walker_rows(
        1, range(31, 124), (0, 0), (1.0, 0.5)
    )
    rows, tracks = mot_rows(read_mot_world(make_seq(tmp_path / "gap", lines)))
    assert tracks.tolist() == [1, 1]  # two runs of gt track 1, each its own ped_id
    assert sorted(rows[rows[:, 1] == 0, 0] // traj.FRAME_STEP) == list(range(11))
    assert sorted(rows[rows[:, 1] == 1, 0] // traj.FRAME_STEP) == list(range(11, 44))
    windows = traj.make_windows(rows)
    assert len(windows) == 33 - 20 + 1 and set(windows.ped.tolist()) == {1}  # bridged it would be 25
    assert np.allclose(step_speeds(rows), np.hypot(1.0, 0.5), atol=1e-4)


def test_stride_and_limit(tmp_path):
    seq = make_seq(tmp_path / "walk", walker_rows(1, range(1, 101), (0, 0), (1.2, 0.0)))
    # frames 0..99: k = 0..35, 36 samples, 17 windows at stride 1
    assert len(load_windows(f"mot:seq={seq}")) == 17
    assert len(load_windows(f"mot:seq={seq},stride=4")) == 5
    assert len(load_windows(f"mot:seq={seq},limit=60")) == 3  # limit = the first 60 frames, as for tracking


def test_refuses_gt_without_world_coordinates(tmp_path):
    no_world = make_seq(tmp_path / "mot17", [f"{f},1,10,10,20,40,1,1,1.0" for f in range(1, 40)])
    message = one_line_error(load_windows, f"mot:seq={no_world}")
    assert "no world coordinates" in message and "metres" in message and "calibration" in message
    uncalibrated = make_seq(tmp_path / "mot15", [f"{f},1,10,10,20,40,1,-1,-1,-1" for f in range(1, 40)])
    assert "all 0 / -1" in one_line_error(load_windows, f"mot:seq={uncalibrated}")
    result = run_cli("eval", INT8, "--data", f"mot:seq={no_world}", "--threads", "1")
    assert result.returncode == 2 and "no world coordinates" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_shared_pets_windows_and_cli_eval(shared):
    windows = load_windows("mot", neighbours=6)  # default seq: the shared PETS09-S2L1
    assert len(windows) == 1294 and set(windows.group.tolist()) == {"PETS09-S2L1"}
    path = np.concatenate([windows.obs, windows.fut], axis=1)
    speed = np.linalg.norm(np.diff(path, axis=1), axis=-1) / traj.SECONDS_PER_STEP
    assert 0.8 < np.median(speed[speed > 0.3]) < 1.5  # walking people, metres per second
    assert (windows.neighbours[..., 4] > 0).any()  # others are in view
    result = run_cli("eval", INT8, "--data", "mot", "--threads", "1", "--json")
    assert result.returncode == 0, result.stderr
    import json

    report = json.loads(result.stdout)
    assert report["kind"] == "behaviour" and report["samples"] == 1294
    assert {"ade", "fde", "min_ade", "min_fde", "cv_ade", "cv_fde"} <= set(report["metrics"])
    assert report["metrics"]["min_ade"] <= report["metrics"]["ade"]


@pytest.mark.parametrize("spec", ["mot:stride=0", "mot:strid=2"])
def test_bad_mot_spec_keys(spec):
    assert "stride" in one_line_error(load_windows, spec)


def test_tracking_refuses_stride():
    from toolkit.data.mot import mot_sequence_from_spec

    assert "behaviour windows" in one_line_error(mot_sequence_from_spec, "mot:stride=2")
