"""``toolkit bench pipeline``: end-to-end speed of the camera demo -- FPS, per-stage p50/p90, drops, efficiency.

>>> report = bench_pipeline(PipelineBenchConfig(sources=("synthetic",), frames=50), say=print)
>>> report["runs"][0]["fps"], report["runs"][0]["stages"]["detect"]["p50"]

Runs the demo headless (the same code: :func:`toolkit.pipeline.demo.run_demo`) with unpaced sources
(``realtime=False``: nothing is dropped, the pipeline runs as fast as it can), by default on the shared real clip
(``$TOOLKIT_SHARED/data/pedestrian_video/pedestrians.avi``, 795 frames, 480x360) and on the synthetic scene, with
detection + behaviour on every frame and segmentation on every 3rd. Each row is ONE run, and every figure in it
comes from that run:

* ``fps``: frames processed / time from the first frame read to the last frame written;
* ``stages``: p50 / p90 ms of each stage (``detect`` / ``segment_model`` / ``behaviour_model`` are the invokes);
* ``model_bound_fps`` = 1000 / (detect p50 + behaviour_model p50 + segment_model p50 / 3): what the models alone
  would allow run one after another; ``efficiency`` = fps / model_bound_fps;
* ``cpu_ms_per_frame``: process CPU time (all threads) per frame, less disturbed than wall time on a busy host;
  ``thread_cpu_ms_per_frame`` splits it by pipeline thread, and ``cpu_bound_fps_2_cores`` = 1000 / max(busiest
  thread, total / 2) is what a quiet 2-core machine would reach (``cpu_efficiency_2_cores`` against the model
  bound). On a shared host the wall-clock FPS of one run can differ 2x from the next; the CPU figures do not.

``isolated_invoke_ms`` holds each model's median invoke time measured alone (``isolated_runs`` invokes per thread
count) and each row its efficiency against that stricter bound. The first row per source is the default
configuration (what ``toolkit demo`` does); ``threads`` / ``modes`` add a sweep.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from toolkit.config import THREADS_RANGE, Limits, check_ranges
from toolkit.errors import UsageError
from toolkit.paths import shared_dir

Say = Callable[[str], None]
STAGES = (
    "wait",
    "pre",
    "detect",
    "post",
    "track",
    "behaviour",
    "behaviour_model",
    "segment",
    "segment_model",
    "draw",
    "output",
    "latency",
)
MODES = ("pipelined", "serial")
SHARED_CLIP = ("data", "pedestrian_video", "pedestrians.avi")
SYNTHETIC_FRAMES = 300  # frames per run of a source that never ends (synthetic, cameras) unless told


@dataclass(frozen=True)
class PipelineBenchConfig:
    """Settings of ``bench pipeline``: models, sources, frames and the configurations compared."""

    models: str | None = None  # model folder (None: the shipped zoo)
    sources: tuple[str, ...] = ()  # demo source specs; () = the shared real clip and the synthetic scene
    frames: int | None = None  # frames per run; None = a file to its end, SYNTHETIC_FRAMES of anything else
    threads: tuple[int, ...] = ()  # interpreter threads to sweep besides the default configuration
    modes: tuple[str, ...] = ()  # "pipelined" / "serial" to sweep besides the default (pipelined)
    repeats: int = 1  # runs per configuration (rows are not merged)
    every_n_seg: int = 3  # segment every N-th frame, as the demo
    oracle: bool = False  # synthetic runs track the scene's true boxes (the detector still runs and is timed)
    isolated_runs: int = 200  # invokes per model and thread count for the isolated bound; 0 = skip it

    LIMITS: ClassVar[Limits] = {
        "frames": (1, 10**9),
        "threads": THREADS_RANGE,
        "repeats": (1, 1000),
        "every_n_seg": (0, 100_000),
        "isolated_runs": (0, 1_000_000),
    }

    def __post_init__(self) -> None:
        check_ranges(self, "bench pipeline config")
        for mode in self.modes:
            if mode not in MODES:
                raise UsageError(f"unknown mode '{mode}': use {' or '.join(MODES)}")


def default_sources() -> tuple[str, ...]:
    """The shared real clip and the synthetic scene; UsageError naming the fix when the clip is missing."""
    clip = shared_dir().joinpath(*SHARED_CLIP)
    if not clip.is_file():
        raise UsageError(
            f"clip not found: {clip} (set TOOLKIT_SHARED, or name the sources: --source FILE / "
            "--source synthetic)"
        )
    return (str(clip), "synthetic")


def source_label(spec: str) -> str:
    """A short row label: 'clip' for a video file (as the shared clip was always labelled), else the spec."""
    return "clip" if Path(spec).is_file() else spec


def isolated_latency(models: dict[str, Path], threads: tuple[int, ...], runs: int = 200) -> dict[str, Any]:
    """Median invoke ms of each model alone (zero inputs), per thread count: {kind: {"threads_N": ms}}."""
    from toolkit.pipeline.demo import quiet_stderr
    from toolkit.runtime.runner import Runner

    out: dict[str, Any] = {}
    for kind, path in models.items():
        for n in threads:
            with quiet_stderr():
                runner = Runner(path, num_threads=n)
            with runner:
                runner.set_inputs(
                    {name: np.zeros(spec.shape, spec.dtype) for name, spec in runner.inputs.items()}
                )
                for _ in range(10):
                    runner.invoke()
                times = []
                for _ in range(runs):
                    t0 = time.perf_counter()
                    runner.invoke()
                    times.append((time.perf_counter() - t0) * 1e3)
            out.setdefault(kind, {})[f"threads_{n}"] = round(float(np.median(times)), 3)
    return out


def run_row(
    label: str, summary: dict[str, Any], isolated: dict[str, Any], every_n_seg: int
) -> dict[str, Any]:
    """One JSON row from one run's :func:`run_demo` summary (and the isolated invoke times, if measured)."""
    stages = summary["stages"]
    picked = {
        name: {"p50": stages[name]["p50"], "p90": stages[name]["p90"], "count": stages[name]["count"]}
        for name in STAGES
        if name in stages
    }
    threads = summary["threads"]
    key = f"threads_{threads}"
    iso_bound = None
    if "detector" in isolated:
        iso_ms = isolated["detector"][key]
        if "segmenter" in isolated and every_n_seg:
            iso_ms += isolated["segmenter"][key] / every_n_seg
        if "behaviour" in isolated:  # it runs once per confirmed track with a full history
            iso_ms += isolated["behaviour"][key] * summary["behaviour_calls_per_frame"]
        iso_bound = 1000.0 / iso_ms if iso_ms else None
    return {
        "run": label,
        "frames": summary["frames"],
        "seconds": summary["seconds"],
        "fps": summary["fps"],
        "dropped": summary["dropped"],
        "tracks": summary["tracks"],
        "threads": threads,
        "behaviour_calls_per_frame": summary["behaviour_calls_per_frame"],
        "pipelined": summary["pipelined"],
        "model_ms_p50": summary["model_ms_p50"],
        "model_ms_per_frame": summary["model_ms_per_frame"],
        "model_bound_fps": summary["model_bound_fps"],
        "efficiency": summary["efficiency"],
        "cpu_ms_per_frame": summary["cpu_ms_per_frame"],
        "thread_cpu_ms_per_frame": summary["thread_cpu_ms_per_frame"],
        "cpu_bound_fps_2_cores": summary["cpu_bound_fps_2_cores"],
        "cpu_efficiency_2_cores": (
            round(summary["cpu_bound_fps_2_cores"] / summary["model_bound_fps"], 3)
            if summary["cpu_bound_fps_2_cores"] and summary["model_bound_fps"]
            else None
        ),
        "isolated_model_bound_fps": round(iso_bound, 2) if iso_bound else None,
        "efficiency_vs_isolated": round(summary["fps"] / iso_bound, 3)
        if iso_bound and summary["fps"]
        else None,
        "stages": picked,
    }


