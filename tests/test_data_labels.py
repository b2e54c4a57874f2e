"""YOLO box / polygon labels and COCO JSON in and out, on small hand-made files (good and malformed)."""

from __future__ import annotations

import contextlib
import io
import json

import cv2
import numpy as np
import pytest
from helpers_data import one_line_error

from toolkit.data.coco_json import coco_detections, coco_ground_truth, load_coco_detection
from toolkit.data.masks import PERSON_FROM_PANOPTIC, load_mask, pair_masks, polygons_to_mask
from toolkit.data.records import DetectionRecord
from toolkit.data.yolo import (
    load_yolo_detection,
    load_yolo_segmentation,
    orphan_labels,
    read_class_names,
    read_yolo_boxes,
    read_yolo_polygons,
)


@pytest.fixture
def yolo_set(tmp_path):
    """Two images (80x40 and 50x100) with box labels; a third image without a label file."""
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    for name, (h, w) in (("a.jpg", (40, 80)), ("b.png", (100, 50)), ("c.jpg", (10, 10))):
        cv2.imwrite(str(images / name), np.zeros((h, w, 3), np.uint8))
    (labels / "a.txt").write_text("0 0.5 0.5 0.5 0.5\n\n2 0.25 0.25 0.5 0.5\n")
    (labels / "b.txt").write_text("0\t0.5\t0.1\t0.4\t0.4\n")  # tabs work too; the box is clipped at the top
    return images, labels


def test_yolo_detection_records(yolo_set):
    images, labels = yolo_set
    records = load_yolo_detection(images, labels, valid_classes=3)
    assert [r.path.name for r in records] == ["a.jpg", "b.png", "c.jpg"]
    a, b, c = records
    assert (a.width, a.height, a.image_id) == (80, 40, 0)
    np.testing.assert_allclose(a.boxes, [[20, 10, 60, 30], [0, 0, 40, 20]])
    assert a.classes.tolist() == [0, 2] and a.boxes.dtype == np.float32 and a.crowd.tolist() == [False, False]
    np.testing.assert_allclose(b.boxes, [[15, 0, 35, 30]])  # y1 = (0.1 - 0.2) * 100 clipped to 0
    assert len(c.boxes) == 0 and c.boxes.shape == (0, 4)  # no label file = no objects
    people = load_yolo_detection(images, labels, keep_classes=[0])
    assert [len(r.boxes) for r in people] == [1, 1, 0] and people[0].classes.tolist() == [0]


@pytest.mark.parametrize(
    "line, expected",
    [
        ("0 0.5 0.5 0.2", "line 2: expected 5 numbers 'class cx cy w h', got 4"),
        ("0 0.5 0.5 0.2 abc", "line 2: 'abc' is not a number"),
        ("7 0.5 0.5 0.2 0.2", "line 2: class 7 out of range (expected 0-2)"),
        ("-1 0.5 0.5 0.2 0.2", "line 2: class -1 out of range"),
        ("1.5 0.5 0.5 0.2 0.2", "line 2: class id must be a whole number"),
        ("0 0.5 1.7 0.2 0.2", "line 2: coordinate 1.7 outside 0-1"),
        ("0 0.5 0.5 0 0.2", "line 2: box width and height must be > 0"),
        ("0 0.5 0.5 nan 0.2", "line 2: 'nan' is not a finite number"),
        ("0 0.1 0.1 0.2 0.1 0.2 0.2", "got 7 (a polygon? use read_yolo_polygons)"),
    ],
)
def test_malformed_yolo_line_names_file_and_line(tmp_path, line, expected):
    path = tmp_path / "000000000009.txt"
    path.write_text(f"0 0.5 0.5 0.2 0.2\n{line}\n")
    message = one_line_error(read_yolo_boxes, path, valid_classes=3)
    assert message.startswith(f"{path} line 2:") and expected in message


def test_malformed_label_fails_the_folder_load(yolo_set):
    images, labels = yolo_set
    (labels / "b.txt").write_text("0 0.5 0.5 0.2\n")
    assert f"{labels / 'b.txt'} line 1:" in one_line_error(load_yolo_detection, images, labels)


