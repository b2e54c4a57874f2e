"""Training tasks for the MNIST kinds (classifier, autoencoder, VAE) on a tiny shared-data subset: the datasets
they build, seeded augmentation, and one short fit step each."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from conftest import require_tf

from toolkit.data.labelled_images import load_labelled_images
from toolkit.data.spec import parse_spec
from toolkit.errors import UsageError
from toolkit.train.config import TrainConfig

pytestmark = [pytest.mark.tf, pytest.mark.shared]

CONFIG = TrainConfig(epochs=1, batch_size=16, seed=3, learning_rate=1e-3)


@pytest.fixture(scope="module")
def mnist(shared) -> str:
    require_tf()
    return f"mnist:root={shared / 'data' / 'mnist'}"


def first_batch(dataset):
    x, y = next(iter(dataset))
    return x.numpy(), {k: v.numpy() for k, v in y.items()}


def build(
    kind: str,
    mnist: str,
    config: TrainConfig = CONFIG,
    train: str = "split=train,limit=64",
    options=None,
    model_overrides=None,
):
    import importlib

    from toolkit.models import config_for

    task = importlib.import_module(f"toolkit.train.task_{kind}").TASK
    options = options or task.options_type()
    model_config = config_for(kind, model_overrides or {})
    data = task.datasets(
        parse_spec(f"{mnist},{train}"),
        parse_spec(f"{mnist},split=val,limit=32"),
        config,
        options,
        model_config,
    )
    return task, options, model_config, data


def fit_one_step(kind: str, task, options, model_config, data, config: TrainConfig = CONFIG) -> dict:
    """One optimizer step on the first training batch; the weights must move and the logs be finite."""
    import keras

    from toolkit.models import builder

    keras.utils.set_random_seed(config.seed)
    model = builder(kind).build(model_config)
    task.compile(model, config, options, steps_per_epoch=1)
    model.jit_compile = False  # one step: XLA compilation would cost more than it saves
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(data.train.take(1), epochs=1, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    logs = {k: v[-1] for k, v in history.history.items()}
    assert all(np.isfinite(v) for v in logs.values()), logs
    return logs


def test_classifier_datasets_targets_and_seeded_augmentation(mnist):
    task, options, model_config, data = build("classifier", mnist)
    assert (data.train_size, data.val_size) == (64, 32)
    x, y = first_batch(data.train)
    assert x.shape == (16, 28, 28, 1) and x.dtype == np.float32
    assert y["probs"].shape == (16, 10) and np.all(y["probs"].sum(axis=1) == 1)
    assert 0.0 <= x.min() and x.max() <= 1.0
    # same seed -> same shuffled, warped batch; another seed -> a different one
    np.testing.assert_array_equal(first_batch(build("classifier", mnist)[3].train)[0], x)
    other = first_batch(build("classifier", mnist, replace(CONFIG, seed=4))[3].train)[0]
    assert not np.array_equal(other, x)
    # the augmentation really warps: no training image equals a raw one; validation is the raw data, in order
    raw = load_labelled_images(f"{mnist},split=train,limit=64").images
    assert not any(np.array_equal(img, r) for img in x for r in raw)
    plain = first_batch(build("classifier", mnist, replace(CONFIG, augment=False))[3].train)[0]
    assert all(any(np.array_equal(img, r) for r in raw) for img in plain)
    vx, _ = first_batch(data.val)
    np.testing.assert_array_equal(vx, load_labelled_images(f"{mnist},split=val,limit=32").images[:16])
    # a second epoch sees a different (still seeded) order and warp
    epochs = [first_batch(data.train)[0] for _ in range(2)]
    assert not np.array_equal(epochs[0], epochs[1])


@pytest.mark.slow
def test_classifier_fit_step_with_cosine_schedule(mnist):
    small = {"width": 0.25, "filters": [16, 32], "strides": [2, 2]}  # fewer layers: faster graph tracing
    task, options, model_config, data = build("classifier", mnist, model_overrides=small)
    logs = fit_one_step("classifier", task, options, model_config, data)
    assert 0.0 <= logs["accuracy"] <= 1.0 and logs["loss"] > 0
    from toolkit.train.task_classifier import cosine_schedule

    schedule = cosine_schedule(replace(CONFIG, epochs=2), steps_per_epoch=5)
    assert float(schedule(0)) == pytest.approx(1e-3) and float(schedule(10)) == pytest.approx(0.0, abs=1e-9)
    assert float(schedule(5)) == pytest.approx(0.5e-3, rel=1e-4)


def test_classifier_bad_options_and_labels(mnist):
    from toolkit.train.task_classifier import Options

    with pytest.raises(UsageError, match="label_smoothing"):
        build("classifier", mnist, options=Options(label_smoothing=1.5))
    with pytest.raises(UsageError, match="model has 5 classes"):
        build("classifier", mnist, model_overrides={"num_classes": 5})


@pytest.mark.slow
def test_autoencoder_targets_are_the_warped_inputs_and_fit_step(mnist):
    task, options, model_config, data = build("autoencoder", mnist, train="split=train,exclude=9,limit=64")
    x, y = first_batch(data.train)
    np.testing.assert_array_equal(y["reconstruction"], x)
    assert "without digits 9" in data.describe["train"]
    logs = fit_one_step("autoencoder", task, options, model_config, data)
    assert 0 < logs["mse"] < logs["loss"]  # BCE on [0, 1] pixels exceeds their squared error


@pytest.mark.slow
def test_vae_fit_step_includes_the_kl_term(mnist):
    import keras

    task, options, model_config, data = build("vae", mnist)
    x, y = first_batch(data.train)
    assert list(y) == ["reconstruction"]
    fit_one_step("vae", task, options, model_config, data)
    # the training loss is BCE + KL / pixels: with the KL weight it is larger than the BCE alone
    from toolkit.models import builder

    keras.utils.set_random_seed(0)
    model = builder("vae").build(model_config)
    out = model(x, training=True)
    bce = float(keras.losses.BinaryCrossentropy()(x, out["reconstruction"]))
    assert len(model.losses) == 1 and float(model.losses[0]) > 0
    task.compile(model, CONFIG, options, 1)
    assert model.compute_loss(x=x, y=y, y_pred=out) > bce


@pytest.mark.slow
def test_vae_kl_warmup_ramps_and_saves_the_plain_weight(mnist, tmp_path):
    import keras

    from toolkit.models import build_model, register_custom_objects
    from toolkit.train.task_vae import TASK, Options

    model = build_model("vae", {"filters": [4, 8], "hidden": 8, "latent_dim": 2})
    base = model.get_layer("sampling").kl_weight
    TASK.compile(model, CONFIG, Options(kl_warmup_epochs=2), steps_per_epoch=2)  # ramp over 4 steps
    x = load_labelled_images(f"{mnist},split=train,limit=8").images
    out = model(x, training=True)
    mu, lv = (np.asarray(out[k], np.float64) for k in ("z_mean", "z_log_var"))
    full_kl = base * np.mean(np.sum(0.5 * (mu**2 + np.exp(lv) - 1 - lv), axis=1))
    assert float(model.losses[0]) == pytest.approx(full_kl / 4, rel=1e-4)  # step 0: weight x 1/4
    model.optimizer.iterations.assign(10)
    out = model(x, training=True)
    mu, lv = (np.asarray(out[k], np.float64) for k in ("z_mean", "z_log_var"))
    full_kl = base * np.mean(np.sum(0.5 * (mu**2 + np.exp(lv) - 1 - lv), axis=1))
    assert float(model.losses[0]) == pytest.approx(full_kl, rel=1e-4)  # after the warm-up: the full weight
    model.save(tmp_path / "vae.keras")
    register_custom_objects()
    loaded = keras.saving.load_model(tmp_path / "vae.keras")
    assert (
        type(loaded.get_layer("sampling").kl_weight) is float
        and loaded.get_layer("sampling").kl_weight == base
    )
