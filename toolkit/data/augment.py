"""Resizing, letterboxing and label-consistent augmentation (boxes, masks, trajectories), numpy + OpenCV only.

Conventions: images are H x W x C arrays, uint8 0-255 or float 0-1 (the dtype is kept); boxes are float
(K, 4) pixel ``x1 y1 x2 y2``; masks are uint8 H x W class indices with 255 = ignore; randomness comes only
from the ``numpy.random.Generator`` passed in, so a seeded generator reproduces an augmentation exactly.

>>> boxed, lb = letterbox(frame, (320, 320))        # the camera pipeline uses this exact function
>>> image_boxes = lb.to_image(model_boxes)           # back to frame pixels, clipped to the frame
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from toolkit.adapters.image import PAD_VALUE, resize_image
from toolkit.errors import UsageError

IGNORE = 255  # mask value that losses and metrics skip


@dataclass(frozen=True)
class AugmentConfig:
    flip_p: float = 0.5  # probability of a horizontal flip
    scale: tuple[float, float] = (0.6, 1.4)  # random zoom range for random_scale_crop (1 = unchanged)
    min_box_px: float = 2.0  # boxes narrower or shorter than this after cropping are dropped
    min_box_visible: float = (
        0.1  # ...and so are boxes keeping less than this share of their area (Ultralytics' 0.1)
    )
    cut_visible: float = 0.0  # kept boxes showing less than this share of their area get class cut_class
    cut_class: int = (
        -1
    )  # ...e.g. an "ignore" class: a person cut down to their legs is not a person-shaped box
    brightness: float = 0.2  # brightness factor drawn from [1 - b, 1 + b]
    contrast: float = 0.2  # contrast factor drawn from [1 - c, 1 + c]
    saturation: float = 0.3  # saturation factor drawn from [1 - s, 1 + s]
    hue: float = 0.02  # hue shift drawn from [-h, h], as a fraction of the colour wheel
    pad_value: int = (
        PAD_VALUE  # uint8 grey used where a crop or letterbox runs past the image (Ultralytics' 114)
    )


DEFAULT = AugmentConfig()


def hflip(
    image: np.ndarray, boxes: np.ndarray | None = None, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Mirror left-right. Returns (image, boxes, mask); boxes stay x1 < x2, None inputs come back None."""
    width = image.shape[1]
    out_boxes = None
    if boxes is not None:
        b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        out_boxes = np.stack([width - b[:, 2], b[:, 1], width - b[:, 0], b[:, 3]], axis=1)
    out_mask = None if mask is None else np.ascontiguousarray(mask[:, ::-1])
    return np.ascontiguousarray(image[:, ::-1]), out_boxes, out_mask


def flip_trajectories(obs: np.ndarray, fut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror (N, T, 2) x-y tracks in x about each track's last observed point (stays in the scene's range)."""
    x0 = obs[:, -1:, 0:1]
    sign = np.array([-1.0, 1.0], dtype=obs.dtype)
    shift = np.concatenate([2 * x0, np.zeros_like(x0)], axis=-1)
    return obs * sign + shift, fut * sign + shift


def clip_boxes(
    boxes: np.ndarray,
    classes: np.ndarray,
    size_hw: tuple[int, int],
    original_area: np.ndarray | None = None,
    config: AugmentConfig = DEFAULT,
) -> tuple[np.ndarray, np.ndarray]:
    """Clip xyxy boxes to the image; drop those thinner than ``min_box_px`` or keeping less than
    ``min_box_visible`` of ``original_area``; kept boxes showing less than ``cut_visible`` of it are relabelled
    ``cut_class``. Returns (boxes float32 (K', 4), classes (K',))."""
    h, w = size_hw
    b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    clipped = np.clip(b, 0, np.array([w, h, w, h], np.float32))
    bw, bh = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    keep = (bw >= config.min_box_px) & (bh >= config.min_box_px)
    classes = np.asarray(classes)
    if original_area is not None:
        area = np.maximum(np.asarray(original_area, np.float64), 1e-9)
        keep &= bw * bh >= config.min_box_visible * area
        if config.cut_visible > 0:
            classes = np.where(bw * bh < config.cut_visible * area, config.cut_class, classes).astype(
                classes.dtype
            )
    return clipped[keep], classes[keep]


def random_scale_crop(
    image: np.ndarray,
    rng: np.random.Generator,
    boxes: np.ndarray | None = None,
    classes: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    config: AugmentConfig = DEFAULT,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Zoom by a random factor in ``config.scale`` and take a same-size window at a random offset.

    Zooming out pads with ``pad_value`` (masks with 255 = ignore). Boxes move with the image, are clipped, and
    tiny or mostly-cut boxes are dropped with their classes. Returns (image, boxes, classes, mask), same H x W.
    """
    h, w = image.shape[:2]
    s = float(rng.uniform(*config.scale))
    sh, sw = max(1, round(h * s)), max(1, round(w * s))
    # Offset of the output window inside the scaled image; negative = the image sits inside padding.
    ox = int(rng.integers(min(0, sw - w), max(0, sw - w) + 1))
    oy = int(rng.integers(min(0, sh - h), max(0, sh - h) + 1))

    def place(src: np.ndarray, fill: float, nearest: bool) -> np.ndarray:
        scaled = resize_image(src, (sh, sw), nearest=nearest)
        out = np.full((h, w, *src.shape[2:]), fill, dtype=src.dtype)
        y0, x0 = max(0, oy), max(0, ox)
        y1, x1 = min(sh, oy + h), min(sw, ox + w)
        out[y0 - oy : y1 - oy, x0 - ox : x1 - ox] = scaled[y0:y1, x0:x1]
        return out

    fill = config.pad_value if image.dtype == np.uint8 else config.pad_value / 255.0
    out_image = place(image, fill, False)
    out_mask = None
    if mask is not None:
        if mask.shape[:2] != (h, w):
            raise UsageError(f"random_scale_crop: mask is {mask.shape[:2]} but image is {(h, w)}")
        out_mask = place(mask, IGNORE, True)
    out_boxes, out_classes = boxes, classes
    if boxes is not None:
        b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        cls = np.zeros(len(b), np.int64) if classes is None else np.asarray(classes)
        if len(cls) != len(b):
            raise UsageError(f"random_scale_crop: {len(b)} boxes but {len(cls)} classes")
        sx, sy = sw / w, sh / h
        moved = b * np.array([sx, sy, sx, sy], np.float32) - np.array([ox, oy, ox, oy], np.float32)
        area = (moved[:, 2] - moved[:, 0]) * (moved[:, 3] - moved[:, 1])
        out_boxes, out_classes = clip_boxes(moved, cls, (h, w), area, config)
    return out_image, out_boxes, out_classes, out_mask


