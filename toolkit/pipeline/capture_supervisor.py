"""The supervisor half of a :class:`~toolkit.pipeline.sources_capture.Source`: watchdog and reconnect backoff.

The watchdog thread polls the shared :class:`~toolkit.pipeline.sources_capture.CaptureState`. When the current
reader reported a failure, delivered no first frame within the open timeout, or no new frame for
``stale_after_s``, it abandons that reader by bumping the generation counter (the reader is never stopped from
outside: a read blocked in a driver cannot be), waits a capped, jittered exponential backoff and starts a new
reader. It gives up, and the consumer's next read raises DeviceUnavailable, after ``max_retries`` failed
attempts or once more than ``max_stuck_readers`` abandoned readers are still stuck inside the driver.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # sources_capture imports this module
    from toolkit.pipeline.sources_capture import CaptureState, SourceConfig


def backoff_delay(attempt: int, config: SourceConfig, rng: random.Random | None = None) -> float:
    """Delay in seconds before reconnect attempt ``attempt`` (0-based): initial * factor**attempt, capped."""
    base = min(config.backoff_initial_s * config.backoff_factor ** min(attempt, 64), config.backoff_max_s)
    if config.backoff_jitter and rng is not None:
        base *= 1.0 + config.backoff_jitter * rng.uniform(-1.0, 1.0)
    return max(base, 0.0)


class Supervisor:
    """Starts the reader of each generation (``new_reader(gen)`` makes its unstarted thread) and, once
    :meth:`watch` is called, replaces a failed or stalled one with backoff.

    ``open_timeout_s`` is how long a new reader may take to deliver its first frame. A ``live`` source's unread
    frame is dropped when its reader is abandoned. ``backoff_history`` holds the delays actually scheduled, newest
    last.
    """

    def __init__(
        self,
        state: CaptureState,
        config: SourceConfig,
        *,
        name: str,
        live: bool,
        open_timeout_s: float,
        new_reader: Callable[[int], threading.Thread],
        seed: int | None = None,
    ) -> None:
        self.state = state
        self.config = config
        self.name = name
        self.live = live
        self.open_timeout_s = open_timeout_s
        self.readers: dict[int, threading.Thread] = {}  # by generation; abandoned ones until they end
        self.backoff_history: deque[float] = deque(maxlen=64)
        self._new_reader = new_reader
        self._rng = random.Random(seed)
        self._thread: threading.Thread | None = None

    @property
    def watching(self) -> bool:
        """True once :meth:`watch` started the watchdog."""
        return self._thread is not None

    def start_reader_locked(self) -> None:
        """Begin a new generation and start its reader (the caller holds ``state.cond``)."""
        gen = self.state.new_generation_locked()
        thread = self._new_reader(gen)
        self.readers = {g: t for g, t in self.readers.items() if t.is_alive()}
        self.readers[gen] = thread
        thread.start()

    def watch(self) -> None:
        """Start the watchdog thread (after the first frame is in hand)."""
        self._thread = threading.Thread(
            target=self._supervise, name=f"source-watchdog[{self.name}]", daemon=True
        )
        self._thread.start()

    def threads(self) -> list[threading.Thread]:
        """The watchdog and every reader thread not yet forgotten (to join on close)."""
        return [t for t in [self._thread, *self.readers.values()] if t is not None]

    def stuck_locked(self) -> int:
        """Abandoned readers still inside the driver (the caller holds ``state.cond``)."""
        return sum(1 for g, t in self.readers.items() if g != self.state.gen and t.is_alive())

    def _supervise(self) -> None:
        state, cfg = self.state, self.config
        poll = max(min(cfg.stale_after_s / 4.0, 0.1), 0.005)
        while True:
            with state.cond:
                if state.closed.is_set() or state.ended:
                    return
                state.cond.wait(poll)
                if state.closed.is_set() or state.ended:
                    return
                reason = self._fault_locked(time.monotonic())
                if reason is None:
                    continue
                delay = self._abandon_locked(reason)
                if delay is None:
                    return
            if state.closed.wait(delay):
                return
            with state.cond:
                if state.closed.is_set():
                    return
                state.counters["reconnect_attempts"] += 1
                state.status = f"reconnecting (attempt {state.attempt}): {state.last_error}"
                self.start_reader_locked()

    def _fault_locked(self, now: float) -> str | None:
        """Why the current reader must be replaced, or None while it is healthy."""
        state = self.state
        if state.failure is not None and state.failure[0] == state.gen:
            state.counters["errors"] += 1
            return state.failure[1]
        if not state.gen_has_frame:
            if now - state.gen_started > self.open_timeout_s:
                state.counters["stalls"] += 1
                return f"no frame within {self.open_timeout_s:g} s of opening"
            return None
        if state.backpressure:
            if state.slot is not None:
                return None  # the consumer has not taken the last frame yet: the reader is waiting, not stuck
            since = max(state.last_post, state.last_take)
        else:
            since = state.last_post
        if now - since > self.config.stale_after_s:
            state.counters["stalls"] += 1
            return f"no new frame for {now - since:.1f} s"
        return None

    def _abandon_locked(self, reason: str) -> float | None:
        """Invalidate the current reader; return the backoff delay, or None when giving up."""
        state = self.state
        state.gen += 1  # the old reader's frames are now discarded; it releases its capture when it returns
        state.last_error = reason
        if state.gap_from is None:
            state.gap_from = state.last_post or state.gen_started
        if state.slot is not None and self.live:
            state.slot = None  # a pre-fault frame is not "the newest" any more: never hand it over late
            state.counters["frames_dropped"] += 1
        stuck = self.stuck_locked()
        cfg = self.config
        if cfg.max_retries is not None and state.attempt >= cfg.max_retries:
            return self._give_up_locked(
                f"gave up after {state.attempt} reconnect attempts; last error: {reason}"
            )
        if stuck > cfg.max_stuck_readers:
            return self._give_up_locked(
                f"{stuck} capture threads are stuck inside the driver; last error: {reason}"
            )
        delay = backoff_delay(state.attempt, cfg, self._rng)
        state.attempt += 1
        self.backoff_history.append(delay)
        state.status = f"waiting {delay:.1f} s to reconnect: {reason}"
        state.cond.notify_all()
        return delay

    def _give_up_locked(self, message: str) -> None:
        self.state.failed = message
        self.state.status = f"failed: {message}"
        self.state.cond.notify_all()
        return None
