"""Image pre-processing, the one home for it: letterbox (aspect-preserving fit with grey 114 padding), resize,
BGR -> RGB, and the scaling / quantization of pixels into a model's input tensor.

Training (:mod:`toolkit.data`), calibration (:mod:`toolkit.convert.calibration`), evaluation and the camera
pipeline all call these functions, so a model sees the same pixels in each. ``Letterbox`` maps boxes and points
between image and model-input pixels in both directions.

>>> boxed, transform = letterbox(frame, (192, 256))      # (192, 256, 3), the transform
>>> transform.to_image(model_boxes)                       # back to frame pixels, clipped
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from toolkit.errors import UsageError

if TYPE_CHECKING:
    from toolkit.runtime.runner import TensorSpec

PAD_VALUE = 114  # uint8 grey where a letterbox (or a training crop) runs past the image (Ultralytics' 114)


def resize_image(image: np.ndarray, size_hw: tuple[int, int], nearest: bool = False) -> np.ndarray:
    """Resize to ``size_hw`` (height, width): area averaging when shrinking (no aliasing), bilinear when
    enlarging, nearest neighbour when ``nearest`` (masks). Keeps dtype and a trailing channel of size 1."""
    h, w = int(size_hw[0]), int(size_hw[1])
    if h < 1 or w < 1:
        raise UsageError(f"resize: target size must be positive, got {h}x{w}")
    if image.shape[:2] == (h, w):
        return image.copy()
    if nearest:
        # NEAREST_EXACT samples pixel centres like INTER_LINEAR / INTER_AREA do; plain INTER_NEAREST is offset by
        # half a pixel, which shifts a resized mask against its resized image by up to one pixel.
        interp = cv2.INTER_NEAREST_EXACT
    elif h <= image.shape[0] and w <= image.shape[1]:
        interp = cv2.INTER_AREA
    else:
        interp = cv2.INTER_LINEAR
    out = cv2.resize(image, (w, h), interpolation=interp)
    return out[..., None] if image.ndim == 3 and out.ndim == 2 else out


@dataclass(frozen=True)
class Letterbox:
    """The transform of :func:`letterbox`: input = image * scale + (pad_x, pad_y)."""

    scale: float  # model-input pixels per image pixel
    pad_x: int  # columns of padding on the left of the model input
    pad_y: int  # rows of padding on top of the model input
    image_hw: tuple[int, int] | None = None  # original image size (height, width), used to clip in to_image

    def to_input(self, boxes: np.ndarray) -> np.ndarray:
        """Image-pixel xyxy boxes (K, 4) -> model-input pixels (points (K, 2) work too)."""
        pts = np.asarray(boxes, dtype=np.float32)
        offset = np.resize(np.array([self.pad_x, self.pad_y], np.float32), pts.shape[-1])
        return pts * np.float32(self.scale) + offset

    def to_image(self, boxes: np.ndarray, clip: bool = True) -> np.ndarray:
        """Model-input xyxy boxes (K, 4) -> image pixels, clipped to the image when its size is known."""
        pts = np.asarray(boxes, dtype=np.float32)
        offset = np.resize(np.array([self.pad_x, self.pad_y], np.float32), pts.shape[-1])
        out = (pts - offset) / np.float32(self.scale)
        if clip and self.image_hw is not None:
            h, w = self.image_hw
            limit = np.resize(np.array([w, h], np.float32), pts.shape[-1])
            out = np.clip(out, 0, limit)
        return out


def _pad_for(image: np.ndarray, pad_value: float | None) -> float:
    if pad_value is not None:
        return float(pad_value)
    return PAD_VALUE if image.dtype == np.uint8 else PAD_VALUE / 255.0


def letterbox(
    image: np.ndarray, out_hw: tuple[int, int], pad_value: float | None = None, nearest: bool = False
) -> tuple[np.ndarray, Letterbox]:
    """Fit ``image`` inside ``out_hw`` keeping its aspect ratio, centred, padding the rest.

    Returns (the out_hw image, its :class:`Letterbox` transform). ``pad_value`` defaults to grey 114 (or
    114/255 for float images); pass 255 with ``nearest=True`` to letterbox a mask with ignore padding.
    """
    oh, ow = int(out_hw[0]), int(out_hw[1])
    transform, (nh, nw) = letterbox_layout(image.shape[:2], out_hw)
    resized = resize_image(image, (nh, nw), nearest=nearest)
    pad_x, pad_y = transform.pad_x, transform.pad_y
    out = np.full((oh, ow, *image.shape[2:]), _pad_for(image, pad_value), dtype=image.dtype)
    out[pad_y : pad_y + nh, pad_x : pad_x + nw] = resized
    return out, transform


def letterbox_layout(image_hw: tuple[int, int], out_hw: tuple[int, int]) -> tuple[Letterbox, tuple[int, int]]:
    """Where :func:`letterbox` puts an ``image_hw`` image inside ``out_hw``: (its transform, resized (h, w))."""
    oh, ow = int(out_hw[0]), int(out_hw[1])
    h, w = int(image_hw[0]), int(image_hw[1])
    if h < 1 or w < 1:
        raise UsageError(f"letterbox: empty image of shape {tuple(image_hw)}")
    scale = min(oh / h, ow / w)
    nh, nw = min(oh, max(1, round(h * scale))), min(ow, max(1, round(w * scale)))
    pad_x, pad_y = (ow - nw) // 2, (oh - nh) // 2
    return Letterbox(scale=scale, pad_x=pad_x, pad_y=pad_y, image_hw=(h, w)), (nh, nw)


def preprocess(frame_bgr: np.ndarray, input_hw: tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """A uint8 BGR frame -> (float32 RGB (H, W, 3) in [0, 1], the letterbox transform). Reference version of
    what :class:`Detector` does in place."""
    _check_frame(frame_bgr)
    boxed, transform = letterbox(frame_bgr, input_hw)
    rgb = cv2.cvtColor(boxed, cv2.COLOR_BGR2RGB)
    return rgb.astype(np.float32) * np.float32(1 / 255.0), transform


def check_one_frame(model_name: str, shape: tuple[int, ...]) -> None:
    """UsageError when an image model's input ``shape`` has a batch > 1 (``toolkit convert --batch N``): the camera
    pipeline feeds one frame per invoke, and LiteRT cannot resize a converted int8 model's batch."""
    if len(shape) == 4 and shape[0] != 1:
        raise UsageError(
            f"{model_name} takes a fixed batch of {shape[0]} images (converted with --batch {shape[0]}); the "
            "camera pipeline runs one frame per invoke: convert it with --batch 1"
        )


