"""Detector training task: batch shapes, targets that decode back to the labels, seeded batches, options."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import require_tf
from toolkit.data.augment import letterbox
from toolkit.data.spec import parse_spec
from toolkit.errors import UsageError
from toolkit.eval.detector_data import load_samples
from toolkit.models import config_for
from toolkit.models.detector_targets import NO_BOX, decode
from toolkit.train.config import TrainConfig
from toolkit.train.task_detector import TASK, DetectorTaskOptions

TRAIN = parse_spec("synthetic:split=train,scenes=1,frames=9,every=3")
VAL = parse_spec("synthetic:split=val,scenes=1,frames=6,every=3")
MODEL = config_for("detector", {"input_shape": (96, 128, 3), "width": 0.25})
CONFIG = TrainConfig(batch_size=3, seed=0)


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # one render cache for the whole module (frames render once), never the user's own cache
    monkeypatch.setenv("TOOLKIT_HOME", str(tmp_path_factory.getbasetemp() / "toolkit_home"))


def _batches(config: TrainConfig = CONFIG, options: DetectorTaskOptions = DetectorTaskOptions()) -> tuple:
    data = TASK.datasets(TRAIN, VAL, config, options, MODEL)
    return data, [(x.numpy(), {k: v.numpy() for k, v in y.items()}) for x, y in data.train]


def test_bad_options_fail_before_loading_anything() -> None:
    for bad in ({"mosaic": 1.5}, {"repeat": 0}, {"scale_min": 2.0, "scale_max": 1.0}):
        with pytest.raises(UsageError, match="detector task options"):
            TASK.datasets(TRAIN, VAL, CONFIG, replace(DetectorTaskOptions(), **bad), MODEL)


@pytest.mark.tf
def test_batches_have_model_shapes_and_val_targets_decode_to_the_labels() -> None:
    require_tf()
    data, batches = _batches()
    assert data.train_size == 3 and data.val_size == 2
    x, y = batches[0]
    assert x.shape == (3, 96, 128, 3) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert y["heatmap"].shape == (3, 24, 32, 1) and y["box"].shape == (3, 24, 32, 4)
    val = load_samples(VAL)
    xv, yv = next(iter(data.val))
    for i in range(len(val)):
        boxed, transform = letterbox(val.load(i), (96, 128))
        assert np.allclose(xv[i].numpy(), boxed / 255.0, atol=1e-6)  # the camera pipeline's letterbox, RGB
        heat, box = yv["heatmap"][i].numpy(), yv["box"][i].numpy()
        centres = heat[..., 0] == 1.0
        assert np.array_equal(centres, box[..., 0] != NO_BOX)  # box targets exactly at the heatmap peaks
        keep = val.visibility[i] >= DetectorTaskOptions().min_visibility
        expected = transform.to_input(val.records[i].boxes[keep])
        decoded, _ = decode(heat, box, (96, 128), score_threshold=0.99)
        assert len(decoded) == len(expected)
        for b in expected:  # each labelled person decodes back to within a pixel
            assert np.abs(decoded - b).max(axis=1).min() < 1.0


@pytest.mark.tf
def test_same_seed_same_batches_other_seed_others() -> None:
    require_tf()
    _, a = _batches()
    _, b = _batches()
    _, c = _batches(replace(CONFIG, seed=1))
    assert all(np.array_equal(p[0], q[0]) for p, q in zip(a, b, strict=True))
    assert not all(np.array_equal(p[0], q[0]) for p, q in zip(a, c, strict=True))


@pytest.mark.tf
def test_without_augmentation_the_training_images_are_the_letterboxed_frames() -> None:
    require_tf()
    _, batches = _batches(replace(CONFIG, augment=False))
    train = load_samples(TRAIN)
    expected = sorted(letterbox(train.load(i), (96, 128))[0].tobytes() for i in range(len(train)))
    got = sorted(np.round(x * 255).astype(np.uint8).tobytes() for batch, _ in batches for x in batch)
    assert got == expected


@pytest.mark.tf
def test_extra_data_and_repeat_set_the_epoch_size(tmp_path: Path) -> None:
    require_tf()
    options = DetectorTaskOptions(extra_data=str(VAL), extra_per_epoch=1, repeat=2)
    data, batches = _batches(options=options)
    assert data.train_size == 2 * 3 + 1 == sum(len(x) for x, _ in batches)
    assert data.describe["per_epoch"] == {"main": 6, "extra": 1}


@pytest.mark.tf
@pytest.mark.slow
def test_compiled_model_trains_a_step_with_finite_losses() -> None:
    require_tf()
    from toolkit.models import build_model

    data, _ = _batches()
    model = build_model("detector", {"input_shape": (96, 128, 3), "width": 0.25})
    TASK.compile(model, CONFIG, DetectorTaskOptions(), steps_per_epoch=1)
    history = model.fit(data.train, validation_data=data.val, epochs=1, verbose=0).history
    assert {"loss", "heatmap_loss", "box_loss", "val_loss"} <= set(history)
    assert all(np.isfinite(v[0]) for v in history.values())