def test_orphan_labels_are_listed_not_loaded(yolo_set):
    images, labels = yolo_set
    (labels / "zzz.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    assert orphan_labels(images, labels) == [labels / "zzz.txt"]
    assert len(load_yolo_detection(images, labels)) == 3
    assert "label folder not found" in one_line_error(load_yolo_detection, images, labels / "nope")


def test_yolo_polygons(yolo_set, tmp_path):
    images, _ = yolo_set
    seg = tmp_path / "seg"
    seg.mkdir()
    (seg / "a.txt").write_text("1 0 0 0.5 0 0.5 0.5\n3 0.5 0.5 1 0.5 1 1 0.5 1\n")
    classes, polys = read_yolo_polygons(seg / "a.txt", valid_classes={1, 3})
    assert classes.tolist() == [1, 3] and [p.shape for p in polys] == [(3, 2), (4, 2)]
    records = load_yolo_segmentation(images, seg, keep_classes=[1])
    assert [r.path.name for r in records] == ["a.jpg"]  # images without a seg file are left out, not "empty"
    np.testing.assert_allclose(records[0].polygons[0], [[0, 0], [40, 0], [40, 20]])
    mask = polygons_to_mask(records[0].polygons, records[0].classes, (40, 80))
    assert mask[2, 30] == 1 and mask[30, 10] == 0
    for text, expected in (
        ("1 0.1 0.1 0.2 0.2 0.3", "pairs of coordinates, got 5"),
        ("1 0.1 0.1 0.2 0.2", "at least 3 points, got 2"),
        ("2 0.1 0.1 0.2 0.2 0.3 0.3", "class 2 out of range"),
        ("1 0.1 x 0.2 0.2 0.3 0.3", "'x' is not a number"),
    ):
        (seg / "bad.txt").write_text(f"\n{text}\n")
        message = one_line_error(read_yolo_polygons, seg / "bad.txt", valid_classes={1, 3})
        assert message.startswith(f"{seg / 'bad.txt'} line 2:") and expected in message


def test_read_class_names_forms(tmp_path):
    cfg = tmp_path / "data.yaml"
    cfg.write_text("path: .\nnames:\n  0: person\n  1: 'traffic light'  # comment\nnc: 2\n")
    assert read_class_names(cfg) == {0: "person", 1: "traffic light"}
    cfg.write_text("names: [person, bicycle]\n")
    assert read_class_names(cfg) == {0: "person", 1: "bicycle"}
    cfg.write_text("classes:\n  - background\n  - person\n")
    assert read_class_names(cfg) == {0: "background", 1: "person"}
    cfg.write_text("names:\n  0: person\n  oops\n")
    assert f"{cfg} line 3:" in one_line_error(read_class_names, cfg)
    cfg.write_text("nc: 3\n")
    assert "no 'names:'" in one_line_error(read_class_names, cfg)


def coco_file(tmp_path, annotations, images=None):
    (tmp_path / "imgs").mkdir(exist_ok=True)
    cv2.imwrite(str(tmp_path / "imgs" / "x.jpg"), np.zeros((30, 60, 3), np.uint8))
    data = {
        "images": images
        if images is not None
        else [{"id": 42, "file_name": "x.jpg", "width": 60, "height": 30}],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    return path


def test_coco_json_records(tmp_path):
    path = coco_file(
        tmp_path,
        [
            {"id": 1, "image_id": 42, "category_id": 1, "bbox": [10, 5, 20, 10]},
            {"id": 2, "image_id": 42, "category_id": 3, "bbox": [0, 0, 5, 5], "iscrowd": 1},
        ],
    )
    records, names = load_coco_detection(path, tmp_path / "imgs")
    assert names == {1: "person", 3: "car"}
    (rec,) = records
    assert (rec.image_id, rec.width, rec.height, rec.path) == (42, 60, 30, tmp_path / "imgs" / "x.jpg")
    np.testing.assert_allclose(rec.boxes, [[10, 5, 30, 15], [0, 0, 5, 5]])
    assert rec.classes.tolist() == [1, 3] and rec.crowd.tolist() == [False, True]
    people, _ = load_coco_detection(path, keep_categories=[1])
    assert people[0].classes.tolist() == [1]


@pytest.mark.parametrize(
    "annotation, expected",
    [
        (
            {"id": 9, "image_id": 42, "category_id": 1, "bbox": [1, 2, 3]},
            "annotations[0] (id 9) bbox: expected a list of 4",
        ),
        ({"id": 9, "image_id": 42, "category_id": 1, "bbox": [1, 2, "a", 4]}, "expected a list of 4 numbers"),
        ({"id": 9, "image_id": 7, "category_id": 1, "bbox": [1, 2, 3, 4]}, "image_id 7 is not in 'images'"),
        (
            {"id": 9, "image_id": 42, "category_id": 2, "bbox": [1, 2, 3, 4]},
            "category_id 2 is not in 'categories'",
        ),
        ({"id": 9, "image_id": 42, "bbox": [1, 2, 3, 4]}, "missing key 'category_id'"),
        (
            {"id": 9, "image_id": "x", "category_id": 1, "bbox": [1, 2, 3, 4]},
            "'image_id' must be a whole number",
        ),
        ({"id": 9, "image_id": 42, "category_id": 1, "bbox": [1, 2, -3, 4]}, "must be >= 0"),
    ],
)
def test_malformed_coco_annotation_names_file_and_entry(tmp_path, annotation, expected):
    path = coco_file(tmp_path, [annotation])
    message = one_line_error(load_coco_detection, path)
    assert str(path) in message and expected in message


def test_malformed_coco_files(tmp_path):
    path = coco_file(tmp_path, [], images=[{"id": 1, "file_name": "missing.jpg", "width": 4, "height": 4}])
    assert "missing.jpg not found" in one_line_error(load_coco_detection, path, tmp_path / "imgs")
    path.write_text("{not json")
    assert str(path) in one_line_error(load_coco_detection, path)
    path.write_text(json.dumps({"images": []}))
    assert "missing key 'annotations'" in one_line_error(load_coco_detection, path)


def coco_eval(gt: dict, dets: list) -> float:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        ground = COCO()
        ground.dataset = gt
        ground.createIndex()
        evaluator = COCOeval(ground, ground.loadRes(dets), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return float(evaluator.stats[0])


def test_coco_writer_round_trip_through_pycocotools():
    pytest.importorskip("pycocotools")
    boxes = np.array([[10, 10, 50, 90], [60, 20, 90, 60]], np.float32)
    records = [
        DetectionRecord("a.jpg", 100, 100, boxes, np.array([0, 0]), image_id=1),
        DetectionRecord("b.jpg", 100, 100, boxes[:1] + 5, np.array([0]), image_id=2),
    ]
    gt = coco_ground_truth(records, {0: "person"})
    assert [a["id"] for a in gt["annotations"]] == [1, 2, 3]
    assert gt["annotations"][0]["bbox"] == [10.0, 10.0, 40.0, 80.0] and gt["annotations"][0]["area"] == 3200.0
    perfect = [(r.boxes, np.ones(len(r.boxes)), r.classes) for r in records]
    dets = coco_detections(records, perfect)
    assert dets[0] == {"image_id": 1, "category_id": 0, "bbox": [10.0, 10.0, 40.0, 80.0], "score": 1.0}
    assert coco_eval(gt, dets) == pytest.approx(1.0)
    shifted = [(r.boxes + 12, np.ones(len(r.boxes)), r.classes) for r in records]
    assert coco_eval(gt, coco_detections(records, shifted)) < 0.5
    assert "1 predictions for 2 images" in one_line_error(coco_detections, records, perfect[:1])
    assert "class 0, not in the categories" in one_line_error(coco_ground_truth, records, {1: "person"})


@pytest.mark.shared
def test_real_coco128_labels(shared):
    coco = shared / "data" / "coco128"
    images, labels = coco / "images" / "train2017", coco / "object_detection" / "labels" / "train2017"
    # SOURCE.md counts every label file: 941 boxes, 261 person boxes in 62 files.
    per_file = [read_yolo_boxes(p, valid_classes=80)[0] for p in sorted(labels.glob("*.txt"))]
    assert sum(len(c) for c in per_file) == 941
    assert (
        sum(int((c == 0).sum()) for c in per_file) == 261
        and sum(bool((c == 0).any()) for c in per_file) == 62
    )
    # Two of those files (656, 659: 7 persons in one) have no image, and two images (250, 508) have no labels.
    assert [p.stem for p in orphan_labels(images, labels)] == ["000000000656", "000000000659"]
    records = load_yolo_detection(
        images, labels, valid_classes=read_class_names(coco / "object_detection" / "config.yaml")
    )
    assert len(records) == 128 and sum(len(r.boxes) for r in records) == 929
    assert [r.path.stem for r in records if len(r.boxes) == 0] == ["000000000250", "000000000508"]
    people = load_yolo_detection(images, labels, keep_classes=[0])
    assert sum(len(r.boxes) for r in people) == 254 and sum(len(r.boxes) > 0 for r in people) == 61
    for rec in records:
        assert np.all(rec.boxes[:, 2:] <= [rec.width, rec.height]) and np.all(
            rec.boxes[:, :2] < rec.boxes[:, 2:]
        )
    seg_labels = coco / "instance_segmentation" / "labels" / "train2017"
    names = read_class_names(coco / "instance_segmentation" / "config.yaml")
    assert names[1] == "person" and len(names) == 80
    seg = load_yolo_segmentation(images, seg_labels, keep_classes=[1], valid_classes=names)
    assert (
        len(seg) == 100
        and sum(len(r.polygons) for r in seg) == 209
        and sum(len(r.polygons) > 0 for r in seg) == 51
    )
    # The person polygons and the semantic masks describe the same people.
    inter = union = 0
    pairs = pair_masks(images, coco / "semantic_segmentation" / "masks" / "train2017")
    for rec, (image_path, mask_path) in zip(seg, pairs, strict=True):
        assert rec.path == image_path
        drawn = polygons_to_mask(rec.polygons, [1] * len(rec.polygons), (rec.height, rec.width)) == 1
        mask = load_mask(mask_path, PERSON_FROM_PANOPTIC, expect_hw=(rec.height, rec.width))
        valid = mask != 255
        inter += int((drawn & (mask == 1) & valid).sum())
        union += int(((drawn | (mask == 1)) & valid).sum())
    assert inter / union > 0.95


@pytest.mark.shared
def test_real_coco128_through_pycocotools(shared):
    pytest.importorskip("pycocotools")
    coco = shared / "data" / "coco128"
    records = load_yolo_detection(
        coco / "images" / "train2017", coco / "object_detection" / "labels" / "train2017", keep_classes=[0]
    )
    gt = coco_ground_truth(records, {0: "person"})
    assert len(gt["images"]) == 128 and len(gt["annotations"]) == 254
    perfect = [(r.boxes, np.ones(len(r.boxes)), r.classes) for r in records]
    assert coco_eval(gt, coco_detections(records, perfect)) == pytest.approx(1.0)
