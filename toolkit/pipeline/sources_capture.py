"""Threaded frame capture: a 1-slot mailbox, a staleness watchdog and reconnects with capped backoff.

Capture runs in its own thread and hands over only the NEWEST frame: a slow consumer makes the source drop
(and count) frames, never queue them. Each reader thread owns one capture object: it is the only thread that
calls ``read()`` and ``release()`` on it, because releasing an OpenCV capture from another thread while a read
is blocked inside the driver can crash the process. When the watchdog sees no new frame for
``stale_after_s`` it bumps a generation counter instead: the stuck (daemon) reader is abandoned, a new one is
started after a backoff delay, and the old one releases its capture and discards its frame if the driver ever
returns. Gaps are reported in :meth:`Source.stats`, never filled with blank or repeated frames.

Three parts, one concern each: :class:`Source` (here) is what the consumer holds -- start, read the newest frame,
stats, close -- over the lock-guarded :class:`CaptureState` (the mailbox and the health record);
:class:`~toolkit.pipeline.capture_reader.FrameReader` opens the capture and reads its frames, one per generation;
:class:`~toolkit.pipeline.capture_supervisor.Supervisor` is the watchdog that abandons a failed or stalled reader
and starts the next one after a backoff.

Backends are any object with ``read() -> (ok, image)`` and ``release()`` (``cv2.VideoCapture`` is one), made
by an ``opener`` callable, so tests can script failures. ``open_source`` (sources.py) builds the real ones.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

from toolkit.config import Limits, check_ranges
from toolkit.errors import DeviceUnavailable, ToolkitError
from toolkit.pipeline.capture_reader import FrameReader
from toolkit.pipeline.capture_supervisor import Supervisor, backoff_delay
from toolkit.pipeline.redact import redact_url

__all__ = [
    "Capture",
    "CaptureState",
    "CapturedFrame",
    "EndOfStream",
    "Opener",
    "Source",
    "SourceConfig",
    "backoff_delay",
]


@dataclass(frozen=True)
class SourceConfig:
    """How a source is captured and supervised: watchdog, timeouts, backoff, pacing, looping, requested size."""

    stale_after_s: float = 5.0  # watchdog: no new frame for this long -> abandon the reader and reconnect
    open_timeout_s: float = 10.0  # a (re)opened camera/stream must deliver its first frame within this time
    local_open_timeout_s: float = (
        120.0  # the same for files and the synthetic scene (its setup is slow on a Pi)
    )
    backoff_initial_s: float = 0.5  # delay before the first reconnect attempt after a failure
    backoff_factor: float = 2.0  # each further failed attempt multiplies the delay by this
    backoff_max_s: float = 30.0  # the delay never grows beyond this (cap)
    backoff_jitter: float = 0.1  # +- fraction of random jitter on each delay (0 = exact delays)
    max_retries: int | None = (
        None  # give up (DeviceUnavailable) after this many failed attempts; None = never
    )
    max_stuck_readers: int = (
        4  # give up when this many abandoned reader threads are still stuck in the driver
    )
    realtime: bool = True  # files/synthetic: pace at their native FPS (False: as fast as the consumer reads)
    loop: bool = False  # files: start again at the end instead of ending the stream
    width: int | None = None  # requested capture width (cameras, picamera2, synthetic); None = source default
    height: int | None = None  # requested capture height; None = source default
    fps: float | None = None  # requested camera rate / pacing rate for files; None = source's own rate
    quiet_backend: bool = True  # silence OpenCV/FFmpeg log lines (problems reach you via stats() and errors)

    LIMITS: ClassVar[Limits] = {  # valid values of numeric keys (source options)
        "stale_after_s": (0.01, 3600.0),
        "open_timeout_s": (0.01, 3600.0),
        "local_open_timeout_s": (0.01, 3600.0),
        "backoff_initial_s": (0.0, 3600.0),
        "backoff_factor": (1.0, 100.0),
        "backoff_max_s": (0.0, 86_400.0),
        "backoff_jitter": (0.0, 1.0),
        "max_retries": (0, 10**9),
        "max_stuck_readers": (0, 1000),
        "width": (1, 16_384),
        "height": (1, 16_384),
        "fps": (0.01, 1000.0),
    }

    def __post_init__(self) -> None:
        check_ranges(self, "source config")


@dataclass(frozen=True)
class CapturedFrame:
    """A frame as the consumer gets it from :meth:`Source.read`."""

    image: np.ndarray  # H x W x 3 uint8 BGR, owned by the consumer
    index: int  # 0, 1, 2 ... over the whole run (keeps counting across reconnects and loops)
    t_capture: float  # time.monotonic() when the frame became available
    source_ts: float  # the source's clock: seconds into a file / synthetic scene, wall time for live sources
    truth: Any = None  # ground truth when the source has it (the synthetic scene's Frame), else None


class EndOfStream(Exception):
    """Raised by :meth:`Source.read` when a file ended (without ``loop``) or the source was closed."""


class Capture(Protocol):
    """A capture backend (``cv2.VideoCapture`` is one); only its reader thread calls it."""

    def read(self) -> tuple[bool, np.ndarray | None]:
        """``(True, BGR image)`` for the next frame, ``(False, None)`` when there is none."""
        ...

    def release(self) -> None:
        """Free the device or file."""
        ...


Opener = Callable[[], Capture]


class CaptureState:
    """What the reader threads, the supervisor and the consumer share, all guarded by ``cond``: the 1-slot
    mailbox, the current reader generation and the health record behind :meth:`Source.stats`."""

    def __init__(self, *, backpressure: bool) -> None:
        self.cond = threading.Condition()
        self.closed = threading.Event()
        self.backpressure = backpressure  # a reader waits for the consumer (files/synthetic not paced)
        self.slot: CapturedFrame | None = None  # the newest frame not yet read
        self.gen = 0  # the current reader generation; a reader of an older one is abandoned
        self.ended = False
        self.failed: str | None = None  # why the supervisor gave up
        self.failure: tuple[int, str] | None = None  # (generation, reason) reported by a reader
        self.gen_started = 0.0
        self.gen_has_frame = False
        self.attempt = 0  # failed attempts since the last frame (drives the backoff)
        self.next_index = 0
        self.file_pos = 0  # frames taken from the current pass of a file (to resume there after a reconnect)
        self.last_post = 0.0
        self.last_take = 0.0
        self.gap_from: float | None = None
        self.post_times: deque[float] = deque(maxlen=32)
        self.status = "not started"
        self.counters = {
            "frames_captured": 0,
            "frames_delivered": 0,
            "frames_dropped": 0,
            "stalls": 0,
            "errors": 0,
            "reconnect_attempts": 0,
            "reconnects": 0,
            "loops": 0,
        }
        self.last_gap_s: float | None = None
        self.last_error: str | None = None
        self.size: tuple[int, int] | None = None

    def new_generation_locked(self) -> int:
        """Reset the per-generation record for a reader about to start; return its generation."""
        self.gen_started = time.monotonic()
        self.gen_has_frame = False
        self.failure = None
        return self.gen

    def current(self, gen: int) -> bool:
        """True while ``gen`` is the live generation and the source is open."""
        return gen == self.gen and not self.closed.is_set()

    def wait_for_empty_slot(self, gen: int) -> bool:
        """Block until the consumer took the last frame; False once ``gen`` is no longer current."""
        with self.cond:
            while self.slot is not None and self.current(gen):
                self.cond.wait(0.25)
            return self.current(gen)

    def post(self, gen: int, image: np.ndarray, source_ts: float, truth: Any) -> None:
        """Put a frame read by generation ``gen`` in the slot (replacing, and counting, an unread one)."""
        now = time.monotonic()
        with self.cond:
            if not self.current(gen):
                return
            if self.slot is not None:
                self.counters["frames_dropped"] += 1  # overwritten unread: the consumer only wants the newest
            self.slot = CapturedFrame(
                image=image, index=self.next_index, t_capture=now, source_ts=source_ts, truth=truth
            )
            self.next_index += 1
            self.file_pos += 1
            self.counters["frames_captured"] += 1
            self.post_times.append(now)
            if not self.gen_has_frame:
                self.gen_has_frame = True
                self.attempt = 0
                if self.gap_from is not None:
                    self.last_gap_s = now - self.gap_from
                    self.counters["reconnects"] += 1
                    self.gap_from = None
            self.size = (int(image.shape[1]), int(image.shape[0])) if image.ndim >= 2 else None
            self.last_post = now
            self.status = "running"
            self.cond.notify_all()

    def count_loop(self) -> None:
        """A file started its next pass (``loop``)."""
        with self.cond:
            self.counters["loops"] += 1
            self.file_pos = 0

    def end(self, gen: int) -> None:
        """Generation ``gen`` reached the end of the data: the consumer's next read raises EndOfStream."""
        with self.cond:
            if self.current(gen):
                self.ended = True
                self.status = "ended"
                self.cond.notify_all()

    def report_failure(self, gen: int, reason: str) -> None:
        """Generation ``gen`` failed with ``reason`` (URLs redacted); the supervisor will replace it."""
        with self.cond:
            if self.current(gen):
                self.failure = (gen, redact_url(reason))  # an exception's text may quote the stream URL
                self.cond.notify_all()


