"""What a demo run reports: the typed end-of-run summary, its one-line text, and progress lines on the way.

>>> summary = run_demo(PipelineConfig(max_frames=300))       # toolkit.pipeline.demo
>>> summary.fps, summary.stages["detect"]["p50"], summary.efficiency
>>> summary.to_dict()                                         # what ``toolkit demo --json`` prints
>>> print(format_summary(summary, explain=True))

``model_bound_fps`` = 1000 / (detector p50 + behaviour-model p50 per frame + segmenter p50 / N) is what the
models alone would allow run one after another; ``efficiency`` = achieved FPS / model_bound_fps, from the same
run. Above 1 means the overlap hides more than the non-model work costs.

Where stderr is not a terminal (a pipe, a file, systemd's journal) the command line's live status line does not
show; :class:`ProgressLog` writes a line every 10 s instead, so a long run is not silent until its summary.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.pipeline.config import PipelineConfig
from toolkit.pipeline.timing import StageTimes

MODEL_STAGES = ("detect", "behaviour_model", "segment_model")
SUMMARY_STAGES = ("wait", "pre", "detect", "post", "track", "behaviour", "segment", "draw", "output")
PROGRESS_EVERY_S = 10.0  # a progress line this often where the live status line cannot show (not a terminal)
BOUND_NOTE = (
    "demo: model-bound = the FPS the models alone would reach, run one after another (detector + "
    "behaviour model + segmenter / N, p50 ms); efficiency = achieved FPS / model-bound (above 1: the "
    "pipeline's threads overlap the models)"
)


@dataclass(frozen=True)
class DemoSummary:
    """What :func:`toolkit.pipeline.demo.run_demo` reports. :meth:`to_dict` is ``toolkit demo --json``: the same
    keys, in this order, as the dict run_demo returned before."""

    frames: int  # frames processed: detected, tracked, drawn and written
    seconds: float  # from the first frame read to the last frame written (start-up not counted)
    fps: float | None  # (frames - 1) / seconds; None below 2 frames
    model_ms_p50: dict[
        str, float
    ]  # p50 ms of each model stage that ran (detect, behaviour_model, segment_model)
    model_ms_per_frame: float  # detector + behaviour model + segmenter / every_n_seg, p50 ms
    model_bound_fps: float | None  # 1000 / model_ms_per_frame: the models alone, one after another
    efficiency: float | None  # fps / model_bound_fps (above 1: the stage threads overlap the models)
    dropped: int  # frames the source dropped while the pipeline was busy
    stopped: str  # why it ended: max_frames, end of stream, signal / SIGINT / SIGTERM, window closed, ...
    tracks: int  # confirmed tracks over the run (ids count up from 1)
    stages: dict[str, dict[str, float]]  # per stage: count, p50, p90, mean ms (toolkit.pipeline.timing)
    source: dict[str, Any]  # the source's own counters (frames_dropped, reconnects, loops, ...)
    threads: int  # interpreter threads per model
    pipelined: bool  # stages in their own threads (False: one after another)
    every_n_seg: int  # the segmenter ran on every N-th frame (0: never)
    realtime: bool  # the source was paced at its frame rate
    behaviour: str  # "model" or "constant_velocity"
    models: dict[str, str]  # kind -> the .tflite file that ran (the CPU original after a fallback)
    events: str | None  # the event log's path
    cpu_ms_per_frame: float | None  # process CPU time per frame, all threads
    behaviour_calls_per_frame: float  # behaviour-model invocations per frame (one per track with a history)
    thread_cpu_ms_per_frame: dict[str, float] | None  # CPU ms per frame of each pipeline thread and "other"
    cpu_bound_fps_2_cores: float | None  # the FPS a quiet 2-core machine would reach (:func:`cpu_estimate`)
    ground_units: str | None  # "m" with a homography; None: paths in image units
    record: str | None  # the recording's path; None when none was kept
    record_frames: int  # frames written into the recording
    delegate: str  # the delegate asked for
    fallback: dict[str, str] | None  # {kind: why} where --fallback cpu replaced the delegate
    model_checks: dict[str, Any]  # kind -> which check vouched for the model file
    ground_plane: dict[str, Any] | None = (
        None  # the homography used: file, method, uncertainty (toolkit ground)
    )

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain values (copies), keys in field order."""
        return dataclasses.asdict(self)

    def __getitem__(self, key: str) -> Any:
        """``summary["fps"]``: read access for code written against the dict this used to be; prefer
        ``summary.fps``."""
        if key not in self.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, key)


def cpu_estimate(
    cpu_ms: float | None, frames: int, thread_cpu_s: dict[str, float], pipelined: bool, cores: int = 2
) -> dict[str, Any]:
    """CPU ms per frame of each pipeline thread ("other" = capture and library pools) and the FPS a quiet
    ``cores``-core machine would reach: limited by the busiest thread and by the total work spread over the cores.
    Load-independent, unlike wall-clock FPS on a shared host (it ignores GIL waits and cache effects)."""
    if not cpu_ms or not frames:
        return {"thread_cpu_ms_per_frame": None, "cpu_bound_fps_2_cores": None}
    per_thread = {k: round(v * 1e3 / frames, 3) for k, v in thread_cpu_s.items() if v > 0}
    per_thread["other"] = round(max(cpu_ms - sum(per_thread.values()), 0.0), 3)
    busiest = max(per_thread.values()) if pipelined else cpu_ms - per_thread["other"]
    bound = max(busiest, cpu_ms / cores)
    return {"thread_cpu_ms_per_frame": per_thread, "cpu_bound_fps_2_cores": round(1000.0 / bound, 1)}


