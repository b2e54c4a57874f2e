"""``toolkit eval [MODELS] --data mot:seq=DIR``: score the camera pipeline's tracks on a MOTChallenge sequence.

>>> report = evaluate_sequence(None, parse_spec("mot"))          # the shipped zoo on the shared PETS09-S2L1
>>> report.metrics["mota"], report.metrics["idf1"], report.metrics["hota"]

The pipeline's detector and tracker (:class:`toolkit.pipeline.offline.OfflineTracker`, the demo's defaults) run
on every frame in order, on the sequence's own clock (seqinfo.ini's frame rate). Its confirmed tracks -- the
boxes the demo draws and writes to ``--events`` -- are scored with the published tracking metrics
(:mod:`toolkit.eval.mot_metrics`: MOTA, IDF1, HOTA as TrackEval computes them, IoU 0.5). Beside them:

* ``ap50_tracks``: COCO AP50 of the track boxes, ranked by each track's last detection score (distractor and
  zero-marked ground truth count as crowd regions); ``ap50_detections`` the same for the raw detections;
* the baseline: OpenCV's HOG people detector through the same tracker (``--no-baselines`` skips it; slow);
* ``tables["id_stability"]``: counts that need no ground truth (distinct ids, interior births and ends, static
  ids, tracks per frame; :mod:`toolkit.eval.track_stability`). With ``--out-dir``: annotated frames and per-id
  lifetimes (:mod:`toolkit.eval.track_artifacts`).

``.tflite`` only: this is the device pipeline. The sequence's frames are never used for anything but scoring.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from toolkit.data.mot import MotSequence, mot_sequence_from_spec
from toolkit.data.records import DetectionRecord
from toolkit.data.spec import DataSpec
from toolkit.eval.config import EvalConfig
from toolkit.eval.mot_metrics import evaluate_tracking
from toolkit.eval.report import EvalReport
from toolkit.eval.track_artifacts import write_track_artifacts
from toolkit.eval.track_stability import id_stability

# Headline metrics, in the order reports list them (field names of TrackingMetrics).
HEADLINE = (
    "mota",
    "idf1",
    "hota",
    "deta",
    "assa",
    "motp",
    "precision",
    "recall",
    "idsw",
    "frag",
    "mt",
    "pt",
    "ml",
    "fp",
    "fn",
    "gt_boxes",
    "gt_ids",
    "pred_ids",
)


def track_sequence(sequence: MotSequence, tracker: object) -> tuple[dict, dict, dict, float]:
    """Run an :class:`OfflineTracker` (or anything with its ``frames``) over ``sequence``.

    Returns (tracks {frame: (ids, boxes)}, track scores {frame: scores}, detections {frame: (boxes, scores)},
    seconds).
    """
    started = time.perf_counter()
    tracks, scores, detections = {}, {}, {}
    for result in tracker.frames(sequence.frames(), sequence.frame_rate):  # type: ignore[attr-defined]
        tracks[result.index] = (result.ids, result.boxes)
        scores[result.index] = result.scores
        detections[result.index] = (result.detection_boxes, result.detection_scores)
    return tracks, scores, detections, time.perf_counter() - started


def box_ap(sequence: MotSequence, boxes: dict[int, tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """COCO AP of per-frame (boxes, scores) against the scored ground truth; distractors and ignored rows are
    crowd regions (a box on them neither counts nor costs)."""
    from toolkit.eval.detector import coco_ap

    records, predictions = [], []
    width, height = sequence.size
    for frame in range(sequence.length):
        _, gt_boxes = sequence.gt[frame]
        extra = [b for b in (sequence.distractors.get(frame), sequence.ignored.get(frame)) if b is not None]
        crowd_boxes = (
            np.concatenate([np.asarray(b, np.float32).reshape(-1, 4) for b in extra])
            if extra
            else np.zeros((0, 4), np.float32)
        )
        all_boxes = np.concatenate([np.asarray(gt_boxes, np.float32).reshape(-1, 4), crowd_boxes])
        crowd = np.concatenate([np.zeros(len(gt_boxes), bool), np.ones(len(crowd_boxes), bool)])
        records.append(
            DetectionRecord(
                sequence.root / f"frame{frame:06d}",
                width,
                height,
                all_boxes,
                np.zeros(len(all_boxes), np.int64),
                image_id=frame,
                crowd=crowd,
            )
        )
        b, s = boxes.get(frame, (np.zeros((0, 4)), np.zeros(0)))
        predictions.append((np.asarray(b, np.float32).reshape(-1, 4), np.asarray(s, np.float32)))
    return coco_ap(records, predictions)


def has_coco_ap() -> bool:
    """pycocotools (the ``eval`` extra) is installed: AP50 of the boxes can be reported."""
    import importlib.util

    return importlib.util.find_spec("pycocotools") is not None


def score(sequence: MotSequence, tracks: dict, track_scores: dict, detections: dict) -> dict[str, float]:
    """Tracking metrics + AP50 of track boxes and of raw detections, flat and rounded."""
    metrics = evaluate_tracking(sequence.gt, tracks, sequence.distractors, sequence.ignored)
    values = {name: getattr(metrics, name) for name in HEADLINE}
    if has_coco_ap():  # the eval extra; MOTA / IDF1 / HOTA need only numpy
        tracked = {f: (tracks[f][1], track_scores[f]) for f in tracks}
        values["ap50_tracks"] = box_ap(sequence, tracked)["ap50"]
        values["ap50_detections"] = box_ap(sequence, detections)["ap50"]
    return {k: round(float(v), 6) if isinstance(v, float) else int(v) for k, v in values.items()}


def evaluate_sequence(
    models: str | Path | None, spec: DataSpec, config: EvalConfig = EvalConfig()
) -> EvalReport:
    """Score the pipeline (detector from ``models``: None = the shipped zoo, a folder or a ``.tflite``) on a
    MOTChallenge sequence SPEC; the HOG baseline through the same tracker in ``tables["baselines"]``."""
    from toolkit.pipeline.offline import OfflineTracker

    started = time.perf_counter()
    sequence = mot_sequence_from_spec(spec if config.limit is None else spec.with_options(limit=config.limit))
    with OfflineTracker.open(models, threads=config.threads) as run:
        tracks, track_scores, detections, seconds = track_sequence(sequence, run)
        model_path = run.path
    metrics = score(sequence, tracks, track_scores, detections)
    metrics["seconds_per_frame"] = round(seconds / max(sequence.length, 1), 5)
    stability = id_stability(tracks, sequence.size, sequence.frame_rate)
    tables: dict[str, list[dict]] = {"id_stability": [stability.row()]}
    artifacts = write_track_artifacts(sequence, tracks, stability, config.out_dir) if config.out_dir else {}
    if config.baselines:
        tables["baselines"] = [
            {
                "baseline": "hog",
                "description": "OpenCV HOG people detector "
                "(cv2.HOGDescriptor_getDefaultPeopleDetector) + the same tracker",
                **_hog(sequence),
            }
        ]
    notes = [
        f"{sequence.name}: {sequence.length} frames at {sequence.frame_rate:g} fps (seqinfo.ini), "
        f"{sequence.size[0]}x{sequence.size[1]} (ground truth x{sequence.scale:g}), "
        f"{metrics['gt_boxes']} scored boxes of {metrics['gt_ids']} people",
        "confirmed tracks of the demo's detector + tracker (default configs), every frame, scored as "
        "TrackEval does (IoU 0.5; HOTA over IoU 0.05-0.95)",
    ]
    if not has_coco_ap():
        notes.append(
            "AP50 of the boxes not reported: it needs pycocotools (pip install 'edge-toolkit[eval]')"
        )
    return EvalReport(
        kind="tracking",
        model=str(model_path),
        model_format="tflite",
        data=str(spec),
        samples=sequence.length,
        primary="mota",
        metrics=metrics,
        tables=tables,
        notes=notes,
        artifacts=artifacts,
        seconds=round(time.perf_counter() - started, 2),
    )


def _hog(sequence: MotSequence) -> dict[str, float]:
    """The HOG people detector through the pipeline's tracker on the same frames."""
    from toolkit.adapters.detect import Detection
    from toolkit.eval.hog import HogPeopleDetector
    from toolkit.pipeline.offline import track_frames
    from toolkit.pipeline.tracker import Tracker

    hog = HogPeopleDetector()

    def detect(frame_bgr: np.ndarray) -> Sequence[Detection]:
        boxes, scores = hog.detect(frame_bgr[..., ::-1])
        return [Detection(tuple(float(v) for v in b), float(s)) for b, s in zip(boxes, scores, strict=True)]

    runner = _FramesOnly(lambda frames, fps: track_frames(frames, fps, detect, Tracker()))
    tracks, track_scores, detections, _ = track_sequence(sequence, runner)
    return score(sequence, tracks, track_scores, detections)


class _FramesOnly:
    """Adapts a ``(frames, fps) -> results`` function to the ``frames`` method track_sequence calls."""

    def __init__(self, fn: Callable) -> None:
        self.frames = fn