class Source:
    """A started capture; :meth:`read` returns the newest frame. Use as a context manager or call close().

    ``opener`` makes a fresh capture object (raise on failure). ``live`` sources (cameras, streams) treat a
    failed read as a fault to reconnect from; other sources (files, synthetic) treat it as the end of data.
    ``fps`` is the native rate used to pace non-live sources when ``config.realtime``. Frames are read by a
    :class:`~toolkit.pipeline.capture_reader.FrameReader` per generation, watched by a
    :class:`~toolkit.pipeline.capture_supervisor.Supervisor`.
    """

    def __init__(
        self,
        opener: Opener,
        *,
        name: str,
        kind: str,
        live: bool,
        config: SourceConfig | None = None,
        fps: float | None = None,
        open_error: Callable[[str], ToolkitError] | None = None,
        seed: int | None = None,
    ) -> None:
        self.name = redact_url(
            name
        )  # shown in errors, stats, events and the web view: never a stream password
        self.kind = kind
        self.live = live
        self.config = config or SourceConfig()
        self.fps = fps
        self._opener = opener
        self._open_error = open_error or (
            lambda reason: DeviceUnavailable(f"cannot open {self.name}: {reason}")
        )
        self._open_timeout_s = self.config.open_timeout_s if live else self.config.local_open_timeout_s
        self._state = CaptureState(backpressure=not live and not self.config.realtime)
        self._supervisor = Supervisor(
            self._state,
            self.config,
            name=self.name,
            live=live,
            open_timeout_s=self._open_timeout_s,
            new_reader=self._new_reader,
            seed=seed,
        )
        self.backoff_history = self._supervisor.backoff_history  # delays actually scheduled, newest last

    def _new_reader(self, gen: int) -> threading.Thread:
        return FrameReader(
            self._state, gen, self._opener, name=self.name, live=self.live, config=self.config, fps=self.fps
        ).thread

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> Source:
        """Open the source and wait for its first frame (``open_timeout_s``); raise a one-line error if not."""
        if self._supervisor.watching:
            return self
        state = self._state
        with state.cond:
            state.status = "connecting"
            self._supervisor.start_reader_locked()
            deadline = time.monotonic() + self._open_timeout_s
            while state.slot is None and not state.ended:
                if state.failure is not None:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    state.failure = (state.gen, f"no frame within {self._open_timeout_s:g} s")
                    break
                state.cond.wait(remaining)
            ok = state.slot is not None
            reason = state.failure[1] if state.failure else "it ended before its first frame"
        if not ok:
            self.close(timeout=0.2)  # a reader stuck in the driver is left behind (it releases on return)
            raise self._open_error(reason)
        self._supervisor.watch()
        return self

    def close(self, timeout: float = 1.0) -> None:
        """Stop capture; join the threads within ``timeout`` seconds (a reader stuck in a driver is left)."""
        state = self._state
        with state.cond:
            if state.closed.is_set():
                return
            state.closed.set()
            state.gen += 1
            if not state.ended and state.failed is None:
                state.status = "closed"
            state.cond.notify_all()
            threads = self._supervisor.threads()
        deadline = time.monotonic() + timeout
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(max(deadline - time.monotonic(), 0.0))

    def __enter__(self) -> Source:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[CapturedFrame]:
        """Yield frames until the stream ends (timeouts are skipped; use read() to see them)."""
        while True:
            try:
                frame = self.read(timeout=0.5)
            except EndOfStream:
                return
            if frame is not None:
                yield frame

    # -- consumer side ---------------------------------------------------------------------------------
    def read(self, timeout: float = 1.0) -> CapturedFrame | None:
        """The newest frame not yet read, waiting at most ``timeout`` s; None on timeout.

        Raises EndOfStream at the end of a file (no loop) or after close(), DeviceUnavailable once the
        source gave up reconnecting (``max_retries`` / ``max_stuck_readers``).
        """
        state = self._state
        deadline = time.monotonic() + max(timeout, 0.0)
        with state.cond:
            while state.slot is None:
                if state.failed is not None:
                    raise DeviceUnavailable(f"{self.name}: {state.failed}")
                if state.ended or state.closed.is_set():
                    raise EndOfStream(self.name)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                state.cond.wait(remaining)
            frame, state.slot = state.slot, None
            state.counters["frames_delivered"] += 1
            state.last_take = time.monotonic()
            state.cond.notify_all()  # wakes a reader waiting for the slot (backpressure mode)
            return frame

    def stats(self) -> dict[str, Any]:
        """Counters and state: status, fps, frames_*, stalls, errors, reconnects, last_gap_s, stuck_readers."""
        state = self._state
        with state.cond:
            times = list(state.post_times)
            fps = (
                (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else None
            )
            return {
                "source": self.name,
                "kind": self.kind,
                "status": state.status,
                "fps": fps,
                **state.counters,
                "last_gap_s": state.last_gap_s,
                "last_error": state.last_error,
                "stuck_readers": self._supervisor.stuck_locked(),
                "size": list(state.size) if state.size else None,
            }
