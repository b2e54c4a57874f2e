"""The per-image label records every detection / instance-segmentation loader returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


def _no_crowd() -> np.ndarray:
    return np.zeros(0, dtype=bool)


@dataclass(frozen=True, eq=False)
class DetectionRecord:
    """One image's ground-truth boxes, in pixels of the stored image (EXIF orientation ignored)."""

    path: Path  # the image file
    width: int  # image width in pixels
    height: int  # image height in pixels
    boxes: np.ndarray  # float32 (K, 4) x1 y1 x2 y2 in pixels
    classes: np.ndarray  # int64 (K,) class ids as in the source (YOLO: 0-79, person = 0)
    image_id: int = 0  # COCO image id, or the position in the loader's list for YOLO folders
    crowd: np.ndarray = field(default_factory=_no_crowd)  # bool (K,) COCO iscrowd; empty = none are crowds

    def __post_init__(self) -> None:
        if len(self.crowd) == 0 and len(self.boxes):
            object.__setattr__(self, "crowd", np.zeros(len(self.boxes), dtype=bool))
        if not len(self.boxes) == len(self.classes) == len(self.crowd):
            raise ValueError(
                f"DetectionRecord {self.path}: {len(self.boxes)} boxes, {len(self.classes)} classes, "
                f"{len(self.crowd)} crowd flags"
            )


@dataclass(frozen=True, eq=False)
class PolygonRecord:
    """One image's instance polygons (YOLO-seg), in pixels of the stored image."""

    path: Path  # the image file
    width: int  # image width in pixels
    height: int  # image height in pixels
    polygons: list[np.ndarray]  # float32 (P_i, 2) x y vertices in pixels, one array per instance
    classes: np.ndarray  # int64 (K,) class ids as in the source (COCO panoptic ids: person = 1)
    image_id: int = 0  # the position in the loader's list
