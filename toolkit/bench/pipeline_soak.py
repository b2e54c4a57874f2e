"""``toolkit bench pipeline --soak``: does the camera demo's resident memory creep over a long run?

>>> result = soak_pipeline(SoakConfig(frames=2000, every=100, warmup=500), say=print)
>>> result["slope_mb_per_1000_frames"], result["passed"]

Runs :func:`toolkit.pipeline.demo.run_demo` headless on the synthetic scene (or ``source``), unpaced
(``realtime=False``), with recording and the event log on (to a temporary folder, deleted afterwards) so that every
stage and writer is in the loop. Resident set size (``/proc/self/statm``) is sampled every ``every`` frames; a
least-squares line is fitted to the samples after ``warmup`` frames (interpreter arenas, the scene's caches and
the allocator's pools fill up early and then stay flat). The pass/fail slope is Theil-Sen's (median of the
pairwise slopes): a steady creep moves it, a single step of the allocator does not; the least-squares slope is
reported beside it.

Pass/fail: the slope must be at most ``threshold_mb`` MB per 1000 frames (default 0.25, i.e. 250 bytes per frame:
at 30 FPS at most ~216 MB over 8 hours). A real per-frame leak is far above it -- one retained 480x360 frame is
~500 MB per 1000 frames, one retained track or event dict ~1 MB -- while two known growths that are not pipeline
leaks stay below it: OpenCV's mp4v writer keeps the MP4 sample index in memory until the file is closed (~0.06 MB
per 1000 frames measured; MJPG .avi recording: none) and the synthetic scene's cache of pedestrian looks (~0.1 MB
per 1000 frames until it holds 512 people, then it is cleared).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from toolkit.config import Limits, check_ranges
from toolkit.errors import UsageError

Say = Callable[[str], None]


@dataclass(frozen=True)
class SoakConfig:
    """Settings of ``bench pipeline --soak``: frames, RSS sampling interval and warm-up excluded from the fit."""

    frames: int = 10_000  # frames to run
    every: int = 250  # sample RSS every N frames
    warmup: int = 1000  # frames excluded from the fit (pools and caches fill up early)
    source: str = "synthetic"  # demo source spec; it must last ``frames`` frames (a clip usually ends sooner)
    models: str | None = None  # model folder (None: the shipped zoo)
    every_n_seg: int = 3  # segment every N-th frame, as the demo
    threshold_mb: float = 0.25  # largest passing slope, MB per 1000 frames
    record: bool = True  # keep the video recording in the loop

    LIMITS: ClassVar[Limits] = {
        "frames": (1, 10**9),
        "every": (1, 10**9),
        "warmup": (0, 10**9),
        "every_n_seg": (0, 100_000),
        "threshold_mb": (0.0, 1e6),
    }

    def __post_init__(self) -> None:
        check_ranges(self, "soak config")
        if self.warmup + 4 * self.every > self.frames:
            raise UsageError(
                f"soak: {self.frames} frames leave fewer than 4 samples (every {self.every}) after "
                f"the {self.warmup}-frame warm-up; run more frames or sample more often"
            )


def rss_mb() -> float:
    """Resident set size of this process, MB (Linux /proc)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        raise UsageError("the soak reads resident memory from /proc/self/statm: Linux only") from None


def fit_slope(frames: np.ndarray, rss: np.ndarray) -> tuple[float, float]:
    """(MB per 1000 frames, R^2) of the least-squares line through the samples."""
    slope, intercept = np.polyfit(frames / 1000.0, rss, 1)
    residual = rss - (slope * frames / 1000.0 + intercept)
    total = float(np.sum((rss - rss.mean()) ** 2))
    r2 = 1.0 - float(np.sum(residual**2)) / total if total > 0 else 1.0
    return float(slope), r2


def theil_sen(frames: np.ndarray, rss: np.ndarray) -> float:
    """Median of the pairwise slopes, MB per 1000 frames: a steady creep moves it, a one-off step of the
    allocator (a new arena, a heap extension) does not."""
    i, j = np.triu_indices(len(frames), k=1)
    return float(np.median((rss[j] - rss[i]) / ((frames[j] - frames[i]) / 1000.0)))


def soak_pipeline(config: SoakConfig = SoakConfig(), say: Say = lambda _: None) -> dict[str, Any]:
    """Run the soak; return the result (slopes, samples, ``passed``). ``say`` gets a line every 8 samples."""
    from toolkit.pipeline.config import PipelineConfig
    from toolkit.pipeline.demo import format_summary, run_demo

    samples: list[tuple[int, float, float]] = [(0, time.monotonic(), rss_mb())]

    def on_frame(n: int) -> None:
        if n % config.every == 0:
            samples.append((n, time.monotonic(), rss_mb()))
            if n % (config.every * 8) == 0:
                say(f"  {n} frames, RSS {samples[-1][2]:.1f} MB")

    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        run = PipelineConfig(
            source=config.source,
            models=config.models,
            realtime=False,
            max_frames=config.frames,
            every_n_seg=config.every_n_seg,
            record=str(Path(tmp) / "soak.mp4") if config.record else None,
            events=str(Path(tmp) / "soak.jsonl"),
        )
        summary = run_demo(run, on_frame=on_frame)
    data = np.array([(n, rss) for n, _, rss in samples if n >= config.warmup], dtype=np.float64)
    if len(data) < 2:
        raise UsageError(
            f"soak: the source ended after {summary['frames']} frames, too few samples after the "
            f"{config.warmup}-frame warm-up (a file source: --source FILE ends; use synthetic)"
        )
    ols, r2 = fit_slope(data[:, 0], data[:, 1])
    slope = theil_sen(data[:, 0], data[:, 1])
    return {
        "frames": summary["frames"],
        "fps": summary["fps"],
        "tracks": summary["tracks"],
        "behaviour_calls_per_frame": summary["behaviour_calls_per_frame"],
        "slope_mb_per_1000_frames": round(slope, 4),
        "least_squares_slope": round(ols, 4),
        "r2": round(r2, 3),
        "threshold_mb_per_1000_frames": config.threshold_mb,
        "passed": slope <= config.threshold_mb,
        "warmup_frames": config.warmup,
        "rss_first_mb": round(samples[0][2], 1),
        "rss_after_warmup_mb": round(float(data[0, 1]), 1),
        "rss_last_mb": round(samples[-1][2], 1),
        "rss_max_mb": round(max(s[2] for s in samples), 1),
        "samples": [
            {"frame": n, "seconds": round(t - samples[0][1], 2), "rss_mb": round(rss, 2)}
            for n, t, rss in samples
        ],
        "config": {
            "source": config.source,
            "models": summary["models"],
            "record": config.record,
            "events": True,
            "every_n_seg": config.every_n_seg,
            "threads": summary["threads"],
        },
        "summary": format_summary(summary),
    }


def render(result: dict[str, Any]) -> str:
    """The one-line verdict."""
    return (
        f"soak: {result['frames']} frames at {result['fps']} FPS; RSS {result['rss_after_warmup_mb']} -> "
        f"{result['rss_last_mb']} MB after warm-up; slope {result['slope_mb_per_1000_frames']:+.4f} MB/1000 "
        f"frames (Theil-Sen; least squares {result['least_squares_slope']:+.4f}, R^2 {result['r2']:.2f}); "
        f"threshold {result['threshold_mb_per_1000_frames']} -> {'PASS' if result['passed'] else 'FAIL'}"
    )
