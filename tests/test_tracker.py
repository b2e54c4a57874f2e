"""Assignment (vs the scipy oracle and brute force), Kalman filter, history resampling and the tracker."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from toolkit.adapters.detect import Detection
from toolkit.pipeline.assignment import InfeasibleAssignment, linear_sum_assignment, match
from toolkit.pipeline.tracker import BoxKalman, Tracker, TrackerConfig, resample_history

scipy_optimize = pytest.importorskip("scipy.optimize")


# -- assignment ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (5, 1), (4, 4), (3, 7), (7, 3), (12, 12), (20, 9)])
def test_linear_sum_assignment_matches_scipy_on_random_matrices(shape):
    rng = np.random.default_rng(sum(shape))
    for trial in range(25):
        # Integer costs create ties (many optimal answers): compare totals, and the exact pairs on float costs.
        cost = rng.integers(0, 5, size=shape).astype(float) if trial % 2 else rng.random(shape)
        rows, cols = linear_sum_assignment(cost)
        ref_rows, ref_cols = scipy_optimize.linear_sum_assignment(cost)
        assert len(rows) == len(ref_rows) == min(shape)
        assert len(set(rows)) == len(rows) and len(set(cols)) == len(cols)
        assert cost[rows, cols].sum() == pytest.approx(cost[ref_rows, ref_cols].sum())
        assert np.all(np.diff(rows) > 0)
        if trial % 2 == 0:
            np.testing.assert_array_equal(rows, ref_rows)
            np.testing.assert_array_equal(cols, ref_cols)


def test_linear_sum_assignment_with_forbidden_pairs_matches_scipy():
    rng = np.random.default_rng(3)
    for _ in range(30):
        cost = rng.random((6, 8))
        cost[rng.random((6, 8)) < 0.3] = np.inf
        try:
            ref = scipy_optimize.linear_sum_assignment(cost)
        except ValueError:
            with pytest.raises(InfeasibleAssignment):
                linear_sum_assignment(cost)
            continue
        rows, cols = linear_sum_assignment(cost)
        assert cost[rows, cols].sum() == pytest.approx(cost[ref].sum())


def test_linear_sum_assignment_hand_checked_and_edge_cases():
    # Greedy would take 1 (row 0 -> col 0) and then 9; the optimum is 2 + 2.
    rows, cols = linear_sum_assignment(np.array([[1.0, 2.0], [2.0, 9.0]]))
    assert rows.tolist() == [0, 1] and cols.tolist() == [1, 0]
    rows, cols = linear_sum_assignment(np.zeros((0, 3)))
    assert rows.size == 0 and cols.size == 0
    with pytest.raises(InfeasibleAssignment):
        linear_sum_assignment(np.array([[np.inf, 1.0], [np.inf, 2.0]]))
    with pytest.raises(ValueError):
        linear_sum_assignment(np.array([[np.nan]]))


def test_match_leaves_a_row_unmatched_instead_of_forcing_a_bad_pair():
    cost = np.array([[0.1, 0.4], [0.3, 0.95]])
    # Plain assignment takes (0,1) + (1,0) = 0.7; with a gate of 0.5, matching only (0,0) costs 0.1 + 2 * 0.25.
    assert linear_sum_assignment(cost)[1].tolist() == [1, 0]
    result = match(cost, max_cost=0.5)
    assert result.pairs.tolist() == [[0, 0]]
    assert result.unmatched_rows.tolist() == [1] and result.unmatched_cols.tolist() == [1]
    empty = match(np.zeros((0, 2)), 0.5)
    assert empty.pairs.shape == (0, 2) and empty.unmatched_cols.tolist() == [0, 1]


def _brute_force_gated(cost: np.ndarray, max_cost: float) -> float:
    """Minimum of matched costs + max_cost / 2 per unmatched row and column, over every partial matching."""
    n, m = cost.shape
    best = (n + m) * max_cost / 2
    for k in range(1, min(n, m) + 1):
        for rows in itertools.combinations(range(n), k):
            for cols in itertools.permutations(range(m), k):
                c = cost[list(rows), list(cols)]
                if np.all(c <= max_cost):
                    best = min(best, c.sum() + (n + m - 2 * k) * max_cost / 2)
    return best


def test_match_is_optimal_against_brute_force():
    rng = np.random.default_rng(11)
    for shape in [(3, 3), (2, 4), (4, 2), (4, 4)]:
        for _ in range(15):
            cost = rng.random(shape)
            result = match(cost, max_cost=0.6)
            total = cost[result.pairs[:, 0], result.pairs[:, 1]].sum() if len(result.pairs) else 0.0
            total += (len(result.unmatched_rows) + len(result.unmatched_cols)) * 0.3
            assert np.all(cost[result.pairs[:, 0], result.pairs[:, 1]] <= 0.6)
            assert total == pytest.approx(_brute_force_gated(cost, 0.6))
    # sparse matrices (rows / columns with no pair under the gate are set aside before solving)
    for shape in [(3, 4), (4, 3), (4, 4)]:
        for _ in range(15):
            cost = rng.random(shape) + (rng.random(shape) < 0.6)  # most pairs above the gate
            result = match(cost, max_cost=0.6)
            total = cost[result.pairs[:, 0], result.pairs[:, 1]].sum() if len(result.pairs) else 0.0
            total += (len(result.unmatched_rows) + len(result.unmatched_cols)) * 0.3
            assert total == pytest.approx(_brute_force_gated(cost, 0.6))
            assert sorted([*result.pairs[:, 0], *result.unmatched_rows]) == list(range(shape[0]))


# -- Kalman filter ------------------------------------------------------------------------------------------------


def test_kalman_first_update_uses_the_hand_computed_gain():
    # New track: position variance (2 * 0.05 * h)^2 = 0.01 h^2, measurement variance (0.05 h)^2 = 0.0025 h^2,
    # so the gain on position is 0.01 / 0.0125 = 0.8: a 10 px shift in the measured centre moves the estimate 8 px.
    kf = BoxKalman(np.array([100.0, 100.0, 140.0, 200.0]))
    kf.update(np.array([110.0, 100.0, 150.0, 200.0]))
    assert kf.mean[0] == pytest.approx(128.0)
    assert kf.mean[1] == pytest.approx(150.0)
    assert kf.mean[2:4] == pytest.approx([40.0, 100.0])


def test_kalman_predict_without_process_noise_is_exact_constant_velocity():
    kf = BoxKalman(np.array([0.0, 0.0, 10.0, 20.0]), TrackerConfig(accel_std=0.0))
    kf.mean[4:6] = [30.0, -10.0]
    p_pos, p_vel = kf.cov[0, 0], kf.cov[4, 4]
    kf.predict(0.5)
    assert kf.mean[:2] == pytest.approx([5.0 + 15.0, 10.0 - 5.0])
    assert kf.cov[0, 0] == pytest.approx(p_pos + 0.25 * p_vel)
    assert kf.cov[0, 4] == pytest.approx(0.5 * p_vel)


def test_kalman_learns_the_velocity_of_a_straight_line_track():
    rng = np.random.default_rng(0)
    kf = BoxKalman(np.array([50.0, 100.0, 90.0, 200.0]))
    velocity = np.array([60.0, 15.0])  # px/s
    for k in range(1, 40):
        t = k * 0.1
        kf.predict(0.1)
        cx, cy = np.array([70.0, 150.0]) + velocity * t + rng.normal(0, 1.0, 2)
        kf.update(np.array([cx - 20, cy - 50, cx + 20, cy + 50]))
    assert kf.mean[4:6] == pytest.approx(velocity, abs=5.0)
    kf.predict(1.0)  # one second without measurements: extrapolate along the line
    assert kf.mean[:2] == pytest.approx(np.array([70.0, 150.0]) + velocity * 4.9, abs=6.0)


# -- history resampling -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fps", [10, 30])
def test_resample_history_every_0_4_s(fps):
    times = np.arange(0, 3.5 * fps + 1) / fps  # 0 .. 3.5 s
    points = np.stack([2.0 * times + 1.0, np.full_like(times, 5.0)], axis=1)
    out = resample_history(times, points, step=0.4, count=8)
    expected_t = 3.5 - 0.4 * np.arange(7, -1, -1)  # 0.7, 1.1, ..., 3.5
    assert out.shape == (8, 2)
    np.testing.assert_allclose(out[:, 0], 2.0 * expected_t + 1.0, atol=1e-9)
    np.testing.assert_allclose(out[:, 1], 5.0)


def test_resample_history_interpolates_between_irregular_frames():
    times = np.array([0.0, 0.15, 0.5, 0.55, 0.9])  # jittery camera
    points = np.stack([times * 10, times * -4], axis=1)
    out = resample_history(times, points, step=0.4, count=8)
    # Samples at 0.9, 0.5, 0.1 (0.1 lies between the first two frames): k = floor(0.9 / 0.4) + 1 = 3.
    np.testing.assert_allclose(out, [[1.0, -0.4], [5.0, -2.0], [9.0, -3.6]], atol=1e-9)
    assert resample_history(times[:1], points[:1]).tolist() == [[0.0, 0.0]]
    assert resample_history(np.zeros(0), np.zeros((0, 2))).shape == (0, 2)


# -- tracker ------------------------------------------------------------------------------------------------------


def _box(cx: float, foot_y: float, h: float) -> tuple[float, float, float, float]:
    w = 0.4 * h
    return (cx - w / 2, foot_y - h, cx + w / 2, foot_y)


def _crossing_sequence(fps: float = 10.0, frames: int = 60, seed: int = 0):
    """Two people walking towards each other (B slightly further away), crossing at ~t = 3 s, and a third
    standing still. Detection noise, random misses, B occluded (missed) for 6 frames at the crossing and A's
    score dropping while they overlap. Yields (t, detections, ground-truth name per detection)."""
    rng = np.random.default_rng(seed)
    for k in range(frames):
        t = k / fps
        people = {
            "A": (100 + 60 * t, 300.0, 110.0),
            "B": (460 - 60 * t, 290.0, 100.0),
            "C": (400.0, 200.0, 80.0),
        }
        dets, names = [], []
        for name, (cx, fy, h) in people.items():
            score = 0.9
            if name == "B" and 27 <= k <= 32:
                continue  # occluded behind A
            if name == "A" and 26 <= k <= 33:
                score = 0.35  # partly hidden: low score, ByteTrack's second stage keeps the track
            if k > 5 and rng.random() < 0.08:
                continue  # random miss
            noisy = np.array(_box(cx, fy, h)) + rng.normal(0, 1.0, 4)
            dets.append(Detection(tuple(noisy), score))
            names.append(name)
        if k == 12:  # a one-frame false positive must not become a track
            dets.append(Detection(_box(250, 100, 60), 0.95))
            names.append("FP")
        yield t, dets, names


def test_tracker_keeps_ids_through_a_crossing_with_misses_and_occlusion():
    tracker = Tracker(TrackerConfig(min_hits=3, max_age=15))
    identity: dict[str, set[int]] = {"A": set(), "B": set(), "C": set(), "FP": set()}
    for t, dets, names in _crossing_sequence():
        visible = tracker.update(dets, t)
        boxes = np.array([d.box for d in dets]) if dets else np.zeros((0, 4))
        for track in visible:
            # Attribute each visible track to the ground-truth person whose detection is closest to it.
            dist = np.abs(boxes - track.box).sum(axis=1)
            identity[names[int(np.argmin(dist))]].add(track.id)
    assert len(identity["A"]) == 1 and len(identity["B"]) == 1 and len(identity["C"]) == 1, identity
    assert identity["FP"] == set()
    assert identity["A"] | identity["B"] | identity["C"] == {1, 2, 3}


def test_tracker_confirms_after_min_hits_and_deletes_after_max_age():
    tracker = Tracker(TrackerConfig(min_hits=3, max_age=2))
    det = [Detection(_box(100, 200, 100), 0.9)]
    assert tracker.update(det, 0.0) == []
    assert tracker.update(det, 0.1) == []
    (track,) = tracker.update(det, 0.2)
    assert track.id == 1 and track.hits == 3
    for k in range(3):  # misses 1, 2 keep it; miss 3 > max_age deletes it
        assert tracker.update([], 0.3 + 0.1 * k) == []
        assert (track in tracker.tracks) == (k < 2)
    for k in range(3):  # a new person later gets a new id: ids are never reused
        visible = tracker.update([Detection(_box(300, 200, 100), 0.9)], 1.0 + 0.1 * k)
    assert [t.id for t in visible] == [2]


def test_low_score_detections_alone_never_start_tracks():
    config = TrackerConfig(min_hits=1)
    low = (config.low_score + config.high_score) / 2  # kept for stage 2, never a new track
    tracker = Tracker(config)
    for k in range(5):
        assert tracker.update([Detection(_box(100, 200, 100), low)], 0.1 * k) == []
    assert tracker.tracks == []


@pytest.mark.parametrize("fps", [10.0, 30.0])
def test_track_foot_history_is_resampled_at_0_4_s(fps):
    tracker = Tracker(TrackerConfig(min_hits=1))
    for k in range(int(4 * fps)):
        t = k / fps
        visible = tracker.update([Detection(_box(50 + 40 * t, 300 - 10 * t, 100), 0.9)], t)
    history = visible[0].foot_history()
    assert history.shape == (8, 2)
    steps = np.diff(history, axis=0)
    # The filter lags a little at first but a straight line at 40 px/s moves 16 px per 0.4 s step.
    np.testing.assert_allclose(steps[-4:], np.tile([16.0, -4.0], (4, 1)), atol=1.0)


def test_tracker_rejects_time_going_back():
    tracker = Tracker()
    tracker.update([], 1.0)
    with pytest.raises(ValueError, match="timestamps"):
        tracker.update([], 0.5)


# -- static objects the segmenter does not call person --------------------------------------------------------------


def _mask_with(
    box: tuple[float, float, float, float] | None, shape: tuple[int, int] = (360, 480)
) -> np.ndarray:
    mask = np.zeros(shape, bool)
    if box is not None:
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        mask[y1:y2, x1:x2] = True
    return mask


def _run_static(
    mask: np.ndarray | None, seconds: float = 5.0, fps: float = 10.0, move_after: float | None = None
):
    """A detection that stays put (1 px of jitter) for ``seconds``; from ``move_after`` on it walks at 60 px/s.
    Returns (ids reported per frame, the tracker)."""
    tracker = Tracker(TrackerConfig(static_seconds=3.0))
    rng = np.random.default_rng(0)
    reported = []
    for k in range(int(seconds * fps)):
        t = k / fps
        cx = 200.0 if move_after is None or t < move_after else 200.0 + 60 * (t - move_after)
        box = np.array(_box(cx, 300, 100)) + rng.normal(0, 1.0, 4)
        visible = tracker.update([Detection(tuple(box), 0.9)], t, mask)
        reported.append([v.id for v in visible])
    return reported, tracker


def test_static_track_that_is_not_a_person_is_held_back_but_kept_alive():
    reported, tracker = _run_static(_mask_with(None))  # the segmenter sees no person anywhere
    fps = 10
    assert all(ids == [1] for ids in reported[3 : int(3 * fps)])  # confirmed, reported while young
    assert all(ids == [] for ids in reported[int(3 * fps) + 1 :])  # static for 3 s: held back
    (track,) = tracker.tracks  # still alive, still id 1: no new track is started on the same object
    assert (
        track.id == 1 and track.misses == 0 and track.person_share == 0.0 and track.is_static(tracker.config)
    )


def test_static_track_the_segmenter_calls_person_is_reported():
    reported, _ = _run_static(_mask_with(_box(200, 300, 100)))  # the person mask covers the box
    assert all(ids == [1] for ids in reported[3:])


def test_without_masks_nothing_is_held_back():
    reported, tracker = _run_static(None)
    assert all(ids == [1] for ids in reported[3:])
    assert tracker.tracks[0].person_share is None


def test_a_held_back_track_comes_back_with_its_id_when_it_moves():
    reported, _ = _run_static(_mask_with(None), seconds=8.0, move_after=5.0)
    assert reported[45] == []  # static since 0 s, not a person: held back at 4.5 s
    assert reported[-1] == [1]  # walked 180 px (1.8 box heights) since 5 s: a mover again, same id


def test_static_rule_can_be_switched_off():
    tracker = Tracker(TrackerConfig(static_seconds=0.0))
    mask = _mask_with(None)
    for k in range(60):
        visible = tracker.update([Detection(_box(200, 300, 100), 0.9)], k / 10, mask)
    assert [v.id for v in visible] == [1]
