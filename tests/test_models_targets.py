"""Detector target encoding / decoding (pure numpy), config validation and the cheap package import. No TF."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from toolkit.adapters.detect import decode, find_peaks
from toolkit.errors import UsageError
from toolkit.models import config_for
from toolkit.models.detector_targets import (
    IGNORE,
    NO_BOX,
    box_target_for_loss,
    encode_targets,
    gaussian_radius,
)

HW = (192, 256)
BOXES = np.array(
    [
        [10, 20, 30, 80],  # small pedestrian
        [100, 50, 140, 150],
        [200.5, 10.25, 256, 60],  # touches the right edge
        [3, 150, 9, 170],  # 6x20 px: very small
        [60, 100, 120, 190],
    ],
    dtype=np.float32,
)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def _match(found: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Each expected box's largest corner error to its nearest found box."""
    return np.array([np.abs(found - box).max(axis=1).min() for box in expected])


def test_encode_shapes_and_centres() -> None:
    heatmap, box, mask = encode_targets(BOXES, HW)
    assert heatmap.shape == (48, 64, 1) and box.shape == (48, 64, 4) and mask.shape == (48, 64, 1)
    assert heatmap.dtype == box.dtype == mask.dtype == np.float32
    assert mask.sum() == len(BOXES)
    # the peak of each Gaussian is exactly 1 at the centre cell, and the cell holds (dx, dy, sqrt w, sqrt h)
    assert heatmap[12, 5, 0] == 1.0 and mask[12, 5, 0] == 1.0  # box 0: centre (20, 50) px -> cell (5, 12.5)
    np.testing.assert_allclose(box[12, 5], [0.0, 0.5, np.sqrt(20 / 256), np.sqrt(60 / 192)], atol=1e-6)
    assert 0.0 <= heatmap.min() and heatmap.max() == 1.0
    assert ((box >= 0) & (box <= 1)).all()


def test_round_trip_float_targets_recover_boxes() -> None:
    heatmap, box, _ = encode_targets(BOXES, HW)
    found, scores = decode(heatmap, box, HW, score_threshold=0.5, max_detections=50)
    assert found.shape == (len(BOXES), 4) and scores.shape == (len(BOXES),)
    assert np.all(scores == 1.0)
    assert _match(found, BOXES).max() < 0.01


def test_neighbour_sizes_round_trip_the_targets_the_detector_trains_on() -> None:
    # Training puts each box's size on the 8 cells around its centre too (spread_box_targets); decoding with
    # neighbour_sizes averages those nine estimates, which for exact targets are all the true size.
    from toolkit.train.task_detector import spread_box_targets

    heatmap, box, mask = encode_targets(BOXES, HW)
    trained = spread_box_targets(BOXES, box_target_for_loss(box, mask), HW)
    trained = np.where(trained == NO_BOX, 0.0, trained).astype(np.float32)
    found, _ = decode(heatmap, trained, HW, score_threshold=0.5, max_detections=50, neighbour_sizes=True)
    assert len(found) == len(BOXES) and _match(found, BOXES).max() < 0.01


def test_neighbour_sizes_are_the_heatmap_weighted_mean_of_the_3x3_cells() -> None:
    heat = np.zeros((4, 4), np.float32)
    regs = np.zeros((4, 4, 4), np.float32)
    heat[0, 0], heat[0, 1], heat[1, 0] = (
        0.8,
        0.4,
        0.2,
    )  # a peak in the corner: 5 of its 9 cells are off the map
    regs[0, 0] = (0.5, 0.5, 0.5, 0.5)
    regs[0, 1] = (0.0, 0.0, 0.2, 0.8)
    regs[1, 0] = (0.0, 0.0, 0.8, 0.2)
    regs[1, 1] = (0.0, 0.0, 0.9, 0.9)  # heat 0: no weight
    own, _ = decode(heat[..., None], regs, (16, 16), score_threshold=0.5)
    mean, _ = decode(heat[..., None], regs, (16, 16), score_threshold=0.5, neighbour_sizes=True)
    sw = (0.8 * 0.5 + 0.4 * 0.2 + 0.2 * 0.8) / 1.4
    sh = (0.8 * 0.5 + 0.4 * 0.8 + 0.2 * 0.2) / 1.4
    centre = 0.5 * 4  # the peak cell's own offset, stride 4
    np.testing.assert_allclose(
        own[0], [0, 0, 4, 4], atol=1e-5
    )  # the peak cell alone: 0.5^2 * 16 = 4 px, centre 2
    expected = [centre - sw * sw * 8, centre - sh * sh * 8, centre + sw * sw * 8, centre + sh * sh * 8]
    np.testing.assert_allclose(mean[0], np.clip(expected, 0, 16), atol=1e-5)