def run_figures(
    cfg: PipelineConfig,
    processed: int,
    elapsed: float,
    times: StageTimes,
    source_stats: dict[str, Any],
    tracks: int,
    models: dict[str, Path],
    threads: int,
    reason: str,
) -> dict[str, Any]:
    """The summary's first fields (frames .. events), from the run's counters and stage timings."""
    stages = times.summary()
    # Frames processed over the time from the first frame read to the last frame written (not counting start-up).
    fps = (processed - 1) / elapsed if processed > 1 and elapsed > 0 else None
    p50 = {name: stages[name]["p50"] for name in MODEL_STAGES if name in stages}
    model_ms = p50.get("detect", 0.0) + p50.get("behaviour_model", 0.0)
    if cfg.every_n_seg > 0 and "segment_model" in p50:
        model_ms += p50["segment_model"] / cfg.every_n_seg
    bound = 1000.0 / model_ms if model_ms > 0 else None
    return {
        "frames": processed,
        "seconds": round(elapsed, 3),
        "fps": round(fps, 2) if fps else None,
        "model_ms_p50": {k: round(v, 3) for k, v in p50.items()},
        "model_ms_per_frame": round(model_ms, 3),
        "model_bound_fps": round(bound, 2) if bound else None,
        "efficiency": round(fps / bound, 3) if fps and bound else None,
        "dropped": int(source_stats.get("frames_dropped", 0)),
        "stopped": reason,
        "tracks": tracks,
        "stages": stages,
        "source": source_stats,
        "threads": threads,
        "pipelined": cfg.pipelined,
        "every_n_seg": cfg.every_n_seg,
        "realtime": cfg.realtime,
        "behaviour": cfg.behaviour,
        "models": {k: str(v) for k, v in models.items()},
        "events": cfg.events,
    }


def format_summary(summary: DemoSummary | Mapping[str, Any], explain: bool = False) -> str:
    """The one-line human summary printed at the end of ``toolkit demo``, then a line per model file no convert
    manifest vouches for. ``explain``: a line after the first saying what model-bound and efficiency mean, where
    the first line shows them."""
    if isinstance(summary, DemoSummary):
        summary = summary.to_dict()
    stages = summary["stages"]
    parts = " ".join(f"{name} {stages[name]['p50']:.1f}" for name in SUMMARY_STAGES if name in stages)
    fps = f"{summary['fps']:.1f} FPS" if summary["fps"] else "n/a FPS"
    if not summary.get("efficiency"):
        bound = ""
    elif summary.get("realtime", False):  # the source sets the pace: an efficiency figure would mean nothing
        bound = (
            f" (paced by the source; the models alone allow {summary['model_bound_fps']:.1f}: "
            "measure with --no-pacing)"
        )
    else:
        bound = f" (model-bound {summary['model_bound_fps']:.1f}, efficiency {summary['efficiency']:.2f})"
    saved = f"; recorded {summary['record']}" if summary.get("record") else ""
    fallback = summary.get("fallback") or {}
    cpu = (
        f"; FALLBACK to the CPU ({', '.join(fallback)}): {next(iter(fallback.values()))}" if fallback else ""
    )
    line = (
        f"demo: {summary['frames']} frames in {summary['seconds']:.1f} s, {fps}{bound}; p50 ms {parts}; "
        f"dropped {summary['dropped']}; {summary['tracks']} tracks; stopped: {summary['stopped']}{saved}{cpu}"
    )
    note = [BOUND_NOTE] if explain and "efficiency " in bound else []
    # a model file no convert manifest vouches for (a user's own .tflite): say which check let LiteRT load it
    checks = {
        k: v for k, v in (summary.get("model_checks") or {}).items() if v and "convert manifest" not in v
    }
    return "\n".join(
        [line, *note, *(f"demo: {kind} {summary['models'][kind]}: {check}" for kind, check in checks.items())]
    )


@dataclass(frozen=True)
class DemoProgress:
    """The pipeline's state after a written frame, for progress reports."""

    frames: int  # frames written so far
    fps: float | None  # over the last 30 frames
    tracks: int  # confirmed tracks in this frame
    dropped: int  # frames the source dropped so far


def progress_line(progress: DemoProgress, seconds: float) -> str:
    """``demo: 1234 frames, 61 s, 24.8 FPS, 5 tracks in view, 0 dropped``"""
    fps = f"{progress.fps:.1f} FPS" if progress.fps else "n/a FPS"
    return (
        f"demo: {progress.frames} frames, {seconds:.0f} s, {fps}, {progress.tracks} tracks in view, "
        f"{progress.dropped} dropped"
    )


class ProgressLog:
    """``on_progress`` for ``run_demo`` writing :func:`progress_line` to ``stream`` at most every ``every_s``
    seconds, counted from the first frame written (so a run that fails while starting still reports its error
    on one line). For a stderr that is not a terminal, where a live status line would not show."""

    def __init__(
        self,
        stream: Any = None,
        every_s: float = PROGRESS_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self.clock = clock
        self.start: float | None = None  # when the first frame was written
        self._last = 0.0

    def __call__(self, progress: DemoProgress) -> None:
        now = self.clock()
        if self.start is None:
            self.start = self._last = now
        if now - self._last < self.every_s:
            return
        self._last = now
        self.stream.write(progress_line(progress, now - self.start) + "\n")
        self.stream.flush()
