"""Training windows: random crops of a fixed size cut from a (larger) model input, shared by the detector and
segmenter tasks.

Both models are fully convolutional, so they can train on windows of their input -- a step costs the window's
pixels, people stay as many pixels tall as the camera shows them -- while validation, conversion and evaluation
use the whole input. A task names its window with ``crop_height`` x ``crop_width`` options (0 x 0 = the whole
input) and may anchor a window on a point (a person) so that most windows hold one.
"""

from __future__ import annotations

import numpy as np

from toolkit.errors import UsageError


def window_size(
    crop_hw: tuple[int, int], input_hw: tuple[int, int], multiple: int, task: str
) -> tuple[int, int]:
    """The training window (rows, columns): ``crop_hw``, or the whole input when it is (0, 0).

    Both sides must be multiples of ``multiple`` (the model's deepest stride) and fit in the input; otherwise a
    UsageError naming the ``task``'s options.
    """
    h, w = (int(v) for v in crop_hw)
    if h == 0 and w == 0:
        return input_hw
    if not (0 < h <= input_hw[0] and 0 < w <= input_hw[1]) or h % multiple or w % multiple:
        raise UsageError(
            f"{task} task options: crop_height x crop_width must be multiples of {multiple} within "
            f"the {input_hw[0]}x{input_hw[1]} model input (or both 0), got {h}x{w}"
        )
    return h, w


def window_origin(
    image_hw: tuple[int, int],
    window_hw: tuple[int, int],
    rng: np.random.Generator,
    anchor_yx: tuple[float, float] | None = None,
) -> tuple[int, int]:
    """Top-left (row, column) of a random ``window_hw`` window inside an ``image_hw`` image.

    Uniform over all positions, or -- with ``anchor_yx`` -- uniform over the positions whose window holds that
    pixel (clamped to the image). Draws exactly two integers from ``rng``.
    """
    (height, width), (h, w) = image_hw, window_hw
    y_lo, y_hi, x_lo, x_hi = 0, height - h, 0, width - w
    if anchor_yx is not None:
        ay, ax = int(anchor_yx[0]), int(anchor_yx[1])
        y_lo, y_hi = min(max(0, ay - h + 1), height - h), max(0, min(ay, height - h))
        x_lo, x_hi = min(max(0, ax - w + 1), width - w), max(0, min(ax, width - w))
    return int(rng.integers(y_lo, y_hi + 1)), int(rng.integers(x_lo, x_hi + 1))