def test_round_trip_through_int8_levels_stays_within_a_pixel() -> None:
    """The shipped model outputs int8 sigmoids (scale 1/256): the sqrt box encoding must survive that."""
    heatmap, box, _ = encode_targets(BOXES, HW)
    q = lambda a: (np.clip(np.round(a * 256) - 128, -128, 127) + 128) / 256.0  # noqa: E731
    found, _ = decode(q(heatmap), q(box), HW, score_threshold=0.5, max_detections=50)
    assert len(found) == len(BOXES)
    assert _match(found, BOXES).max() <= 1.0  # measured 0.14 px


def test_empty_and_degenerate_boxes() -> None:
    heatmap, box, mask = encode_targets(np.zeros((0, 4)), HW)
    assert heatmap.max() == 0 and box.max() == 0 and mask.max() == 0
    found, scores = decode(heatmap, box, HW, score_threshold=0.1, max_detections=10)
    assert found.shape == (0, 4) and scores.shape == (0,)
    # zero-area and fully-outside boxes are skipped, partly-outside boxes are clipped
    heatmap, _, mask = encode_targets([[5, 5, 5, 30], [300, 10, 400, 50], [-20, -10, 20, 30]], HW)
    assert mask.sum() == 1
    found, _ = decode(heatmap, encode_targets([[-20, -10, 20, 30]], HW)[1], HW, 0.5, 10)
    np.testing.assert_allclose(found, [[0, 0, 20, 30]], atol=0.01)


def test_shared_centre_cell_goes_to_the_smaller_box() -> None:
    big, small = [0, 0, 100, 100], [46, 46, 54, 54]  # both centred at (50, 50)
    _, box, mask = encode_targets([small, big], HW)
    assert mask.sum() == 1
    np.testing.assert_allclose(box[12, 12, 2:], [np.sqrt(8 / 256), np.sqrt(8 / 192)], atol=1e-6)


def test_gaussian_radius_keeps_iou_at_min_overlap() -> None:
    """At the radius, the worst of CornerNet's three corner-shift cases has IoU exactly min_overlap."""
    for h, w in [(10, 10), (7, 3), (40, 12)]:
        r = gaussian_radius(h, w, 0.7)
        box = np.array([0, 0, w, h], float)
        ious = [
            _iou(box, box + [r, r, r, r]),
            _iou(box, box + [r, r, -r, -r]),
            _iou(box, box + [-r, -r, r, r]),
        ]
        assert min(ious) == pytest.approx(0.7, abs=1e-6), (h, w, ious)
    assert gaussian_radius(10, 10) == pytest.approx(0.8166, abs=1e-4)  # hand-computed


def test_min_radius_spreads_tiny_boxes_over_neighbours() -> None:
    heatmap, _, _ = encode_targets([[40, 40, 44, 48]], HW, min_radius=1)  # 1x2 cells: CenterNet radius 0
    assert heatmap[11, 10, 0] == 1.0 and 0.1 < heatmap[11, 11, 0] < 0.2  # exp(-2) with sigma 0.5
    heatmap, _, _ = encode_targets([[40, 40, 44, 48]], HW, min_radius=0)
    assert heatmap.sum() == 1.0


def test_find_peaks_breaks_plateau_ties_once() -> None:
    heat = np.zeros((5, 6), np.float32)
    heat[1, 1] = heat[1, 2] = 0.8  # a flat top, common after int8 quantization
    heat[3, 4] = 0.5
    heat[3, 5] = 0.6
    peaks = find_peaks(heat)
    assert sorted(zip(*np.nonzero(peaks), strict=True)) == [(1, 1), (3, 5)]


