"""The demo's last stage: segment (every N-th frame), draw, then record / log events / publish / show.

:class:`OutputWorker` runs it in its own thread (:class:`~toolkit.pipeline.stage_thread.StageThread`) so that
frame k is drawn and encoded while later frames are tracked and detected. The tracking stage hands over a
:class:`FramePacket` holding immutable snapshots (:class:`TrackView`), never the tracker's live objects.

:class:`Recorder` writes the annotated video to a temporary file beside the target, reads it back on
:meth:`Recorder.close` and only then renames it into place: a stopped or failed run (a full disk included) leaves a
complete, playable file or none.
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

from toolkit.errors import ToolkitError, UsageError, one_line
from toolkit.fileio import (
    LOW_SPACE_BYTES,
    captured_fd2,
    commit_partial,
    is_disk_full,
    no_space_error,
    partial_path,
    space_left,
)
from toolkit.pipeline.behaviour import Prediction
from toolkit.pipeline.config import check_record_fps
from toolkit.pipeline.stage_thread import StageThread
from toolkit.pipeline.timing import StageTimes

WINDOW = "toolkit demo"


@dataclass(frozen=True)
class RecordFormat:
    """A container a recording can be written in, as the file name's suffix picks it."""

    fourcc: str  # cv2.VideoWriter_fourcc code
    codec: str  # the codec's name, as players show it
    why: str  # who plays it; what it costs


# The recording formats, by suffix (first = the one to recommend). Encode cost with the pip OpenCV 4.14 on a 2-core
# x86 host, ms per frame (mean) of the real clip at 480x360 / 640x480: mp4v 0.7 / 1.3, MJPG 1.5 / 2.1 (6x the size),
# VP8 9 / 14, VP9 59 / 95 (too slow to keep up with a camera, so not offered); the demo's annotated synthetic frames
# cost VP8 25 ms against mp4v 1.1 ms. OpenCV gives no way to set libvpx's speed (OPENCV_FFMPEG_WRITER_OPTIONS does
# not reach the encoder). Browsers decode VP8/VP9 (WebM) and H.264, never MPEG-4 Part 2 or Motion JPEG; writing
# H.264 (avc1) fails with the pip OpenCV builds, whose FFmpeg carries libvpx on x86_64 and aarch64 (the manylinux
# aarch64 wheel wrote a VP8 .webm under qemu).
RECORD_FORMATS = {
    ".webm": RecordFormat("VP80", "VP8", "plays in web browsers"),
    ".mp4": RecordFormat("mp4v", "MPEG-4 Part 2", "the cheapest to encode; desktop players, not browsers"),
    ".avi": RecordFormat("MJPG", "Motion JPEG", "every frame a JPEG, 6x the size of .mp4; not browsers"),
}
FOURCC = {suffix: fmt.fourcc for suffix, fmt in RECORD_FORMATS.items()}
RECORD_SUFFIXES = ", ".join(f"{suffix} ({fmt.codec}: {fmt.why})" for suffix, fmt in RECORD_FORMATS.items())


def record_suffix_error(path: str | Path) -> UsageError:
    """The UsageError for a ``--record`` file name whose suffix names no format in :data:`RECORD_FORMATS`."""
    return UsageError(
        f"--record {path}: use a file name ending in {RECORD_SUFFIXES} "
        "(H.264 writing is not available in the pip OpenCV builds)"
    )


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
    """One frame handed from the tracking stage to the output stage, with everything drawn and logged for it."""

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
    crossings: Mapping[int, Any] = field(
        default_factory=dict
    )  # {track id: crossing.Crossing} (its explanation)


