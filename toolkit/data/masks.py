"""Semantic-segmentation masks: single-channel class-index PNGs, class remapping, nearest-neighbour resizing.

A :class:`MaskMapping` turns a dataset's ids into ours, e.g. COCO panoptic (person = 1, 0 = unlabeled) into
``background = 0, person = 1`` with unlabeled pixels ignored (255), which losses and metrics skip.

>>> pairs = pair_masks(coco / "images/train2017", coco / "semantic_segmentation/masks/train2017")
>>> image, mask = load_image_and_mask(*pairs[0], (256, 256), PERSON_FROM_PANOPTIC)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from toolkit.adapters.image import resize_image
from toolkit.data.augment import IGNORE
from toolkit.data.image_folder import IMAGE_EXTENSIONS, read_rgb
from toolkit.errors import UsageError


@dataclass(frozen=True)
class MaskMapping:
    """Source class id -> our class index; ids not in ``table`` become ``default``."""

    table: Mapping[int, int] = field(default_factory=dict)  # source id -> our index (or 255 = ignore)
    default: int = 0  # what every other source id becomes (0 = background, or 255 = ignore)
    class_names: tuple[str, ...] = ()  # names of our indices 0, 1, ...

    def lut(self) -> np.ndarray:
        """The 256-entry uint8 lookup table (applied with ``lut[mask]``)."""
        table = np.full(256, self.default, dtype=np.uint8)
        for src, dst in self.table.items():
            if not (0 <= int(src) <= 255 and 0 <= int(dst) <= 255):
                raise UsageError(f"mask mapping {src} -> {dst}: ids must be 0-255")
            table[int(src)] = int(dst)
        return table


# COCO panoptic / COCO128 semantic masks -> person segmentation: person (1) -> 1, unlabeled (0) -> ignore,
# every other thing or stuff class -> background.
PERSON_FROM_PANOPTIC = MaskMapping({0: IGNORE, 1: 1}, default=0, class_names=("background", "person"))


def read_mask(path: str | Path) -> np.ndarray:
    """Read a single-channel 8-bit class-index image (PNG) into uint8 (H, W), values unchanged.

    Colour (3- or 4-channel) or 16-bit images, or undecodable files, are UsageErrors naming the file.
    """
    file = Path(path)
    try:
        raw = np.fromfile(file, dtype=np.uint8)
    except FileNotFoundError:
        raise UsageError(f"mask not found: {file}") from None
    except OSError as exc:
        raise UsageError(f"cannot read mask {file}: {exc.strerror or exc}") from None
    mask = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED) if raw.size else None
    if mask is None:
        raise UsageError(f"cannot decode mask {file} (empty, truncated or not an image)")
    if mask.ndim == 3 and mask.shape[2] != 1:
        raise UsageError(
            f"mask {file} has {mask.shape[2]} channels; expected a single-channel class-index PNG "
            "(one class id per pixel, not a colour rendering)"
        )
    if mask.dtype != np.uint8:
        raise UsageError(f"mask {file} is {mask.dtype}; expected 8-bit class indices (0-255)")
    return mask.reshape(mask.shape[:2])


def remap_mask(mask: np.ndarray, mapping: MaskMapping) -> np.ndarray:
    """Apply ``mapping`` to every pixel of a uint8 mask -> uint8 mask of our class indices."""
    return mapping.lut()[np.asarray(mask, dtype=np.uint8)]


def resize_mask(mask: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize (never invents class ids between two classes)."""
    return resize_image(mask, size_hw, nearest=True)


def load_mask(
    path: str | Path,
    mapping: MaskMapping | None = None,
    size_hw: tuple[int, int] | None = None,
    expect_hw: tuple[int, int] | None = None,
) -> np.ndarray:
    """:func:`read_mask`, checked against the image size ``expect_hw``, remapped, then resized to ``size_hw``."""
    mask = read_mask(path)
    if expect_hw is not None and mask.shape != tuple(expect_hw):
        raise UsageError(
            f"mask {path} is {mask.shape[1]}x{mask.shape[0]} but its image is {expect_hw[1]}x{expect_hw[0]} "
            "(width x height); masks must match their images pixel for pixel"
        )
    if mapping is not None:
        mask = remap_mask(mask, mapping)
    return resize_mask(mask, size_hw) if size_hw is not None else mask


def load_image_and_mask(
    image_path: str | Path,
    mask_path: str | Path,
    size_hw: tuple[int, int] | None = None,
    mapping: MaskMapping | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """An image and its mask, checked to be the same size, optionally resized together.

    Returns (float32 (H, W, 3) RGB in [0, 1] (area / bilinear resize), uint8 (H, W) mask (nearest)).
    """
    image = read_rgb(image_path)
    mask = load_mask(mask_path, mapping, expect_hw=image.shape[:2])
    if size_hw is not None:
        image, mask = resize_image(image, size_hw), resize_mask(mask, size_hw)
    return image.astype(np.float32) / 255.0, mask


def pair_masks(images_dir: str | Path, masks_dir: str | Path) -> list[tuple[Path, Path]]:
    """(image, mask) for every image that has ``masks_dir/<stem>.png``, sorted by name.

    Images without a mask are left out (they are unlabelled, not background); a mask with no image, or no
    pairs at all, is a UsageError.
    """
    images_root, masks_root = Path(images_dir), Path(masks_dir)
    for folder, what in ((images_root, "image"), (masks_root, "mask")):
        if not folder.is_dir():
            raise UsageError(f"{what} folder not found: {folder}")
    images = {
        p.stem: p for p in images_root.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
    }
    masks = sorted(masks_root.glob("*.png"))
    orphans = [m for m in masks if m.stem not in images]
    if orphans:
        raise UsageError(f"mask {orphans[0]} has no image with that name in {images_root}")
    if not masks:
        raise UsageError(f"no .png masks found in {masks_root}")
    return [(images[m.stem], m) for m in masks]


def polygons_to_mask(
    polygons: Sequence[np.ndarray], values: Sequence[int], size_hw: tuple[int, int], background: int = 0
) -> np.ndarray:
    """Rasterise pixel polygons (P, 2) into a uint8 (H, W) mask; polygon i is filled with ``values[i]``.

    Later polygons paint over earlier ones. Use with :func:`toolkit.data.yolo.load_yolo_segmentation`.
    """
    if len(polygons) != len(values):
        raise UsageError(f"polygons_to_mask: {len(polygons)} polygons but {len(values)} values")
    mask = np.full(tuple(int(s) for s in size_hw), background, dtype=np.uint8)
    for poly, value in zip(polygons, values, strict=True):
        if not 0 <= int(value) <= 255:
            raise UsageError(f"polygons_to_mask: value {int(value)} does not fit a uint8 mask (0-255)")
        points = np.round(np.asarray(poly, dtype=np.float64)).astype(np.int32).reshape(-1, 1, 2)
        cv2.fillPoly(mask, [points], color=int(value))
    return mask
