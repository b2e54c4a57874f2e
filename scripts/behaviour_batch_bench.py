#!/usr/bin/env python3
"""Issue 17 experiment: behaviour-stage time per frame, per-row invokes of the batch-1 model vs a batched model.

The pipeline's behaviour stage (:class:`toolkit.pipeline.behaviour.BehaviourPredictor`) builds one batch of model
inputs for all tracks of a frame; with a batch-1 ``.tflite`` it invokes the model once per track, with a model
converted by ``toolkit convert --batch N`` once per N tracks (the last chunk padded with zeros). This script times
``predict()`` -- the whole stage: histories, neighbours, heading frame, invokes, paths back to pixels -- on the
same tracks for every model given, for several track counts.

Tracks: ``n`` walkers on a grid (columns 120 px apart, rows 150 px apart, 100 px boxes, each walking at its own
velocity) tracked for 4 s at 10 FPS by the pipeline's own tracker, so every track has a full 8-sample history and
its grid neighbours within the social model's radius (person-height scale: 120 px = 2.0 m).

Alternating rounds: in each round every model runs ``--frames`` frames, in an order rotated from round to round
(host noise hits each model alike); reported per model and track count: the median over rounds of the round's
median frame time (stage ``total`` and its ``model`` part, ms), invokes per frame, and the ratio to the first
model (the batch-1 baseline) as the median of per-round ratios. Interpreter threads: 1, as the pipeline runs
each model. The predictions of every model are checked against the first model's (max pixel difference).

    python scripts/behaviour_batch_bench.py runs/behaviour_batch/behaviour_b1_int8.tflite \\
        runs/behaviour_batch/b8_int8.tflite runs/behaviour_batch/b16_int8.tflite --out runs/behaviour_batch/bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.adapters.detect import Detection
from toolkit.pipeline.behaviour import BehaviourPredictor
from toolkit.pipeline.tracker import Tracker, TrackerConfig
from toolkit.runtime.runner import Runner

FRAME = (1280, 720)


def walkers(count: int, seconds: float = 4.0, fps: float = 10.0) -> list[Any]:
    """``count`` confirmed tracks with full histories: a grid of walkers, 8 per row, each with its own velocity."""
    rng = np.random.default_rng(count)
    velocity = rng.uniform(-25, 25, size=(count, 2))  # px/s
    tracker = Tracker(TrackerConfig(min_hits=1))
    visible: list[Any] = []
    for step in range(int(seconds * fps)):
        t = step / fps
        dets = []
        for i in range(count):
            x = 60 + 120 * (i % 8) + velocity[i, 0] * t
            y = 40 + 150 * (i // 8) + velocity[i, 1] * t
            dets.append(Detection((x, y, x + 40, y + 100), 0.9))
        visible = tracker.update(dets, t)
    if len(visible) != count:
        raise RuntimeError(f"expected {count} tracks, the tracker kept {len(visible)}")
    return visible


def time_frames(predictor: BehaviourPredictor, tracks: list[Any], frames: int) -> tuple[list, list, int]:
    """(total ms per frame, model ms per frame, invokes per frame) of ``frames`` predict() calls."""
    totals, models = [], []
    for _ in range(frames):
        predictor.predict(tracks, FRAME)
        totals.append(predictor.timings["total"])
        models.append(predictor.timings["model"])
    return totals, models, predictor.calls


def paths(predictor: BehaviourPredictor, tracks: list[Any]) -> np.ndarray:
    """Every track's K paths in pixels, stacked in track order."""
    out = predictor.predict(tracks, FRAME)
    return np.stack([out[t.id].modes_image for t in tracks])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "models", nargs="+", type=Path, help="behaviour .tflite files; the first is the baseline"
    )
    parser.add_argument(
        "--tracks", default="1,4,8,16,32", help="track counts per frame (default 1,4,8,16,32)"
    )
    parser.add_argument("--rounds", type=int, default=15, help="alternating rounds (default 15)")
    parser.add_argument("--frames", type=int, default=40, help="frames per model per round (default 40)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed frames per model first (default 20)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()

    load_start = os.getloadavg()
    counts = [int(c) for c in args.tracks.split(",")]
    predictors = {path.name: BehaviourPredictor(Runner(path, num_threads=1)) for path in args.models}
    names = list(predictors)
    rows = []
    for n in counts:
        tracks = walkers(n)
        reference = paths(predictors[names[0]], tracks)
        agreement = {
            name: float(np.nanmax(np.abs(paths(p, tracks) - reference))) for name, p in predictors.items()
        }
        for p in predictors.values():
            time_frames(p, tracks, args.warmup)
        rounds: dict[str, dict[str, list[float]]] = {name: {"total": [], "model": []} for name in names}
        calls = {}
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                totals, models, calls[name] = time_frames(predictors[name], tracks, args.frames)
                rounds[name]["total"].append(float(np.median(totals)))
                rounds[name]["model"].append(float(np.median(models)))
        base = np.asarray(rounds[names[0]]["total"])
        for name in names:
            total = np.asarray(rounds[name]["total"])
            rows.append(
                {
                    "tracks": n,
                    "model": name,
                    "batch": predictors[name].batch,
                    "invokes_per_frame": calls[name],
                    "total_ms": round(float(np.median(total)), 4),
                    "model_ms": round(float(np.median(rounds[name]["model"])), 4),
                    "total_ms_round_range": [round(float(total.min()), 4), round(float(total.max()), 4)],
                    "speedup_vs_first": round(float(np.median(base / total)), 3),
                    "max_path_diff_px_vs_first": round(agreement[name], 4),
                }
            )
            print(
                f"n={n:>2} {name:<28} batch {rows[-1]['batch']:>2} invokes {calls[name]:>2}  "
                f"total {rows[-1]['total_ms']:.3f} ms  model {rows[-1]['model_ms']:.3f} ms  "
                f"x{rows[-1]['speedup_vs_first']:.2f} vs {names[0]}",
                flush=True,
            )
    result = {
        "experiment": "behaviour stage per frame: batch-1 per-row invokes vs batched models (issue 17)",
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "host": {
            "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "loadavg_start_end": [list(load_start), list(os.getloadavg())],  # a shared host: others' load
        },
        "settings": {
            "interpreter_threads": 1,
            "rounds": args.rounds,
            "frames_per_round": args.frames,
            "warmup_frames": args.warmup,
            "frame_size": list(FRAME),
            "statistic": "median over rounds of each round's median frame time; ratio = median of per-round "
            "ratios (first model / this model)",
        },
        "models": {name: str(path) for name, path in zip(names, args.models, strict=True)},
        "rows": rows,
    }
    for p in predictors.values():
        p.close()
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
