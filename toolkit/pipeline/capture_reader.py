"""The reader half of a :class:`~toolkit.pipeline.sources_capture.Source`: open a capture and read its frames.

One :class:`FrameReader` per generation runs in its own daemon thread: it opens the capture (resuming a file where
the failed pass stopped), reads frames (paced at the native rate for files and the synthetic scene, looped on
request) and posts each one to the shared :class:`~toolkit.pipeline.sources_capture.CaptureState`. It is the only
thread that calls ``read()`` and ``release()`` on its capture object, because releasing an OpenCV capture from
another thread while a read is blocked inside the driver can crash the process. Failures are reported to the
state, never raised: the supervisor (:mod:`toolkit.pipeline.capture_supervisor`) decides what happens next. Once
it has abandoned the generation, the reader drops the frame it comes back with, releases its capture and ends.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from toolkit.errors import ToolkitError, one_line

if TYPE_CHECKING:  # sources_capture imports this module
    from toolkit.pipeline.sources_capture import Capture, CaptureState, Opener, SourceConfig


class FrameReader:
    """Reads generation ``gen`` of a source into ``state`` from a daemon thread (:attr:`thread`, not started).

    ``live`` sources (cameras, streams) treat a failed read as a fault; others (files, synthetic) as the end of
    data, or the start of the next pass with ``config.loop``. ``fps`` is the native rate that paces non-live
    sources when ``config.realtime`` (``config.fps`` overrides it).
    """

    def __init__(
        self,
        state: CaptureState,
        gen: int,
        opener: Opener,
        *,
        name: str,
        live: bool,
        config: SourceConfig,
        fps: float | None,
    ) -> None:
        self.state = state
        self.gen = gen
        self.live = live
        self.config = config
        self.fps = fps
        self._opener = opener
        self.thread = threading.Thread(target=self._run, name=f"source-reader[{name}]#{gen}", daemon=True)

    def _run(self) -> None:
        state, gen = self.state, self.gen
        cap: Capture | None = None
        try:
            cap = self._opener()
            cap = self._seek_if_resuming(cap)
            fps = self.config.fps or self.fps
            pace = fps if (not self.live and self.config.realtime and fps) else None
            n_pass = n_start = state.file_pos  # frame number within the file (resumes after a reconnect)
            pass_start: float | None = None  # pacing clock, anchored at the first frame (opening can be slow)
            while state.current(gen):
                if state.backpressure and not state.wait_for_empty_slot(gen):
                    return
                ok, image = cap.read()
                if not state.current(gen):
                    return  # abandoned while blocked in the driver: this frame must not reach the consumer
                if not ok or image is None:
                    if self.live:
                        raise OSError("the device returned no frame (disconnected?)")
                    if self.config.loop and n_pass > 0:
                        cap.release()
                        cap = None
                        cap = self._opener()
                        state.count_loop()
                        n_pass = n_start = 0
                        pass_start = None
                        continue
                    state.end(gen)
                    return
                if pace:
                    if pass_start is None:
                        pass_start, n_start = time.monotonic(), n_pass
                    lag = pass_start + (n_pass - n_start) / pace - time.monotonic()
                    if lag > 0 and state.closed.wait(lag):
                        return
                    if lag < -max(0.25, 2.0 / pace):  # fell behind (slow decode): re-anchor, do not burst
                        pass_start, n_start = time.monotonic(), n_pass
                state.post(gen, image, self._source_ts(cap, n_pass, fps), getattr(cap, "last_truth", None))
                n_pass += 1
        except Exception as exc:  # any backend failure becomes a reconnect, never a dead pipeline
            known = isinstance(exc, (OSError, ToolkitError)) and str(exc)
            state.report_failure(gen, one_line(str(exc) if known else f"{type(exc).__name__}: {exc}", 200))
        finally:
            if cap is not None:
                try:
                    cap.release()
                except Exception:
                    pass

    def _seek_if_resuming(self, cap: Capture) -> Capture:
        # A file that stalled or failed mid-way resumes where it was instead of repeating from its start.
        if not self.live and self.state.file_pos > 0 and hasattr(cap, "set"):
            import cv2

            cap.set(cv2.CAP_PROP_POS_FRAMES, float(self.state.file_pos))  # type: ignore[attr-defined]
        return cap

    def _source_ts(self, cap: Capture, n_pass: int, fps: float | None) -> float:
        truth = getattr(cap, "last_truth", None)
        if truth is not None and hasattr(truth, "time_s"):
            return float(truth.time_s)
        if not self.live and fps:
            return n_pass / fps
        return time.time()
