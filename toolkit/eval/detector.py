"""Score a person detector: COCO-style AP50 and AP50:95 (pycocotools) beside OpenCV's HOG people detector.

>>> report = evaluate(load_predictor("person_detector_int8.tflite"), parse_spec("coco128:fold=0,split=val"),
...                   EvalConfig())
>>> report.metrics["ap50"], report.tables["baselines"][0]["ap50"]

Each image is letterboxed into the model input exactly as the camera pipeline does it, the outputs are decoded
and suppressed with the pipeline's own post-processing (:func:`toolkit.adapters.detect.postprocess`, a low
score threshold so that AP sees the whole precision-recall curve), and the boxes are mapped back through the
letterbox to ORIGINAL image pixels, where they are matched to the ground truth. The HOG baseline runs on the
same original images. Data sources and the cross-validation fold rule: :mod:`toolkit.data.detection_samples`.
No TensorFlow here: ``.tflite`` models are scored on a device install (pycocotools from the ``eval`` extra).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from toolkit.adapters.image import unit_float
from toolkit.data.detection_samples import PERSON, Samples, load_samples, model_input
from toolkit.data.records import DetectionRecord
from toolkit.data.spec import DataSpec
from toolkit.errors import UsageError
from toolkit.eval.config import EvalConfig
from toolkit.eval.image_inputs import image_input_hw
from toolkit.eval.predictor import Predictor
from toolkit.eval.report import EvalReport

Prediction = tuple[np.ndarray, np.ndarray]  # (boxes (K, 4) xyxy original pixels, scores (K,)) for one image


@dataclass(frozen=True)
class ScoringConfig:
    score_threshold: float = 0.01  # keep peaks down to this score: AP integrates over the whole ranking
    max_detections: int = 100  # COCO scores at most 100 detections per image
    iou_threshold: float = 0.5  # NMS overlap, as in the camera pipeline
    chunk: int = 32  # images letterboxed and predicted at a time (bounds memory on large splits)


SCORING = ScoringConfig()
# pycocotools' COCOeval.stats order, the names we report them under (-1 = undefined, e.g. no small people)
_STATS = (
    "ap50_95",
    "ap50",
    "ap75",
    "ap_small",
    "ap_medium",
    "ap_large",
    "ar1",
    "ar10",
    "ar100",
    "ar_small",
    "ar_medium",
    "ar_large",
)


def coco_ap(records: Sequence[DetectionRecord], predictions: Sequence[Prediction]) -> dict[str, float]:
    """COCO box AP for the person class. ``predictions[i]`` = (boxes xyxy, scores) on ``records[i]``'s image.

    Returns {ap50_95, ap50, ap75, ar100, ...}; size buckets are left out when the data has no box of that size.
    Crowd (ignore) boxes neither reward nor punish a detection, as in COCO.
    """
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise UsageError("detector evaluation needs pycocotools: pip install 'edge-toolkit[eval]'") from None
    from toolkit.data.coco_json import coco_detections, coco_ground_truth

    if len(records) != len(predictions):
        raise UsageError(f"coco_ap: {len(predictions)} predictions for {len(records)} images")
    if not any((~r.crowd).any() for r in records):
        raise UsageError("no person boxes in the selected images: AP is undefined (choose data with people)")
    ids = [
        DetectionRecord(r.path, r.width, r.height, r.boxes, r.classes, image_id=i, crowd=r.crowd)
        for i, r in enumerate(records)
    ]  # unique ids whatever the source numbering
    dets = coco_detections(ids, [(b, s, np.full(len(s), PERSON)) for b, s in predictions])
    if not dets:
        return {"ap50_95": 0.0, "ap50": 0.0, "ap75": 0.0, "ar100": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress on stdout
        gt = COCO()
        gt.dataset = coco_ground_truth(ids, {PERSON: "person"})
        gt.createIndex()
        result = COCOeval(gt, gt.loadRes(dets), "bbox")
        result.evaluate()
        result.accumulate()
        result.summarize()
    metrics = {
        name: round(float(v), 6)
        for name, v in zip(_STATS, result.stats, strict=True)
        if v >= 0 or name in ("ap50_95", "ap50", "ap75", "ar100")
    }
    return {**metrics, **_operating_point(result)}


def _operating_point(result: Any) -> dict[str, float]:
    """The score threshold with the best F1 at IoU 0.5 (all sizes, 100 detections), from pycocotools' own
    precision / score arrays: where a camera pipeline should start trusting detections on this data."""
    precision = np.asarray(result.eval["precision"])[0, :, 0, 0, -1]  # IoU 0.5, 101 recall points, person
    scores = np.asarray(result.eval["scores"])[0, :, 0, 0, -1]
    recall = np.asarray(result.params.recThrs)
    valid = precision > 0
    if not valid.any():
        return {}
    f1 = np.where(valid, 2 * precision * recall / np.maximum(precision + recall, 1e-12), -1.0)
    k = int(np.argmax(f1))
    return {
        "f1_50": round(float(f1[k]), 6),
        "f1_50_score": round(float(scores[k]), 6),
        "f1_50_precision": round(float(precision[k]), 6),
        "f1_50_recall": round(float(recall[k]), 6),
    }


def predict_samples(
    predictor: Predictor, samples: Samples, scoring: ScoringConfig = SCORING, batch_size: int = 64
) -> list[Prediction]:
    """Run the detector on every image of ``samples``: letterbox, predict, decode + NMS, back to image pixels."""
    from toolkit.adapters.detect import DetectorConfig, postprocess

    input_hw = input_hw_of(predictor)
    post = DetectorConfig(
        score_threshold=scoring.score_threshold,
        iou_threshold=scoring.iou_threshold,
        max_detections=scoring.max_detections,
    )
    out: list[Prediction] = []
    for start in range(0, len(samples), scoring.chunk):
        idx = range(start, min(start + scoring.chunk, len(samples)))
        boxed = [model_input(samples.load(i), input_hw) for i in idx]
        images = unit_float(np.stack([b for b, _ in boxed]))
        result = predictor.predict({"image": images}, batch_size=batch_size)
        for j, (_, transform) in enumerate(boxed):
            found = postprocess(result["heatmap"][j], result["box"][j], transform, input_hw, post)
            boxes = np.asarray([d.box for d in found], np.float32).reshape(-1, 4)
            out.append((boxes, np.asarray([d.score for d in found], np.float32)))
    return out


def hog_predictions(samples: Samples) -> list[Prediction]:
    """OpenCV's HOG people detector on the original images of ``samples``."""
    from toolkit.eval.hog import HogPeopleDetector

    hog = HogPeopleDetector()
    return [hog.detect(samples.load(i)) for i in range(len(samples))]


