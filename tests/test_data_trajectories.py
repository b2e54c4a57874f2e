"""ETH/UCY trajectory files, 8 + 12 windows, relative coordinates, the constant-velocity baseline, ADE / FDE."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_data import one_line_error

from toolkit.data import trajectories as traj
from toolkit.data.augment import flip_trajectories
from toolkit.data.trajectories import (
    SCENES,
    ade,
    constant_velocity,
    fde,
    from_relative,
    load_split,
    make_windows,
    random_rotation,
    read_trajectory_file,
    to_relative,
)


def track_rows(ped: int, frames: range, x0: float = 0.0, vx: float = 1.0) -> list[str]:
    return [f"{f}\t{ped}\t{x0 + vx * (f - frames.start) / 10:.3f}\t{2.0 * ped:.3f}" for f in frames]


def test_read_file_tabs_and_spaces(tmp_path):
    path = tmp_path / "rec.txt"
    path.write_text("0.0\t1.0\t1.5\t2.5\n10 1 1.6   2.6\n\n")
    rows = read_trajectory_file(path)
    assert rows.dtype == np.float64 and rows.tolist() == [[0, 1, 1.5, 2.5], [10, 1, 1.6, 2.6]]


@pytest.mark.parametrize(
    "line, expected",
    [
        ("10\t1\t1.6", "line 2: expected 4 columns 'frame_id ped_id x y', got 3"),
        ("10\t1\t1.6\t2.0\t5", "got 5"),
        ("10\t1\tabc\t2.0", "line 2: 'abc' is not a number"),
        ("10.5\t1\t1.6\t2.0", "line 2: frame_id and ped_id must be whole numbers"),
        ("10\t1\tinf\t2.0", "not a finite number"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, line, expected):
    path = tmp_path / "crowds_zara01.txt"
    path.write_text(f"0\t1\t1.5\t2.5\n{line}\n")
    message = one_line_error(read_trajectory_file, path)
    assert message.startswith(f"{path} line 2:") and expected in message


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "empty.txt").write_text("\n\n")
    assert "has no rows" in one_line_error(read_trajectory_file, tmp_path / "empty.txt")
    assert "not found" in one_line_error(read_trajectory_file, tmp_path / "missing.txt")


def test_windows_respect_gaps_and_pedestrians(tmp_path):
    # ped 1: 22 consecutive frames -> 3 windows; ped 2: 15 frames, a gap, 21 frames -> 0 + 2 windows;
    # ped 3: 19 frames -> none. Rows are shuffled: order in the file must not matter.
    lines = (
        track_rows(1, range(0, 220, 10))
        + track_rows(2, range(100, 250, 10))
        + track_rows(2, range(300, 510, 10), x0=5.0)
        + track_rows(3, range(0, 190, 10))
    )
    rng = np.random.default_rng(0)
    path = tmp_path / "scene.txt"
    path.write_text("\n".join(lines[i] for i in rng.permutation(len(lines))) + "\n")
    w = make_windows(read_trajectory_file(path), scene="scene")
    assert (
        len(w) == 5 and w.obs.shape == (5, 8, 2) and w.fut.shape == (5, 12, 2) and w.obs.dtype == np.float32
    )
    assert w.ped.tolist() == [1, 1, 1, 2, 2] and w.frame.tolist() == [0, 10, 20, 300, 310]
    assert set(w.scene.tolist()) == {"scene"}
    np.testing.assert_allclose(
        w.obs[1, :, 0], np.arange(1, 9)
    )  # ped 1 moves 1 m per step, window from frame 10
    np.testing.assert_allclose(w.fut[1, :, 0], np.arange(9, 21))
    np.testing.assert_allclose(w.obs[3, 0], [5.0, 4.0])
    assert len(make_windows(read_trajectory_file(path), stride=2)) == 3  # starts 0, 20 (ped 1); 300 (ped 2)
    assert len(make_windows(read_trajectory_file(path), obs_len=2, pred_len=1, frame_step=20)) == 0
    assert "(R, 4)" in one_line_error(make_windows, np.zeros((5, 3)))


def test_relative_coordinates_and_baselines():
    t = np.arange(20, dtype=np.float32)
    tracks = np.stack([np.stack([t * 0.5 + 3, t * 0 - 1], -1), np.stack([t * 0, t * 0.2], -1)])
    obs, fut = tracks[:, :8], tracks[:, 8:]
    obs_rel, fut_rel, origin = to_relative(obs, fut)
    np.testing.assert_allclose(origin, [[6.5, -1], [0, 1.4]], rtol=1e-6)
    np.testing.assert_allclose(obs_rel[:, -1], 0)
    np.testing.assert_allclose(from_relative(fut_rel, origin), fut)
    pred = constant_velocity(obs)
    np.testing.assert_allclose(pred, fut, atol=1e-5)  # straight, constant-speed tracks are predicted exactly
    assert ade(pred, fut) == pytest.approx(0, abs=1e-5)
    off = fut.copy()
    off[0] += [3.0, 4.0]  # window 0 off by 5 m everywhere; window 1 exact
    assert ade(off, fut) == pytest.approx(2.5) and fde(off, fut) == pytest.approx(2.5)
    late = fut.copy()
    late[:, -1] += [0.0, 1.2]  # only the final step is wrong
    assert ade(late, fut) == pytest.approx(0.1) and fde(late, fut) == pytest.approx(1.2)
    assert "does not match" in one_line_error(ade, pred[:, :5], fut)


def test_rotation_and_flip_keep_the_geometry():
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(6, 8, 2)).cumsum(1).astype(np.float32)
    fut = obs[:, -1:] + rng.normal(size=(6, 12, 2)).cumsum(1).astype(np.float32)
    robs, rfut = random_rotation(obs, fut, np.random.default_rng(1))
    np.testing.assert_allclose(robs[:, -1], obs[:, -1], atol=1e-5)  # rotated about the last observed point
    np.testing.assert_allclose(
        np.linalg.norm(np.diff(rfut, axis=1), axis=-1),
        np.linalg.norm(np.diff(fut, axis=1), axis=-1),
        atol=1e-4,
    )
    assert not np.allclose(robs, obs)
    again = random_rotation(obs, fut, np.random.default_rng(1))
    assert np.array_equal(again[0], robs)  # seeded = reproducible
    # The constant-velocity error does not depend on the orientation.
    assert ade(constant_velocity(robs), rfut) == pytest.approx(ade(constant_velocity(obs), fut), rel=1e-4)
    fobs, ffut = flip_trajectories(obs, fut)
    np.testing.assert_allclose(fobs[:, -1], obs[:, -1])
    np.testing.assert_allclose(ffut[..., 0] - fobs[:, -1:, 0], -(fut[..., 0] - obs[:, -1:, 0]), atol=1e-5)
    np.testing.assert_allclose(ffut[..., 1], fut[..., 1])


def test_split_names_are_checked(tmp_path):
    assert "did you mean 'hotel'" in one_line_error(load_split, tmp_path, "hotle", "train")
    assert "did you mean 'test'" in one_line_error(load_split, tmp_path, "eth", "tset")
    assert "no trajectory files" in one_line_error(load_split, tmp_path, "eth", "test")


SOURCE_ROWS = {  # rows / pedestrians / frames per recording, from shared/data/eth_ucy/SOURCE.md
    "biwi_eth": (5492, 360, 876),
    "biwi_hotel": (6543, 389, 1168),
    "crowds_zara01": (5153, 148, 872),
    "crowds_zara02": (9722, 204, 1052),
    "crowds_zara03": (5005, 137, 754),
    "students001": (21813, 415, 444),
    "students003": (17953, 434, 541),
    "uni_examples": (2747, 118, 734),
}


@pytest.mark.shared
def test_real_recordings_match_source_md(shared):
    root = shared / "data" / "eth_ucy"
    for name, (rows, peds, frames) in SOURCE_ROWS.items():
        data = read_trajectory_file(root / "raw" / "all_data" / f"{name}.txt")
        assert (len(data), len(np.unique(data[:, 1])), len(np.unique(data[:, 0]))) == (rows, peds, frames), (
            name
        )
        train = read_trajectory_file(root / "raw" / "train" / f"{name}_train.txt")
        val = read_trajectory_file(root / "raw" / "val" / f"{name}_val.txt")
        assert len(train) + len(val) == rows and train[:, 0].max() < val[:, 0].min(), name  # temporal split


@pytest.mark.shared
def test_real_leave_one_scene_out_splits(shared):
    root = shared / "data" / "eth_ucy"
    test_files = {
        "eth": {"biwi_eth"},
        "hotel": {"biwi_hotel"},
        "univ": {"students001", "students003"},
        "zara1": {"crowds_zara01"},
        "zara2": {"crowds_zara02"},
    }
    test_sizes = {"eth": 364, "hotel": 1197, "univ": 24334, "zara1": 2356, "zara2": 5910}
    cv_ade = {"eth": 1.075, "hotel": 0.319, "univ": 0.524, "zara1": 0.427, "zara2": 0.324}
    for scene in SCENES:
        test = load_split(root, scene, "test")
        assert set(test.scene.tolist()) == test_files[scene] and len(test) == test_sizes[scene], scene
        train = load_split(root, scene, "train")
        held_out = {s.replace("_train", "") for s in train.scene.tolist()}
        assert held_out.isdisjoint(test_files[scene]) and len(held_out) == 8 - len(test_files[scene]), scene
        step = np.linalg.norm(np.diff(np.concatenate([test.obs, test.fut], axis=1), axis=1), axis=-1)
        assert np.median(step) < 1.0  # metres per 0.4 s: walking speed, so the windows are consecutive frames
        assert ade(constant_velocity(test.obs), test.fut) == pytest.approx(cv_ade[scene], abs=1e-3), scene


def test_resample_retimes_each_run_by_interpolation_and_never_across_a_gap():
    # One walker at 1 m per 10 frames (frames 0..40), a gap, then frames 70..90; a second walker standing still.
    rows = np.array(
        [[f, 1, f / 10, 0.0] for f in (0, 10, 20, 30, 40, 70, 80, 90)]
        + [[f, 2, 5.0, 5.0] for f in (0, 10, 20)],
        dtype=np.float64,
    )
    out = traj.resample(rows, 10, 6)
    walker = out[out[:, 1] == 1]
    # frames 0, 6, ..., 36 inside the first run, 72, 78, 84, 90 inside the second; none at 42..66
    np.testing.assert_allclose(walker[:, 0] / traj.FRAME_STEP, [0, 1, 2, 3, 4, 5, 6, 12, 13, 14, 15])
    np.testing.assert_allclose(walker[:, 2], [0, 0.6, 1.2, 1.8, 2.4, 3.0, 3.6, 7.2, 7.8, 8.4, 9.0])
    np.testing.assert_allclose(out[out[:, 1] == 2][:, 2:], [[5.0, 5.0]] * 4)  # frames 0, 6, 12, 18
    windows = traj.make_windows(out, obs_len=2, pred_len=1)
    assert (
        len(windows) == 5 + 2 + 2
    )  # 7-row run, 4-row run, 4-row standing run: 3-row windows never span the gap
