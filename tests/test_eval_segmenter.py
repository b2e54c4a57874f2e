"""Segmenter evaluation: IoU on hand-made masks, the letterbox round trip, COCO128 / synthetic samples from SPECs
(class mapping, folds, ignore padding), calibration inputs. numpy + OpenCV only (no TensorFlow in these tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from toolkit.adapters.segment import CLASS_NAMES
from toolkit.data.model_inputs import segmenter_inputs
from toolkit.data.segmentation_samples import (
    STREET_FROM_PANOPTIC,
    SegSamples,
    fold_of,
    load_samples,
    model_input,
)
from toolkit.data.spec import parse_spec
from toolkit.errors import UsageError
from toolkit.eval.config import EvalConfig
from toolkit.eval.predictor import Predictor
from toolkit.eval.segmenter import (
    empty_confusions,
    evaluate,
    iou_metrics,
    per_class_table,
    predict_labels,
    score_labels,
)

# One colour per class: a numpy "segmenter" reads the class back from the colour of each pixel.
PALETTE = np.array([[0, 0, 0], [100, 100, 100], [200, 200, 200], [255, 0, 0], [0, 0, 255]], np.uint8)


class ColourSegmenter(Predictor):
    """Predicts the class whose palette colour is nearest to each input pixel; ``shift`` moves the labels right."""

    format = "numpy"
    kind = "segmenter"

    def __init__(self, input_hw: tuple[int, int], shift: int = 0) -> None:
        self.path = Path("colour-segmenter")
        self.input_shapes = {"image": (*input_hw, 3)}
        self.output_names = ["mask"]
        self.shift = shift

    def predict(self, feeds, batch_size=64):
        image = feeds["image"] * 255.0
        dist = ((image[..., None, :] - PALETTE.astype(np.float32)) ** 2).sum(-1)  # (N, H, W, C)
        scores = -dist
        if self.shift:
            scores = np.roll(scores, self.shift, axis=2)
        return {"mask": scores.astype(np.float32)}


def colour_samples(masks: list[np.ndarray]) -> SegSamples:
    return SegSamples(
        [f"m{i}" for i in range(len(masks))],
        lambda i: (PALETTE[np.where(masks[i] == 255, 0, masks[i])], masks[i]),
        {"source": "test"},
    )


# ---- IoU on hand-made masks ------------------------------------------------------------------------------------


def test_iou_from_hand_made_masks_skips_ignore_pixels():
    truth = np.array([[0, 0, 3, 3], [0, 0, 3, 3], [1, 1, 1, 255]], np.uint8)
    pred = np.array(
        [[0, 3, 3, 3], [0, 0, 0, 3], [1, 1, 2, 3]], np.uint8
    )  # the 255 pixel's prediction (person) must not count
    conf = empty_confusions(5)
    score_labels(conf, pred, pred, truth, truth)
    metrics = iou_metrics(conf, CLASS_NAMES)
    # person: TP 3 (0,2) (0,3) (1,3); FP 1 (0,1); FN 1 (1,2) -> 3/5
    assert metrics["person_iou"] == pytest.approx(3 / 5)
    assert metrics["person_iou_input"] == pytest.approx(3 / 5)
    assert metrics["iou_background"] == pytest.approx(3 / 5)  # TP 3, FP 1 (1,2), FN 1 (0,1)
    assert metrics["iou_road"] == pytest.approx(2 / 3)  # TP 2, FN 1 (2,2)
    assert metrics["iou_sidewalk"] == 0.0  # predicted once, never true
    assert "iou_vehicle" not in metrics  # undefined: absent from truth and predictions
    assert metrics["miou"] == pytest.approx((3 / 5 + 2 / 3 + 0 + 3 / 5) / 4)
    assert metrics["pixel_accuracy"] == pytest.approx(8 / 11)
    table = {row["class"]: row for row in per_class_table(conf, CLASS_NAMES)}
    assert (
        table["person"]["gt_pixels"] == 4 and table["person"]["predicted_pixels"] == 4
    )  # not the ignored one
    assert table["vehicle"]["iou"] is None and table["vehicle"]["images_with_class"] == 0
    assert table["road"]["images_with_class"] == 1


def test_iou_sums_pixels_over_images_not_a_mean_of_images():
    conf = empty_confusions(5)
    big, small = np.zeros((10, 10), np.uint8), np.zeros((10, 10), np.uint8)
    big[:, :5] = 3  # 50 person pixels, all found
    small[0, 0] = 3  # 1 person pixel, missed
    score_labels(conf, big.copy(), None, big, None)
    score_labels(conf, np.zeros_like(small), None, small, None)
    assert iou_metrics(conf, CLASS_NAMES)["person_iou"] == pytest.approx(50 / 51)


def test_mask_with_a_class_the_model_does_not_have_is_a_usage_error():
    samples = colour_samples([np.full((8, 8), 7, np.uint8)])
    samples = SegSamples(
        samples.names, lambda i: (np.zeros((8, 8, 3), np.uint8), np.full((8, 8), 7, np.uint8))
    )
    with pytest.raises(UsageError, match="class 7"):
        predict_labels(ColourSegmenter((8, 8)), samples, 5)


# ---- letterbox round trip ---------------------------------------------------------------------------------------


def _blocks(h: int, w: int) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    mask[: h // 2, : w // 2] = 1
    mask[: h // 2, w // 2 :] = 2
    mask[h // 2 :, 4:10] = 3
    mask[h // 2 :, w - 8 :] = 4
    mask[-1, -1] = 255
    return mask


def test_a_perfect_segmenter_scores_one_through_letterbox_and_unletterbox():
    masks = [_blocks(32, 48), _blocks(32, 48)[::-1].copy()]
    conf = predict_labels(
        ColourSegmenter((48, 48)), colour_samples(masks), 5
    )  # scale 1, 8 rows padding each side
    metrics = iou_metrics(conf, CLASS_NAMES)
    assert metrics["miou"] == 1.0 and metrics["miou_input"] == 1.0 and metrics["person_iou"] == 1.0
    assert conf.frame.sum() == 2 * (32 * 48 - 1)  # every frame pixel but the ignore one, padding never scored


def test_shifted_labels_lose_exactly_the_shifted_columns():
    mask = np.zeros((16, 16), np.uint8)
    mask[4:12, 4:8] = 3  # a 4-column person
    conf = predict_labels(ColourSegmenter((16, 16), shift=1), colour_samples([mask]), 5)
    # shifted one column right: 3 of 4 columns overlap; union 5 columns
    assert iou_metrics(conf, CLASS_NAMES)["person_iou"] == pytest.approx(3 / 5)


def test_upscaled_frames_are_scored_at_frame_resolution():
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:16] = 3
    conf = predict_labels(ColourSegmenter((16, 16)), colour_samples([mask]), 5)  # model sees half resolution
    assert conf.frame.sum() == 32 * 32 and conf.input.sum() == 16 * 16
    assert iou_metrics(conf, CLASS_NAMES)["person_iou"] == 1.0  # block edges fall on even pixels: exact


def test_model_input_pads_images_grey_and_masks_with_ignore():
    image = np.full((20, 40, 3), 9, np.uint8)
    mask = np.full((20, 40), 3, np.uint8)
    boxed, boxed_mask, transform = model_input(image, mask, (40, 40))
    assert boxed.shape == (40, 40, 3) and boxed_mask.shape == (40, 40) and transform.pad_y == 10
    assert (boxed[:10] == 114).all() and (boxed[10:30] == 9).all()
    assert (
        (boxed_mask[:10] == 255).all() and (boxed_mask[10:30] == 3).all() and (boxed_mask[30:] == 255).all()
    )


# ---- COCO128 masks ---------------------------------------------------------------------------------------------


def test_panoptic_mapping_to_street_classes():
    lut = STREET_FROM_PANOPTIC.lut()
    assert [int(lut[i]) for i in (0, 1, 149, 191, 3, 6, 8, 4, 2, 7, 187)] == [
        255,
        3,
        1,
        2,
        4,
        4,
        4,
        4,
        4,
        0,
        0,
    ]


def test_fold_of_is_stratified_and_follows_file_names():
    names = ["d", "a", "c", "b", "e", "f"]
    person = [True, True, False, True, False, True]
    # people sorted: a b d f -> folds 0 1 0 1; no people: c e -> 0 1
    assert fold_of(person, names, 2).tolist() == [0, 0, 0, 1, 1, 1]


@pytest.mark.shared
def test_coco128_folds_partition_the_masked_images(shared):
    root = f"root={shared / 'data' / 'coco128'}"
    everything = load_samples(parse_spec(f"coco128:{root}"))
    assert len(everything) == 100
    vals = [load_samples(parse_spec(f"coco128:{root},fold={k},split=val")).names for k in range(4)]
    assert sorted(sum(vals, [])) == sorted(everything.names)
    train0 = load_samples(parse_spec(f"coco128:{root},fold=0,split=train")).names
    assert not set(train0) & set(vals[0]) and len(train0) + len(vals[0]) == 100
    assert [len(v) for v in vals] == [26, 25, 25, 24]  # 51 images with people (13 13 13 12), 49 without
    people = [
        load_samples(parse_spec(f"coco128:{root},fold={k},split=val")).describe["images_with_person"]
        for k in range(4)
    ]
    assert people == [13, 13, 13, 12]


@pytest.mark.shared
def test_coco128_masks_carry_our_classes_and_ignore(shared):
    from toolkit.data.masks import read_mask

    samples = load_samples(parse_spec(f"coco128:root={shared / 'data' / 'coco128'}"), limit=12)
    seen = set()
    for i in range(len(samples)):
        image, mask = samples.load(i)
        raw = read_mask(
            shared
            / "data"
            / "coco128"
            / "semantic_segmentation"
            / "masks"
            / "train2017"
            / f"{samples.names[i]}.png"
        )
        assert image.dtype == np.uint8 and image.shape[:2] == mask.shape == raw.shape
        assert ((raw == 1) == (mask == 3)).all() and ((raw == 0) == (mask == 255)).all()
        seen |= set(np.unique(mask).tolist())
    assert seen <= {0, 1, 2, 3, 4, 255} and {0, 3, 255} <= seen


def test_bad_specs_are_one_line_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="synthetic, coco128"):
        load_samples(parse_spec("mnist:split=test"))
    with pytest.raises(UsageError, match="split=train or split=val"):
        load_samples(parse_spec(f"coco128:root={tmp_path},fold=1"))
    with pytest.raises(UsageError, match="synthetic split"):
        load_samples(parse_spec("synthetic:split=test"))


# ---- synthetic frames ------------------------------------------------------------------------------------------


@pytest.fixture()
def synthetic_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLKIT_HOME", str(tmp_path))  # keep the render cache out of the user's folder
    return tmp_path


def test_synthetic_frames_and_masks_are_cached_and_split_by_seed(synthetic_home):
    spec = "synthetic:frames=4,every=2,width=160,height=120,jitter=0"
    train = load_samples(parse_spec(spec))
    assert train.names == ["scene0/frame00000", "scene0/frame00002"]
    image, mask = train.load(1)
    assert image.shape == (120, 160, 3) and image.dtype == np.uint8 and mask.shape == (120, 160)
    assert set(np.unique(mask).tolist()) <= set(range(len(CLASS_NAMES)))
    assert len(list((synthetic_home / "cache" / "synthetic_seg").iterdir())) == 1
    again = load_samples(parse_spec(spec))  # from the cache: identical pixels
    assert np.array_equal(again.load(1)[0], image) and np.array_equal(again.load(1)[1], mask)
    val = load_samples(parse_spec(spec + ",split=val"))
    assert val.names[0].startswith("scene1000/") and not np.array_equal(val.load(1)[0], image)


def test_model_inputs_are_letterboxed_unit_floats_and_seeded(synthetic_home):
    spec = parse_spec("synthetic:frames=6,every=1,width=160,height=120,jitter=0")
    a = segmenter_inputs(spec, {"image": (48, 48, 3)}, limit=3, seed=1)["image"]
    b = segmenter_inputs(spec, {"image": (48, 48, 3)}, limit=3, seed=1)["image"]
    assert a.shape == (3, 48, 48, 3) and a.dtype == np.float32 and np.array_equal(a, b)
    assert 0.0 <= a.min() and a.max() <= 1.0
    assert np.allclose(a[:, :6], 114 / 255.0)  # 120x160 -> 36x48: 6 rows of grey padding on top
    with pytest.raises(UsageError, match="'image' input"):
        segmenter_inputs(spec, {"track": (8, 2)})


def test_evaluate_twice_gives_identical_reports(synthetic_home):
    spec = parse_spec("synthetic:frames=4,every=2,width=160,height=120,jitter=0")
    predictor = ColourSegmenter((48, 64))
    first = evaluate(predictor, spec, EvalConfig(baselines=False))
    second = evaluate(predictor, spec, EvalConfig(baselines=False))
    assert first.to_dict() == second.to_dict()
    assert first.primary == "person_iou" and first.samples == 2 and "miou_input" in first.metrics
