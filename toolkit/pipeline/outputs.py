"""The demo's last stage: segment (every N-th frame), draw, then record / log events / publish / show.

:class:`OutputWorker` runs it in its own thread (:class:`~toolkit.pipeline.stage_thread.StageThread`) so that
frame k is drawn and encoded while later frames are tracked and detected. The tracking stage hands over a
:class:`FramePacket` holding immutable snapshots (:class:`TrackView`), never the tracker's live objects.

:class:`Recorder` writes the annotated video to a temporary file beside the target and renames it into place on
:meth:`Recorder.close`: a stopped run leaves a complete, playable file or none.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import ToolkitError, UsageError
from toolkit.fileio import atomic_path
from toolkit.pipeline.behaviour import Prediction
from toolkit.pipeline.stage_thread import StageThread
from toolkit.pipeline.timing import StageTimes

FOURCC = {".mp4": "mp4v", ".avi": "MJPG"}  # H.264 (avc1) writing fails with the pip OpenCV builds
WINDOW = "toolkit demo"


@dataclass(frozen=True)
class TrackView:
    """An immutable copy of what the output stages need from a confirmed track (draw + events)."""

    id: int
    box: np.ndarray  # (4,) xyxy pixels, a copy
    label: str
    score: float
    age: int


@dataclass
class FramePacket:
    seq: int  # processed frames before this one (0, 1, 2 ...)
    index: int  # the source's frame index
    image: np.ndarray  # owned by the output stage from here on (drawn on in place)
    timestamp: float  # the tracker's clock, seconds
    t_capture: float  # time.monotonic() when the source had the frame
    tracks: list[TrackView]
    predictions: Mapping[int, Prediction]
    stage_ms: dict[str, float]  # inference-side timings of this frame
    segment: bool  # run the segmenter on this frame
    dropped: int  # source frames dropped so far
    source_stats: dict[str, Any] = field(default_factory=dict)


class Recorder:
    """Annotated frames -> ``path`` (.mp4 mp4v or .avi MJPG); the file appears only at :meth:`close`."""

    def __init__(self, path: str | Path, fps: float | None = None) -> None:
        self.path = Path(path).expanduser()
        suffix = self.path.suffix.lower()
        if suffix not in FOURCC:
            raise UsageError(f"--record {self.path}: use a .mp4 (mp4v) or .avi (MJPG) file name "
                             "(H.264 writing is not available in the pip OpenCV builds)")
        if self.path.is_dir():
            raise UsageError(f"--record {self.path} is a directory; give a file name such as out.mp4")
        self._ctx = atomic_path(self.path)
        try:
            self._tmp = self._ctx.__enter__()  # proves the folder is writable before any work starts
        except OSError as exc:
            raise UsageError(f"cannot write the recording {self.path}: {exc.strerror or exc}") from None
        self.fps = fps
        self.frames = 0
        self._writer: Any = None
        self._closed = False

    def write(self, frame: np.ndarray) -> None:
        if self._writer is None:
            import cv2

            height, width = frame.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*FOURCC[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(self._tmp), fourcc, float(self.fps or 30.0), (width, height))
            if not self._writer.isOpened():
                raise ToolkitError(f"OpenCV cannot open a {FOURCC[self.path.suffix.lower()]} video writer for "
                                   f"{self.path}")
        self._writer.write(frame)
        self.frames += 1

    def close(self, keep: bool = True) -> bool:
        """Finish the file; rename it into place when ``keep`` and a frame was written. Returns whether it was."""
        if self._closed:
            return False
        self._closed = True
        if self._writer is not None:
            self._writer.release()  # writes the container index: without it an .mp4 does not play
        if keep and self.frames:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self._tmp, 0o666 & ~umask)  # the temporary file is private (0600); the video should not be
            self._ctx.__exit__(None, None, None)
            return True
        error = RuntimeError("recording discarded")
        self._ctx.__exit__(type(error), error, None)  # removes the temporary file
        return False

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.close(keep=exc_type is None)


class OutputWorker(StageThread):
    """The last stage: segment (every N-th frame) / draw / write packets in order.

    ``sinks`` are callables ``(image, packet, event_latency_ms) -> None`` (recorder, events, server, window),
    run in order after drawing.
    """

    def __init__(self, segmenter: Any, every_n_seg: int, sinks: list[Callable[..., None]], times: StageTimes,
                 threaded: bool = True, depth: int = 2) -> None:
        self.segmenter = segmenter
        self.every_n_seg = every_n_seg
        self.sinks = sinks
        self.times = times
        self.labels: np.ndarray | None = None
        self.frames_done = 0
        self.last_done: float | None = None
        self.quit = threading.Event()  # set by a sink (the window) when the user asks to stop
        self._done_times: deque[float] = deque(maxlen=30)
        self._panel: dict[str, float] = {}
        super().__init__("demo-output", threaded, depth)

    @property
    def fps(self) -> float | None:
        times = self._done_times
        return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else None

    def process(self, packet: FramePacket) -> None:
        from toolkit.pipeline.draw import draw_frame

        image = packet.image
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        if self.segmenter is not None and packet.segment:
            self.labels = self.segmenter(image)
            timings["segment"] = (time.perf_counter() - t0) * 1e3
            timings["segment_model"] = self.segmenter.timings.get("infer", 0.0)
            self._panel["segment"] = timings["segment"]
        labels = self.labels if self.labels is not None and self.labels.shape == image.shape[:2] else None
        t1 = time.perf_counter()
        s = packet.stage_ms
        panel = {"detect": s["pre"] + s["detect"] + s["post"], "track": s["track"], "behav": s["behaviour"],
                 **self._panel}  # segment (last run), draw and output (previous frame)
        draw_frame(image, packet.tracks, packet.predictions, labels=labels, fps=self.fps, stage_ms=panel)
        t2 = time.perf_counter()
        timings["draw"] = (t2 - t1) * 1e3
        event_ms = {**s, **timings}
        for sink in self.sinks:
            sink(image, packet, event_ms)
        t3 = time.perf_counter()
        timings["output"] = (t3 - t2) * 1e3
        done = time.monotonic()
        timings["latency"] = (done - packet.t_capture) * 1e3
        self._panel["draw"], self._panel["output"] = timings["draw"], timings["output"]
        self.times.add(timings)
        self._done_times.append(done)
        self.frames_done += 1
        self.last_done = time.perf_counter()


def display_available() -> bool:
    """True when an OpenCV window can be shown: a GUI-enabled OpenCV build and (on Linux) a display."""
    import os
    import sys

    import cv2

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GUI:"):
            return line.split(":", 1)[1].strip().upper() not in ("NONE", "")
    return False


class Window:
    """An OpenCV window sink; 'q' or Esc in the window sets the worker's ``quit`` event.

    All HighGUI calls happen on the output thread (OpenCV's GUI backends want one thread for them all).
    """

    def __init__(self, quit_event: threading.Event) -> None:
        self.quit_event = quit_event
        self._opened = False

    def __call__(self, image: np.ndarray, packet: FramePacket, event_ms: Mapping[str, float]) -> None:
        import cv2

        cv2.imshow(WINDOW, image)
        self._opened = True
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.quit_event.set()

    def close(self) -> None:
        if self._opened:
            import cv2

            with contextlib.suppress(cv2.error):
                cv2.destroyWindow(WINDOW)
