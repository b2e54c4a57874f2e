"""What the image-model evaluators (detector, segmenter) share: the model's input size and realistic model inputs
for calibration and benchmarks, letterboxed exactly as the camera pipeline letterboxes frames (numpy + OpenCV)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from toolkit.data.augment import letterbox
from toolkit.data.spec import DataSpec
from toolkit.errors import UsageError
from toolkit.eval.predictor import Predictor

ImageSource = tuple[Callable[[int], np.ndarray], int]  # (i -> original uint8 RGB image, number of images)


def image_input_hw(predictor: Predictor, kind: str) -> tuple[int, int]:
    """(H, W) of the ``image`` input of a ``kind`` model ("detector", "segmenter"); a UsageError unless (H, W, 3)."""
    shape = predictor.input_shapes.get("image")
    if shape is None or len(shape) != 3 or shape[2] != 3:
        raise UsageError(f"{predictor.path}: a {kind} takes an 'image' input of shape (H, W, 3), got "
                         f"{predictor.input_shapes}")
    return int(shape[0]), int(shape[1])


def unit_float(images: np.ndarray) -> np.ndarray:
    """uint8 images -> float32 in [0, 1], what the image models take."""
    return images.astype(np.float32) * np.float32(1 / 255.0)


def letterboxed_inputs(spec: DataSpec, input_shapes: dict[str, tuple[int, ...]], kind: str,
                       from_samples: Callable[[DataSpec], ImageSource], limit: int | None = None,
                       seed: int = 0) -> dict[str, np.ndarray]:
    """Realistic ``image`` inputs: letterboxed RGB in [0, 1], float32 (N, H, W, 3).

    The images come from an ``images:path=...`` folder of frames, or else from ``from_samples(spec)`` (the
    kind's own samples); ``limit`` images at most, drawn without replacement with ``seed`` and kept in order.
    """
    shape = input_shapes.get("image")
    if shape is None or len(shape) != 3:
        raise UsageError(f"a {kind} takes one 'image' input (H, W, 3), got inputs {dict(input_shapes)}")
    input_hw = (int(shape[0]), int(shape[1]))
    if spec.name == "images":
        from toolkit.data.image_folder import list_images, read_rgb

        files = list_images(spec.get("path"))
        if not files:
            raise UsageError(f"data '{spec}': no images found")
        load, n = (lambda i: read_rgb(files[i])), len(files)
    else:
        load, n = from_samples(spec)
    pick = np.arange(n)
    if limit is not None and limit < n:
        pick = np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))
    return {"image": unit_float(np.stack([letterbox(load(int(i)), input_hw)[0] for i in pick]))}
