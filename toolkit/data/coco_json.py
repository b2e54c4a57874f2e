"""COCO JSON detection annotations in and out: read them into records, write records + predictions for pycocotools.

>>> records, names = load_coco_detection("instances_val2017.json", "val2017/", keep_categories=[1])
>>> gt = coco_ground_truth(records, {0: "person"})          # dict for pycocotools COCO().dataset
>>> dets = coco_detections(records, predictions)             # list for COCO.loadRes
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.data.records import DetectionRecord
from toolkit.errors import UsageError


def _number_list(value: Any, length: int, where: str) -> list[float]:
    ok = isinstance(value, list) and len(value) == length
    if ok:
        ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    if not ok:
        raise UsageError(f"{where}: expected a list of {length} numbers, got {json.dumps(value)[:80]}")
    return [float(v) for v in value]


def _int(entry: dict[str, Any], key: str, where: str) -> int:
    value = entry[key]
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value != int(value)
    ):
        raise UsageError(f"{where}: '{key}' must be a whole number, got {json.dumps(value)[:40]}")
    return int(value)


def _require(entry: Any, keys: Sequence[str], where: str) -> None:
    if not isinstance(entry, dict):
        raise UsageError(f"{where}: expected an object, got {type(entry).__name__}")
    for key in keys:
        if key not in entry:
            raise UsageError(f"{where}: missing key '{key}'")


def load_coco_detection(
    json_path: str | Path,
    images_dir: str | Path | None = None,
    keep_categories: Collection[int] | None = None,
) -> tuple[list[DetectionRecord], dict[int, str]]:
    """Read COCO ``images`` / ``annotations`` (bbox x y w h) / ``categories`` into records.

    Returns (one :class:`DetectionRecord` per image in file order, with the COCO image id and iscrowd flags;
    {category id: name}). ``images_dir`` is joined to each ``file_name`` (its existence is checked);
    ``keep_categories`` keeps only those category ids. Errors name the file and the offending entry.
    """
    file = Path(json_path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"COCO annotation file not found: {file}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{file}: not valid JSON ({exc})") from None
    _require(data, ("images", "annotations", "categories"), f"{file}")
    categories: dict[int, str] = {}
    for i, cat in enumerate(data["categories"]):
        _require(cat, ("id", "name"), f"{file}: categories[{i}]")
        categories[_int(cat, "id", f"{file}: categories[{i}]")] = str(cat["name"])
    root = Path(images_dir) if images_dir is not None else None
    images: dict[int, dict[str, Any]] = {}
    for i, img in enumerate(data["images"]):
        where = f"{file}: images[{i}]"
        _require(img, ("id", "file_name", "width", "height"), where)
        path = root / img["file_name"] if root is not None else Path(img["file_name"])
        if root is not None and not path.is_file():
            raise UsageError(f"{where}: image file {path} not found")
        image_id = _int(img, "id", where)
        if image_id in images:
            raise UsageError(f"{where}: duplicate image id {image_id}")
        images[image_id] = {
            "path": path,
            "w": _int(img, "width", where),
            "h": _int(img, "height", where),
            "ann": [],
        }
    keep = None if keep_categories is None else {int(c) for c in keep_categories}
    for i, ann in enumerate(data["annotations"]):
        where = f"{file}: annotations[{i}] (id {ann.get('id', '?') if isinstance(ann, dict) else '?'})"
        _require(ann, ("image_id", "category_id", "bbox"), where)
        x, y, w, h = _number_list(ann["bbox"], 4, f"{where} bbox")
        if w < 0 or h < 0:
            raise UsageError(f"{where}: bbox width and height must be >= 0, got {w:g} x {h:g}")
        image_id, category = _int(ann, "image_id", where), _int(ann, "category_id", where)
        if image_id not in images:
            raise UsageError(f"{where}: image_id {image_id} is not in 'images'")
        if category not in categories:
            raise UsageError(f"{where}: category_id {category} is not in 'categories'")
        if keep is not None and category not in keep:
            continue
        images[image_id]["ann"].append((x, y, x + w, y + h, category, bool(ann.get("iscrowd", 0))))
    records = []
    for image_id, img in images.items():
        rows = np.asarray(img["ann"], dtype=np.float64).reshape(-1, 6)
        records.append(
            DetectionRecord(
                img["path"],
                img["w"],
                img["h"],
                rows[:, :4].astype(np.float32),
                rows[:, 4].astype(np.int64),
                image_id=image_id,
                crowd=rows[:, 5].astype(bool),
            )
        )
    return records, categories


def _xywh(boxes: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)


def coco_ground_truth(records: Sequence[DetectionRecord], categories: Mapping[int, str]) -> dict[str, Any]:
    """Records -> a COCO ground-truth dict (images, annotations, categories) for ``pycocotools.coco.COCO``.

    Box area (w * h) stands in for segment area, so small / medium / large buckets follow the boxes. A class id
    missing from ``categories`` or a repeated image id is a UsageError.
    """
    images, annotations, seen = [], [], set()
    for rec in records:
        if rec.image_id in seen:
            raise UsageError(f"coco_ground_truth: image id {rec.image_id} ({rec.path}) appears twice")
        seen.add(rec.image_id)
        images.append(
            {
                "id": int(rec.image_id),
                "file_name": Path(rec.path).name,
                "width": int(rec.width),
                "height": int(rec.height),
            }
        )
        for box, cls, crowd in zip(_xywh(rec.boxes), rec.classes, rec.crowd, strict=True):
            if int(cls) not in categories:
                raise UsageError(
                    f"coco_ground_truth: {rec.path} has class {int(cls)}, not in the categories given"
                )
            annotations.append(
                {
                    "id": len(annotations) + 1,  # pycocotools treats id 0 as "no match": start at 1
                    "image_id": int(rec.image_id),
                    "category_id": int(cls),
                    "bbox": [round(float(v), 3) for v in box],
                    "area": round(float(box[2] * box[3]), 3),
                    "iscrowd": int(crowd),
                }
            )
    cats = [{"id": int(k), "name": str(v)} for k, v in sorted(categories.items())]
    return {"info": {}, "licenses": [], "images": images, "annotations": annotations, "categories": cats}


def coco_detections(
    records: Sequence[DetectionRecord], predictions: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]
) -> list[dict[str, Any]]:
    """Predictions aligned with ``records`` -> the COCO results list for ``COCO.loadRes``.

    ``predictions[i]`` is (boxes (K, 4) pixel xyxy on records[i]'s image, scores (K,), classes (K,)).
    """
    if len(predictions) != len(records):
        raise UsageError(f"coco_detections: {len(predictions)} predictions for {len(records)} images")
    out = []
    for rec, (boxes, scores, classes) in zip(records, predictions, strict=True):
        xywh = _xywh(boxes)
        scores, classes = np.asarray(scores).reshape(-1), np.asarray(classes).reshape(-1)
        if not len(xywh) == len(scores) == len(classes):
            raise UsageError(
                f"coco_detections: {rec.path}: {len(xywh)} boxes, {len(scores)} scores, {len(classes)} classes"
            )
        for box, score, cls in zip(xywh, scores, classes, strict=True):
            out.append(
                {
                    "image_id": int(rec.image_id),
                    "category_id": int(cls),
                    "bbox": [round(float(v), 3) for v in box],
                    "score": round(float(score), 5),
                }
            )
    return out
