"""Social and multi-modal behaviour (issue 17): neighbour states from ETH/UCY rows and from pipeline tracks, the
heading-frame neighbour input, K-mode scoring and calibration, the batched pipeline call, K = 1 compatibility."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from toolkit.adapters.behaviour import neighbour_input, normalise, split_modes
from toolkit.adapters.detect import Detection
from toolkit.data import trajectories as traj
from toolkit.eval.behaviour import mode_scores, most_likely, reliability
from toolkit.pipeline import behaviour
from toolkit.pipeline.tracker import Tracker, TrackerConfig
from toolkit.runtime.runner import TensorSpec


def test_neighbour_states_nearest_first_with_velocity_and_radius():
    # Agent 1 at frames 0..70 walking +x; ped 2 one step behind in time at (x, 1); ped 3 far away; ped 4 at frame
    # 70 only (no velocity).
    rows = []
    for f in range(0, 80, 10):
        rows.append((f, 1, f / 10, 0.0))
        rows.append((f, 2, f / 10 * 0.5, 1.0))
        rows.append((f, 3, 100.0, 100.0))
    rows.append((70, 4, 7.0, -3.0))
    out = traj.neighbour_states(np.array(rows), np.array([1]), np.array([70]), count=3)
    assert out.shape == (1, 3, 5)
    # ped 2 at (3.5, 1): 3.6 m away; ped 4 at (7, -3): 3 m away -> nearest first; ped 3 beyond the radius
    np.testing.assert_allclose(out[0, 0], [0.0, -3.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(out[0, 1], [-3.5, 1.0, 0.5, 0.0, 1.0])
    np.testing.assert_array_equal(out[0, 2], 0.0)


def test_make_windows_fills_neighbours_only_when_asked():
    rows = np.array([(f, p, f / 10 + p, p) for f in range(0, 200, 10) for p in (1, 2)], np.float64)
    plain = traj.make_windows(rows)
    social = traj.make_windows(rows, neighbours=2)
    assert plain.neighbours is None and social.neighbours.shape == (len(social), 2, 5)
    # each window's one neighbour is the other pedestrian, 1 m ahead and 1 m aside, moving 1 m per step
    first = social.neighbours[social.ped == 1][0]
    np.testing.assert_allclose(first[0], [1.0, 1.0, 1.0, 0.0, 1.0])
    np.testing.assert_array_equal(first[1], 0.0)


def test_neighbour_input_rotates_into_the_heading_frame_and_keeps_absent_rows_zero():
    obs = np.zeros((1, 8, 2))
    obs[0, :, 1] = np.arange(-7, 1) * 0.5  # walking along +y
    _, rotation = normalise(obs)
    n = np.array([[[0.0, 2.0, 0.0, 0.4, 1.0], [1.0, 0.0, 0.3, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0, 0.0]]])
    out = neighbour_input(n, rotation)
    np.testing.assert_allclose(out[0, 0], [0.5, 0.0, 0.4, 0.0, 1.0], atol=1e-6)  # ahead: +x, scaled 0.25
    np.testing.assert_allclose(out[0, 1], [0.0, -0.25, 0.0, -0.3, 1.0], atol=1e-6)  # to the right: -y
    np.testing.assert_array_equal(out[0, 2], 0.0)


def test_split_modes_reads_single_output_models_as_one_certain_mode():
    modes, probs = split_modes(np.ones((3, 12, 2)), None)
    assert modes.shape == (3, 1, 12, 2) and np.all(probs == 1.0)
    modes, probs = split_modes(np.ones((2, 4, 12, 2)), np.array([[1, 1, 2, 0], [0, 0, 0, 0]], np.float32))
    np.testing.assert_allclose(probs, [[0.25, 0.25, 0.5, 0.0], [0.25] * 4])


def test_mode_scores_hand_checked():
    fut = np.zeros((2, 3, 2))
    modes = np.zeros((2, 2, 3, 2))
    modes[:, 0, :, 0] = 1.0  # mode 0 is 1 m off everywhere
    modes[:, 1, :, 0] = np.array([0.0, 0.0, 3.0])  # mode 1: exact, then 3 m off at the end
    probs = np.array([[0.9, 0.1], [0.2, 0.8]])
    s = mode_scores(modes, probs, fut)
    np.testing.assert_allclose(s["ml_ade"], [1.0, 1.0])
    np.testing.assert_allclose(s["ml_fde"], [1.0, 3.0])
    np.testing.assert_allclose(s["min_ade"], [1.0, 1.0])  # ties: both modes have ADE 1
    np.testing.assert_allclose(s["min_fde"], [1.0, 1.0])
    np.testing.assert_allclose(s["nll"], -np.log([0.9, 0.2]))  # argmin picks mode 0 on the tie
    np.testing.assert_array_equal(most_likely(modes, probs)[1], modes[1, 1])


def test_reliability_of_calibrated_and_overconfident_probabilities():
    rng = np.random.default_rng(0)
    n = 20_000
    probs = np.tile([0.7, 0.3], (n, 1))
    closest = (rng.random(n) >= 0.7).astype(int)  # mode 0 is closest 70 % of the time: calibrated
    ece, table = reliability(probs, closest)
    assert ece < 0.01 and sum(r["count"] for r in table) == 2 * n
    ece_bad, _ = reliability(np.tile([1.0, 0.0], (n, 1)), closest)
    assert ece_bad == pytest.approx(0.3, abs=0.01)


def spec(name, shape, dtype=np.float32, scale=0.0, zero_point=0):
    return TensorSpec(name, 0, shape, np.dtype(dtype), scale, zero_point)


class BatchRunner:
    """A stand-in LiteRT runner with a fixed batch: echoes the number of present neighbours as the crossing."""

    def __init__(self, batch: int, k: int = 3) -> None:
        self.path = Path("social.tflite")
        self.batch, self.k = batch, k
        self.inputs = {"track": spec("track", (batch, 8, 2)), "neighbours": spec("neighbours", (batch, 4, 5))}
        self.outputs = {
            "future": spec("future", (batch, k, 12, 2)),
            "mode_probs": spec("mode_probs", (batch, k)),
            "crossing": spec("crossing", (batch, 1)),
        }
        self.calls: list[dict[str, np.ndarray]] = []

    def run(self, **named):
        assert named["track"].shape[0] == self.batch
        self.calls.append(named)
        future = np.zeros((self.batch, self.k, 12, 2), np.float32)
        future[:, :, :, 0] = np.arange(1, 13)[None, None] * np.arange(1, self.k + 1)[None, :, None] * 0.1
        probs = np.tile(np.array([0.2, 0.5, 0.3], np.float32)[: self.k], (self.batch, 1))
        crossing = named["neighbours"][..., 4].sum(axis=1, keepdims=True) / 10
        return {"future": future, "mode_probs": probs, "crossing": crossing}

    def close(self):
        pass


def _walkers(count: int, seconds: float = 4.0, fps: float = 10.0):
    tracker = Tracker(TrackerConfig(min_hits=1))
    visible = []
    for step in range(int(seconds * fps)):
        t = step / fps
        dets = [
            Detection((100 + 40 * t + 60 * i, 200, 140 + 40 * t + 60 * i, 300), 0.9) for i in range(count)
        ]
        visible = tracker.update(dets, t)
    return visible


@pytest.mark.parametrize("batch", [1, 2, 8])
def test_pipeline_runs_all_tracks_in_batches_with_neighbours_and_modes(batch):
    tracks = _walkers(3)
    runner = BatchRunner(batch)
    with behaviour.BehaviourPredictor(runner) as predictor:  # type: ignore[arg-type]
        preds = predictor.predict(tracks, (480, 360))
    assert len(preds) == 3 and predictor.calls == len(runner.calls) == -(-3 // batch)
    for p in preds.values():
        assert p.predictor == "model" and p.modes_image.shape == (3, 12, 2)
        np.testing.assert_allclose(p.mode_probs, [0.2, 0.5, 0.3], atol=1e-6)
        np.testing.assert_allclose(p.path_image, p.modes_image[1])  # the most likely mode
        # walkers 60 px apart, 100 px boxes: 1.02 m at 1.7 m per box height -> each sees the other 2
        assert p.crossing == pytest.approx(0.2)
    # padding rows are zeros and their outputs are dropped
    if batch == 8:
        fed = runner.calls[0]
        assert np.all(fed["track"][3:] == 0) and np.all(fed["neighbours"][3:] == 0)


def test_pipeline_neighbour_states_from_tracks_match_the_data_layout():
    tracks = _walkers(2)
    items = [(t.id, t.foot_history(), behaviour.model_space((480, 360), None, 100.0)) for t in tracks]
    states = behaviour.neighbour_states(items, 0, 3)
    # person-height scale 1.7 m / 100 px: the other walker is 60 px = 1.02 m to the right, moving 16 px per step
    np.testing.assert_allclose(states[0], [1.02, 0.0, 0.272, 0.0, 1.0], atol=0.02)
    np.testing.assert_array_equal(states[1:], 0.0)


def test_single_output_models_get_one_mode_with_probability_one():
    (track,) = _walkers(1)
    future = np.stack([np.arange(1, 13) * 0.5, np.zeros(12)], axis=1).astype(np.float32)

    class Single(BatchRunner):
        def __init__(self) -> None:
            super().__init__(1)
            self.inputs = {"track": spec("track", (1, 8, 2))}
            self.outputs = {"future": spec("future", (1, 12, 2)), "crossing": spec("crossing", (1, 1))}

        def run(self, **named):
            self.calls.append(named)
            return {"future": future[None], "crossing": np.array([[0.4]], np.float32)}

    with behaviour.BehaviourPredictor(Single()) as predictor:  # type: ignore[arg-type]
        pred = predictor.predict([track], (480, 360))[track.id]
    assert pred.modes_image.shape == (1, 12, 2) and pred.mode_probs.tolist() == [1.0]
    np.testing.assert_allclose(pred.path_image, pred.modes_image[0])
    cv = behaviour.BehaviourPredictor(None).predict([track], (480, 360))[track.id]
    assert cv.modes_image.shape == (1, 12, 2) and cv.mode_probs.tolist() == [1.0]


def test_model_options_build_the_social_multimodal_graph_and_keep_the_old_one():
    from toolkit.models.behaviour import Config, build

    old = build(Config(d_model=8, ffn_dim=8, head_dim=8, num_blocks=1))
    assert sorted(old.output_names) == ["crossing", "future"] and len(old.inputs) == 1
    model = build(Config(d_model=8, ffn_dim=8, head_dim=8, num_blocks=1, modes=3, neighbours=4, social_dim=8))
    track = np.zeros((2, 8, 2), np.float32)
    track[:, -2] = [-0.5, 0.0]  # last step 0.5 m along +x
    out = model([track, np.zeros((2, 4, 5), np.float32)])
    assert tuple(out["future"].shape) == (2, 3, 12, 2) and tuple(out["mode_probs"].shape) == (2, 3)
    np.testing.assert_allclose(np.sum(out["mode_probs"], axis=1), 1.0, atol=1e-5)
    # every mode starts near constant velocity (small random residuals), and the modes differ
    cv = np.arange(1, 13) * 0.5
    np.testing.assert_allclose(np.asarray(out["future"])[0, :, :, 0], np.tile(cv, (3, 1)), atol=0.5)
    assert np.ptp(np.asarray(out["future"])[0, :, -1, 0]) > 0


def test_winner_takes_all_regresses_only_the_closest_mode():
    from toolkit.train.task_behaviour import _mode_costs, _winner_takes_all

    truth = np.zeros((1, 1, 2, 2), np.float32)
    modes = np.zeros((1, 2, 2, 2), np.float32)
    modes[0, 0, :, 0] = [1.0, 1.0]  # ADE 1, FDE 1
    modes[0, 1, :, 0] = [0.0, 4.0]  # ADE 2, FDE 4
    costs = np.asarray(_mode_costs(truth, modes, 0.5))
    np.testing.assert_allclose(costs, [[1.5, 4.0]], atol=1e-4)
    np.testing.assert_allclose(np.asarray(_winner_takes_all(0.5)(truth, modes)), [1.5], atol=1e-4)
    # relaxed: 0.8 of the winner's cost + 0.2 of the mean of the others
    np.testing.assert_allclose(np.asarray(_winner_takes_all(0.5, 0.2)(truth, modes)), [2.0], atol=1e-4)


def test_qat_refuses_multimodal_behaviour_models_in_one_line(tmp_path):
    import json

    from toolkit.convert.qat import QatConfig, _behaviour_arrays
    from toolkit.errors import UsageError

    model = tmp_path / "social.keras"
    model.with_suffix(".train.json").write_text(
        json.dumps({"model": {"config": {"modes": 6, "neighbours": 6}}})
    )
    with pytest.raises(UsageError, match="single-path behaviour models only"):
        _behaviour_arrays(QatConfig(1, "eth_ucy:scene=eth,split=train"), model, 0)


def test_step_features_are_the_steps_in_metres_despite_the_scaled_older_points():
    from toolkit.adapters.behaviour import OLDER_SCALE
    from toolkit.models.layers import custom_layers

    rng = np.random.default_rng(0)
    raw = np.cumsum(rng.normal(size=(3, 8, 2)), axis=1)
    raw -= raw[:, -1:]
    track, rotation = normalise(raw)
    out = np.asarray(custom_layers().StepFeatures(OLDER_SCALE)(track))
    steps = np.diff(raw @ rotation, axis=1)
    np.testing.assert_allclose(out[..., :2], track, atol=1e-6)  # the points pass through
    np.testing.assert_allclose(out[:, 1:, 2:], steps, atol=1e-5)  # each point's step, metres
    np.testing.assert_allclose(out[:, 0, 2:], steps[:, 0], atol=1e-5)  # the first repeats the second's


def test_mode_anchors_are_kmeans_centres_of_the_residuals_to_constant_velocity():
    from toolkit.train.task_behaviour import mode_anchors

    # Two kinds of walker at 0.5 m/step along +x: one keeps going, one stops dead (residual -k * 0.5 m).
    n, h = 200, 12
    track = np.zeros((n, 8, 2), np.float32)
    track[:, -2] = [-0.5, 0.0]
    steps = np.arange(1, h + 1, dtype=np.float32)
    future = np.zeros((n, h, 2), np.float32)
    future[: n // 2, :, 0] = 0.5 * steps  # straight on
    anchors = mode_anchors(track, future, np.ones(n, np.float32), 2, seed=0)
    assert anchors.shape == (2, h, 2)
    ends = sorted(anchors[:, -1, 0].tolist())
    np.testing.assert_allclose(ends, [-6.0, 0.0], atol=1e-5)  # "stop" and "as constant velocity"


def test_trainer_sets_a_tasks_initial_weights_by_layer_and_weight_name():
    import keras

    from toolkit.train.trainer import _set_initial_weights

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="head")])
    _set_initial_weights(model, {"head": {"bias": np.array([1.5, -2.0], np.float32)}})
    np.testing.assert_allclose(model.get_layer("head").bias.numpy(), [1.5, -2.0])
    np.testing.assert_allclose(model(np.zeros((1, 3), np.float32)), [[1.5, -2.0]], atol=1e-6)
