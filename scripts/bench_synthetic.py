"""How fast the synthetic street scene renders: median ms per frame (simulation + rendering + labels).

    python scripts/bench_synthetic.py [--frames 300] [--seeds 0,1,2] [--width 480 --height 360] [--out FILE]

Prints one line per seed and writes a JSON summary (default build/bench/bench_synthetic.json). The scene's
one-off cost (static background) is reported separately as ``setup_ms``. ``cpu_median_ms`` is process CPU time per
frame (all threads), which is less disturbed than wall time when other programs share the cores. The camera demo needs the render
to leave room for the models within a 30 FPS budget (33 ms) on a 2-core device.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

from toolkit.data.synthetic import SceneConfig, StreetScene
from toolkit.fileio import write_json_atomic


def bench_seed(config: SceneConfig, frames: int) -> dict:
    start = time.perf_counter()
    scene = StreetScene(config)
    scene.step()  # builds the static background
    setup_ms = (time.perf_counter() - start) * 1000
    times, cpu, people = [], [], []
    for _ in range(frames):
        t0, c0 = time.perf_counter(), time.process_time()
        frame = scene.step()
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        people.append(len(frame.person_ids))
    ms = np.array(times)
    return {
        "seed": config.seed,
        "setup_ms": round(setup_ms, 1),
        "median_ms": round(float(np.median(ms)), 3),
        "p90_ms": round(float(np.percentile(ms, 90)), 3),
        "max_ms": round(float(ms.max()), 3),
        "cpu_median_ms": round(float(np.median(cpu)), 3),
        "fps_at_median": round(1000.0 / float(np.median(ms)), 1),
        "mean_people": round(float(np.mean(people)), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300, help="frames timed per seed (default 300)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated scene seeds (default 0,1,2)")
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--out", default="build/bench/bench_synthetic.json", help="JSON output file")
    args = parser.parse_args()
    rows = []
    for seed in (int(s) for s in args.seeds.split(",") if s.strip()):
        row = bench_seed(SceneConfig(seed=seed, width=args.width, height=args.height), args.frames)
        rows.append(row)
        print(
            f"seed {row['seed']}: median {row['median_ms']:.2f} ms/frame (p90 {row['p90_ms']:.2f}, "
            f"{row['fps_at_median']:.0f} FPS; CPU {row['cpu_median_ms']:.2f} ms), setup {row['setup_ms']:.0f} ms, {row['mean_people']} people in view"
        )
    median = float(np.median([r["median_ms"] for r in rows]))
    result = {
        "benchmark": "synthetic_scene_render",
        "image_size": [args.width, args.height],
        "frames_per_seed": args.frames,
        "median_ms": round(median, 3),
        "per_seed": rows,
        "host": {
            "machine": platform.machine(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        },
        "numpy": np.__version__,
        "opencv": __import__("cv2").__version__,
    }
    write_json_atomic(args.out, result)
    print(f"median {median:.2f} ms/frame over {len(rows)} seeds -> {args.out}")
    print(json.dumps({"median_ms": result["median_ms"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
