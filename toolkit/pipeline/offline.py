"""The camera pipeline's detect -> track stages over a recorded sequence, frame by frame, for evaluation.

>>> with OfflineTracker.open(models_dir=None, threads=2) as run:          # the shipped zoo, demo defaults
...     for result in run.frames(sequence.read_frames(), fps=7.0):
...         result.ids, result.boxes, result.scores                        # confirmed tracks seen this frame

``toolkit demo`` runs the same :class:`~toolkit.pipeline.detect.Detector`, :class:`~toolkit.pipeline.tracker.Tracker`
and :class:`~toolkit.pipeline.segment.Segmenter` (same configs) in three threads and paces or drops frames to keep
up with a live source. Scoring needs every frame in order and a clock that follows the recording, not the host,
so this runner processes each frame once, in the calling thread, with ``timestamp = frame index / fps``. The
segmenter runs every ``every_n_seg``-th frame as in the demo and the tracker gets its latest person mask (static
tracks the segmenter does not call person are held back); in the demo that mask is one segmentation older, which
a static object does not notice. The behaviour stage reads tracks and never changes them, so it is not run here;
its cost is measured by ``toolkit bench pipeline``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toolkit.adapters.detect import Detection, DetectorConfig
from toolkit.errors import UsageError
from toolkit.pipeline.detect import Detector
from toolkit.pipeline.segment import CLASSES, Segmenter
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


def track_frames(
    frames: Iterable[tuple[int, np.ndarray]],
    fps: float,
    detect: DetectFn,
    tracker: Tracker,
    segment: Callable[[np.ndarray], np.ndarray] | None = None,
    every_n_seg: int = 3,
    person_class: int = 0,
) -> Iterator[FrameResult]:
    """Run ``detect`` and ``tracker`` on ``(index, BGR frame)`` pairs in order; yield one result per frame.

    The tracker's clock is ``index / fps`` seconds (the recording's own rate), so a sequence scores the same on
    any host. ``detect`` is a :class:`Detector` or any callable with its signature (a baseline detector).
    ``segment`` (frame -> (H, W) labels) runs on every ``every_n_seg``-th frame; the tracker gets the latest
    ``labels == person_class`` mask.
    """
    if not fps > 0:
        raise UsageError(f"frame rate must be > 0, got {fps}")
    person = None
    for count, (index, frame) in enumerate(frames):
        detections = list(detect(frame))
        if segment is not None and every_n_seg > 0 and count % every_n_seg == 0:
            person = segment(frame) == person_class
        tracks = tracker.update(detections, index / fps, person)
        det_boxes, det_scores = _as_arrays(detections)
        confirmed = [t for t in tracks if t.id is not None]
        yield FrameResult(
            index=int(index),
            ids=np.asarray([t.id for t in confirmed], np.int64),
            boxes=np.asarray([t.box for t in confirmed], np.float64).reshape(-1, 4),
            scores=np.asarray([t.score for t in confirmed], np.float64),
            detection_boxes=det_boxes,
            detection_scores=det_scores,
            timings_ms=dict(getattr(detect, "timings", {}) or {}),
        )


class OfflineTracker:
    """The demo's detector and segmenter (``.tflite`` files from a model folder) and tracker, default configs."""

    def __init__(
        self,
        detector: Detector,
        tracker_config: TrackerConfig = TrackerConfig(),
        segmenter: Segmenter | None = None,
        every_n_seg: int = 3,
    ) -> None:
        self.detector = detector
        self.tracker_config = tracker_config
        self.segmenter = segmenter
        self.every_n_seg = every_n_seg

    @classmethod
    def open(
        cls,
        models: str | Path | None = None,
        threads: int | None = None,
        detector_config: DetectorConfig = DetectorConfig(),
        tracker_config: TrackerConfig = TrackerConfig(),
        every_n_seg: int = 3,
    ) -> OfflineTracker:
        """``models``: None (the shipped zoo) or a folder holding a detector and a segmenter ``.tflite``, or a
        detector ``.tflite`` alone (then no segmenter: nothing is held back as static). ``every_n_seg`` 0: no
        segmenter."""
        from toolkit.pipeline.demo import quiet_stderr
        from toolkit.runtime.runner import Runner

        paths = model_paths(models, every_n_seg > 0)
        with quiet_stderr():
            detector = Detector(Runner(paths["detector"], num_threads=threads), detector_config)
            segmenter = (
                Segmenter(Runner(paths["segmenter"], num_threads=threads)) if "segmenter" in paths else None
            )
        return cls(detector, tracker_config, segmenter, every_n_seg)

    @property
    def path(self) -> Path:
        """The detector's ``.tflite`` file."""
        return Path(self.detector.runner.path)

    def frames(self, frames: Iterable[tuple[int, np.ndarray]], fps: float) -> Iterator[FrameResult]:
        """Track a fresh sequence (a new tracker: ids start at 1); see :func:`track_frames`."""
        return track_frames(
            frames,
            fps,
            self.detector,
            Tracker(self.tracker_config),
            self.segmenter,
            self.every_n_seg,
            CLASSES.index("person"),
        )

    def close(self) -> None:
        """Close the detector and, when there is one, the segmenter."""
        self.detector.close()
        if self.segmenter is not None:
            self.segmenter.close()

    def __enter__(self) -> OfflineTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def model_paths(models: str | Path | None, segmenter: bool = True) -> dict[str, Path]:
    """``{"detector": path[, "segmenter": path]}`` from None (the shipped zoo), a model folder (both needed when
    ``segmenter``), or a detector ``.tflite`` path (no segmenter)."""
    from toolkit.paths import zoo_dir
    from toolkit.pipeline.model_files import find_models

    kinds = ["detector", "segmenter"] if segmenter else ["detector"]
    if models is None:
        return find_models(zoo_dir(), kinds)
    path = Path(models).expanduser()
    if path.is_dir():
        return find_models(path, kinds)
    return {"detector": detector_path(path)}


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
        raise UsageError(
            f"{path}: tracking evaluation runs the device pipeline, which needs a .tflite detector "
            "(convert a .keras model first: toolkit convert MODEL.keras --quantize int8 ...)"
        )
    return path
