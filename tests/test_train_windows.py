"""Training-window geometry shared by the detector and segmenter tasks (toolkit.train.windows)."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.errors import UsageError
from toolkit.train.windows import window_origin, window_size


def test_window_size_whole_input_or_a_fitting_multiple():
    assert window_size((0, 0), (96, 128), 32, "detector") == (96, 128)
    assert window_size((64, 96), (96, 128), 32, "detector") == (64, 96)
    for bad in ((60, 96), (128, 96), (64, 0), (0, 64)):
        with pytest.raises(UsageError, match=r"^detector task options: .*multiples of 32 .*96x128"):
            window_size(bad, (96, 128), 32, "detector")


def test_uniform_windows_cover_every_position_and_stay_inside():
    rng = np.random.default_rng(0)
    origins = np.array([window_origin((10, 12), (4, 5), rng) for _ in range(2000)])
    assert origins[:, 0].min() == 0 and origins[:, 0].max() == 6
    assert origins[:, 1].min() == 0 and origins[:, 1].max() == 7


def test_anchored_windows_always_hold_the_anchor():
    rng = np.random.default_rng(1)
    for anchor in ((0, 0), (9, 11), (5, 6), (2, 10)):
        origins = np.array([window_origin((10, 12), (4, 5), rng, anchor) for _ in range(300)])
        assert ((origins[:, 0] <= anchor[0]) & (anchor[0] < origins[:, 0] + 4)).all()
        assert ((origins[:, 1] <= anchor[1]) & (anchor[1] < origins[:, 1] + 5)).all()
        assert (origins >= 0).all() and (origins[:, 0] <= 6).all() and (origins[:, 1] <= 7).all()
    # an anchor outside the image (a clipped box centre) is clamped: the window still fits
    y, x = window_origin((10, 12), (4, 5), rng, (15.0, -3.0))
    assert (y, x) == (6, 0)


def test_two_draws_per_window_whatever_the_anchor():
    a, b = np.random.default_rng(2), np.random.default_rng(2)
    window_origin((10, 12), (4, 5), a)
    window_origin((10, 12), (4, 5), b, (3, 3))
    assert a.integers(1 << 30) == b.integers(1 << 30)
