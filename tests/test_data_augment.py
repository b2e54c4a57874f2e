"""Letterbox maths on hand-checked numbers, and augmentations that keep boxes and masks on their pixels."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from toolkit.adapters.image import Letterbox, letterbox, resize_image
from toolkit.data.augment import (
    DEFAULT,
    AugmentConfig,
    augment_detection,
    augment_segmentation,
    clip_boxes,
    color_jitter,
    hflip,
    random_scale_crop,
)

NO_COLOUR = AugmentConfig(brightness=0, contrast=0, saturation=0, hue=0)


def test_letterbox_hand_checked():
    image = np.full((480, 640, 3), 200, np.uint8)
    out, lb = letterbox(image, (320, 320))
    assert out.shape == (320, 320, 3) and out.dtype == np.uint8
    assert lb == Letterbox(scale=0.5, pad_x=0, pad_y=40, image_hw=(480, 640))
    assert (
        out[39, 100].tolist() == [114] * 3
        and out[40, 100].tolist() == [200] * 3
        and out[280, 5].tolist() == [114] * 3
    )
    boxes = np.array([[100, 50, 300, 250]], np.float32)
    np.testing.assert_allclose(lb.to_input(boxes), [[50, 65, 150, 165]])
    np.testing.assert_allclose(lb.to_image(lb.to_input(boxes)), boxes)
    np.testing.assert_allclose(lb.to_image(np.array([[-10, 0, 330, 330]])), [[0, 0, 640, 480]])  # clipped
    np.testing.assert_allclose(lb.to_input(np.array([[640, 480]])), [[320, 280]])  # points work too
    tall, lb2 = letterbox(np.zeros((100, 50), np.float32), (64, 96))  # grey float mask-like input, upscaled
    assert tall.shape == (64, 96) and lb2.scale == pytest.approx(0.64) and (lb2.pad_x, lb2.pad_y) == (32, 0)
    assert tall[0, 0] == pytest.approx(114 / 255)


def test_letterbox_mask_nearest_with_ignore_padding():
    mask = np.zeros((4, 8), np.uint8)
    mask[:, 4:] = 1
    out, _ = letterbox(mask, (8, 8), pad_value=255, nearest=True)
    assert out[:2].tolist() == [[255] * 8] * 2 and out[2].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert set(np.unique(out)) == {0, 1, 255}


def test_resize_keeps_channel_axis_and_dtype():
    assert resize_image(np.zeros((10, 10, 1), np.uint8), (5, 5)).shape == (5, 5, 1)
    assert resize_image(np.zeros((10, 10, 3), np.float32), (20, 30)).dtype == np.float32


def test_hflip_boxes_and_mask():
    image = np.zeros((10, 20, 3), np.uint8)
    image[:, :5] = 255
    mask = (image[..., 0] > 0).astype(np.uint8)
    out, boxes, out_mask = hflip(image, np.array([[0, 0, 5, 10]]), mask)
    assert out[:, 15:].min() == 255 and out[:, :15].max() == 0
    np.testing.assert_allclose(boxes, [[15, 0, 20, 10]])
    assert out_mask[:, 15:].min() == 1 and out_mask[:, :15].max() == 0
    assert hflip(image)[1] is None


def white_box_image(box, size=(120, 160)):
    image = np.zeros((*size, 3), np.uint8)
    x1, y1, x2, y2 = box
    image[y1:y2, x1:x2] = 255
    return image


def pixel_box(image_or_mask):
    on = image_or_mask[..., 0] > 128 if image_or_mask.ndim == 3 else image_or_mask == 1
    ys, xs = np.nonzero(on)
    return [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


@pytest.mark.parametrize("seed", range(6))
def test_scale_crop_moves_boxes_and_masks_with_pixels(seed):
    box = (60, 40, 100, 90)
    image = white_box_image(box)
    mask = (image[..., 0] > 0).astype(np.uint8)
    config = dataclasses.replace(NO_COLOUR, scale=(0.7, 1.3))
    out, boxes, classes, out_mask = random_scale_crop(
        image, np.random.default_rng(seed), np.array([box], np.float32), np.array([3]), mask, config
    )
    assert out.shape == image.shape and out_mask.shape == mask.shape and out_mask.dtype == np.uint8
    assert classes.tolist() == [3]
    np.testing.assert_allclose(boxes[0], pixel_box(out), atol=1.5)
    np.testing.assert_allclose(boxes[0], pixel_box(out_mask), atol=1.5)
    assert set(np.unique(out_mask)) <= {0, 1, 255}  # nearest: no blended ids; 255 only as padding


def test_scale_crop_drops_boxes_pushed_out_and_pads_masks_with_ignore():
    image = np.zeros((100, 100, 3), np.uint8)
    boxes = np.array([[0, 0, 10, 10], [40, 40, 60, 60]], np.float32)
    zoom_in = dataclasses.replace(NO_COLOUR, scale=(3.0, 3.0))
    kept = []
    for seed in range(20):
        _, out_boxes, out_classes, _ = random_scale_crop(
            image, np.random.default_rng(seed), boxes, np.array([1, 2]), config=zoom_in
        )
        assert len(out_boxes) == len(out_classes)
        kept.append(tuple(out_classes.tolist()))
        assert np.all(out_boxes[:, 2:] - out_boxes[:, :2] >= DEFAULT.min_box_px)
    assert (2,) in kept or () in kept  # the corner box leaves the 3x zoomed window in most crops
    zoom_out = dataclasses.replace(NO_COLOUR, scale=(0.5, 0.5))
    _, _, _, out_mask = random_scale_crop(
        image, np.random.default_rng(0), mask=np.zeros((100, 100), np.uint8), config=zoom_out
    )
    assert (out_mask == 255).mean() == pytest.approx(0.75)
    clipped, cls = clip_boxes(
        np.array([[-5, -5, 1, 50], [90, 90, 120, 130]]),
        np.array([0, 1]),
        (100, 100),
        original_area=np.array([330.0, 1200.0]),
    )
    assert cls.tolist() == [] and clipped.shape == (0, 4)  # 1 px wide; 100 of 1200 px visible (< 10 %)
    # cut_visible relabels the kept boxes that show too little of themselves (a person cut to their legs)
    boxes = np.array(
        [[10, 10, 20, 50], [90, 10, 110, 50], [95, 60, 115, 100]], np.float32
    )  # 100 %, 50 %, 25 %
    area = np.array([400.0, 800.0, 800.0])
    cut = AugmentConfig(cut_visible=0.6, cut_class=9)
    clipped, cls = clip_boxes(boxes, np.array([0, 1, 2]), (100, 100), area, cut)
    assert cls.tolist() == [0, 9, 9] and clipped[1].tolist() == [90, 10, 100, 50]
    assert clip_boxes(boxes, np.array([0, 1, 2]), (100, 100), area)[1].tolist() == [0, 1, 2]  # off by default


def test_color_jitter_dtype_range_and_seed():
    rng_image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    assert np.array_equal(color_jitter(rng_image, np.random.default_rng(1), NO_COLOUR), rng_image)
    a = color_jitter(rng_image, np.random.default_rng(1))
    b = color_jitter(rng_image, np.random.default_rng(1))
    assert a.dtype == np.uint8 and np.array_equal(a, b) and not np.array_equal(a, rng_image)
    f = color_jitter(
        rng_image.astype(np.float32) / 255, np.random.default_rng(2), AugmentConfig(brightness=0.9)
    )
    assert f.dtype == np.float32 and 0 <= f.min() and f.max() <= 1
    red = np.zeros((2, 2, 3), np.float32)
    red[..., 0] = 1.0
    shifted = color_jitter(
        red, np.random.default_rng(0), AugmentConfig(0, brightness=0, contrast=0, saturation=0, hue=0.5)
    )
    assert not np.allclose(shifted, red)  # hue moves colour around the wheel
    with pytest.raises(Exception, match="RGB"):
        color_jitter(np.zeros((4, 4), np.uint8), np.random.default_rng(0))


def test_augment_pipelines_keep_labels_consistent():
    box = (30, 20, 90, 100)
    image = white_box_image(box)
    for seed in range(8):
        out, boxes, classes = augment_detection(
            image, np.array([box], np.float32), np.array([0]), np.random.default_rng(seed), NO_COLOUR
        )
        assert classes.tolist() == [0]
        np.testing.assert_allclose(boxes[0], pixel_box(out), atol=1.5)
        mask = (image[..., 0] > 0).astype(np.uint8)
        seg_image, seg_mask = augment_segmentation(image, mask, np.random.default_rng(seed), NO_COLOUR)
        np.testing.assert_allclose(
            pixel_box(seg_image), pixel_box(seg_mask), atol=1
        )  # edge pixel: blend vs nearest
    first = augment_detection(image, np.array([box], np.float32), np.array([0]), np.random.default_rng(5))
    again = augment_detection(image, np.array([box], np.float32), np.array([0]), np.random.default_rng(5))
    assert all(np.array_equal(x, y) for x, y in zip(first, again, strict=True))


def test_augment_detection_without_jitter_keeps_the_colours():
    # jitter=False is for callers that cut a window first and jitter only the window (the detector task).
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    still = AugmentConfig(flip_p=0.0, scale=(1.0, 1.0))
    box = np.array([[10, 5, 30, 35]], np.float32)
    plain, boxes, _ = augment_detection(
        image, box, np.array([0]), np.random.default_rng(1), still, jitter=False
    )
    assert np.array_equal(plain, image) and np.array_equal(boxes, box)
    jittered, _, _ = augment_detection(image, box, np.array([0]), np.random.default_rng(1), still)
    assert not np.array_equal(jittered, image)
