"""Threaded frame capture: a 1-slot mailbox, a staleness watchdog and reconnects with capped backoff.

Capture runs in its own thread and hands over only the NEWEST frame: a slow consumer makes the source drop
(and count) frames, never queue them. Each reader thread owns one capture object: it is the only thread that
calls ``read()`` and ``release()`` on it, because releasing an OpenCV capture from another thread while a read
is blocked inside the driver can crash the process. When the watchdog sees no new frame for
``stale_after_s`` it bumps a generation counter instead: the stuck (daemon) reader is abandoned, a new one is
started after a backoff delay, and the old one releases its capture and discards its frame if the driver ever
returns. Gaps are reported in :meth:`Source.stats`, never filled with blank or repeated frames.

Backends are any object with ``read() -> (ok, image)`` and ``release()`` (``cv2.VideoCapture`` is one), made
by an ``opener`` callable, so tests can script failures. ``open_source`` (sources.py) builds the real ones.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

from toolkit.config import Limits, check_ranges
from toolkit.errors import DeviceUnavailable, ToolkitError, one_line
from toolkit.pipeline.redact import redact_url


@dataclass(frozen=True)
class SourceConfig:
    stale_after_s: float = 5.0  # watchdog: no new frame for this long -> abandon the reader and reconnect
    open_timeout_s: float = 10.0  # a (re)opened camera/stream must deliver its first frame within this time
    local_open_timeout_s: float = 120.0  # the same for files and the synthetic scene (its setup is slow on a Pi)
    backoff_initial_s: float = 0.5  # delay before the first reconnect attempt after a failure
    backoff_factor: float = 2.0  # each further failed attempt multiplies the delay by this
    backoff_max_s: float = 30.0  # the delay never grows beyond this (cap)
    backoff_jitter: float = 0.1  # +- fraction of random jitter on each delay (0 = exact delays)
    max_retries: int | None = None  # give up (DeviceUnavailable) after this many failed attempts; None = never
    max_stuck_readers: int = 4  # give up when this many abandoned reader threads are still stuck in the driver
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
    image: np.ndarray  # H x W x 3 uint8 BGR, owned by the consumer
    index: int  # 0, 1, 2 ... over the whole run (keeps counting across reconnects and loops)
    t_capture: float  # time.monotonic() when the frame became available
    source_ts: float  # the source's clock: seconds into a file / synthetic scene, wall time for live sources
    truth: Any = None  # ground truth when the source has it (the synthetic scene's Frame), else None


class EndOfStream(Exception):
    """Raised by :meth:`Source.read` when a file ended (without ``loop``) or the source was closed."""


class Capture(Protocol):
    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def release(self) -> None: ...


Opener = Callable[[], Capture]


def backoff_delay(attempt: int, config: SourceConfig, rng: random.Random | None = None) -> float:
    """Delay in seconds before reconnect attempt ``attempt`` (0-based): initial * factor**attempt, capped."""
    base = min(config.backoff_initial_s * config.backoff_factor ** min(attempt, 64), config.backoff_max_s)
    if config.backoff_jitter and rng is not None:
        base *= 1.0 + config.backoff_jitter * rng.uniform(-1.0, 1.0)
    return max(base, 0.0)


class Source:
    """A started capture; :meth:`read` returns the newest frame. Use as a context manager or call close().

    ``opener`` makes a fresh capture object (raise on failure). ``live`` sources (cameras, streams) treat a
    failed read as a fault to reconnect from; other sources (files, synthetic) treat it as the end of data.
    ``fps`` is the native rate used to pace non-live sources when ``config.realtime``.
    """

    def __init__(self, opener: Opener, *, name: str, kind: str, live: bool, config: SourceConfig | None = None,
                 fps: float | None = None, open_error: Callable[[str], ToolkitError] | None = None,
                 seed: int | None = None) -> None:
        self.name = redact_url(name)  # shown in errors, stats, events and the web view: never a stream password
        self.kind = kind
        self.live = live
        self.config = config or SourceConfig()
        self.fps = fps
        self._opener = opener
        self._open_error = open_error or (lambda reason: DeviceUnavailable(f"cannot open {self.name}: {reason}"))
        self._rng = random.Random(seed)
        self._cond = threading.Condition()
        self._closed = threading.Event()
        self._slot: CapturedFrame | None = None
        self._gen = 0
        self._readers: dict[int, threading.Thread] = {}
        self._supervisor: threading.Thread | None = None
        self._backpressure = not live and not self.config.realtime
        self._open_timeout_s = self.config.open_timeout_s if live else self.config.local_open_timeout_s
        self._ended = False
        self._failed: str | None = None
        self._failure: tuple[int, str] | None = None  # (generation, reason) reported by a reader
        self._gen_started = 0.0
        self._gen_has_frame = False
        self._attempt = 0  # failed attempts since the last frame (drives the backoff)
        self._next_index = 0
        self._file_pos = 0  # frames taken from the current pass of a file (to resume there after a reconnect)
        self._last_post = 0.0
        self._last_take = 0.0
        self._gap_from: float | None = None
        self._post_times: deque[float] = deque(maxlen=32)
        self._status = "not started"
        self._counters = {"frames_captured": 0, "frames_delivered": 0, "frames_dropped": 0, "stalls": 0,
                          "errors": 0, "reconnect_attempts": 0, "reconnects": 0, "loops": 0}
        self._last_gap_s: float | None = None
        self._last_error: str | None = None
        self._size: tuple[int, int] | None = None
        self.backoff_history: deque[float] = deque(maxlen=64)  # delays actually scheduled, newest last

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> Source:
        """Open the source and wait for its first frame (``open_timeout_s``); raise a one-line error if not."""
        if self._supervisor is not None:
            return self
        with self._cond:
            self._status = "connecting"
            self._start_reader_locked()
            deadline = time.monotonic() + self._open_timeout_s
            while self._slot is None and not self._ended:
                if self._failure is not None:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._failure = (self._gen, f"no frame within {self._open_timeout_s:g} s")
                    break
                self._cond.wait(remaining)
            ok = self._slot is not None
            reason = self._failure[1] if self._failure else "it ended before its first frame"
        if not ok:
            self.close(timeout=0.2)  # a reader stuck in the driver is left behind (it releases on return)
            raise self._open_error(reason)
        self._supervisor = threading.Thread(target=self._supervise, name=f"source-watchdog[{self.name}]",
                                            daemon=True)
        self._supervisor.start()
        return self

    def close(self, timeout: float = 1.0) -> None:
        """Stop capture; join the threads within ``timeout`` seconds (a reader stuck in a driver is left)."""
        with self._cond:
            if self._closed.is_set():
                return
            self._closed.set()
            self._gen += 1
            if not self._ended and self._failed is None:
                self._status = "closed"
            self._cond.notify_all()
            threads = [t for t in [self._supervisor, *self._readers.values()] if t is not None]
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
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._cond:
            while self._slot is None:
                if self._failed is not None:
                    raise DeviceUnavailable(f"{self.name}: {self._failed}")
                if self._ended or self._closed.is_set():
                    raise EndOfStream(self.name)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
            frame, self._slot = self._slot, None
            self._counters["frames_delivered"] += 1
            self._last_take = time.monotonic()
            self._cond.notify_all()  # wakes a reader waiting for the slot (backpressure mode)
            return frame

    def stats(self) -> dict[str, Any]:
        """Counters and state: status, fps, frames_*, stalls, errors, reconnects, last_gap_s, stuck_readers."""
        with self._cond:
            times = list(self._post_times)
            fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else None
            stuck = sum(1 for g, t in self._readers.items() if g != self._gen and t.is_alive())
            return {"source": self.name, "kind": self.kind, "status": self._status, "fps": fps,
                    **self._counters, "last_gap_s": self._last_gap_s, "last_error": self._last_error,
                    "stuck_readers": stuck, "size": list(self._size) if self._size else None}

    # -- reader threads (one per generation) -----------------------------------------------------------
    def _start_reader_locked(self) -> None:
        gen = self._gen
        self._gen_started = time.monotonic()
        self._gen_has_frame = False
        self._failure = None
        thread = threading.Thread(target=self._read_loop, args=(gen,), name=f"source-reader[{self.name}]#{gen}",
                                  daemon=True)
        self._readers = {g: t for g, t in self._readers.items() if t.is_alive()}
        self._readers[gen] = thread
        thread.start()

    def _current(self, gen: int) -> bool:
        return gen == self._gen and not self._closed.is_set()

    def _read_loop(self, gen: int) -> None:
        cap: Capture | None = None
        try:
            cap = self._opener()
            cap = self._seek_if_resuming(cap)
            fps = self.config.fps or self.fps
            pace = fps if (not self.live and self.config.realtime and fps) else None
            n_pass = n_start = self._file_pos  # frame number within the file (resumes after a reconnect)
            pass_start: float | None = None  # pacing clock, anchored at the first frame (opening can be slow)
            while self._current(gen):
                if self._backpressure and not self._wait_for_empty_slot(gen):
                    return
                ok, image = cap.read()
                if not self._current(gen):
                    return  # abandoned while blocked in the driver: this frame must not reach the consumer
                if not ok or image is None:
                    if self.live:
                        raise OSError("the device returned no frame (disconnected?)")
                    if self.config.loop and n_pass > 0:
                        cap.release()
                        cap = None
                        cap = self._opener()
                        with self._cond:
                            self._counters["loops"] += 1
                            self._file_pos = 0
                        n_pass = n_start = 0
                        pass_start = None
                        continue
                    self._end(gen)
                    return
                if pace:
                    if pass_start is None:
                        pass_start, n_start = time.monotonic(), n_pass
                    lag = pass_start + (n_pass - n_start) / pace - time.monotonic()
                    if lag > 0 and self._closed.wait(lag):
                        return
                    if lag < -max(0.25, 2.0 / pace):  # fell behind (slow decode): re-anchor, do not burst
                        pass_start, n_start = time.monotonic(), n_pass
                self._post(gen, image, self._source_ts(cap, n_pass, fps), getattr(cap, "last_truth", None))
                n_pass += 1
        except Exception as exc:  # any backend failure becomes a reconnect, never a dead pipeline
            known = isinstance(exc, (OSError, ToolkitError)) and str(exc)
            self._report_failure(gen, one_line(str(exc) if known else f"{type(exc).__name__}: {exc}", 200))
        finally:
            if cap is not None:
                try:
                    cap.release()
                except Exception:
                    pass

    def _seek_if_resuming(self, cap: Capture) -> Capture:
        # A file that stalled or failed mid-way resumes where it was instead of repeating from its start.
        if not self.live and self._file_pos > 0 and hasattr(cap, "set"):
            import cv2

            cap.set(cv2.CAP_PROP_POS_FRAMES, float(self._file_pos))  # type: ignore[attr-defined]
        return cap

    def _source_ts(self, cap: Capture, n_pass: int, fps: float | None) -> float:
        truth = getattr(cap, "last_truth", None)
        if truth is not None and hasattr(truth, "time_s"):
            return float(truth.time_s)
        if not self.live and fps:
            return n_pass / fps
        return time.time()

    def _wait_for_empty_slot(self, gen: int) -> bool:
        with self._cond:
            while self._slot is not None and self._current(gen):
                self._cond.wait(0.25)
            return self._current(gen)

    def _post(self, gen: int, image: np.ndarray, source_ts: float, truth: Any) -> None:
        now = time.monotonic()
        with self._cond:
            if not self._current(gen):
                return
            if self._slot is not None:
                self._counters["frames_dropped"] += 1  # overwritten unread: the consumer only wants the newest
            self._slot = CapturedFrame(image=image, index=self._next_index, t_capture=now, source_ts=source_ts,
                                       truth=truth)
            self._next_index += 1
            self._file_pos += 1
            self._counters["frames_captured"] += 1
            self._post_times.append(now)
            if not self._gen_has_frame:
                self._gen_has_frame = True
                self._attempt = 0
                if self._gap_from is not None:
                    self._last_gap_s = now - self._gap_from
                    self._counters["reconnects"] += 1
                    self._gap_from = None
            self._size = (int(image.shape[1]), int(image.shape[0])) if image.ndim >= 2 else None
            self._last_post = now
            self._status = "running"
            self._cond.notify_all()

    def _end(self, gen: int) -> None:
        with self._cond:
            if self._current(gen):
                self._ended = True
                self._status = "ended"
                self._cond.notify_all()

    def _report_failure(self, gen: int, reason: str) -> None:
        with self._cond:
            if self._current(gen):
                self._failure = (gen, redact_url(reason))  # an exception's text may quote the stream URL
                self._cond.notify_all()

    # -- watchdog / reconnect --------------------------------------------------------------------------
    def _supervise(self) -> None:
        cfg = self.config
        poll = max(min(cfg.stale_after_s / 4.0, 0.1), 0.005)
        while True:
            with self._cond:
                if self._closed.is_set() or self._ended:
                    return
                self._cond.wait(poll)
                if self._closed.is_set() or self._ended:
                    return
                reason = self._fault_locked(time.monotonic())
                if reason is None:
                    continue
                delay = self._abandon_locked(reason)
                if delay is None:
                    return
            if self._closed.wait(delay):
                return
            with self._cond:
                if self._closed.is_set():
                    return
                self._counters["reconnect_attempts"] += 1
                self._status = f"reconnecting (attempt {self._attempt}): {self._last_error}"
                self._start_reader_locked()

    def _fault_locked(self, now: float) -> str | None:
        """Why the current reader must be replaced, or None while it is healthy."""
        if self._failure is not None and self._failure[0] == self._gen:
            self._counters["errors"] += 1
            return self._failure[1]
        if not self._gen_has_frame:
            if now - self._gen_started > self._open_timeout_s:
                self._counters["stalls"] += 1
                return f"no frame within {self._open_timeout_s:g} s of opening"
            return None
        if self._backpressure:
            if self._slot is not None:
                return None  # the consumer has not taken the last frame yet: the reader is waiting, not stuck
            since = max(self._last_post, self._last_take)
        else:
            since = self._last_post
        if now - since > self.config.stale_after_s:
            self._counters["stalls"] += 1
            return f"no new frame for {now - since:.1f} s"
        return None

    def _abandon_locked(self, reason: str) -> float | None:
        """Invalidate the current reader; return the backoff delay, or None when giving up."""
        self._gen += 1  # the old reader's frames are now discarded; it releases its capture when it returns
        self._last_error = reason
        if self._gap_from is None:
            self._gap_from = self._last_post or self._gen_started
        if self._slot is not None and self.live:
            self._slot = None  # a pre-fault frame is not "the newest" any more: never hand it over late
            self._counters["frames_dropped"] += 1
        stuck = sum(1 for g, t in self._readers.items() if g != self._gen and t.is_alive())
        cfg = self.config
        if cfg.max_retries is not None and self._attempt >= cfg.max_retries:
            return self._give_up_locked(f"gave up after {self._attempt} reconnect attempts; last error: {reason}")
        if stuck > cfg.max_stuck_readers:
            return self._give_up_locked(f"{stuck} capture threads are stuck inside the driver; last error: {reason}")
        delay = backoff_delay(self._attempt, cfg, self._rng)
        self._attempt += 1
        self.backoff_history.append(delay)
        self._status = f"waiting {delay:.1f} s to reconnect: {reason}"
        self._cond.notify_all()
        return delay

    def _give_up_locked(self, message: str) -> None:
        self._failed = message
        self._status = f"failed: {message}"
        self._cond.notify_all()
        return None
