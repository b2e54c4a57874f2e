"""The pipeline's stage threads: a drain waits for a slow stage and finishes every queued frame; a stage that
stops finishing frames is given up with an error (never a silent loss)."""

from __future__ import annotations

import threading
import time

from toolkit.pipeline.stage_thread import StageStalled, StageThread


class Slow(StageThread):
    def __init__(self, seconds: float, depth: int = 3) -> None:
        self.seconds, self.done = seconds, []
        super().__init__("slow", threaded=True, depth=depth)

    def process(self, item: int) -> None:
        time.sleep(self.seconds)
        self.done.append(item)


def test_close_finishes_every_queued_item_of_a_stage_slower_than_the_stall_limit_per_drain() -> None:
    stage = Slow(0.3)
    for i in range(4):
        assert stage.submit(i)
    stage.close(stall_timeout=0.5)  # the drain takes ~1.2 s in all, but an item finishes every 0.3 s
    assert stage.done == [0, 1, 2, 3] and stage.error is None


def test_an_idle_stage_closes_at_once_without_an_error() -> None:
    stage = Slow(0.0)
    time.sleep(0.3)
    started = time.monotonic()
    stage.close(stall_timeout=0.1)
    assert stage.error is None and time.monotonic() - started < 2


def test_a_stage_that_stops_finishing_items_is_given_up_with_an_error() -> None:
    release = threading.Event()

    class Stuck(StageThread):
        def process(self, item: int) -> None:
            release.wait(10)

    stage = Stuck("stuck", threaded=True, depth=2)
    stage.submit(1)
    stage.submit(2)
    started = time.monotonic()
    stage.close(stall_timeout=0.3)
    release.set()
    assert isinstance(stage.error, StageStalled) and "stuck" in str(stage.error)
    assert time.monotonic() - started < 5
