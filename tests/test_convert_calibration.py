"""Calibration that matches the device: letterbox for detectors/segmenters by default, value-range and shape
mismatches refused, a warning under 100 samples, and the ordered samples' hash in the manifest."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from toolkit.convert.calibration import load_calibration
from toolkit.errors import UsageError


def _images(folder: Path, n: int) -> Path:
    folder.mkdir()
    for i in range(n):
        image = np.zeros((40, 80, 3), np.uint8)
        image[:, :, 2] = 255  # a red, wide frame
        cv2.imwrite(str(folder / f"{i:03d}.png"), image)
    return folder


def test_auto_resize_letterboxes_for_a_detector_and_stretches_for_a_classifier(tmp_path: Path) -> None:
    folder = _images(tmp_path / "frames", 30)
    det = load_calibration(folder, {"image": (32, 32, 3)}, 20, 4, kind="detector")
    clf = load_calibration(folder, {"image": (32, 32, 3)}, 20, 4, kind="classifier")
    top_row_det, top_row_clf = det.calibrate["image"][0, 0], clf.calibrate["image"][0, 0]
    assert np.allclose(top_row_det, 114 / 255.0, atol=1e-6)  # the pipeline's grey letterbox padding
    assert np.allclose(top_row_clf, [1.0, 0.0, 0.0])  # stretched: red to the edge
    assert "letterboxed" in det.describe()["preprocessing"] and "stretched" in clf.describe()["preprocessing"]


def test_pixels_in_0_255_are_refused_for_our_image_models(tmp_path: Path) -> None:
    file = tmp_path / "raw.npy"
    np.save(file, np.random.default_rng(0).integers(0, 256, (50, 8, 8, 3)).astype(np.float32))
    with pytest.raises(
        UsageError,
        match=r"calibration images span 0..255, but a detector takes pixels in \[0, 1\] "
        r"\(as the device feeds it\): divide 0-255 pixels by 255",
    ):
        load_calibration(file, {"image": (8, 8, 3)}, 40, 4, kind="detector")
    other = load_calibration(
        file, {"image": (8, 8, 3)}, 40, 4, kind=None
    )  # an unknown model: its own business
    assert other.count == 40


def test_shape_mismatch_is_an_error_not_a_resize(tmp_path: Path) -> None:
    file = tmp_path / "small.npy"
    np.save(file, np.zeros((50, 16, 16, 3), np.float32))
    with pytest.raises(UsageError, match=r"expects samples of shape \[32, 32, 3\]"):
        load_calibration(file, {"image": (32, 32, 3)}, 40, 4, kind="detector")


def test_nan_or_infinite_inputs_are_refused(tmp_path: Path) -> None:
    """A NaN sample converted with exit 0 (issue 15 follow-up): its int8 ranges would come from garbage."""
    for value, name in ((np.nan, "nan"), (np.inf, "inf")):
        data = np.random.default_rng(0).random((50, 8, 8, 1), np.float32)
        data[7, 1, 2, 0] = value
        np.save(tmp_path / f"{name}.npy", data)
        np.savez(tmp_path / f"{name}.npz", input=data)
        for file in (tmp_path / f"{name}.npy", tmp_path / f"{name}.npz"):
            with pytest.raises(
                UsageError, match=r"holds NaN or infinite values in 1 sample\(s\) \(first: sample 7\)"
            ):
                load_calibration(file, {"input": (8, 8, 1)}, 40, 4, kind=None)


def test_few_samples_warn_and_the_ordered_hash_is_stable(tmp_path: Path) -> None:
    file = tmp_path / "few.npy"
    np.save(file, np.random.default_rng(1).random((30, 4, 4, 1), dtype=np.float32))
    first = load_calibration(file, {"image": (4, 4, 1)}, 200, 4, seed=7, kind="classifier")
    again = load_calibration(file, {"image": (4, 4, 1)}, 200, 4, seed=7, kind="classifier")
    other_seed = load_calibration(file, {"image": (4, 4, 1)}, 200, 4, seed=8, kind="classifier")
    assert first.describe()["warnings"] == [
        "only 26 calibration samples: int8 ranges from fewer than 100 are often too narrow (100-500 advised)"
    ]
    assert first.samples_sha256() == again.samples_sha256() != other_seed.samples_sha256()
    assert first.files_sha256 == other_seed.files_sha256  # the same file; another order of its samples


def test_a_short_parity_hold_back_is_said_not_silent(tmp_path: Path) -> None:
    """Parity holds back at most a fifth of the samples: fewer than --parity-samples asked for is a warning that
    says how many were used, and enough data gives exactly the number asked for."""
    file = tmp_path / "few.npy"
    np.save(file, np.random.default_rng(0).random((30, 4, 4, 1), dtype=np.float32))
    short = load_calibration(file, {"input": (4, 4, 1)}, 200, 16, kind=None)
    assert len(short.parity["input"]) == 6
    assert any("6 held-back sample(s), not the 16 asked for" in w for w in short.warnings), short.warnings
    enough = load_calibration(file, {"input": (4, 4, 1)}, 200, 5, kind=None)
    assert len(enough.parity["input"]) == 5
    assert not any("held-back" in w for w in enough.warnings)