def color_jitter(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig = DEFAULT) -> np.ndarray:
    """Random brightness, contrast, saturation (1 - x .. 1 + x factors) and hue shift of an RGB image.

    Works in float; returns the input dtype (uint8 rounded and clipped to 0-255, float clipped to 0-1)."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise UsageError(f"color_jitter: expected an H x W x 3 RGB image, got shape {image.shape}")
    is_uint8 = image.dtype == np.uint8
    x = image.astype(np.float32) / (255.0 if is_uint8 else 1.0)
    factors = rng.uniform(-1.0, 1.0, size=4).astype(np.float32)  # float32 scalars keep x float32 (NEP 50)
    x = x * (1 + config.brightness * factors[0])
    gray = x @ np.array([0.299, 0.587, 0.114], np.float32)
    x = (x - gray.mean()) * (1 + config.contrast * factors[1]) + gray.mean()
    x = (x - gray[..., None]) * (1 + config.saturation * factors[2]) + gray[..., None]
    x = np.clip(x, 0.0, 1.0)
    if config.hue:
        hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV)  # float input: H in degrees [0, 360)
        hsv[..., 0] = np.mod(hsv[..., 0] + 360.0 * config.hue * factors[3], 360.0)
        x = np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), 0.0, 1.0)
    if is_uint8:
        return np.round(x * 255.0).astype(np.uint8)
    return x.astype(image.dtype)


def augment_detection(
    image: np.ndarray,
    boxes: np.ndarray,
    classes: np.ndarray,
    rng: np.random.Generator,
    config: AugmentConfig = DEFAULT,
    jitter: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flip (p = flip_p), scale-crop and colour-jitter an image with its xyxy boxes. Returns (image, boxes,
    classes); boxes that end up tiny or mostly outside are dropped with their classes.

    ``jitter=False`` leaves the colours alone, for a caller that cuts a smaller window first and jitters only that
    (:func:`color_jitter` costs per pixel and is most of the cost of this function)."""
    if rng.random() < config.flip_p:
        image, boxes, _ = hflip(image, boxes)
    image, boxes, classes, _ = random_scale_crop(image, rng, boxes, classes, config=config)
    return (color_jitter(image, rng, config) if jitter else image), boxes, classes


def augment_segmentation(
    image: np.ndarray,
    mask: np.ndarray,
    rng: np.random.Generator,
    config: AugmentConfig = DEFAULT,
    jitter: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Flip, scale-crop (mask nearest-neighbour, padding = 255 ignore) and colour-jitter. Returns (image, mask).

    ``jitter=False``: no colour jitter (see :func:`augment_detection`)."""
    if rng.random() < config.flip_p:
        image, _, mask = hflip(image, mask=mask)
    image, _, _, mask = random_scale_crop(image, rng, mask=mask, config=config)
    return (color_jitter(image, rng, config) if jitter else image), mask
