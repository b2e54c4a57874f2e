"""Teachers that pseudo-label real images: DeepLab preprocessing, class mappings, person boxes, the pseudo SPEC."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from toolkit.data import teachers, teachers_pseudo
from toolkit.data.image_folder import read_rgb
from toolkit.data.spec import parse_spec
from toolkit.data.teachers import BACKGROUND, PERSON, ROAD, SIDEWALK, VEHICLE, person_boxes, street_labels
from toolkit.errors import UsageError

CORAL = ("models", "coral-test-data")


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4) x (M, 4) xyxy -> (N, M) IoU."""
    lo, hi = np.maximum(a[:, None, :2], b[None, :, :2]), np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=2)
    area = lambda z: (z[:, 2] - z[:, 0]) * (z[:, 3] - z[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None] - inter)


def _matches(pred: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> int:
    """One-to-one matches at IoU >= threshold, greedily by IoU."""
    if not len(pred) or not len(truth):
        return 0
    iou, hits = _iou(pred, truth), 0
    while iou.max() >= threshold:
        i, j = np.unravel_index(np.argmax(iou), iou.shape)
        iou[i, :], iou[:, j], hits = -1, -1, hits + 1
    return hits


# ---------------------------------------------------------------------------------------------- person boxes


def test_person_boxes_two_separate_people() -> None:
    mask = np.zeros((120, 160), bool)
    mask[20:80, 10:30] = True
    mask[30:100, 100:125] = True
    boxes, crowd = person_boxes(mask)
    np.testing.assert_array_equal(boxes, [[10, 20, 30, 80], [100, 30, 125, 100]])
    assert boxes.dtype == np.float32 and not crowd.any()


def test_person_boxes_touching_people_are_one_crowd_box() -> None:
    mask = np.zeros((120, 160), bool)
    mask[20:80, 40:65] = True  # two 25 x 60 people side by side: one 50 x 60 blob, wider than 0.8 x 60
    mask[24:80, 65:90] = True
    boxes, crowd = person_boxes(mask)
    np.testing.assert_array_equal(boxes, [[40, 20, 90, 80]])
    assert crowd.tolist() == [True]


def test_person_boxes_drops_tiny_blobs() -> None:
    mask = np.zeros((120, 160), bool)
    mask[10:20, 10:14] = True  # 10 px tall
    mask[40:70, 100:103] = True  # tall enough but 90 pixels
    mask[50:100, 50:70] = True  # a person
    boxes, crowd = person_boxes(mask)
    np.testing.assert_array_equal(boxes, [[50, 50, 70, 100]])
    assert crowd.tolist() == [False]


def test_person_boxes_cut_off_by_the_bottom_border() -> None:
    mask = np.zeros((120, 160), bool)
    mask[60:120, 10:70] = True  # a portrait: as wide as tall, on the bottom border -> one person
    mask[90:120, 90:160] = True  # over 2 x as wide as tall on the border -> crowd
    boxes, crowd = person_boxes(mask)
    np.testing.assert_array_equal(boxes, [[10, 60, 70, 120], [90, 90, 160, 120]])
    assert crowd.tolist() == [False, True]


def test_person_boxes_rejects_a_colour_image() -> None:
    with pytest.raises(UsageError, match="expected a"):
        person_boxes(np.zeros((4, 4, 3), bool))


# ---------------------------------------------------------------------------------------------- street labels


class _Fixed:
    """A stand-in teacher whose street labels are fixed."""

    def __init__(self, street: np.ndarray) -> None:
        self._street = street

    def street(self, image: np.ndarray) -> np.ndarray:
        return self._street.copy()


def test_street_labels_combines_the_teachers() -> None:
    city = np.array([[ROAD, SIDEWALK, PERSON, VEHICLE, BACKGROUND, ROAD]], np.uint8)
    voc = np.array([[PERSON, BACKGROUND, BACKGROUND, BACKGROUND, VEHICLE, BACKGROUND]], np.uint8)
    image = np.zeros((1, 6, 3), np.uint8)
    both = street_labels(image, pascal=_Fixed(voc), cityscapes=_Fixed(city))
    # road / sidewalk from Cityscapes; person and vehicle only where PASCAL says so
    assert both.tolist() == [[PERSON, SIDEWALK, BACKGROUND, BACKGROUND, VEHICLE, ROAD]]
    assert street_labels(image, cityscapes=_Fixed(city)).tolist() == city.tolist()
    # PASCAL alone cannot tell road from background: its background is ignore
    assert street_labels(image, pascal=_Fixed(voc)).tolist() == [[PERSON, 255, 255, 255, VEHICLE, 255]]
    with pytest.raises(UsageError, match="at least one teacher"):
        street_labels(image)


def test_mappings() -> None:
    city, voc = teachers.STREET_FROM_CITYSCAPES.lut(), teachers.STREET_FROM_PASCAL.lut()
    assert [city[i] for i in (0, 1, 11, 12, 13, 18, 2, 10)] == [
        ROAD,
        SIDEWALK,
        PERSON,
        PERSON,
        VEHICLE,
        VEHICLE,
        BACKGROUND,
        BACKGROUND,
    ]
    assert [voc[i] for i in (15, 7, 6, 14, 2, 19, 0, 12)] == [PERSON, *[VEHICLE] * 5, BACKGROUND, BACKGROUND]


# ---------------------------------------------------------------------------------------------- teachers


@pytest.mark.shared
def test_cityscapes_teacher_agrees_with_the_expected_mask(shared: Path) -> None:
    image = read_rgb(shared.joinpath(*CORAL, "cityscapes_segmentation.bmp"))
    expected = cv2.imread(
        str(shared.joinpath(*CORAL, "cityscapes_segmentation_mask.bmp")), cv2.IMREAD_UNCHANGED
    )
    with teachers.Teacher("cityscapes") as teacher:
        labels = teacher.labels(image)
        # The mask holds Cityscapes train ids (road = 0 covers the lower half); measured 0.921.
        assert labels.shape == expected.shape and labels.dtype == np.uint8
        assert (labels == expected).mean() > 0.90
        # A non-square crop goes through resize, padding and the crop back (measured 0.902), and an upscaled
        # copy through shrinking and the nearest-neighbour resize to its own size (measured 0.890).
        crop = np.ascontiguousarray(image[:400])
        assert (teacher.labels(crop) == expected[:400]).mean() > 0.87
        big = cv2.resize(crop, None, fx=2.5, fy=2.5, interpolation=cv2.INTER_LINEAR)
        back = cv2.resize(teacher.labels(big), (513, 400), interpolation=cv2.INTER_NEAREST_EXACT)
        assert back.shape == (400, 513) and (back == expected[:400]).mean() > 0.86


@pytest.mark.shared
def test_pascal_teacher_finds_grace_hopper(shared: Path) -> None:
    image = read_rgb(shared.joinpath(*CORAL, "grace_hopper.bmp"))  # 512 x 600, the person fills the frame
    with teachers.Teacher("pascal") as teacher:
        labels = teacher.labels(image)
    assert labels.shape == image.shape[:2]
    boxes, crowd = person_boxes(labels == 15)
    assert len(boxes) == 1 and not crowd[0]  # cut off by the bottom border, yet one person
    assert _iou(boxes, np.array([[10, 20, 512, 600]], np.float32))[0, 0] > 0.9


@pytest.mark.shared
@pytest.mark.slow
def test_teacher_person_boxes_on_coco128(shared: Path) -> None:
    from toolkit.data.detection_samples import load_samples

    samples = load_samples(parse_spec("coco128:split=all"))
    people = [i for i in range(len(samples)) if len(samples.records[i].boxes)][:16]
    hits = predicted = truth = 0
    with teachers.Teacher("pascal") as voc, teachers.Teacher("cityscapes") as city:
        for i in people:
            boxes, crowd = person_boxes(street_labels(samples.load(i), pascal=voc, cityscapes=city) == PERSON)
            hits += _matches(boxes[~crowd], samples.records[i].boxes)
            predicted, truth = predicted + int((~crowd).sum()), truth + len(samples.records[i].boxes)
    # Measured 9 of 14 boxes right (precision 0.64), 9 of 64 people found (recall 0.14: COCO's many small and
    # crowded people; recall of people >= 96 px tall over all 128 images is 0.48).
    assert hits / predicted >= 0.45, (hits, predicted)
    assert hits / truth >= 0.08, (hits, truth)


# ---------------------------------------------------------------------------------------------- pseudo SPEC


def _write_video(path: Path, shared: Path) -> None:
    frames = [
        read_rgb(shared.joinpath(*CORAL, name))
        for name in ("grace_hopper.bmp", "cityscapes_segmentation.bmp")
    ]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5, (320, 240))
    assert writer.isOpened()
    for k in range(6):  # grace, grace, street, street, grace, grace
        frame = cv2.resize(frames[(k // 2) % 2], (320, 240), interpolation=cv2.INTER_AREA)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


@pytest.mark.shared
def test_pseudo_spec_labels_a_video_once(
    shared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from toolkit.data import detection_samples, segmentation_samples

    monkeypatch.setenv("TOOLKIT_HOME", str(tmp_path / "home"))
    video = tmp_path / "clip.mp4"
    _write_video(video, shared)
    spec = parse_spec(f"pseudo:path={video},every=2")

    samples = detection_samples.load_samples(spec)
    assert len(samples) == 3 and samples.describe["teacher"] == "both"  # frames 0, 2, 4
    assert [len(r.boxes) - int(r.crowd.sum()) for r in samples.records] == [1, 0, 1]  # Grace Hopper, twice
    assert samples.load(1).shape == (240, 320, 3) and samples.visibility[0].tolist() == [1.0]

    def no_teacher(*args: object, **kwargs: object) -> None:
        raise AssertionError("the teachers ran again")

    monkeypatch.setattr(teachers, "Teacher", no_teacher)
    again = detection_samples.load_samples(spec)  # cached: no teacher run
    np.testing.assert_array_equal(again.records[0].boxes, samples.records[0].boxes)
    seg = segmentation_samples.load_samples(spec)
    assert seg.names == ["clip.mp4/frame000000", "clip.mp4/frame000002", "clip.mp4/frame000004"]
    image, mask = seg.load(1)
    assert image.shape == (240, 320, 3) and mask.shape == (240, 320)
    assert (mask == ROAD).mean() > 0.3 and set(np.unique(mask)) <= {
        BACKGROUND,
        ROAD,
        SIDEWALK,
        PERSON,
        VEHICLE,
    }
    with pytest.raises(AssertionError, match="ran again"):  # another selection is another cache entry
        detection_samples.load_samples(parse_spec(f"pseudo:path={video},every=3"))
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(UsageError, match="not a video OpenCV can open"):
        detection_samples.load_samples(parse_spec(f"pseudo:path={tmp_path / 'empty.mp4'}"))


def test_pseudo_spec_bad_inputs(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    cases = {
        f"pseudo:path={tmp_path / 'missing.mp4'}": "does not exist",
        f"pseudo:path={tmp_path},teacher=coco": "unknown teacher 'coco'",
        f"pseudo:path={tmp_path / 'clip.mp4'},every=0": "every must be an integer in 1..100000, got 0",
        f"pseudo:path={tmp_path / 'images'},every=2": "drop every=",
        f"pseudo:path={tmp_path / 'images'}": "no images",
    }
    (tmp_path / "clip.mp4").write_bytes(b"")
    for text, message in cases.items():
        with pytest.raises(UsageError, match=message) as error:
            teachers_pseudo.detection_samples(parse_spec(text))
        assert "\n" not in str(error.value)
    with pytest.raises(UsageError, match="needs path="):
        parse_spec("pseudo:teacher=pascal")
    with pytest.raises(UsageError, match="did you mean 'every'"):
        parse_spec("pseudo:path=x.mp4,evry=2")