def load_average() -> list[float] | None:
    """The 1/5/15-minute load averages rounded to 0.01, or None where the OS has none."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def host_info() -> dict[str, Any]:
    """Machine, Python, CPU count and affinity, and the load before the run: the context of every timing."""
    return {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average_before": load_average(),
    }


def bench_pipeline(
    config: PipelineBenchConfig = PipelineBenchConfig(), say: Say = lambda _: None
) -> dict[str, Any]:
    """Run every configuration on every source; return the report (host, models, isolated times, one row per
    run). ``say`` gets one progress line per run."""
    from toolkit.pipeline.config import PipelineConfig
    from toolkit.pipeline.demo import auto_threads, format_summary, locate_models, run_demo

    host = host_info()
    sources = config.sources or default_sources()
    base = PipelineConfig(models=config.models, realtime=False, every_n_seg=config.every_n_seg)
    models = locate_models(base)
    default_threads = auto_threads(base)
    sweep: list[tuple[int, bool]] = [(default_threads, True)]  # the default configuration first
    for threads in config.threads or (default_threads,):
        for mode in config.modes or ("pipelined",):
            if (threads, mode == "pipelined") not in sweep:
                sweep.append((threads, mode == "pipelined"))
    isolated: dict[str, Any] = {}
    if config.isolated_runs:
        isolated = isolated_latency(models, tuple(sorted({t for t, _ in sweep})), config.isolated_runs)
        say(f"isolated model invoke ms (median of {config.isolated_runs}): {isolated}")

    rows = []
    for repeat in range(config.repeats):
        for spec in sources:
            frames = config.frames or (None if Path(spec).is_file() else SYNTHETIC_FRAMES)
            oracle = config.oracle and spec.split(":")[0] == "synthetic"
            for threads, pipelined in sweep:
                run = PipelineConfig(
                    models=config.models,
                    source=spec,
                    realtime=False,
                    max_frames=frames,
                    threads=threads,
                    pipelined=pipelined,
                    every_n_seg=config.every_n_seg,
                    oracle_detections=oracle,
                )
                summary = run_demo(run)
                label = (
                    f"{source_label(spec)}{' (oracle boxes)' if oracle else ''} threads={summary['threads']} "
                    f"{'pipelined' if pipelined else 'serial'}"
                )
                row = run_row(label, summary, isolated, config.every_n_seg)
                row["repeat"] = repeat
                rows.append(row)
                say(
                    f"{label}: {format_summary(summary)}; CPU {summary['cpu_ms_per_frame']} ms/frame "
                    f"{summary['thread_cpu_ms_per_frame']} -> quiet 2-core estimate "
                    f"{summary['cpu_bound_fps_2_cores']} FPS (efficiency {row['cpu_efficiency_2_cores']}); "
                    f"vs isolated bound {row['efficiency_vs_isolated']}"
                )
    return {
        "host": host,
        "models": {k: str(v) for k, v in models.items()},
        "sources": list(sources),
        "clip": next((s for s in sources if Path(s).is_file()), None),
        "every_n_seg": config.every_n_seg,
        "isolated_invoke_ms": isolated,
        "runs": rows,
        "load_average_after": load_average(),
        "note": "each row is one run; medians and ratios in a row come from that run",
    }


def render(report: dict[str, Any]) -> str:
    """One line per run: the row label, FPS, efficiency and CPU per frame."""
    lines = []
    for row in report["runs"]:
        lines.append(
            f"{row['run']}: {row['frames']} frames at {row['fps']} FPS (model bound {row['model_bound_fps']}, "
            f"efficiency {row['efficiency']}); CPU {row['cpu_ms_per_frame']} ms/frame -> quiet 2-core "
            f"estimate {row['cpu_bound_fps_2_cores']} FPS; detect p50 "
            f"{row['stages'].get('detect', {}).get('p50')} ms"
        )
    return "\n".join(lines)
