"""Pretrained segmenters as teachers: they pseudo-label real images for training (numpy + OpenCV + LiteRT).

The teachers are Coral's int8 DeepLab models in the shared ``models/coral-test-data`` (Apache-2.0). They only
label data; they are never shipped nor run in the device pipeline.

>>> with Teacher("cityscapes") as city, Teacher("pascal") as voc:
...     mask = street_labels(image_rgb, pascal=voc, cityscapes=city)   # uint8 (H, W) indices into CLASS_NAMES
...     boxes, crowd = person_boxes(mask == PERSON)                     # xyxy float32, crowd = ignore region

* ``pascal`` -- DeepLabV3 MobileNetV2 on PASCAL VOC: 21 classes (0 = background, person = 15). PASCAL knows no
  road or sidewalk: its background covers them, the sky and buildings alike.
* ``cityscapes`` -- DeepLab MobileNet-EdgeTPU on Cityscapes. Its ARG_MAX is the 19 Cityscapes *train ids*
  (road = 0, sidewalk = 1, ..., person = 11, car = 13, bicycle = 18): the shared
  ``cityscapes_segmentation_labels.txt`` puts a "background" line first, so its line i names class i - 1 (checked
  on the shared street image and its expected mask, which holds road = 0, sidewalk = 1, car = 13).

Preprocessing is DeepLab's: resize keeping the aspect ratio so the long side is 513, pad bottom / right with the
mean pixel (the input's zero point, i.e. 128 = 0.0), then the ARG_MAX map's valid region is cropped and resized
back to the image with nearest neighbour. Pixels are quantized with the model's own input parameters from
real = (pixel - 128) / 128, which for these models (scale 1/128, zero point 128) feeds the pixels unchanged.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from toolkit.adapters.image import resize_image
from toolkit.adapters.segment import CLASS_NAMES
from toolkit.data.augment import IGNORE
from toolkit.data.masks import MaskMapping
from toolkit.errors import ToolkitError, UsageError

TEACHER_FILES = {  # teacher name -> model file in the shared models/coral-test-data
    "pascal": "deeplabv3_mnv2_pascal_quant.tflite",
    "cityscapes": "deeplab_mobilenet_edgetpu_slim_cityscapes_quant.tflite",
}
TEACHER_DIR = ("models", "coral-test-data")  # under the shared folder
MIN_HEIGHT, MIN_PIXELS = 24, 100  # person_boxes: smaller components are dropped (px tall, pixels)
CROWD_ASPECT = 0.8  # person_boxes: a blob wider than this x its height is a crowd (several people merged)
CUT_OFF_ASPECT = 2.0  # ...but one on the bottom border only when wider than this x its height
INPUT_SIZE = 513  # DeepLab's crop size: the long side of every resized image
# real input = (pixel - mean) / std, the convention these models were converted with: it feeds the pixels unchanged
# and matches the expected street mask slightly better than DeepLab's own 2 * pixel / 255 - 1 (0.921 vs 0.918).
PIXEL_MEAN, PIXEL_STD = 128.0, 128.0

BACKGROUND, ROAD, SIDEWALK, PERSON, VEHICLE = (
    CLASS_NAMES.index(n) for n in ("background", "road", "sidewalk", "person", "vehicle")
)

# Cityscapes train ids -> our street classes; the other 13 (building ... sky, terrain) and anything else ->
# background. Rider -> person: the person on a bicycle or motorbike is who the detector should find.
CITYSCAPES_VEHICLES = (13, 14, 15, 16, 17, 18)  # car truck bus train motorcycle bicycle
STREET_FROM_CITYSCAPES = MaskMapping(
    {0: ROAD, 1: SIDEWALK, 11: PERSON, 12: PERSON, **{tid: VEHICLE for tid in CITYSCAPES_VEHICLES}},
    default=BACKGROUND,
    class_names=CLASS_NAMES,
)

# PASCAL VOC ids -> our street classes. PASCAL has no road or sidewalk class: they are in its background, so a
# PASCAL-only labelling says nothing about road / sidewalk (see :func:`street_labels`).
PASCAL_VEHICLES = (2, 6, 7, 14, 19)  # bicycle bus car motorbike train
STREET_FROM_PASCAL = MaskMapping(
    {15: PERSON, **{vid: VEHICLE for vid in PASCAL_VEHICLES}}, default=BACKGROUND, class_names=CLASS_NAMES
)

MAPPINGS = {"pascal": STREET_FROM_PASCAL, "cityscapes": STREET_FROM_CITYSCAPES}


def teacher_path(name: str) -> Path:
    """The model file of a teacher name (``pascal`` / ``cityscapes``), from the shared folder."""
    from toolkit.paths import shared_path

    if name not in TEACHER_FILES:
        raise UsageError(f"unknown teacher '{name}' (choose from {', '.join(TEACHER_FILES)})")
    return shared_path(*TEACHER_DIR, TEACHER_FILES[name])


class Teacher:
    """One DeepLab teacher around a LiteRT interpreter; ``labels(image)`` -> its class index per pixel.

    ``name`` is ``pascal`` or ``cityscapes`` (the shared model file; ``path`` may name another file of the same
    kind, e.g. the 0.5-width PASCAL model); ``num_threads`` is the interpreter's CPU threads. Close it (or use
    ``with``) to free the interpreter.
    """

    def __init__(self, name: str, num_threads: int = 2, path: str | Path | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.name = name
        self.path = Path(path) if path is not None else teacher_path(name)
        self.mapping = MAPPINGS[name] if name in MAPPINGS else None
        if not self.path.is_file():
            raise UsageError(f"teacher model not found: {self.path}")
        self._interpreter = Interpreter(str(self.path), num_threads=num_threads)
        self._interpreter.allocate_tensors()
        inp, out = self._interpreter.get_input_details()[0], self._interpreter.get_output_details()[0]
        if tuple(inp["shape"]) != (1, INPUT_SIZE, INPUT_SIZE, 3) or len(out["shape"]) != 3:
            raise UsageError(
                f"{self.path}: expected a DeepLab segmenter with a [1,{INPUT_SIZE},{INPUT_SIZE},3] "
                f"input and an ARG_MAX [1,H,W] output, got {list(inp['shape'])} -> "
                f"{list(out['shape'])}"
            )
        self._input, self._output = inp["index"], out["index"]
        self._lut, self._pad = _input_table(inp["dtype"], *inp["quantization"])

    def labels(self, image_rgb: np.ndarray) -> np.ndarray:
        """uint8 RGB (H, W, 3) -> uint8 (H, W) class indices of this teacher, at the image's own size."""
        if self._interpreter is None:
            raise ToolkitError(f"teacher {self.name} is closed")
        image = np.asarray(image_rgb)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise UsageError(
                f"teacher {self.name}: expected a uint8 RGB (H, W, 3) image, got {image.dtype} {image.shape}"
            )
        h, w = image.shape[:2]
        scale = INPUT_SIZE / max(h, w)
        nh, nw = min(INPUT_SIZE, max(1, round(h * scale))), min(INPUT_SIZE, max(1, round(w * scale)))
        batch = np.full((1, INPUT_SIZE, INPUT_SIZE, 3), self._pad, dtype=self._lut.dtype)
        batch[0, :nh, :nw] = self._lut[resize_image(image, (nh, nw))]
        self._interpreter.set_tensor(self._input, batch)
        self._interpreter.invoke()
        classes = self._interpreter.get_tensor(self._output)[0, :nh, :nw]
        return resize_image(np.clip(classes, 0, 255).astype(np.uint8), (h, w), nearest=True)

    def street(self, image_rgb: np.ndarray) -> np.ndarray:
        """uint8 (H, W) indices into :data:`CLASS_NAMES` by this teacher's mapping alone."""
        if self.mapping is None:
            raise UsageError(
                f"teacher {self.path.name}: no mapping to the street classes (pascal or cityscapes)"
            )
        return self.mapping.lut()[self.labels(image_rgb)]

    def close(self) -> None:
        self._interpreter = None

    def __enter__(self) -> Teacher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _input_table(dtype: type, scale: float, zero_point: int) -> tuple[np.ndarray, int]:
    """(256-entry pixel -> model input lookup table, the padding value = the quantized mean pixel)."""
    if not scale:  # a float input: feed the real values
        return ((np.arange(256) - PIXEL_MEAN) / PIXEL_STD).astype(dtype), 0
    info = np.iinfo(dtype)
    real = (np.arange(256) - PIXEL_MEAN) / PIXEL_STD
    table = np.clip(np.round(real / scale + zero_point), info.min, info.max).astype(dtype)
    return table, int(zero_point)


