"""The behaviour training task: windows -> tf.data batches in the heading frame, crossing masks, seeded
augmentation, losses; a briefly trained model converted to int8 and scored by the same evaluation code."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require_tf

from toolkit.adapters.behaviour import denormalise, normalise
from toolkit.data.behaviour_windows import load_windows
from toolkit.data.spec import parse_spec
from toolkit.errors import UsageError
from toolkit.train.config import TrainConfig
from toolkit.train.task_behaviour import (
    TASK,
    BehaviourOptions,
    _displacement_loss,
    recording_weights,
    training_arrays,
)

pytestmark = pytest.mark.tf
SYNTH = "synthetic:split=val,frames=400"


@pytest.fixture(scope="module")
def synth():
    return load_windows(SYNTH)


def test_training_arrays_rotate_track_and_future_together(synth):
    track, future, crossing = training_arrays(synth)
    _, rotation = normalise(synth.obs)
    assert track.shape == (len(synth), 8, 2) and future.shape == (len(synth), 12, 2)
    assert crossing.shape == (len(synth), 1)
    assert np.allclose(denormalise(future, rotation), synth.fut, atol=1e-4)
    assert np.array_equal(crossing[:, 0], synth.crossing)


def test_recording_weights_hand_checked():
    groups = np.array(["a"] * 9 + ["b"])
    assert np.allclose(recording_weights(groups, 0.0), 1.0)
    full = recording_weights(groups, 1.0)  # each recording weighs the same in total
    assert full[:9].sum() == pytest.approx(full[9]) and full.mean() == pytest.approx(1.0)
    half = recording_weights(groups, 0.5)
    assert half[9] / half[0] == pytest.approx(3.0) and half.mean() == pytest.approx(1.0)


def test_bad_options_are_usage_errors():
    with pytest.raises(UsageError, match="scale"):
        TASK.datasets(parse_spec(SYNTH), parse_spec(SYNTH), TrainConfig(), BehaviourOptions(scale=1.5), None)
    with pytest.raises(UsageError, match="balance"):
        TASK.datasets(parse_spec(SYNTH), parse_spec(SYNTH), TrainConfig(), BehaviourOptions(balance=2), None)
    with pytest.raises(UsageError, match="fde_weight"):
        TASK.compile(None, TrainConfig(), BehaviourOptions(fde_weight=-1), 10)


def _datasets(
    train: str,
    val: str,
    extra: str = "",
    seed: int = 0,
    augment: bool = True,
    balance: float = 0.0,
    extra_weight: float = 1.0,
):
    from toolkit.models import config_for

    config = TrainConfig(batch_size=32, seed=seed, augment=augment)
    options = BehaviourOptions(
        extra_data=extra, extra_val_data="", balance=balance, extra_weight=extra_weight
    )
    return TASK.datasets(parse_spec(train), parse_spec(val), config, options, config_for("behaviour"))


@pytest.mark.shared
def test_datasets_mix_eth_ucy_and_synthetic_with_a_crossing_mask(shared):
    require_tf()
    eth = f"eth_ucy:root={shared / 'data' / 'eth_ucy'},scene=hotel,split=val,stride=6"
    data = _datasets(eth, SYNTH, extra=SYNTH, balance=0.5, extra_weight=0.5)
    n_eth = len(load_windows(eth))
    assert data.train_size == n_eth + len(load_windows(SYNTH)) and data.val_size == len(load_windows(SYNTH))
    assert [d["crossing_labelled"] for d in data.describe["train"]] == [0, data.train_size - n_eth]
    weights, future_weights, labels = [], [], []
    for x, y, w in data.train:
        assert x.shape[1:] == (8, 2) and y["future"].shape[1:] == (12, 2) and y["crossing"].shape[1:] == (1,)
        future_weights.append(w["future"].numpy())
        weights.append(w["crossing"].numpy())
        labels.append(y["crossing"].numpy()[:, 0])
    weights, future_weights = np.concatenate(weights), np.concatenate(future_weights)
    labels = np.concatenate(labels)
    assert (weights == 0).sum() == n_eth  # ETH/UCY windows weigh 0 in the crossing loss
    assert np.all(labels[weights == 0] == 0) and np.all(future_weights > 0)
    # Recording balance: each part keeps its total weight, its recordings are evened out; the extra part x 0.5.
    n_synth = data.train_size - n_eth
    assert future_weights.sum() == pytest.approx(n_eth + 0.5 * n_synth, rel=1e-4)
    assert weights.sum() == pytest.approx(n_synth, rel=1e-4)  # crossing: labelled windows count fully
    assert len(data.describe["train"][0]["recordings"]) > 1 and future_weights.std() > 0
    _, _, w_val = next(iter(data.val))
    assert np.all(w_val["crossing"].numpy() == 1)


def test_augmentation_is_seeded_train_only_and_keeps_the_heading_frame(synth):
    require_tf()
    first = [b[0].numpy() for b in _datasets(SYNTH, SYNTH, seed=5).train.take(3)]
    again = [b[0].numpy() for b in _datasets(SYNTH, SYNTH, seed=5).train.take(3)]
    other = [b[0].numpy() for b in _datasets(SYNTH, SYNTH, seed=6).train.take(3)]
    plain = _datasets(SYNTH, SYNTH, seed=5, augment=False)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], other[0])
    track = np.concatenate(first)
    step = track[:, -1] - track[:, -2]
    moving = np.linalg.norm(step, axis=-1) > 0.05
    assert (
        np.allclose(track[:, -1], 0)
        and (step[moving, 0] > 0).all()
        and np.allclose(step[moving, 1], 0, atol=1e-5)
    )
    val = np.concatenate([b[0].numpy() for b in plain.val])
    assert np.allclose(val, training_arrays(synth)[0])  # validation: not shuffled, not augmented
    unaugmented = np.concatenate([b[0].numpy() for b in plain.train])
    assert np.allclose(np.sort(unaugmented.ravel()), np.sort(training_arrays(synth)[0].ravel()))


@pytest.mark.slow
def test_loss_starts_at_constant_velocity_and_drops(synth):
    """The untrained model IS constant velocity, so its first loss equals the CV displacement; a few steps lower it."""
    require_tf()
    import keras

    from toolkit.data.trajectories import ade, constant_velocity, fde
    from toolkit.models import build_model

    keras.utils.set_random_seed(0)
    data = _datasets(SYNTH, SYNTH, augment=False)
    model = build_model("behaviour", {"dropout": 0.0})
    steps = -(-len(synth) // 32)
    TASK.compile(model, TrainConfig(learning_rate=3e-3, epochs=3), BehaviourOptions(), steps_per_epoch=steps)
    before = model.evaluate(data.val, verbose=0, return_dict=True)
    cv = constant_velocity(synth.obs)
    assert before["future_ade"] == pytest.approx(ade(cv, synth.fut), rel=1e-3)
    assert before["future_fde"] == pytest.approx(fde(cv, synth.fut), rel=1e-3)
    per_window = np.asarray(_displacement_loss(0.5)(synth.fut, cv))  # the loss: ADE + 0.5 FDE per window
    assert per_window.mean() == pytest.approx(ade(cv, synth.fut) + 0.5 * fde(cv, synth.fut), rel=1e-5)
    model.fit(data.train, epochs=3, verbose=0)
    after = model.evaluate(data.val, verbose=0, return_dict=True)
    assert after["loss"] < before["loss"] and after["crossing_loss"] < before["crossing_loss"]