def input_hw_of(predictor: Predictor) -> tuple[int, int]:
    return image_input_hw(predictor, "detector")


def evaluate(predictor: Predictor, spec: DataSpec, config: EvalConfig = EvalConfig()) -> EvalReport:
    """AP50 / AP50:95 of ``predictor`` on ``spec`` (see the module docstring); HOG in tables["baselines"]."""
    samples = load_samples(spec, config.limit)
    metrics = coco_ap(samples.records, predict_samples(predictor, samples, batch_size=config.batch_size))
    d = samples.describe
    notes = [
        f"{d['images']} images ({d['images_with_person']} with people), {d['person_boxes']} person boxes "
        f"scored; source {d['source']}" + (f"; {d['rule']}" if "rule" in d else ""),
        "boxes are mapped back through the letterbox and scored in original image pixels "
        f"(pycocotools bbox AP, detections kept down to score {SCORING.score_threshold}, NMS IoU "
        f"{SCORING.iou_threshold}, at most {SCORING.max_detections} per image)",
    ]
    tables: dict[str, list[dict]] = {}
    if config.baselines:
        hog = coco_ap(samples.records, hog_predictions(samples))
        tables["baselines"] = [
            {
                "baseline": "hog",
                "description": "OpenCV HOG + linear SVM people detector "
                "(cv2.HOGDescriptor_getDefaultPeopleDetector), same images",
                **hog,
            }
        ]
    return EvalReport(
        kind="detector",
        model=str(predictor.path),
        model_format=predictor.format,
        data=str(spec),
        samples=len(samples),
        primary="ap50",
        metrics=metrics,
        tables=tables,
        notes=notes,
    )