def test_decode_orders_thresholds_and_caps() -> None:
    heat = np.zeros((48, 64, 1), np.float32)
    for i, score in enumerate([0.9, 0.4, 0.7, 0.2]):
        heat[10, 5 + 10 * i] = score
    box = np.full((48, 64, 4), 0.5, np.float32)
    boxes, scores = decode(heat, box, HW, score_threshold=0.3, max_detections=2)
    np.testing.assert_allclose(scores, [0.9, 0.7])
    # peak (x 5, y 10) + offset 0.5 -> centre (22, 42) px; size 0.5**2 * (256, 192) = 64x48; clipped at x = 0
    np.testing.assert_allclose(boxes, [[0, 18, 54, 66], [70, 18, 134, 66]], atol=1e-4)


def test_decode_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="one image"):
        decode(np.zeros((1, 48, 64, 1)), np.zeros((1, 48, 64, 4)), HW)
    with pytest.raises(ValueError, match="tile"):
        decode(np.zeros((48, 64, 1)), np.zeros((48, 64, 4)), (190, 256))
    with pytest.raises(ValueError, match="multiple of the stride"):
        encode_targets(BOXES, (190, 256))
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        encode_targets(np.zeros((3, 5)), HW)


def test_box_target_for_loss_marks_cells_without_centres() -> None:
    _, box, mask = encode_targets(BOXES, HW)
    packed = box_target_for_loss(box, mask)
    assert (packed[mask[..., 0] == 0] == NO_BOX).all()
    np.testing.assert_array_equal(packed[mask[..., 0] == 1], box[mask[..., 0] == 1])


def test_config_for_validates_overrides() -> None:
    assert config_for("detector").input_shape == (192, 256, 3)
    assert config_for("classifier", {"num_classes": 3, "input_shape": [96, 96, 3]}).input_shape == (96, 96, 3)
    with pytest.raises(UsageError, match="did you mean 'num_classes'"):
        config_for("classifier", {"num_clases": 3})
    with pytest.raises(UsageError, match="unknown model kind 'detecter'; did you mean 'detector'"):
        config_for("detecter")
    with pytest.raises(UsageError, match="expected an integer"):
        config_for("behaviour", {"d_model": "big"})


def test_package_and_numpy_parts_import_without_tensorflow() -> None:
    code = (
        "import sys, toolkit.models as m, toolkit.models.detector_targets; "
        "[m.config_for(k) for k in ('classifier', 'detector', 'segmenter', 'behaviour', 'autoencoder', 'vae')]; "
        "heavy = [n for n in ('tensorflow', 'keras', 'tf_keras') if n in sys.modules]; "
        "assert not heavy, heavy"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.returncode == 0, proc.stderr


def test_ignore_boxes_mark_their_cells_but_never_a_centre() -> None:
    person = [[40, 40, 56, 80]]  # centre (48, 60) px -> cell (12, 15)
    legs = [[44, 60, 60, 100]]  # a cut person overlapping it: cells x 11..14, y 15..24 at stride 4
    heatmap, box, mask = encode_targets(person, HW, ignore_boxes=np.array(legs, np.float32))
    plain, plain_box, plain_mask = encode_targets(person, HW)
    ignored = heatmap[..., 0] == IGNORE
    region = np.zeros_like(ignored)
    region[15:25, 11:15] = True  # the cells whose centres lie in the legs box
    region[15, 12] = False  # ...but the person's centre cell stays positive
    assert np.array_equal(ignored, region)
    assert heatmap[15, 12, 0] == 1.0 and plain[15, 12, 0] == 1.0
    assert np.array_equal(heatmap[~ignored], plain[~ignored])  # elsewhere the targets are unchanged
    assert np.array_equal(box, plain_box) and np.array_equal(mask, plain_mask)  # ignored people get no box
    # a sliver narrower than a cell still ignores the cell of its centre
    tiny, _, _ = encode_targets(np.zeros((0, 4)), HW, ignore_boxes=np.array([[21, 30, 22, 31]], np.float32))
    assert (tiny[..., 0] == IGNORE).sum() == 1 and tiny[7, 5, 0] == IGNORE
