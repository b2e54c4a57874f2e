"""YOLO txt labels: boxes (``class cx cy w h``) and YOLO-seg polygons (``class x1 y1 x2 y2 ...``), normalised 0-1.

Labels sit in their own folder, one ``<image stem>.txt`` per image (the COCO128 layout:
``images/train2017/*.jpg`` with ``object_detection/labels/train2017/*.txt``).

>>> records = load_yolo_detection(images, labels, keep_classes=[0])   # person boxes only (YOLO id 0)
>>> records[0].boxes                                                   # float32 (K, 4) pixel x1 y1 x2 y2
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path

import numpy as np

from toolkit.data._text import numbered_fields, read_text, to_floats, to_int
from toolkit.data.image_folder import IMAGE_EXTENSIONS, image_size
from toolkit.data.records import DetectionRecord, PolygonRecord
from toolkit.errors import UsageError

PERSON_DETECT = 0  # YOLO / COCO128 object_detection id of 'person'
PERSON_PANOPTIC = 1  # COCO panoptic id of 'person' (COCO128 instance/semantic segmentation)
_TOLERANCE = 1e-3  # normalised coordinates may overshoot [0, 1] by this much (rounding); they are clipped


def _valid_set(valid_classes: int | Collection[int] | None) -> set[int] | None:
    if valid_classes is None:
        return None
    if isinstance(valid_classes, int):
        return set(range(valid_classes))
    return {int(c) for c in valid_classes}


def _check_class(value: float, valid: set[int] | None, where: str) -> int:
    cls = to_int(value, "class id", where)
    if cls < 0 or (valid is not None and cls not in valid):
        allowed = (
            f"0-{max(valid)}" if valid and valid == set(range(max(valid) + 1)) else "one of the dataset's ids"
        )
        raise UsageError(f"{where}: class {cls} out of range (expected {allowed})")
    return cls


def _check_unit(values: list[float], what: str, where: str) -> None:
    low, high = min(values), max(values)
    if low < -_TOLERANCE or high > 1 + _TOLERANCE:
        bad = low if low < -_TOLERANCE else high
        raise UsageError(f"{where}: {what} {bad:g} outside 0-1 (YOLO labels are normalised by image size)")


def read_yolo_boxes(
    path: str | Path, valid_classes: int | Collection[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Parse one YOLO box file. Returns (classes int64 (K,), boxes float32 (K, 4) normalised cx cy w h).

    ``valid_classes`` (a count n for ids 0..n-1, or a set of ids) rejects other ids. Every malformed line is a
    UsageError naming the file and line.
    """
    valid = _valid_set(valid_classes)
    classes, boxes = [], []
    for lineno, fields in numbered_fields(read_text(path, "label file")):
        where = f"{path} line {lineno}"
        if len(fields) != 5:
            hint = " (a polygon? use read_yolo_polygons)" if len(fields) > 5 and len(fields) % 2 == 1 else ""
            raise UsageError(f"{where}: expected 5 numbers 'class cx cy w h', got {len(fields)}{hint}")
        values = to_floats(fields, where)
        classes.append(_check_class(values[0], valid, where))
        _check_unit(values[1:], "coordinate", where)
        if values[3] <= 0 or values[4] <= 0:
            raise UsageError(f"{where}: box width and height must be > 0, got {values[3]:g} x {values[4]:g}")
        boxes.append(values[1:])
    return np.asarray(classes, np.int64), np.asarray(boxes, np.float32).reshape(-1, 4)


