"""End-to-end speed of the camera demo: FPS, per-stage p50/p90, drops and pipeline efficiency.

    python scripts/bench_pipeline.py [--models DIR] [--clip FILE] [--synthetic-frames 300]
                                     [--threads 1,2] [--modes pipelined,serial] [--repeats 1] [--out FILE]

Runs ``toolkit demo`` headless (the same code: :func:`toolkit.pipeline.demo.run_demo`) with unpaced sources
(``realtime=False``: nothing is dropped, the pipeline runs as fast as it can) on the real clip
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

``isolated`` adds each model's median invoke time measured alone (200 invokes, 1 and 2 threads) and the
efficiency against that stricter bound. The first row per source is the default configuration (what
``toolkit demo`` does); ``--threads`` / ``--modes`` add a sweep. Prints one line per run and writes JSON
(default build/bench/bench_pipeline.json).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from toolkit.fileio import write_json_atomic  # noqa: E402
from toolkit.paths import shared_dir  # noqa: E402
from toolkit.pipeline.config import PipelineConfig  # noqa: E402
from toolkit.pipeline.demo import auto_threads, format_summary, locate_models, quiet_stderr, run_demo  # noqa: E402

STAGES = ("wait", "pre", "detect", "post", "track", "behaviour", "behaviour_model", "segment", "segment_model",
          "draw", "output", "latency")


def isolated_latency(models: dict[str, Path], threads: tuple[int, ...], runs: int = 200) -> dict[str, Any]:
    """Median invoke ms of each model alone (zero inputs), per thread count."""
    from toolkit.runtime.runner import Runner

    out: dict[str, Any] = {}
    for kind, path in models.items():
        for n in threads:
            with quiet_stderr():
                runner = Runner(path, num_threads=n)
            with runner:
                runner.set_inputs({name: np.zeros(spec.shape, spec.dtype) for name, spec in runner.inputs.items()})
                for _ in range(10):
                    runner.invoke()
                times = []
                for _ in range(runs):
                    t0 = time.perf_counter()
                    runner.invoke()
                    times.append((time.perf_counter() - t0) * 1e3)
            out.setdefault(kind, {})[f"threads_{n}"] = round(float(np.median(times)), 3)
    return out


def row(label: str, summary: dict[str, Any], isolated: dict[str, Any], every_n_seg: int) -> dict[str, Any]:
    stages = summary["stages"]
    picked = {name: {"p50": stages[name]["p50"], "p90": stages[name]["p90"], "count": stages[name]["count"]}
              for name in STAGES if name in stages}
    threads = summary["threads"]
    key = f"threads_{threads}"
    iso_ms = isolated["detector"][key] + (isolated["segmenter"][key] / every_n_seg if "segmenter" in isolated else 0)
    if "behaviour" in isolated:  # it runs once per confirmed track with a full history
        iso_ms += isolated["behaviour"][key] * summary["behaviour_calls_per_frame"]
    iso_bound = 1000.0 / iso_ms if iso_ms else None
    return {
        "run": label, "frames": summary["frames"], "seconds": summary["seconds"], "fps": summary["fps"],
        "dropped": summary["dropped"], "tracks": summary["tracks"], "threads": threads,
        "behaviour_calls_per_frame": summary["behaviour_calls_per_frame"],
        "pipelined": summary["pipelined"], "model_ms_p50": summary["model_ms_p50"],
        "model_ms_per_frame": summary["model_ms_per_frame"], "model_bound_fps": summary["model_bound_fps"],
        "efficiency": summary["efficiency"], "cpu_ms_per_frame": summary["cpu_ms_per_frame"],
        "thread_cpu_ms_per_frame": summary["thread_cpu_ms_per_frame"],
        "cpu_bound_fps_2_cores": summary["cpu_bound_fps_2_cores"],
        "cpu_efficiency_2_cores": (round(summary["cpu_bound_fps_2_cores"] / summary["model_bound_fps"], 3)
                                   if summary["cpu_bound_fps_2_cores"] and summary["model_bound_fps"] else None),
        "isolated_model_bound_fps": round(iso_bound, 2) if iso_bound else None,
        "efficiency_vs_isolated": round(summary["fps"] / iso_bound, 3) if iso_bound and summary["fps"] else None,
        "stages": picked,
    }


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help="model folder (default: the shipped zoo, models/)")
    parser.add_argument("--clip", help="video file (default: the shared real clip)")
    parser.add_argument("--synthetic-frames", type=int, default=300, help="synthetic frames per run (0 = skip)")
    parser.add_argument("--threads", default="", help="comma-separated interpreter threads to sweep, e.g. 1,2")
    parser.add_argument("--modes", default="", help="comma-separated modes to sweep: pipelined,serial")
    parser.add_argument("--repeats", type=int, default=1, help="runs per configuration (rows are not merged)")
    parser.add_argument("--every-n-seg", type=int, default=3)
    parser.add_argument("--oracle", action="store_true",
                        help="synthetic runs track the scene's true boxes (the detector still runs): tracking and "
                             "behaviour at real crowd sizes even with untrained models")
    parser.add_argument("--out", default="build/bench/bench_pipeline.json", help="JSON output file")
    args = parser.parse_args()
    load_before = load_average()

    clip = Path(args.clip) if args.clip else shared_dir() / "data" / "pedestrian_video" / "pedestrians.avi"
    if not clip.is_file():
        raise SystemExit(f"clip not found: {clip} (set TOOLKIT_SHARED or pass --clip)")
    base = PipelineConfig(models=args.models, realtime=False, every_n_seg=args.every_n_seg)
    models = locate_models(base)
    sources = [("clip", str(clip), None)]
    if args.synthetic_frames > 0:
        sources.append(("synthetic", "synthetic", args.synthetic_frames))
    default_threads = auto_threads(base)
    sweep: list[tuple[int, bool]] = [(default_threads, True)]  # the default configuration first
    for threads in [int(t) for t in args.threads.split(",") if t.strip()] or [default_threads]:
        for mode in [m.strip() for m in args.modes.split(",") if m.strip()] or ["pipelined"]:
            if mode not in ("pipelined", "serial"):
                raise SystemExit(f"unknown mode {mode!r}: use pipelined or serial")
            if (threads, mode == "pipelined") not in sweep:
                sweep.append((threads, mode == "pipelined"))
    thread_counts = tuple(sorted({t for t, _ in sweep}))
    isolated = isolated_latency(models, thread_counts)
    print(f"isolated model invoke ms (median of 200): {isolated}", flush=True)

    rows = []
    for repeat in range(args.repeats):
        for name, spec, frames in sources:
            for threads, pipelined in sweep:
                config = PipelineConfig(models=args.models, source=spec, realtime=False, max_frames=frames,
                                        threads=threads, pipelined=pipelined, every_n_seg=args.every_n_seg,
                                        oracle_detections=args.oracle and name == "synthetic")
                summary = run_demo(config)
                label = (f"{name}{' (oracle boxes)' if config.oracle_detections else ''} threads={summary['threads']} "
                         f"{'pipelined' if pipelined else 'serial'}")
                result = row(label, summary, isolated, args.every_n_seg)
                result["repeat"] = repeat
                rows.append(result)
                print(f"{label}: {format_summary(summary)}; CPU {summary['cpu_ms_per_frame']} ms/frame "
                      f"{summary['thread_cpu_ms_per_frame']} -> quiet 2-core estimate "
                      f"{summary['cpu_bound_fps_2_cores']} FPS (efficiency {result['cpu_efficiency_2_cores']}); "
                      f"vs isolated bound {result['efficiency_vs_isolated']}", flush=True)

    report = {
        "host": {"machine": platform.machine(), "python": platform.python_version(), "cpus": os.cpu_count(),
                 "affinity": len(os.sched_getaffinity(0)), "load_average_before": load_before},
        "models": {k: str(v) for k, v in models.items()}, "clip": str(clip), "every_n_seg": args.every_n_seg,
        "isolated_invoke_ms": isolated, "runs": rows, "load_average_after": load_average(),
        "note": "each row is one run; medians and ratios in a row come from that run",
    }
    write_json_atomic(args.out, report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
