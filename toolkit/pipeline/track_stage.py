"""The demo's middle stage: detections -> tracker -> behaviour model -> a :class:`FramePacket` for the outputs.

Tracking and the per-track behaviour calls are mostly Python (Kalman updates, history resampling, one small
invoke per track), about 0.2 ms per track each on a desktop core: with a crowd they cost more than the detector.
Running them in their own thread lets them overlap with the next frame's detection (whose letterbox and invoke
release the GIL) and with the previous frame's drawing and encoding.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from toolkit.pipeline.outputs import FramePacket, OutputWorker, TrackView
from toolkit.pipeline.segment import CLASSES
from toolkit.pipeline.stage_thread import StageThread
from toolkit.pipeline.timing import StageTimes


@dataclass
class Detected:
    """What the detection stage hands over for one frame."""

    seq: int  # frames entered into the pipeline before this one
    frame: Any  # the source's CapturedFrame (image, index, t_capture, source_ts)
    detections: list[Any]  # list[Detection], frame pixels
    stage_ms: dict[str, float]  # wait / pre / detect / post of this frame
    segment: bool  # the output stage runs the segmenter on this frame
    source_stats: dict[str, Any]  # Source.stats() when the frame was taken


class TrackStage(StageThread):
    """Runs the tracker and the behaviour predictor on each :class:`Detected`, in order, and feeds ``output``."""

    def __init__(
        self,
        tracker: Any,
        predictor: Any,
        output: OutputWorker,
        times: StageTimes,
        source_fps: float | None,
        threaded: bool = True,
        depth: int = 2,
    ) -> None:
        self.tracker = tracker
        self.predictor = predictor
        self.output = output
        self.times = times
        self.period = 1.0 / source_fps if source_fps else 0.0
        self.max_track_id = 0  # confirmed tracks so far (ids count up from 1 and are never reused)
        self.behaviour_calls = 0  # behaviour-model invocations (one per confirmed track with a full history)
        self._last_ts: float | None = None
        self._offset = 0.0
        self.person_class = CLASSES.index("person")
        self._labels: Any = None
        self._person: Any = None
        super().__init__("demo-track", threaded, depth)

    def timestamp(self, source_ts: float) -> float:
        """The tracker's clock: the source's, made monotonic across the restarts of a looped file."""
        ts = source_ts + self._offset
        if self._last_ts is not None and ts < self._last_ts:  # a new pass of a looped file: start new tracks
            self._offset += self._last_ts - ts + self.period
            ts = source_ts + self._offset
            self.tracker.reset()
        self._last_ts = ts
        return ts

    def _person_mask(self) -> Any:
        """The output stage's latest segmentation as a person mask (one array per segmentation: the tracker
        computes its integral image once), or None before the first one / without a segmenter."""
        labels = self.output.labels
        if labels is None:
            return None
        if self._labels is not labels:
            self._labels, self._person = labels, labels == self.person_class
        return self._person

    def process(self, item: Detected) -> None:
        """Track one frame's detections, predict the tracks' paths, record the stage times and submit
        the resulting :class:`FramePacket` to the output stage."""
        image = item.frame.image
        t0 = time.perf_counter()
        timestamp = self.timestamp(item.frame.source_ts)
        tracks = self.tracker.update(item.detections, timestamp, self._person_mask())
        t1 = time.perf_counter()
        predictions = self.predictor.predict(tracks, (image.shape[1], image.shape[0]))
        t2 = time.perf_counter()
        self.behaviour_calls += sum(1 for p in predictions.values() if p.predictor == "model")
        timings = {
            "track": (t1 - t0) * 1e3,
            "behaviour": (t2 - t1) * 1e3,
            "behaviour_model": self.predictor.timings.get("model", 0.0),
        }
        self.times.add(timings)
        views = [TrackView(int(t.id), t.box, t.label, t.score, t.age) for t in tracks if t.id is not None]
        if views:
            self.max_track_id = max(self.max_track_id, views[-1].id)  # sorted by id
        item.stage_ms.update(timings)
        self.output.submit(
            FramePacket(
                item.seq,
                item.frame.index,
                image,
                timestamp,
                item.frame.t_capture,
                views,
                predictions,
                item.stage_ms,
                item.segment,
                int(item.source_stats.get("frames_dropped", 0)),
                item.source_stats,
            )
        )
