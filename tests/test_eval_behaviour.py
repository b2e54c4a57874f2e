"""Behaviour evaluation: heading frame, ETH/UCY / synthetic windows from SPECs, ADE / FDE beside constant
velocity, crossing accuracy / AUROC, calibration inputs. numpy only (no TensorFlow in these tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from toolkit.adapters.behaviour import MIN_STEP_M, OLDER_SCALE, denormalise, headings, normalise
from toolkit.data import trajectories as traj
from toolkit.data.behaviour_windows import load_windows, spread
from toolkit.data.model_inputs import behaviour_inputs
from toolkit.data.spec import parse_spec
from toolkit.errors import UsageError
from toolkit.eval.behaviour import crossing_metrics, evaluate
from toolkit.eval.config import EvalConfig
from toolkit.eval.predictor import Predictor


class NumpyBehaviour(Predictor):
    """A behaviour predictor in numpy: constant velocity in the model's frame (+ an optional bias) and a crossing
    score = sideways speed. Lets the evaluation code be checked against hand-computed numbers."""

    format = "numpy"
    kind = "behaviour"

    def __init__(self, shift: float = 0.0, observed: int = 8, horizon: int = 12) -> None:
        self.path = Path("numpy-behaviour")
        self.input_shapes = {"track": (observed, 2)}
        self.output_names = ["future", "crossing"]
        self.shift, self.horizon = shift, horizon
        self.calls: list[np.ndarray] = []

    def predict(self, feeds, batch_size=64):
        track = feeds["track"]
        self.calls.append(track)
        future = traj.constant_velocity(track, self.horizon) + np.float32(self.shift)
        sideways = np.abs(track[:, 0, 1] - track[:, -1, 1])
        return {"future": future.astype(np.float32), "crossing": (sideways / (1 + sideways))[:, None]}


# ---- heading frame ---------------------------------------------------------------------------------------------


def test_normalise_puts_the_last_step_on_plus_x_and_denormalise_undoes_it():
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(50, 8, 2)).astype(np.float32)
    obs -= obs[:, -1:]
    track, rotation = normalise(obs)
    last_step = track[:, -1] - track[:, -2]
    assert np.allclose(last_step[:, 1], 0, atol=1e-5) and (last_step[:, 0] > 0).all()
    assert np.allclose(
        np.linalg.norm(track[:, -2:], axis=-1), np.linalg.norm(obs[:, -2:], axis=-1), atol=1e-5
    )
    back = denormalise(track, rotation)  # undoes the rotation (what the model's future needs)
    assert np.allclose(back[:, -2:], obs[:, -2:], atol=1e-5)
    assert np.allclose(back[:, :-2], OLDER_SCALE * obs[:, :-2], atol=1e-5)  # older points enter scaled


def test_rotated_windows_normalise_to_the_same_input():
    rng = np.random.default_rng(1)
    obs = np.cumsum(rng.normal(0.4, 0.1, size=(20, 8, 2)), axis=1)
    obs -= obs[:, -1:]
    rotated, _ = traj.random_rotation(obs, obs[:, :1], rng)
    assert np.allclose(normalise(obs)[0], normalise(rotated)[0], atol=1e-5)


def test_heading_falls_back_for_standing_people():
    still_last = np.array([[[-1.0, 0.0], [-0.5, 0.0], [0.0, 0.0], [0.0, 0.0]]])  # stopped: last step is zero
    standing = np.zeros((1, 4, 2))
    assert np.allclose(headings(still_last), [[1.0, 0.0]])  # first-to-last direction
    assert np.allclose(headings(standing), [[1.0, 0.0]])  # no motion at all: left unrotated
    backwards = np.array([[[1.0, 1.0], [0.0, 0.0]]])
    assert np.allclose(headings(backwards), [[-np.sqrt(0.5), -np.sqrt(0.5)]])


# ---- metrics ---------------------------------------------------------------------------------------------------


def test_crossing_metrics_hand_checked():
    m = crossing_metrics(np.array([1, 0, 0, 1]), np.array([0.9, 0.6, 0.2, 0.4]))
    assert m["crossing_accuracy"] == pytest.approx(0.5) and m["crossing_positive_rate"] == pytest.approx(0.5)
    assert m["crossing_auroc"] == pytest.approx(0.75) and m["crossing_windows"] == 4


def test_spread_is_even_and_bounded():
    assert spread(10, None).tolist() == list(range(10))
    assert spread(10, 3).tolist() == [0, 4, 9]  # 4.5 rounds half to even
    with pytest.raises(UsageError):
        spread(10, 0)


# ---- data SPECs ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        ("mnist:split=test", "needs trajectories"),
        ("synthetic:split=test", "synthetic split must be train or val"),
        ("synthetic:split=val,every=2", "'every' thins rendered frames"),
        ("eth_ucy:scene=eth", "needs scene=... and split=..."),
    ],
)
def test_bad_specs_are_one_line_usage_errors(text, message):
    with pytest.raises(UsageError) as info:
        load_windows(text)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.shared
def test_eth_ucy_windows_are_relative_and_grouped(shared):
    root = shared / "data" / "eth_ucy"
    w = load_windows(f"eth_ucy:root={root},scene=hotel,split=test")
    raw = traj.load_split(root, "hotel", "test")
    assert len(w) == len(raw) and not w.labelled.any() and set(w.group) == {"hotel"}
    assert np.allclose(w.obs[:, -1], 0) and np.allclose(w.fut, raw.fut - raw.obs[:, -1:])
    every = load_windows(f"eth_ucy:root={root},scene=all,split=test,stride=4")
    assert list(dict.fromkeys(every.group)) == list(traj.SCENES)
    train = load_windows(f"eth_ucy:root={root},scene=all,split=train,stride=4")
    assert len(set(train.group)) == 8  # each of the 8 recordings once, not once per scene folder
    limited = load_windows(f"eth_ucy:root={root},scene=all,split=test,limit=50")
    assert len(limited) == 50 and set(limited.group) == set(traj.SCENES)  # spread over every scene


@pytest.fixture(scope="module")
def synthetic_val():
    return load_windows("synthetic:split=val,frames=400")


def test_synthetic_windows_carry_crossing_labels(synthetic_val):
    w = synthetic_val
    assert len(w) > 100 and w.labelled.all() and set(np.unique(w.crossing)) == {0.0, 1.0}
    assert np.allclose(w.obs[:, -1], 0) and set(w.group) == {"synthetic_s1000"}  # val = seed + 1000


# ---- evaluate --------------------------------------------------------------------------------------------------


@pytest.mark.shared
def test_constant_velocity_row_matches_the_data_module_and_is_repeatable(shared):
    root = shared / "data" / "eth_ucy"
    spec = parse_spec(f"eth_ucy:root={root},scene=zara1,split=test")
    predictor = NumpyBehaviour()
    first = evaluate(predictor, spec, EvalConfig())
    second = evaluate(predictor, spec, EvalConfig())
    assert first.to_dict() == second.to_dict()
    raw = traj.load_split(root, "zara1", "test")
    cv = traj.constant_velocity(raw.obs)
    assert first.metrics["cv_ade"] == pytest.approx(traj.ade(cv, raw.fut), abs=1e-5)
    assert first.metrics["cv_fde"] == pytest.approx(traj.fde(cv, raw.fut), abs=1e-5)
    # The numpy model IS constant velocity in the heading frame: rotated back it must score the same.
    assert first.metrics["ade"] == pytest.approx(first.metrics["cv_ade"], abs=1e-5)
    assert first.primary == "ade" and first.higher_is_better is False and first.samples == len(raw)
    assert first.tables["baselines"][0]["baseline"] == "constant_velocity"
    fed = predictor.calls[-1]
    step = fed[:, -1] - fed[:, -2]
    moving = np.linalg.norm(step, axis=-1) >= MIN_STEP_M  # standing people keep their first-to-last heading
    assert np.allclose(fed[:, -1], 0) and np.allclose(step[moving, 1], 0, atol=1e-5) and moving.mean() > 0.5


@pytest.mark.shared
def test_all_scenes_average_the_per_scene_rows(shared):
    spec = parse_spec(f"eth_ucy:root={shared / 'data' / 'eth_ucy'},scene=all,split=test,stride=3")
    report = evaluate(NumpyBehaviour(shift=0.3), spec, EvalConfig(limit=2000))
    rows = report.tables["per_scene"]
    assert [r["scene"] for r in rows] == list(traj.SCENES) and sum(
        r["windows"] for r in rows
    ) == report.samples
    assert report.metrics["ade"] == pytest.approx(np.mean([r["ade"] for r in rows]))
    assert report.metrics["cv_fde"] == pytest.approx(np.mean([r["cv_fde"] for r in rows]))
    assert all(r["ade"] > r["cv_ade"] for r in rows)  # a biased constant velocity is worse everywhere
    assert not report.to_dict()["metrics"].get("crossing_auroc")


def test_crossing_scored_where_labelled(synthetic_val):
    report = evaluate(
        NumpyBehaviour(), parse_spec("synthetic:split=val,frames=400"), EvalConfig(baselines=False)
    )
    w = synthetic_val
    track, _ = normalise(w.obs)
    sideways = np.abs(track[:, 0, 1])
    expected = crossing_metrics(w.crossing, sideways / (1 + sideways))
    for key, value in expected.items():
        assert report.metrics[key] == pytest.approx(value, abs=1e-6)
    assert "cv_ade" not in report.metrics and "baselines" not in report.tables


def test_wrong_model_shapes_are_usage_errors():
    bad = NumpyBehaviour()
    bad.input_shapes = {"image": (28, 28, 1)}
    with pytest.raises(UsageError, match="input 'track'"):
        evaluate(bad, parse_spec("synthetic:split=val,frames=400"))
    with pytest.raises(UsageError, match="expected an input 'track'"):
        behaviour_inputs("synthetic:split=val,frames=400", {"track": (8, 3)})


def test_model_inputs_are_seeded_heading_frame_tracks(synthetic_val):
    spec = "synthetic:split=val,frames=400"
    a = behaviour_inputs(spec, {"track": (8, 2)}, limit=64, seed=3)["track"]
    b = behaviour_inputs(spec, {"track": (8, 2)}, limit=64, seed=3)["track"]
    c = behaviour_inputs(spec, {"track": (8, 2)}, limit=64, seed=4)["track"]
    assert (
        a.shape == (64, 8, 2) and a.dtype == np.float32 and np.array_equal(a, b) and not np.array_equal(a, c)
    )
    step = a[:, -1] - a[:, -2]
    moving = np.linalg.norm(step, axis=-1) >= MIN_STEP_M
    assert np.allclose(a[:, -1], 0) and np.allclose(step[moving, 1], 0, atol=1e-5) and moving.any()
    assert len(behaviour_inputs(spec, {"track": (8, 2)})["track"]) == len(synthetic_val)