def read_yolo_polygons(
    path: str | Path, valid_classes: int | Collection[int] | None = None
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Parse one YOLO-seg file. Returns (classes int64 (K,), polygons: K float32 (P, 2) normalised x y arrays).

    A line needs a class and at least 3 x y points; odd coordinate counts, non-numbers, out-of-range classes or
    coordinates are UsageErrors naming the file and line.
    """
    valid = _valid_set(valid_classes)
    classes, polygons = [], []
    for lineno, fields in numbered_fields(read_text(path, "label file")):
        where = f"{path} line {lineno}"
        values = to_floats(fields, where)
        coords = values[1:]
        if len(coords) % 2:
            raise UsageError(
                f"{where}: expected 'class x1 y1 x2 y2 ...' with pairs of coordinates, got {len(coords)}"
            )
        if len(coords) < 6:
            raise UsageError(f"{where}: a polygon needs at least 3 points, got {len(coords) // 2}")
        classes.append(_check_class(values[0], valid, where))
        _check_unit(coords, "coordinate", where)
        polygons.append(np.clip(np.asarray(coords, np.float32).reshape(-1, 2), 0.0, 1.0))
    return np.asarray(classes, np.int64), polygons


def _images(images_dir: Path, labels_dir: Path) -> list[Path]:
    if not images_dir.is_dir():
        raise UsageError(f"image folder not found: {images_dir}")
    if not labels_dir.is_dir():
        raise UsageError(f"label folder not found: {labels_dir}")
    images = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not images:
        raise UsageError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in {images_dir}")
    return images


def orphan_labels(images_dir: str | Path, labels_dir: str | Path) -> list[Path]:
    """Label files with no image of the same stem: the loaders ignore them; callers may want to say so.

    (COCO128 has two: 000000000656.txt and 000000000659.txt, whose images are not in the set.)
    """
    stems = {p.stem for p in _images(Path(images_dir), Path(labels_dir))}
    return sorted(p for p in Path(labels_dir).glob("*.txt") if p.stem not in stems)


def _select(classes: np.ndarray, keep_classes: Collection[int] | None) -> np.ndarray:
    if keep_classes is None:
        return np.ones(len(classes), dtype=bool)
    return np.isin(classes, np.asarray(list(keep_classes), dtype=np.int64))


def load_yolo_detection(
    images_dir: str | Path,
    labels_dir: str | Path,
    keep_classes: Collection[int] | None = None,
    valid_classes: int | Collection[int] | None = None,
) -> list[DetectionRecord]:
    """Every image in ``images_dir`` with its boxes from ``labels_dir/<stem>.txt`` (missing file = no objects;
    label files without an image are ignored, see :func:`orphan_labels`).

    ``keep_classes`` keeps only those ids (e.g. ``[0]`` for person), ids unchanged. Returns one
    :class:`DetectionRecord` per image (pixel xyxy boxes clipped to the image), sorted by file name, image_id =
    position in the list.
    """
    records = []
    labels_root = Path(labels_dir)
    for index, image in enumerate(_images(Path(images_dir), labels_root)):
        label = labels_root / f"{image.stem}.txt"
        width, height = image_size(image)
        if label.is_file():
            classes, cxcywh = read_yolo_boxes(label, valid_classes)
        else:
            classes, cxcywh = np.zeros(0, np.int64), np.zeros((0, 4), np.float32)
        keep = _select(classes, keep_classes)
        classes, cxcywh = classes[keep], cxcywh[keep]
        half = cxcywh[:, 2:] / 2
        xyxy = np.concatenate([cxcywh[:, :2] - half, cxcywh[:, :2] + half], axis=1)
        xyxy = np.clip(xyxy * np.array([width, height, width, height], np.float32), 0, [width, height] * 2)
        records.append(
            DetectionRecord(image, width, height, xyxy.astype(np.float32), classes, image_id=index)
        )
    return records


def load_yolo_segmentation(
    images_dir: str | Path,
    labels_dir: str | Path,
    keep_classes: Collection[int] | None = None,
    valid_classes: int | Collection[int] | None = None,
) -> list[PolygonRecord]:
    """Images that HAVE a YOLO-seg label file, with their instance polygons in pixels.

    Images without a label file are left out, not treated as empty: segmentation labels often cover only
    part of a folder (COCO128: 100 of 128 images), and an unlabelled person is not background.
    """
    records = []
    labels_root = Path(labels_dir)
    for image in _images(Path(images_dir), labels_root):
        label = labels_root / f"{image.stem}.txt"
        if not label.is_file():
            continue
        width, height = image_size(image)
        classes, polygons = read_yolo_polygons(label, valid_classes)
        keep = _select(classes, keep_classes)
        scale = np.array([width, height], np.float32)
        kept = [poly * scale for poly, k in zip(polygons, keep, strict=True) if k]
        records.append(PolygonRecord(image, width, height, kept, classes[keep], image_id=len(records)))
    return records


def read_class_names(config_path: str | Path) -> dict[int, str]:
    """The id -> name table of a YOLO dataset config (``names:`` or ``classes:``), read without PyYAML.

    Accepts the mapping form (``  0: person``), a block list (``  - person``) or an inline list
    (``names: [person, bicycle]``); anything else is a UsageError naming the file and line.
    """
    names: dict[int, str] = {}
    in_block = False
    for lineno, line in enumerate(read_text(config_path, "dataset config").splitlines(), start=1):
        text = line.split(" #")[0].rstrip()
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        key = re.match(r"^(names|classes)\s*:\s*(.*)$", text)
        if key:
            in_block = True
            inline = key.group(2).strip()
            if inline.startswith("["):
                items = [s.strip().strip("'\"") for s in inline.strip("[]").split(",") if s.strip()]
                names.update(enumerate(items))
                in_block = False
            elif inline:
                raise UsageError(
                    f"{config_path} line {lineno}: cannot read '{inline}' as a list of class names"
                )
            continue
        if not in_block:
            continue
        if not text[0].isspace():  # next top-level key ends the block
            in_block = False
            continue
        item = re.match(r"^\s+(\d+)\s*:\s*(.+)$", text) or re.match(r"^\s+-\s*(.+)$", text)
        if item is None:
            raise UsageError(
                f"{config_path} line {lineno}: expected '  <id>: <name>' or '  - <name>', got {text.strip()!r}"
            )
        if item.re.groups == 2:
            names[int(item.group(1))] = item.group(2).strip().strip("'\"")
        else:
            names[len(names)] = item.group(1).strip().strip("'\"")
    if not names:
        raise UsageError(f"{config_path}: no 'names:' (or 'classes:') table of class names found")
    return names