# ---------------------------------------------------------------------------------------------- street labels


def street_labels(
    image_rgb: np.ndarray, pascal: Teacher | None = None, cityscapes: Teacher | None = None
) -> np.ndarray:
    """uint8 (H, W) street-class indices (255 = ignore) of an image from one or both teachers.

    * Both: road and sidewalk from Cityscapes; person and vehicle from PASCAL ALONE, drawn over them; what
      Cityscapes alone calls person or vehicle becomes background. Measured on the 100 masked COCO128 images,
      Cityscapes' person / vehicle pixels that PASCAL does not confirm are 95 % / 99 % wrong (mostly background:
      dogs, horses, furniture), the union's person IoU is 0.47 against PASCAL's 0.83 and its person boxes'
      precision 0.18 against 0.66 (PETS street video: 0.29 against 0.51) for at most +0.02 recall; on the
      shared street image both find the car equally well (IoU 0.85 / 0.86).
    * Cityscapes alone: its own mapping (:data:`STREET_FROM_CITYSCAPES`). It is a street-scene model: off the
      street (COCO128) it calls most ground "road" (road precision 0.15).
    * PASCAL alone: person and vehicle; every other pixel is IGNORE (255), not background, because PASCAL's
      background holds road and sidewalk too and a student must not learn that road is background.
    """
    if pascal is None and cityscapes is None:
        raise UsageError("street_labels needs at least one teacher (pascal and / or cityscapes)")
    if cityscapes is None:
        voc = pascal.street(image_rgb)
        voc[voc == BACKGROUND] = IGNORE
        return voc
    out = cityscapes.street(image_rgb)
    if pascal is None:
        return out
    voc = pascal.street(image_rgb)
    out[(out == PERSON) | (out == VEHICLE)] = BACKGROUND
    out[voc == VEHICLE] = VEHICLE
    out[voc == PERSON] = PERSON
    return out


