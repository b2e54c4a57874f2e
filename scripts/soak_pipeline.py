"""Memory soak of the camera demo: does resident memory creep over a long run?

    python scripts/soak_pipeline.py [--frames 10000] [--every 250] [--warmup 1000] [--models DIR]
                                    [--threshold-mb 0.25] [--no-record] [--out FILE]

Runs :func:`toolkit.pipeline.demo.run_demo` headless on the synthetic scene, unpaced (``realtime=False``), with
recording and the event log on (to a temporary folder, deleted afterwards) so that every stage and writer is in
the loop. Resident set size (``/proc/self/statm``) is sampled every ``--every`` frames; a least-squares line is
fitted to the samples after ``--warmup`` frames (interpreter arenas, the scene's caches and the allocator's pools
fill up early and then stay flat). The pass/fail slope is Theil-Sen's (median of the pairwise slopes): a steady
creep moves it, a single step of the allocator does not; the least-squares slope is reported beside it.

Pass/fail: the slope must be at most ``--threshold-mb`` MB per 1000 frames (default 0.25, i.e. 250 bytes per
frame: at 30 FPS at most ~216 MB over 8 hours). A real per-frame leak is far above it -- one retained 480x360 frame
is ~500 MB per 1000 frames, one retained track or event dict ~1 MB -- while two known growths that are not pipeline leaks
stay below it: OpenCV's mp4v writer keeps the MP4 sample index in memory until the file is closed (~0.06 MB per
1000 frames measured; MJPG .avi recording: none) and the synthetic scene's cache of pedestrian looks (~0.1 MB per
1000 frames until it holds 512 people, then it is cleared).
Prints one line and writes JSON (default build/bench/soak_pipeline.json); exit status 1 on fail.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from toolkit.fileio import write_json_atomic  # noqa: E402
from toolkit.pipeline.config import PipelineConfig  # noqa: E402
from toolkit.pipeline.demo import format_summary, run_demo  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE / 2**20


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--every", type=int, default=250, help="sample RSS every N frames")
    parser.add_argument("--warmup", type=int, default=1000, help="frames excluded from the fit")
    parser.add_argument("--models", help="model folder (default: the shipped zoo, models/)")
    parser.add_argument("--source", default="synthetic", help="source spec (default: the synthetic scene)")
    parser.add_argument("--threshold-mb", type=float, default=0.25, help="max slope, MB per 1000 frames")
    parser.add_argument("--no-record", action="store_true", help="leave the video recording out of the loop")
    parser.add_argument("--out", default="build/bench/soak_pipeline.json")
    args = parser.parse_args()
    if args.warmup + 4 * args.every > args.frames:
        raise SystemExit("--frames must leave at least 4 samples after --warmup")

    samples: list[tuple[int, float, float]] = [(0, time.monotonic(), rss_mb())]

    def on_frame(n: int) -> None:
        if n % args.every == 0:
            samples.append((n, time.monotonic(), rss_mb()))
            if n % (args.every * 8) == 0:
                print(f"  {n} frames, RSS {samples[-1][2]:.1f} MB", flush=True)

    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        config = PipelineConfig(source=args.source, models=args.models, realtime=False, max_frames=args.frames,
                                record=None if args.no_record else str(Path(tmp) / "soak.mp4"),
                                events=str(Path(tmp) / "soak.jsonl"))
        summary = run_demo(config, on_frame=on_frame)
    data = np.array([(n, rss) for n, _, rss in samples if n >= args.warmup], dtype=np.float64)
    ols, r2 = fit_slope(data[:, 0], data[:, 1])
    slope = theil_sen(data[:, 0], data[:, 1])
    passed = slope <= args.threshold_mb
    result = {
        "frames": summary["frames"], "fps": summary["fps"], "tracks": summary["tracks"],
        "behaviour_calls_per_frame": summary["behaviour_calls_per_frame"],
        "slope_mb_per_1000_frames": round(slope, 4), "least_squares_slope": round(ols, 4), "r2": round(r2, 3), "threshold_mb_per_1000_frames":
        args.threshold_mb, "passed": passed, "warmup_frames": args.warmup,
        "rss_first_mb": round(samples[0][2], 1), "rss_after_warmup_mb": round(float(data[0, 1]), 1),
        "rss_last_mb": round(samples[-1][2], 1), "rss_max_mb": round(max(s[2] for s in samples), 1),
        "samples": [{"frame": n, "seconds": round(t - samples[0][1], 2), "rss_mb": round(rss, 2)}
                    for n, t, rss in samples],
        "config": {"source": args.source, "models": summary["models"], "record": not args.no_record,
                   "events": True, "every_n_seg": config.every_n_seg, "threads": summary["threads"]},
        "summary": format_summary(summary),
    }
    write_json_atomic(args.out, result)
    print(f"soak: {summary['frames']} frames at {summary['fps']} FPS; RSS {result['rss_after_warmup_mb']} -> "
          f"{result['rss_last_mb']} MB after warm-up; slope {slope:+.4f} MB/1000 frames (Theil-Sen; least squares "
          f"{ols:+.4f}, R^2 {r2:.2f}); "
          f"threshold {args.threshold_mb} -> {'PASS' if passed else 'FAIL'}; wrote {args.out}")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
