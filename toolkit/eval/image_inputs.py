"""What the image-model evaluators (detector, segmenter) share: the model's input size and realistic model inputs
for calibration and benchmarks, letterboxed exactly as the camera pipeline letterboxes frames (numpy + OpenCV)."""

from __future__ import annotations

from toolkit.errors import UsageError
from toolkit.eval.predictor import Predictor


def image_input_hw(predictor: Predictor, kind: str) -> tuple[int, int]:
    """(H, W) of the ``image`` input of a ``kind`` model ("detector", "segmenter"); a UsageError unless (H, W, 3)."""
    shape = predictor.input_shapes.get("image")
    if shape is None or len(shape) != 3 or shape[2] != 3:
        raise UsageError(
            f"{predictor.path}: a {kind} takes an 'image' input of shape (H, W, 3), got "
            f"{predictor.input_shapes}"
        )
    return int(shape[0]), int(shape[1])
