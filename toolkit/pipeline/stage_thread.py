"""One stage of the demo pipeline in a thread of its own, fed through a short blocking queue.

The demo runs three of these back to back (detect | track + behaviour | segment + draw + outputs), so that on a
multi-core board frame k is drawn while frame k+1 is tracked and frame k+2 is detected. The queues are short
and blocking: a slow stage holds the previous one back (every frame that entered the pipeline is finished and
recorded); frames are dropped only at the source, where they are counted. With ``threaded=False`` the same stage
runs inline in the caller's thread (the serial baseline for benchmarks and tests).
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

STALL_TIMEOUT_S = 30.0  # a draining stage that finishes no item for this long (or 5x its slowest) is given up


class StageStalled(RuntimeError):
    """A stage stopped finishing items while the pipeline drained: the frames still queued are lost."""


class StageThread:
    """Process submitted items in order; subclasses implement :meth:`process`.

    An exception in :meth:`process` stops the stage: it is kept in :attr:`error`, later items are discarded and
    :meth:`submit` returns False, so the producer can stop and report it.
    """

    def __init__(self, name: str, threaded: bool = True, depth: int = 2) -> None:
        self.name = name
        self.threaded = threaded
        self.error: BaseException | None = None
        self.cpu_s = (
            0.0  # CPU time of this stage's thread (threaded only): load-independent cost of the stage
        )
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
        self._last_done = time.monotonic()  # when the last item finished (or the stage started)
        self._slowest_s = 0.0  # the longest single item so far (sets how long a drain may wait per item)
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
            self._thread.start()

    def process(self, item: Any) -> None:
        """Handle one submitted item (in the stage's thread); subclasses override it. An exception stops the stage."""
        raise NotImplementedError

    def submit(self, item: Any) -> bool:
        """Hand over an item (blocks while the queue is full). False once the stage has failed."""
        if not self.threaded:
            if self.error is None:
                try:
                    self.process(item)
                except Exception as exc:  # reported through .error, like the threaded path
                    self.error = exc
            return self.error is None
        while self.error is None:
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def close(self, stall_timeout: float = STALL_TIMEOUT_S) -> None:
        """Finish every queued item, then stop the thread.

        Waits as long as the stage keeps finishing items (a slow board or an emulator may take seconds per frame:
        a frame that entered the pipeline is still recorded). Only when no item finishes for ``stall_timeout``
        seconds, or for 5x the slowest item so far if that is longer, is the stage given up: :attr:`error` then
        says so, and the run reports the lost frames instead of ending as if it were whole. Ctrl-C interrupts
        the wait."""
        if self._thread is None:
            return
        since = time.monotonic()  # an idle stage is not a stalled one: count from now at the earliest
        while self._thread.is_alive():
            try:
                self._queue.put(None, timeout=0.1)
                break
            except queue.Full:
                if self._stalled(stall_timeout, since):
                    break
        while self._thread.is_alive() and not self._stalled(stall_timeout, since):
            self._thread.join(0.1)
        if self._thread.is_alive() and self.error is None:
            self.error = StageStalled(
                f"pipeline stage '{self.name}' finished no frame for {self._stall_limit(stall_timeout):.0f} s "
                f"while draining ({self._queue.qsize()} frame(s) still queued); its last frames are lost"
            )
        self._thread = None

    def _stall_limit(self, stall_timeout: float) -> float:
        return max(stall_timeout, 5.0 * self._slowest_s)

    def _stalled(self, stall_timeout: float, since: float) -> bool:
        """True when no item has finished for the stall limit (from the last finished item or ``since``)."""
        return time.monotonic() - max(self._last_done, since) > self._stall_limit(stall_timeout)

    def _loop(self) -> None:
        start = time.thread_time()
        while True:
            item = self._queue.get()
            if item is None:
                self.cpu_s = time.thread_time() - start
                return
            if self.error is not None:
                continue  # keep draining so that the producer never blocks on a dead stage
            started = time.monotonic()
            try:
                self.process(item)
            except Exception as exc:
                self.error = exc
            finally:
                self._last_done = time.monotonic()
                self._slowest_s = max(self._slowest_s, self._last_done - started)
