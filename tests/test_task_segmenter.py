"""Segmenter training task: pixel weights, option checks, tf.data batches (shapes, ignore masks, determinism,
augmentation only on the training split), the extra-data pool and the compiled loss."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require_tf

from toolkit.data.segmentation_samples import load_samples, model_input
from toolkit.data.spec import parse_spec
from toolkit.errors import UsageError
from toolkit.train.config import TrainConfig
from toolkit.train.task_segmenter import TASK, SegmenterTaskOptions, check_options

SPEC = (
    "synthetic:frames=6,every=2,width=160,height=120,jitter=0"  # 3 frames of scene 0, 3 of scene 1000 (val)
)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(class_weights=(1.0, 2.0)), "class_weights needs 5"),
        (dict(class_weights=(0.0,) * 5), "must not be all 0"),
        (dict(extra_repeat=0), "extra_repeat"),
        (dict(scale_min=1.5, scale_max=1.0), "scale_min"),
        (dict(per_epoch=-1), "per_epoch"),
        (dict(dice_classes=("people",)), "dice_classes"),
        (dict(person_crop=1.5), "person_crop"),
    ],
)
def test_bad_options_are_usage_errors(options, message):
    with pytest.raises(
        UsageError, match=message
    ):  # refused when built (LIMITS) or when checked against the model
        check_options(SegmenterTaskOptions(**options), 5)


@pytest.fixture()
def synthetic_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLKIT_HOME", str(tmp_path))  # keep the render cache out of the user's folder
    return tmp_path


@pytest.fixture()
def tf_ready():
    require_tf()


def _model_config(hw=(48, 64)):
    from toolkit.models import config_for

    return config_for("segmenter", {"input_shape": (*hw, 3)})


def _first(ds):
    return next(iter(ds.as_numpy_iterator()))


@pytest.mark.tf
def test_batches_have_model_shapes_and_ignore_padding(synthetic_home, tf_ready):
    data = TASK.datasets(
        parse_spec(SPEC),
        parse_spec(SPEC + ",split=val"),
        TrainConfig(batch_size=2, seed=0),
        SegmenterTaskOptions(),
        _model_config((56, 64)),
    )
    assert (data.train_size, data.val_size) == (3, 3)
    image, targets = _first(data.train)
    assert (
        image.shape == (2, 56, 64, 3) and image.dtype == np.float32 and 0 <= image.min() and image.max() <= 1
    )
    mask = targets["mask"]
    assert mask.shape == (2, 56, 64) and mask.dtype == np.int32
    assert set(np.unique(mask).tolist()) <= {0, 1, 2, 3, 4, 255}

    # validation: neither shuffled nor augmented -- exactly the letterboxed frames, in order
    val_image, val_targets = _first(data.val)
    assert (val_targets["mask"][:, :4] == 255).all()  # 120x160 -> 48x64 inside 56x64: 4 ignore rows on top
    assert (val_targets["mask"][:, 4:52] != 255).all()
    samples = load_samples(parse_spec(SPEC + ",split=val"))
    for j in range(2):
        boxed, boxed_mask, _ = model_input(*samples.load(j), (56, 64))
        assert np.allclose(val_image[j], boxed / 255.0, atol=1e-6) and np.array_equal(
            val_targets["mask"][j], boxed_mask
        )


@pytest.mark.tf
def test_same_seed_same_batches_other_seed_other_batches(synthetic_home, tf_ready):
    def first_batch(seed: int) -> np.ndarray:
        data = TASK.datasets(
            parse_spec(SPEC),
            None,
            TrainConfig(batch_size=3, seed=seed),
            SegmenterTaskOptions(),
            _model_config(),
        )
        assert data.val is None
        return _first(data.train)[0]

    assert np.array_equal(first_batch(0), first_batch(0))
    assert not np.array_equal(first_batch(0), first_batch(1))


@pytest.mark.tf
def test_without_augment_training_items_are_the_letterboxed_frames(synthetic_home, tf_ready):
    data = TASK.datasets(
        parse_spec(SPEC),
        None,
        TrainConfig(batch_size=3, augment=False),
        SegmenterTaskOptions(),
        _model_config(),
    )
    images = _first(data.train)[0]
    samples = load_samples(parse_spec(SPEC))
    expected = [model_input(*samples.load(i), (48, 64))[0] / 255.0 for i in range(3)]
    for image in images:  # shuffled order, unchanged pixels
        assert any(np.allclose(image, e, atol=1e-6) for e in expected)


@pytest.mark.tf
@pytest.mark.shared
def test_extra_data_joins_the_pool_and_per_epoch_caps_an_epoch(synthetic_home, shared, tf_ready):
    extra = f"coco128:root={shared / 'data' / 'coco128'},fold=0,split=val"
    options = SegmenterTaskOptions(extra_data=extra, extra_repeat=2, per_epoch=10)
    data = TASK.datasets(parse_spec(SPEC), None, TrainConfig(batch_size=4), options, _model_config())
    assert data.describe["pool"] == 3 + 2 * 26 and data.train_size == 10
    assert sum(len(b[0]) for b in data.train.as_numpy_iterator()) == 10


@pytest.mark.tf
def test_loss_matches_hand_computed_cross_entropy_and_dice(tf_ready):
    from toolkit.train.task_segmenter import segmentation_loss

    probs = np.full((1, 1, 3, 5), 0.1, np.float32)
    probs[0, 0, 0, [0, 3]] = [0.6, 0.0]  # pixel 0: truth person, p(person) = 0.0 -> clipped
    probs[0, 0, 1, [0, 3]] = [0.2, 0.4]  # pixel 1: truth background
    probs[0, 0, 2, [0, 3]] = [0.0, 0.6]  # pixel 2: ignored (255) -- whatever it predicts
    truth = np.array([[[3, 0, 255]]], np.int32)
    weights = np.array([1.0, 1.0, 1.0, 2.0, 1.0], np.float32)
    ce_only = np.asarray(segmentation_loss(weights)(truth, probs))
    expected_ce = (2.0 * -np.log(1e-7) + 1.0 * -np.log(0.2)) / 2  # two valid pixels
    assert ce_only.shape == (1,) and ce_only[0] == pytest.approx(expected_ce, rel=1e-4)
    with_dice = np.asarray(segmentation_loss(weights, 0.5, (3,))(truth, probs))
    dice = 1 - (2 * 0.0 + 1) / (1 + 0.4 + 1)  # person: |t| = 1, |q| = 0.0 + 0.4 on valid pixels
    assert with_dice[0] == pytest.approx(expected_ce + 0.5 * dice, rel=1e-4)


@pytest.mark.tf
def test_compiled_model_trains_on_batches_and_reports_iou_metrics(synthetic_home, tf_ready):
    from toolkit.models import build_model

    model = build_model("segmenter", {"input_shape": (48, 64, 3)})
    config = TrainConfig(batch_size=3, learning_rate=1e-3, epochs=1)
    TASK.compile(model, config, SegmenterTaskOptions(), steps_per_epoch=1)
    data = TASK.datasets(parse_spec(SPEC), None, config, SegmenterTaskOptions(), _model_config())
    image, targets = _first(data.train)
    result = model.evaluate(image, targets, verbose=0, return_dict=True)
    assert np.isfinite(result["loss"]) and {"person_iou", "miou"} <= set(result)
    # every pixel ignored: nothing to learn from, zero loss
    ignored = {"mask": np.full_like(targets["mask"], 255)}
    assert model.evaluate(image, ignored, verbose=0, return_dict=True)["loss"] == 0.0


def test_crop_must_fit_the_input_in_multiples_of_8():
    from toolkit.train.task_segmenter import crop_hw

    assert crop_hw(SegmenterTaskOptions(), (48, 64)) == (48, 64)
    assert crop_hw(SegmenterTaskOptions(crop_height=24, crop_width=32), (48, 64)) == (24, 32)
    for h, w in ((20, 32), (56, 32), (24, 0)):
        with pytest.raises(UsageError, match="multiples of 8"):
            crop_hw(SegmenterTaskOptions(crop_height=h, crop_width=w), (48, 64))


@pytest.mark.tf
@pytest.mark.slow
def test_crop_training_batches_are_windows_and_the_saved_model_keeps_its_input(
    synthetic_home, tmp_path, tf_ready
):
    from toolkit.convert.keras_export import load_keras_model
    from toolkit.train.trainer import train

    options = SegmenterTaskOptions(crop_height=24, crop_width=32)
    data = TASK.datasets(
        parse_spec(SPEC), parse_spec(SPEC + ",split=val"), TrainConfig(batch_size=2), options, _model_config()
    )
    image, targets = _first(data.train)
    assert image.shape == (2, 24, 32, 3) and targets["mask"].shape == (2, 24, 32)
    assert _first(data.val)[0].shape == (2, 48, 64, 3)  # validation on whole frames

    out = tmp_path / "crop.keras"
    result = train(
        "segmenter",
        out,
        TrainConfig(data=SPEC, val_data=SPEC + ",split=val", epochs=1, batch_size=2, verbose=0),
        {"input_shape": (48, 64, 3)},
        {"crop_height": 24, "crop_width": 32},
    )
    assert result.manifest["data"]["train_hw"] == [24, 32]
    model = load_keras_model(out, None, False)
    assert tuple(model.inputs[0].shape[1:]) == (48, 64, 3)
    with pytest.raises(ValueError):
        model(np.zeros((1, 24, 32, 3), np.float32))  # the file still pins the full input size


def test_person_windows_cover_a_person_and_plain_windows_are_uniform():
    from toolkit.train.task_segmenter import random_window

    rng = np.random.default_rng(0)
    mask = np.zeros((48, 64), np.uint8)
    mask[40:44, 60:62] = 3  # one small person in the bottom-right corner
    image = np.arange(48 * 64 * 3, dtype=np.uint32).reshape(48, 64, 3).astype(np.uint8)
    windows = [random_window(image, mask, (16, 24), rng, person_p=1.0) for _ in range(50)]
    assert all((m == 3).any() and i.shape == (16, 24, 3) and m.shape == (16, 24) for i, m in windows)
    plain = [random_window(image, mask, (16, 24), rng)[1] for _ in range(200)]
    assert 0 < sum((m == 3).any() for m in plain) < 50  # sometimes, by chance
    whole_image, whole_mask = random_window(image, mask, (48, 64), rng, person_p=1.0)
    assert np.array_equal(whole_image, image) and np.array_equal(whole_mask, mask)