class Recorder:
    """Annotated frames -> ``path`` (.webm VP8, .mp4 mp4v or .avi MJPG); the file appears only at :meth:`close`.

    cv2.VideoWriter reports no write errors: on a full disk it leaves an .mp4 without its index ("moov atom not
    found") or an .avi holding a fraction of its frames. So the recorder watches the room left while it writes
    (raising :func:`~toolkit.fileio.no_space_error` once it is nearly gone) and, on :meth:`close`, reads the
    temporary file back (frame count, last frame) before renaming it into place.
    """

    CHECK_EVERY_S = 0.5  # how often the room left on the disk is checked while writing

    def __init__(self, path: str | Path, fps: float | None = None) -> None:
        self.path = Path(path).expanduser()
        suffix = self.path.suffix.lower()
        if suffix not in RECORD_FORMATS:
            raise record_suffix_error(self.path)
        if self.path.is_dir():
            raise UsageError(f"--record {self.path} is a directory; give a file name such as out.mp4")
        if fps is not None:
            check_record_fps(fps)
        try:
            self._tmp = partial_path(self.path)  # proves the folder is writable before any work starts
        except OSError as exc:
            if is_disk_full(exc):
                raise no_space_error(self.path, "recording failed: ") from None
            raise UsageError(f"cannot write the recording {self.path}: {exc.strerror or exc}") from None
        self.fps = fps
        self.frames = 0
        self._writer: Any = None
        self._closed = False
        self._next_check = 0.0
        self._log_level: int | None = None

    def write(self, frame: np.ndarray) -> None:
        """Append a BGR frame (the first one opens the writer at its size); raises once the disk is nearly full."""
        if self._writer is None:
            self._open(frame)
        self._writer.write(frame)
        self.frames += 1
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + self.CHECK_EVERY_S
            self._check_room()

    def _open(self, frame: np.ndarray) -> None:
        import cv2

        fps = check_record_fps(float(self.fps or 30.0))  # an infinite rate makes the writer spin forever
        height, width = frame.shape[:2]
        fmt = RECORD_FORMATS[self.path.suffix.lower()]
        # Its failed writes would print a warning per frame; the failure is reported once, by close().
        self._log_level = cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        # OpenCV's FFmpeg backend printf()s "tag 'VP80' is not supported with codec id 139 and format 'webm'" to
        # fd 2 for every WebM writer (WebM has no codec tags; it then writes VP8 all the same): captured here, and
        # passed on only when the writer does not open.
        with captured_fd2() as native:
            self._writer = cv2.VideoWriter(
                str(self._tmp), cv2.VideoWriter_fourcc(*fmt.fourcc), fps, (width, height)
            )
        if not self._writer.isOpened():
            said = one_line(native[0]) if native and native[0].strip() else "no message"
            others = ", ".join(s for s in RECORD_FORMATS if s != self.path.suffix.lower())
            raise ToolkitError(
                f"OpenCV cannot open a {fmt.codec} ({fmt.fourcc}) video writer for {self.path} "
                f"(OpenCV said: {said}): its FFmpeg may lack the encoder; record to {others} "
                "instead, or use the pip opencv-python-headless build, which has it"
            )

    def _check_room(self) -> None:
        """Raise once the disk (or the file size limit) has no room left for the next frames and the index."""
        with contextlib.suppress(OSError):
            per_frame = self._tmp.stat().st_size / max(self.frames, 1)
            if space_left(self._tmp) < LOW_SPACE_BYTES + 2 * per_frame:
                raise no_space_error(self.path, f"recording failed after {self.frames} frames: ")

    def close(self, keep: bool = True) -> bool:
        """Finish the file; when ``keep`` and a frame was written, read it back and rename it into place.

        Returns whether it was kept; a file that does not read back whole is removed and raised as an error
        (:func:`~toolkit.fileio.no_space_error` on a full disk).
        """
        if self._closed:
            return False
        self._closed = True
        if self._writer is not None:
            self._writer.release()  # writes the container index: without it an .mp4 does not play
            if self._log_level is not None:
                import cv2

                cv2.utils.logging.setLogLevel(self._log_level)
        try:
            if not (keep and self.frames):
                return False
            self._verify()
            commit_partial(self._tmp, self.path)
            return True
        except OSError as exc:
            if is_disk_full(exc):
                raise no_space_error(self.path, "recording failed: ") from None
            raise ToolkitError(f"recording failed: cannot write {self.path}: {exc.strerror or exc}") from None
        finally:
            self._tmp.unlink(missing_ok=True)  # gone after the rename; removed when not kept or not whole

    def _verify(self) -> None:
        """Read the finished temporary file back: all frames counted, the last one decodes."""
        import cv2

        size = self._tmp.stat().st_size
        capture = cv2.VideoCapture(str(self._tmp))
        try:
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
            last_ok = (
                count == self.frames and capture.set(cv2.CAP_PROP_POS_FRAMES, count - 1) and capture.read()[0]
            )
        finally:
            capture.release()
        if size > 0 and last_ok:
            return
        if space_left(self._tmp) < LOW_SPACE_BYTES:
            raise no_space_error(self.path, "recording failed: ")
        raise ToolkitError(
            f"recording failed: {self.path} reads back {count} of its {self.frames} frames "
            f"({size} bytes written), so it was not kept"
        )

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.close(keep=exc_type is None)


class OutputWorker(StageThread):
    """The last stage: segment (every N-th frame) / draw / write packets in order.

    ``sinks`` are callables ``(image, packet, event_latency_ms) -> None`` (recorder, events, server, window),
    run in order after drawing.
    """

    def __init__(
        self,
        segmenter: Any,
        every_n_seg: int,
        sinks: list[Callable[..., None]],
        times: StageTimes,
        threaded: bool = True,
        depth: int = 2,
    ) -> None:
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
        self.road_polygons: list[np.ndarray] = []  # the user's road region, outlined on every frame
        self.crossing: Any = None  # a crossing.RoadCrossing: grounds each track's crossing in the road region
        super().__init__("demo-output", threaded, depth)

    @property
    def fps(self) -> float | None:
        """Frames finished per second over the last 30, None before there are two."""
        times = self._done_times
        return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else None

    def process(self, packet: FramePacket) -> None:
        """Segment (when due), draw and hand ``packet``'s image to every sink; record the stage timings."""
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
        if self.crossing is not None:
            # Here rather than in the tracking stage: the mask this frame sees is then the same whether the stages
            # run pipelined or serially (the latest segmentation in frame order).
            tc = time.perf_counter()
            size = (image.shape[1], image.shape[0])
            packet.predictions, packet.crossings = self.crossing(packet.predictions, labels, size)
            timings["crossing"] = (time.perf_counter() - tc) * 1e3
        t1 = time.perf_counter()
        s = packet.stage_ms
        panel = {
            "detect": s["pre"] + s["detect"] + s["post"],
            "track": s["track"],
            "behav": s["behaviour"],
            **self._panel,
        }  # segment (last run), draw and output (previous frame)
        draw_frame(
            image,
            packet.tracks,
            packet.predictions,
            labels=labels,
            fps=self.fps,
            stage_ms=panel,
            crossing_source=_crossing_source(packet.crossings),
            road_polygons=self.road_polygons,
        )
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


def _crossing_source(crossings: Mapping[int, Any]) -> str | None:
    """The source of this frame's crossing numbers ("road" wins over "model"), for the legend."""
    sources = {c.source for c in crossings.values()}
    return "road" if "road" in sources else ("model" if "model" in sources else None)


def display_available() -> bool:
    """True when an OpenCV window can be shown: a GUI-enabled OpenCV build and (on Linux) a display."""
    import sys

    import cv2

    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
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
        """Destroy the window if it was shown."""
        if self._opened:
            import cv2

            with contextlib.suppress(cv2.error):
                cv2.destroyWindow(WINDOW)
