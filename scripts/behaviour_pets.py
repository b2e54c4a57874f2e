#!/usr/bin/env python3
"""Issue 17 experiment: the behaviour model on a sixth held-out scene, PETS09-S2L1's ground-truth world tracks.

PETS09-S2L1 (the shared MOTChallenge 2015 gt, 7 fps) carries each box's ground-plane position in metres (MOT15
columns X, Y: foot points projected through the published calibration). ``load_windows("mot")`` resamples them to
0.4 s and cuts 8 + 12-step windows with their 6 nearest neighbours exactly as for ETH/UCY; every model below is
scored by ``toolkit.eval.evaluate`` (the code behind ``toolkit eval MODEL --data mot``), constant velocity beside.

Models: the shipped zoo model (int8 and its float source), and two sets of leave-one-scene-out (LOSO) int8 models,
each trained on four ETH/UCY scenes: ``runs/b17/loo4`` (the previous recipe, top_weight 3.0) and ``runs/b17/loo2``
(the shipped recipe since session 2 of issue 17, top_weight 1.0: the models of models/behaviour/loo_eth_ucy.json). None saw PETS. Each LOSO
model is also scored on its own held-out ETH/UCY scene, same code, for comparison.

Data checks: speeds of the resampled tracks, and how rough the tracks are: the median |second difference| of
0.4 s positions (m), PETS vs each ETH/UCY test scene (hand-annotated), a proxy for position noise.

Spread: windows overlap (stride 1 step) and come from 19 people, so the model-minus-CV difference of the shipped
int8 model gets a 95% interval from a bootstrap over tracks (2,000 resamples, seed 0).

    python scripts/behaviour_pets.py --out docs/experiments/behaviour_pets.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.data import trajectories as traj
from toolkit.data.behaviour_windows import load_windows, mot_rows, step_speeds
from toolkit.data.mot import mot_world_from_spec
from toolkit.eval import EvalConfig, evaluate, load_predictor
from toolkit.eval.behaviour import mode_scores, predict_modes
from toolkit.paths import shared_dir

SHIPPED = {
    "shipped int8": "models/behaviour/behaviour_int8.tflite",
    "shipped float": "runs/zoo/behaviour/behaviour.keras",
}
LOSO_SETS = {
    "loo4": "runs/b17/loo4",  # the previous recipe (top_weight 3.0)
    "loo2": "runs/b17/loo2",  # the shipped recipe (top_weight 1.0), models/behaviour/loo_eth_ucy.json
}
KEYS = ("ade", "fde", "min_ade", "min_fde", "mode_nll", "mode_ece", "top_mode_accuracy", "cv_ade", "cv_fde")


def data_facts() -> dict[str, Any]:
    """Counts, speeds and roughness of the PETS tracks (and ETH/UCY roughness for comparison)."""
    world = mot_world_from_spec("mot")
    raw = world.rows
    raw_speeds = []
    for track in np.unique(raw[:, 1]):
        r = raw[raw[:, 1] == track]
        r = r[np.argsort(r[:, 0])]
        ok = np.diff(r[:, 0]) == 1
        raw_speeds.append(np.linalg.norm(np.diff(r[:, 2:4], axis=0), axis=1)[ok] * world.frame_rate)
    raw_speeds = np.concatenate(raw_speeds)
    rows, tracks = mot_rows(world)
    speeds = step_speeds(rows)
    per_track = [float(np.median(step_speeds(rows[rows[:, 1] == p]))) for p in range(len(tracks))]
    roughness = {"PETS09-S2L1": _roughness(rows)}
    for scene in traj.SCENES:
        for f in sorted((shared_dir() / "data" / "eth_ucy" / scene / "test").glob("*.txt")):
            roughness[f.stem] = _roughness(traj.read_trajectory_file(f))
    windows = load_windows("mot", neighbours=6)
    return {
        "sequence": world.name,
        "frame_rate": world.frame_rate,
        "gt_rows": int(len(raw)),
        "gt_tracks": int(len(np.unique(raw[:, 1]))),
        "resampled_rows": int(len(rows)),
        "runs": int(len(tracks)),
        "windows": len(windows),
        "windows_with_a_neighbour": int((windows.neighbours[:, 0, 4] > 0).sum()),
        "mean_neighbours": float((windows.neighbours[..., 4] > 0).sum(axis=1).mean()),
        "speed_median_all_steps": float(np.median(speeds)),
        "speed_median_moving_steps": float(np.median(speeds[speeds > 0.3])),
        "speed_p10_p90": [float(v) for v in np.percentile(speeds, [10, 90])],
        "speed_per_track_median_range": [min(per_track), max(per_track)],
        "speed_median_raw_7fps": float(np.median(raw_speeds)),
        "roughness_m": roughness,
        "source": windows.source,
    }


def _roughness(rows: np.ndarray) -> float:
    """Median |x[t+1] - 2 x[t] + x[t-1]| (m) over consecutive 0.4 s positions of one pedestrian."""
    data = rows[np.lexsort((rows[:, 0], rows[:, 1]))]
    d2 = data[2:, 2:4] - 2 * data[1:-1, 2:4] + data[:-2, 2:4]
    same = (data[2:, 1] == data[:-2, 1]) & (data[2:, 0] - data[:-2, 0] == 2 * traj.FRAME_STEP)
    return float(np.median(np.linalg.norm(d2[same], axis=1)))


def score(path: str, data: str, threads: int) -> dict[str, float]:
    """The figures of ``toolkit eval PATH --data DATA``."""
    report = evaluate(path, data, EvalConfig(threads=threads))
    return {k: float(report.metrics[k]) for k in KEYS} | {"windows": report.samples}


def track_bootstrap(path: str, threads: int, resamples: int = 2000) -> dict[str, Any]:
    """Per-track ADE of the shipped int8 model and CV, and a bootstrap over tracks of the mean difference."""
    windows = load_windows("mot", neighbours=6)
    ped = traj.make_windows(mot_rows(mot_world_from_spec("mot"))[0]).ped  # the same windows, same order
    with load_predictor(path, threads=threads) as predictor:
        modes, probs, _ = predict_modes(predictor, windows.obs, windows.neighbours)
    model = mode_scores(modes, probs, windows.fut)["ml_ade"]
    cv = traj.displacement(traj.constant_velocity(windows.obs), windows.fut).mean(axis=1)
    people = np.unique(ped)
    rng = np.random.default_rng(0)
    diffs = []
    for _ in range(resamples):
        pick = np.concatenate([np.flatnonzero(ped == p) for p in rng.choice(people, len(people))])
        diffs.append(model[pick].mean() - cv[pick].mean())
    rows = [
        {
            "run": int(p),
            "windows": int((ped == p).sum()),
            "ade": float(model[ped == p].mean()),
            "cv_ade": float(cv[ped == p].mean()),
        }
        for p in people
    ]
    return {
        "ade": float(model.mean()),
        "cv_ade": float(cv.mean()),
        "diff_ci95": [float(v) for v in np.percentile(diffs, [2.5, 97.5])],
        "tracks_model_better": int(sum(r["ade"] < r["cv_ade"] for r in rows)),
        "per_track": rows,
    }


def main() -> None:
    """Score every model on PETS (and each LOSO model on its own ETH/UCY scene) and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/experiments/behaviour_pets.json")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    started = time.perf_counter()
    result: dict[str, Any] = {"data": data_facts(), "models": {}, "loso": {}}
    for name, path in SHIPPED.items():
        if Path(path).exists():
            result["models"][name] = {"path": path, "pets": score(path, "mot", args.threads)}
    for name, folder in LOSO_SETS.items():
        rows = []
        for scene in traj.SCENES:
            path = Path(folder) / f"{scene}_int8.tflite"
            if path.exists():
                rows.append(
                    {
                        "scene_held_out": scene,
                        "path": str(path),
                        "pets": score(str(path), "mot", args.threads),
                        "eth_ucy_held_out": score(
                            str(path), f"eth_ucy:scene={scene},split=test", args.threads
                        ),
                    }
                )
        if rows:
            summary = {}
            for where in ("pets", "eth_ucy_held_out"):
                for key in KEYS:
                    values = np.array([r[where][key] for r in rows])
                    summary[f"{where}_{key}"] = {
                        "mean": float(values.mean()),
                        "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                        "min": float(values.min()),
                        "max": float(values.max()),
                    }
            result["loso"][name] = {"folder": folder, "models": rows, "summary": summary}
    result["bootstrap_shipped_int8"] = track_bootstrap(SHIPPED["shipped int8"], args.threads)
    result["seconds"] = round(time.perf_counter() - started, 1)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "loso"}, indent=1)[:4000])
    for name, entry in result["loso"].items():
        s = entry["summary"]
        print(name, {k: round(s[k]["mean"], 4) for k in s if k.endswith(("_ade", "_fde"))})


if __name__ == "__main__":
    main()
