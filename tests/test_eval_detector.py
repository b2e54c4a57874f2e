"""Detector evaluation without TensorFlow: COCO AP on hand-made cases, fold rule, data sources, HOG baseline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from toolkit.data.detection_samples import fold_of, load_samples
from toolkit.data.model_inputs import detector_inputs
from toolkit.data.records import DetectionRecord
from toolkit.data.spec import parse_spec
from toolkit.errors import UsageError
from toolkit.eval.detector import coco_ap
from toolkit.eval.hog import HogPeopleDetector

pytest.importorskip("pycocotools")


def _record(i: int, boxes: list[list[float]], crowd: list[bool] | None = None) -> DetectionRecord:
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    return DetectionRecord(
        Path(f"img{i}.jpg"),
        320,
        240,
        b,
        np.zeros(len(b), np.int64),
        image_id=i,
        crowd=np.asarray(crowd if crowd is not None else [False] * len(b), bool),
    )


RECORDS = [
    _record(0, [[10, 20, 40, 100], [100, 50, 130, 140]]),
    _record(1, [[200, 30, 260, 200]]),
    _record(2, []),
]  # an image without people: any detection there is a false positive


def _exact(records: list[DetectionRecord]) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(r.boxes.copy(), np.linspace(0.9, 0.8, len(r.boxes)).astype(np.float32)) for r in records]


def test_perfect_predictions_score_one() -> None:
    metrics = coco_ap(RECORDS, _exact(RECORDS))
    assert metrics["ap50"] == pytest.approx(1.0)
    assert metrics["ap50_95"] == pytest.approx(1.0)
    assert metrics["ar100"] == pytest.approx(1.0)


def test_ap_counts_misses_false_positives_and_localisation() -> None:
    preds = _exact(RECORDS)
    # A box of IoU 0.6 with its person: a hit at IoU 0.5, a miss at 0.75.
    shifted = [(np.array([[10, 40, 40, 120], [100, 50, 130, 140]], np.float32), preds[0][1])] + preds[1:]
    m = coco_ap(RECORDS, shifted)
    assert m["ap50"] == pytest.approx(1.0) and m["ap75"] < 0.8
    # Drop one of three people: recall 2/3 caps AP50 at about 0.67.
    missing = [(preds[0][0][:1], preds[0][1][:1])] + preds[1:]
    assert coco_ap(RECORDS, missing)["ap50"] == pytest.approx(2 / 3, abs=0.01)
    # A confident false positive on the empty image ranks first: precision drops at every recall level.
    fp = preds[:2] + [(np.array([[0, 0, 50, 100]], np.float32), np.array([0.99], np.float32))]
    assert coco_ap(RECORDS, fp)["ap50"] < 0.9
    empty = [(np.zeros((0, 4), np.float32), np.zeros(0, np.float32)) for _ in RECORDS]
    assert coco_ap(RECORDS, empty)["ap50"] == 0.0


def test_crowd_boxes_are_ignored() -> None:
    records = [_record(0, [[10, 20, 40, 100], [150, 20, 180, 100]], crowd=[False, True])]
    one = [(np.array([[10, 20, 40, 100]], np.float32), np.array([0.9], np.float32))]
    on_crowd = [
        (np.array([[10, 20, 40, 100], [150, 20, 180, 100]], np.float32), np.array([0.5, 0.9], np.float32))
    ]
    assert coco_ap(records, one)["ap50"] == pytest.approx(1.0)  # the ignored person is not a miss
    assert coco_ap(records, on_crowd)["ap50"] == pytest.approx(
        1.0
    )  # nor is a detection on it a false positive


def test_ap_needs_people() -> None:
    with pytest.raises(UsageError, match="no person boxes"):
        coco_ap([RECORDS[2]], [(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))])


def test_fold_rule_is_stratified_and_deterministic() -> None:
    records = [_record(i, [[0, 0, 10, 10]] if i % 3 == 0 else []) for i in range(23)]
    folds = fold_of(records, 4)
    assert np.array_equal(
        folds, fold_of(list(reversed(records)), 4)[::-1]
    )  # order of the list does not matter
    people = np.array([len(r.boxes) > 0 for r in records])
    for group in (people, ~people):
        counts = np.bincount(folds[group], minlength=4)
        assert counts.max() - counts.min() <= 1


@pytest.mark.parametrize(
    "text, message",
    [
        ("coco128:fold=1,folds=4", "split=train or split=val"),
        ("coco128:fold=4,folds=4,split=val", "0 <= fold < folds"),
        ("coco128:split=test", "train, val or all"),
        ("synthetic:split=all", "train or val"),
        ("mnist:split=test", "detector is trained and scored on"),
    ],
)
def test_bad_specs_are_one_line_usage_errors(
    text: str, message: str, shared
) -> None:  # coco128 SPECs resolve the data first
    with pytest.raises(UsageError, match=message) as info:
        load_samples(parse_spec(text))
    assert "\n" not in str(info.value)


@pytest.mark.shared
def test_coco128_folds_partition_the_images(shared: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLKIT_SHARED", str(shared))
    everything = load_samples(parse_spec("coco128"))
    assert everything.describe["images"] == 128 and everything.describe["person_boxes"] == 254
    assert everything.describe["images_with_person"] == 61
    seen: list[str] = []
    for k in range(4):
        val = load_samples(parse_spec(f"coco128:fold={k},folds=4,split=val"))
        train = load_samples(parse_spec(f"coco128:fold={k},folds=4,split=train"))
        val_names = {r.path.name for r in val.records}
        assert not val_names & {r.path.name for r in train.records}
        assert len(val) + len(train) == 128
        seen += sorted(val_names)
    assert len(seen) == len(set(seen)) == 128
    first = everything.load(0)
    assert first.dtype == np.uint8 and first.shape == (
        everything.records[0].height,
        everything.records[0].width,
        3,
    )


@pytest.mark.shared
def test_hog_baseline_finds_people_on_coco128(shared: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLKIT_SHARED", str(shared))
    samples = load_samples(parse_spec("coco128"))
    hog = HogPeopleDetector()
    with_people = [i for i, r in enumerate(samples.records) if len(r.boxes) >= 2][:2]
    found = [hog.detect(samples.load(i)) for i in with_people]
    for (boxes, scores), i in zip(found, with_people, strict=True):
        h, w = samples.records[i].height, samples.records[i].width
        assert boxes.dtype == np.float32 and boxes.shape == (len(scores), 4)
        assert (
            np.all(boxes[:, 2:] > boxes[:, :2]) and np.all(boxes >= 0) and np.all(boxes[:, [2, 3]] <= [w, h])
        )
        assert np.all((scores > 0) & (scores < 1)) and np.all(np.diff(scores) <= 0)  # best first


@pytest.mark.shared
def test_hog_baseline_finds_the_walkers_in_the_real_clip(shared: Path) -> None:
    import cv2

    capture = cv2.VideoCapture(str(shared / "data" / "pedestrian_video" / "pedestrians.avi"))
    ok, frame = capture.read()
    capture.release()
    assert ok
    boxes, scores = HogPeopleDetector().detect(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    # The three people walking in frame 0 (boxes drawn by hand on the 480x360 frame).
    people = np.array([[160, 135, 192, 196], [307, 96, 333, 150], [395, 150, 425, 205]], np.float32)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    hits = [np.any(np.all((centres >= p[:2]) & (centres <= p[2:]), axis=1)) for p in people]
    assert sum(hits) >= 2, (boxes, scores)


def test_hog_on_an_empty_scene_finds_nobody() -> None:
    boxes, scores = HogPeopleDetector().detect(np.full((120, 160, 3), 127, np.uint8))
    assert boxes.shape == (0, 4) and scores.shape == (0,)


SMALL_SYNTH = "synthetic:split={split},scenes=1,frames=6,every=3"


@pytest.fixture
def toolkit_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TOOLKIT_HOME", str(tmp_path))
    return tmp_path


def test_synthetic_samples_are_cached_and_val_scenes_differ(toolkit_home: Path) -> None:
    train = load_samples(parse_spec(SMALL_SYNTH.format(split="train")))
    assert len(train) == 2 and train.describe["scene_seeds"] == [0, 0]
    image = train.load(1)
    assert image.shape == (360, 480, 3) and image.dtype == np.uint8
    rec = train.records[1]
    assert rec.boxes.shape[1] == 4 and np.all(rec.boxes[:, 2:] <= [480, 360])
    assert len(rec.crowd) == len(rec.boxes) == len(train.visibility[1])
    cached = list((toolkit_home / "cache" / "synthetic").iterdir())
    assert len(cached) == 1 and (cached[0] / "frames.npy").is_file()
    again = load_samples(parse_spec(SMALL_SYNTH.format(split="train")))
    assert np.array_equal(again.load(1), image)
    assert len(list((toolkit_home / "cache" / "synthetic").iterdir())) == 1  # reused, not rendered again
    val = load_samples(parse_spec(SMALL_SYNTH.format(split="val")))
    assert val.describe["scene_seeds"] == [1000, 1000] and not np.array_equal(val.load(0), train.load(0))


def test_model_inputs_are_letterboxed_unit_images(toolkit_home: Path) -> None:
    spec = parse_spec(SMALL_SYNTH.format(split="val"))
    inputs = detector_inputs(spec, {"image": (96, 160, 3)}, limit=1, seed=3)
    x = inputs["image"]
    assert x.shape == (1, 96, 160, 3) and x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    assert np.array_equal(x, detector_inputs(spec, {"image": (96, 160, 3)}, limit=1, seed=3)["image"])
    full = detector_inputs(spec, {"image": (96, 160, 3)})["image"]
    assert len(full) == 2
    # 480x360 into 160x96: scale 0.2667 -> 128 columns, 16 columns of grey 114 padding on each side
    assert np.allclose(full[:, :, :16], 114 / 255, atol=1e-6) and not np.allclose(
        full[:, :, 16:144], 114 / 255
    )
    with pytest.raises(UsageError, match="'image' input"):
        detector_inputs(spec, {"track": (8, 2)})


def test_operating_point_is_the_best_f1_threshold() -> None:
    from toolkit.data.records import DetectionRecord
    from toolkit.eval.detector import coco_ap

    gt = np.array([[10, 10, 30, 50], [50, 10, 70, 50]], np.float32)
    record = DetectionRecord("a.jpg", 100, 100, gt, np.zeros(2, np.int64), crowd=np.zeros(2, bool))
    # scores 0.9 (hit), 0.6 (false), 0.4 (hit): best F1 keeps all three (P 2/3, R 1, F1 0.8) -> threshold 0.4
    boxes = np.array([[10, 10, 30, 50], [50, 10, 70, 50], [80, 80, 90, 95]], np.float32)
    metrics = coco_ap([record], [(boxes, np.array([0.9, 0.4, 0.6], np.float32))])
    assert metrics["f1_50"] == pytest.approx(0.8) and metrics["f1_50_score"] == pytest.approx(0.4)
    assert metrics["f1_50_precision"] == pytest.approx(2 / 3, abs=1e-5) and metrics["f1_50_recall"] == 1.0
