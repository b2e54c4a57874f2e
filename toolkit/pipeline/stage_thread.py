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

    def close(self, timeout: float = 5.0) -> None:
        """Finish the queued items, then stop the thread (waits at most ``timeout`` seconds)."""
        if self._thread is None:
            return
        deadline = time.monotonic() + timeout
        while self._thread.is_alive():
            try:
                self._queue.put(None, timeout=0.1)
                break
            except queue.Full:
                if time.monotonic() > deadline:
                    break
        self._thread.join(max(deadline - time.monotonic(), 0.0))
        self._thread = None

    def _loop(self) -> None:
        start = time.thread_time()
        while True:
            item = self._queue.get()
            if item is None:
                self.cpu_s = time.thread_time() - start
                return
            if self.error is not None:
                continue  # keep draining so that the producer never blocks on a dead stage
            try:
                self.process(item)
            except Exception as exc:
                self.error = exc