def _check_frame(frame: np.ndarray) -> None:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        got = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise UsageError(f"expected a uint8 BGR frame of shape (H, W, 3), got {got}")


_CV_LUT_DTYPES = tuple(
    np.dtype(t) for t in (np.uint8, np.int8, np.uint16, np.int16, np.int32, np.float32, np.float64)
)


class ImageInput:
    """Writes letterboxed RGB frames into one preallocated (1, H, W, 3) tensor of the model's input dtype.

    ``write(frame_bgr)`` fills ``buffer`` and returns the letterbox transform; shared by detector and segmenter.
    The result equals :func:`letterbox` + BGR->RGB + quantization (the training path), but
    nothing is allocated per frame: the frame is resized (only if it does not fit at scale 1) and colour-converted
    into a padded uint8 canvas kept between frames, and one lookup table maps that canvas into the tensor.
    """

    def __init__(self, spec: TensorSpec, value_range: tuple[float, float] | None = (0.0, 1.0)) -> None:
        """``value_range``: the real values pixels 0 and 255 stand for (ours: [0, 1]); None writes the uint8
        pixel as it is (third-party uint8 models that take raw pixels; int8 ones get pixel - 128)."""
        self.spec = spec
        self.buffer = np.zeros(spec.shape, dtype=spec.dtype)
        self.input_hw = (int(spec.shape[1]), int(spec.shape[2]))
        # uint8 pixel value -> model input value; for int8 models this is the whole quantization step.
        pixels = np.arange(256, dtype=np.float32)
        if value_range is None:
            self.lut = (pixels - 128 if np.dtype(spec.dtype) == np.int8 else pixels).astype(spec.dtype)
        else:
            low, high = value_range
            levels = np.float32(low) + pixels * np.float32((high - low) / 255.0)
            self.lut = spec.quantize(levels) if spec.quantized else levels.astype(spec.dtype)
        self._canvas = np.empty((*self.input_hw, 3), np.uint8)
        self._layout: tuple[tuple[int, int], Letterbox, tuple[int, int]] | None = None

    def write(self, frame_bgr: np.ndarray) -> Letterbox:
        """A uint8 BGR frame (any size) -> the letterbox transform; the model input is in ``buffer``."""
        _check_frame(frame_bgr)
        frame_hw = frame_bgr.shape[:2]
        if self._layout is None or self._layout[0] != frame_hw:  # a new frame size: lay the canvas out again
            transform, resized_hw = letterbox_layout(frame_hw, self.input_hw)
            self._canvas[:] = PAD_VALUE
            self._layout = (frame_hw, transform, resized_hw)
        _, transform, (nh, nw) = self._layout
        region = self._canvas[transform.pad_y : transform.pad_y + nh, transform.pad_x : transform.pad_x + nw]
        source = frame_bgr if (nh, nw) == frame_hw else resize_image(frame_bgr, (nh, nw))
        if region.flags.c_contiguous:  # full-width region (the usual camera case): convert straight into it
            cv2.cvtColor(source, cv2.COLOR_BGR2RGB, dst=region)
        else:
            region[:] = cv2.cvtColor(source, cv2.COLOR_BGR2RGB)
        if self.lut.dtype in _CV_LUT_DTYPES:
            cv2.LUT(self._canvas, self.lut, dst=self.buffer[0])  # 4x faster than np.take
        else:
            np.take(self.lut, self._canvas, out=self.buffer[0])
        return transform


def unit_float(images: np.ndarray) -> np.ndarray:
    """uint8 images -> float32 in [0, 1], what the image models take."""
    return images.astype(np.float32) * np.float32(1 / 255.0)