# ---------------------------------------------------------------------------------------------- person boxes


def person_boxes(
    person_mask: np.ndarray,
    min_height: int = MIN_HEIGHT,
    min_pixels: int = MIN_PIXELS,
    crowd_aspect: float = CROWD_ASPECT,
) -> tuple[np.ndarray, np.ndarray]:
    """Person boxes from a boolean (H, W) person mask: (float32 (K, 4) x1 y1 x2 y2 pixels, bool (K,) crowd).

    The rule, one box per 8-connected component of the mask:

    * dropped: shorter than ``min_height`` px or fewer than ``min_pixels`` pixels (the teachers see a 513 px
      image and cannot resolve such people; on COCO128 dropping them raises precision 0.66 -> 0.71 at the same
      recall);
    * crowd (an ignore region, neither target nor background): wider than ``crowd_aspect`` x its height --
      people side by side merged into one blob, which no single box fits (a walking person is ~0.4 wide per
      unit of height);
    * except a component touching the bottom border that is at most :data:`CUT_OFF_ASPECT` x as wide as tall:
      a person cut off at the waist or chest (a portrait, a close passer-by) is wide for its visible height yet
      one person (7 of the 10 such COCO128 blobs match a true box at IoU >= 0.5); wider ones are crowds.
    """
    mask = np.asarray(person_mask).astype(np.uint8)
    if mask.ndim != 2:
        raise UsageError(f"person_boxes: expected a (H, W) mask, got shape {mask.shape}")
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    boxes, crowd = [], []
    for x, y, w, h, area in stats[1:count].tolist():
        if h < min_height or area < min_pixels:
            continue
        cut_off = y + h >= mask.shape[0]
        boxes.append((x, y, x + w, y + h))
        crowd.append(w > (CUT_OFF_ASPECT if cut_off else crowd_aspect) * h)
    return np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(crowd, bool)
