"""The camera pipeline's detect -> track stages over a recorded sequence, frame by frame, for evaluation.

>>> with OfflineTracker.open(models_dir=None, threads=2) as run:          # the shipped zoo, demo defaults
...     for result in run.frames(sequence.read_frames(), fps=7.0):
...         result.ids, result.boxes, result.scores                        # confirmed tracks seen this frame

``toolkit demo`` runs the same :class:`~toolkit.pipeline.detect.Detector` and
:class:`~toolkit.pipeline.tracker.Tracker` (same configs) in three threads and paces or drops frames to keep up
with a live source. Scoring needs every frame in order and a clock that follows the recording, not the host, so
this runner processes each frame once, in the calling thread, with ``timestamp = frame index / fps``. The
tracker's output does not depend on the behaviour or segmentation stages (they read tracks, they do not change
them), so they are not run here; their cost is measured by ``scripts/bench_pipeline.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toolkit.errors import UsageError
from toolkit.pipeline.detect import Detection, Detector, DetectorConfig
from toolkit.pipeline.tracker import Tracker, TrackerConfig

DetectFn = Callable[[np.ndarray], Sequence[Detection]]


@dataclass(frozen=True)
class FrameResult:
    """What the pipeline reports for one frame: its confirmed tracks and the detector's raw boxes."""

    index: int  # frame index in the sequence, from 0
    ids: np.ndarray  # (K,) int64 track ids of the confirmed tracks matched in this frame
    boxes: np.ndarray  # (K, 4) float64 xyxy frame pixels (Kalman-filtered, as drawn by the demo)
    scores: np.ndarray  # (K,) float64 score of each track's last matched detection
    detection_boxes: np.ndarray  # (D, 4) float64 xyxy: every detection the detector returned
    detection_scores: np.ndarray  # (D,) float64
    timings_ms: dict[str, float] = field(default_factory=dict)  # detector pre / infer / post of this frame


def _as_arrays(detections: Sequence[Detection]) -> tuple[np.ndarray, np.ndarray]:
    boxes = np.asarray([d.box for d in detections], np.float64).reshape(-1, 4)
    return boxes, np.asarray([d.score for d in detections], np.float64)


def track_frames(frames: Iterable[tuple[int, np.ndarray]], fps: float, detect: DetectFn,
                 tracker: Tracker) -> Iterator[FrameResult]:
    """Run ``detect`` and ``tracker`` on ``(index, BGR frame)`` pairs in order; yield one result per frame.

    The tracker's clock is ``index / fps`` seconds (the recording's own rate), so a sequence scores the same on
    any host. ``detect`` is a :class:`Detector` or any callable with its signature (a baseline detector).
    """
    if not fps > 0:
        raise UsageError(f"frame rate must be > 0, got {fps}")
    for index, frame in frames:
        detections = list(detect(frame))
        tracks = tracker.update(detections, index / fps)
        det_boxes, det_scores = _as_arrays(detections)
        confirmed = [t for t in tracks if t.id is not None]
        yield FrameResult(
            index=int(index),
            ids=np.asarray([t.id for t in confirmed], np.int64),
            boxes=np.asarray([t.box for t in confirmed], np.float64).reshape(-1, 4),
            scores=np.asarray([t.score for t in confirmed], np.float64),
            detection_boxes=det_boxes, detection_scores=det_scores,
            timings_ms=dict(getattr(detect, "timings", {}) or {}))


class OfflineTracker:
    """The demo's detector (a ``.tflite`` from a model folder or file) and tracker, with their default configs."""

    def __init__(self, detector: Detector, tracker_config: TrackerConfig = TrackerConfig()) -> None:
        self.detector = detector
        self.tracker_config = tracker_config

    @classmethod
    def open(cls, models: str | Path | None = None, threads: int | None = None,
             detector_config: DetectorConfig = DetectorConfig(),
             tracker_config: TrackerConfig = TrackerConfig()) -> OfflineTracker:
        """``models``: None (the shipped zoo), a folder holding a detector ``.tflite``, or the file itself."""
        from toolkit.pipeline.demo import quiet_stderr
        from toolkit.runtime.runner import Runner

        path = detector_path(models)
        with quiet_stderr():
            detector = Detector(Runner(path, num_threads=threads), detector_config)
        return cls(detector, tracker_config)

    @property
    def path(self) -> Path:
        return Path(self.detector.runner.path)

    def frames(self, frames: Iterable[tuple[int, np.ndarray]], fps: float) -> Iterator[FrameResult]:
        """Track a fresh sequence (a new tracker: ids start at 1); see :func:`track_frames`."""
        return track_frames(frames, fps, self.detector, Tracker(self.tracker_config))

    def close(self) -> None:
        self.detector.close()

    def __enter__(self) -> OfflineTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def detector_path(models: str | Path | None) -> Path:
    """The detector ``.tflite`` from None (the shipped zoo), a model folder, or a ``.tflite`` path."""
    from toolkit.paths import zoo_dir
    from toolkit.pipeline.model_files import find_models

    if models is None:
        return find_models(zoo_dir(), ["detector"])["detector"]
    path = Path(models).expanduser()
    if path.is_dir():
        return find_models(path, ["detector"])["detector"]
    if not path.is_file():
        raise UsageError(f"model not found: {path} (give a detector .tflite or a folder holding one)")
    if path.suffix.lower() != ".tflite":
        raise UsageError(f"{path}: tracking evaluation runs the device pipeline, which needs a .tflite detector "
                         "(convert a .keras model first: toolkit convert MODEL.keras --quantize int8 ...)")
    return path
