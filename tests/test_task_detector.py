"""Detector training task: batch shapes, targets that decode back to the labels, seeded batches, options."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import require_tf

from toolkit.adapters.detect import decode
from toolkit.adapters.image import letterbox
from toolkit.data.detection_samples import load_samples
from toolkit.data.spec import parse_spec
from toolkit.errors import UsageError
from toolkit.models import config_for
from toolkit.models.detector_targets import NO_BOX, box_target_for_loss, encode_targets
from toolkit.train.config import TrainConfig
from toolkit.train.task_detector import (
    IGNORED,
    TARGET,
    TASK,
    DetectorTaskOptions,
    random_window,
    spread_box_targets,
)

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


def test_box_targets_spread_to_the_neighbour_cells() -> None:
    boxes = np.array([[10, 20, 16, 40], [100, 50, 140, 150], [250, 10, 256, 30]], np.float32)
    heat, box, mask = encode_targets(boxes, (192, 256))
    exact = box_target_for_loss(box, mask)
    spread = spread_box_targets(boxes, exact, (192, 256))
    centres = exact[..., 0] != NO_BOX
    assert np.array_equal(spread[centres], exact[centres])  # centre cells keep their exact targets
    assert (spread[..., 0] != NO_BOX).sum() == 3 + 8 + 8 + 5  # the third box touches the right edge
    for dy in (-1, 0, 1):  # a peak one cell off still decodes the small person's box, within 3 px
        for dx in (-1, 0, 1):
            peak = np.zeros((48, 64, 1), np.float32)
            peak[7 + dy, 3 + dx] = 1.0
            decoded, _ = decode(peak, spread, (192, 256), score_threshold=0.5)
            assert np.abs(decoded[0] - boxes[0]).max() <= 3.0
            assert np.allclose(decoded[0, 2:] - decoded[0, :2], [6, 20], atol=1e-3)  # the size is exact
    # Two people side by side: a cell between their centres goes to the nearer one.
    pair = np.array([[0, 0, 10, 20], [10, 0, 26, 20]], np.float32)  # centres in cells 1 and 4 of row 2
    _, box2, mask2 = encode_targets(pair, (192, 256))
    spread2 = spread_box_targets(pair, box_target_for_loss(box2, mask2), (192, 256))
    assert spread2[2, 2, 2] == pytest.approx(np.sqrt(10 / 256)) and spread2[2, 3, 2] == pytest.approx(
        np.sqrt(16 / 256)
    )


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
        assert np.all(box[centres][:, 0] != NO_BOX)  # every heatmap peak has a box target...
        assert (box[..., 0] != NO_BOX).sum() <= 9 * centres.sum()  # ...and so do (at most) its 8 neighbours
        keep = val.visibility[i] >= DetectorTaskOptions().min_visibility
        expected = transform.to_input(val.records[i].boxes[keep])
        decoded, _ = decode(heat, box, (96, 128), score_threshold=0.99)
        assert len(decoded) == len(expected)
        for b in expected:  # each labelled person decodes back to within a pixel
            assert np.abs(decoded - b).max(axis=1).min() < 1.0


def test_random_window_moves_and_clips_boxes_and_finds_people() -> None:
    image = np.arange(96 * 128 * 3, dtype=np.uint32).reshape(96, 128, 3).astype(np.uint8)
    boxes = np.array([[100, 60, 110, 90], [0, 0, 40, 40]], np.float32)
    rng = np.random.default_rng(0)
    for _ in range(50):
        window, moved, classes = random_window(image, boxes, (32, 64), rng, person_p=1.0)
        assert window.shape == (32, 64, 3) and (classes == TARGET).all()
        assert len(moved) >= 1  # a window placed over a person keeps (part of) that person
        assert (moved >= 0).all() and (moved[:, [0, 2]] <= 64).all() and (moved[:, [1, 3]] <= 32).all()
    # the pixels and the boxes move together: the window's origin is where box 0 lands
    window, moved, _ = random_window(image, boxes[:1], (96, 128), rng)  # the whole image: nothing moves
    assert np.array_equal(window, image) and np.array_equal(moved, boxes[:1])


def test_people_cut_by_a_window_become_ignore_regions() -> None:
    image = np.zeros((96, 128, 3), np.uint8)
    boxes = np.array([[10, 20, 20, 60], [70, 20, 80, 60], [100, 50, 110, 90]], np.float32)
    classes = np.array([TARGET, TARGET, IGNORED])
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        _, moved, cls = random_window(image, boxes, (64, 96), rng, classes=classes, cut_keep=0.6)
        area = (moved[:, 2] - moved[:, 0]) * (moved[:, 3] - moved[:, 1])
        # 10x40 px people: a target keeps >= 60 % of its 400 px^2, anything cut further is ignored
        assert (area[cls == TARGET] >= 0.6 * 400 - 1e-3).all()
        seen.update((int(c), bool(a < 240)) for c, a in zip(cls, area, strict=True))
    assert {(TARGET, False), (IGNORED, True), (IGNORED, False)} <= seen  # cut targets and the ignored one
    # without cut_keep the old rule holds: only boxes keeping < 10 % drop, every kept target stays a target
    _, moved, cls = random_window(image, boxes[:2], (64, 96), np.random.default_rng(1))
    assert (cls == TARGET).all()


def test_window_targets_encode_sizes_relative_to_the_whole_input() -> None:
    # a 20x40 px person in a 64x96 window of a 96x128 input: the size target must decode on the 96x128 input
    boxes = np.array([[30, 10, 50, 50]], np.float32)
    _, box, mask = encode_targets(boxes, (64, 96), size_hw=(96, 128))
    (cell,) = np.argwhere(mask[..., 0] == 1)
    sw, sh = box[cell[0], cell[1], 2:]
    assert sw * sw * 128 == pytest.approx(20) and sh * sh * 96 == pytest.approx(40)
    spread = spread_box_targets(boxes, box_target_for_loss(box, mask), (64, 96), size_hw=(96, 128))
    neighbours = spread[..., 0] != NO_BOX
    assert neighbours.sum() == 9 and np.allclose(spread[neighbours][:, 2:], [sw, sh])


def test_window_options_must_fit_the_input() -> None:
    from toolkit.train.task_detector import window_hw

    assert window_hw(DetectorTaskOptions(), (96, 128)) == (96, 128)
    assert window_hw(DetectorTaskOptions(crop_height=64, crop_width=96), (96, 128)) == (64, 96)
    for bad in ((60, 96), (128, 96), (64, 0)):
        with pytest.raises(UsageError, match="multiples of 32"):
            window_hw(DetectorTaskOptions(crop_height=bad[0], crop_width=bad[1]), (96, 128))


@pytest.mark.tf
def test_window_training_batches_have_the_window_shape_and_val_the_input() -> None:
    require_tf()
    options = DetectorTaskOptions(crop_height=64, crop_width=96, person_crop=0.7)
    data, batches = _batches(options=options)
    x, y = batches[0]
    assert (
        x.shape[1:] == (64, 96, 3)
        and y["heatmap"].shape[1:] == (16, 24, 1)
        and y["box"].shape[1:] == (16, 24, 4)
    )
    xv, _ = next(iter(data.val))
    assert xv.shape[1:] == (96, 128, 3) and data.describe["train_hw"] == [64, 96]


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


BAD_PASTE_OPTIONS = [
    ({"paste": 1.5}, "paste must be a number in 0..1"),
    ({"paste": -0.1}, "paste must be a number in"),
    ({"paste_max": 0}, "paste_max must be an integer in 1..64"),
    ({"paste_min_height": 50.0, "paste_max_height": 20.0}, "need paste_min_height <= paste_max"),
    ({"paste_min_height": 1.0}, "paste_min_height must be a number in 2..8192"),
]


def _refuse_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    import toolkit.train.task_detector as task_detector

    def load_samples(*_args, **_kwargs):
        raise AssertionError("data loaded before the options were checked")

    monkeypatch.setattr(task_detector, "load_samples", load_samples)


@pytest.mark.parametrize("bad, message", BAD_PASTE_OPTIONS, ids=[str(b) for b, _ in BAD_PASTE_OPTIONS])
def test_bad_paste_options_fail_before_loading_anything(
    monkeypatch: pytest.MonkeyPatch, bad: dict, message: str
) -> None:
    _refuse_loading(monkeypatch)
    with pytest.raises(UsageError, match=f"detector task options.*{message}"):
        TASK.datasets(TRAIN, VAL, CONFIG, replace(DetectorTaskOptions(), **bad), MODEL)


@pytest.mark.parametrize("bad", [{"paste": 0.5}, {"paste": 0.5, "paste_polygons": "/nonexistent/polygons"}])
def test_paste_without_polygons_fails_before_loading_anything(
    monkeypatch: pytest.MonkeyPatch, bad: dict
) -> None:
    _refuse_loading(monkeypatch)
    with pytest.raises(UsageError, match="paste_polygons"):
        TASK.datasets(TRAIN, VAL, CONFIG, replace(DetectorTaskOptions(), **bad), MODEL)


@pytest.mark.tf
def test_paste_without_usable_polygons_is_a_usage_error(tmp_path: Path) -> None:
    require_tf()
    for bad, message in (
        ({}, "paste > 0 needs paste_polygons"),
        ({"paste_polygons": str(tmp_path / "missing")}, "paste_polygons folder .*missing not found"),
        ({"paste_polygons": str(tmp_path)}, "no usable person polygons for the training images"),
    ):
        with pytest.raises(UsageError, match=f"detector task options: {message}"):
            TASK.datasets(TRAIN, VAL, CONFIG, replace(DetectorTaskOptions(), paste=0.5, **bad), MODEL)


@pytest.mark.shared
@pytest.mark.tf
def test_pasting_coco128_people_adds_heatmap_centres(shared: Path) -> None:
    require_tf()
    from toolkit.data.cutouts import person_cutouts

    train = parse_spec("coco128:fold=0,folds=4,split=train,limit=12")
    val = parse_spec("coco128:fold=0,folds=4,split=val,limit=2")

    def first_batch(options: DetectorTaskOptions) -> tuple:
        data = TASK.datasets(train, val, CONFIG, options, MODEL)
        x, y = next(iter(data.train))
        return data, x.numpy(), y["heatmap"].numpy()

    _, plain_x, plain = first_batch(DetectorTaskOptions())
    data, pasted_x, pasted = first_batch(DetectorTaskOptions(paste=1.0, paste_polygons="coco128"))
    polygons = shared / "data" / "coco128" / "instance_segmentation" / "labels" / "train2017"
    assert data.describe["pasted_people"] == len(person_cutouts(load_samples(train).records, polygons)) > 0
    centres = (pasted == 1.0).sum(axis=(1, 2, 3))
    assert (centres > 0).all(), centres  # every window got at least one person, even where the photo had none
    assert centres.sum() > (plain == 1.0).sum()
    assert not np.array_equal(pasted_x, plain_x)
