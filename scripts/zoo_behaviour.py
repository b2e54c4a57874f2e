#!/usr/bin/env python3
"""ETH/UCY leave-one-scene-out for the behaviour model -> models/behaviour/loo_eth_ucy.json (the card includes it).

For each of the five scenes (eth, hotel, univ, zara1, zara2) a fresh model is trained on the other four scenes'
train splits (early stopping on their val splits), converted to full int8 (calibrated on its own training
windows), and scored float and int8 on the held-out scene's test split beside the constant-velocity baseline,
all with the toolkit's own functions:

    toolkit.train.trainer.train("behaviour", ..., TrainConfig(data=eth_ucy:scene=S,split=train, ...))
    toolkit.convert.convert(S.keras, S_int8.tflite, ConvertConfig(calib=eth_ucy:scene=S,split=train))
    toolkit.eval.evaluate(S.keras | S_int8.tflite, eth_ucy:scene=S,split=test)

Training settings come from models/behaviour/recipe.toml ([train], [model], [task]); the LOO models train on
ETH/UCY only (the recipe's synthetic ``extra_data`` is dropped) so each row is a clean held-out-scene result.
Predictions are deterministic single samples; averages are the mean of the five per-scene figures.

    python scripts/zoo_behaviour.py                            # all five scenes (~5 trainings)
    python scripts/zoo_behaviour.py --scenes hotel --epochs 3 --out /tmp/loo.json   # a quick look
    python scripts/zoo_behaviour.py --skip-train               # reuse runs/zoo/behaviour_loo/<scene>.keras
    python scripts/zoo_behaviour.py --set model.d_model=48 --set task.fde_weight=1.0
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from toolkit.config import apply_overrides
from toolkit.data import trajectories as traj
from toolkit.data.trajectories import SCENES
from toolkit.errors import UsageError
from toolkit.fileio import write_json_atomic
from toolkit.train.trainer import load_recipe
from toolkit.zoobuild.recipes import add_common_arguments, checkout_root, merged, parse_sets, train_config

REPO = checkout_root()  # models/ and runs/ of this source checkout
RECIPE = REPO / "models" / "behaviour" / "recipe.toml"
WORK = REPO / "runs" / "zoo" / "behaviour_loo"
OUT = REPO / "models" / "behaviour" / "loo_eth_ucy.json"
METRICS = ("ade", "fde")  # of the most likely mode
MODE_METRICS = ("min_ade", "min_fde", "mode_nll", "mode_ece", "top_mode_accuracy")  # over the K modes


def loo_task(recipe: dict[str, Any], sets: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The recipe's [task] without its synthetic extra data (ETH/UCY only), then the --set task.* overrides."""
    return {**recipe.get("task", {}), "extra_data": "", "extra_val_data": "", **sets["task"]}


def run_scene(
    scene: str, recipe: dict[str, Any], sets: dict[str, dict[str, Any]], args: argparse.Namespace
) -> dict:
    """Train (unless reused), convert and score one held-out scene; returns its table row."""
    from toolkit.convert import ConvertConfig, convert
    from toolkit.eval import EvalConfig, evaluate
    from toolkit.train.trainer import train

    train_spec, val_spec = f"eth_ucy:scene={scene},split=train", f"eth_ucy:scene={scene},split=val"
    test_spec = f"eth_ucy:scene={scene},split=test"
    keras_path, tflite_path = args.work / f"{scene}.keras", args.work / f"{scene}_int8.tflite"
    config = train_config(
        recipe, sets, args.epochs, data=train_spec, val_data=val_spec, run_dir=str(args.work / f"{scene}.run")
    )
    task, model = loo_task(recipe, sets), merged(recipe, sets, "model")
    started = time.perf_counter()
    reused = bool(args.skip_train and keras_path.exists())
    if not reused:
        print(f"[{scene}] training on {train_spec} (val {val_spec}), {config.epochs} epochs max", flush=True)
        train("behaviour", keras_path, config, model, task)
    manifest = json.loads(keras_path.with_suffix(".train.json").read_text())
    convert_overrides = {**recipe.get("convert", {}), "calib": train_spec}
    print(f"[{scene}] converting to int8 (calibration {train_spec})", flush=True)
    convert(keras_path, tflite_path, apply_overrides(ConvertConfig(), convert_overrides, where="[convert]"))
    row: dict[str, Any] = {"scene": scene}
    for label, path in (("float", keras_path), ("int8", tflite_path)):
        report = evaluate(path, test_spec, EvalConfig(threads=args.threads))
        row["windows"] = report.samples
        if label == "float":
            row |= {f"cv_{m}": report.metrics[f"cv_{m}"] for m in METRICS}
        row |= {f"{label}_{m}": report.metrics[m] for m in (*METRICS, *MODE_METRICS)}
        row[f"{label}_reliability"] = report.tables.get("mode_reliability", [])
        if scene == "eth":  # diagnostic: eth re-timed to its annotation step (see eth_at_true_step)
            row |= {f"eth04_{label}_{k}": v for k, v in eth_at_true_step(path, args.threads).items()}
    row |= {
        "epochs": manifest["epochs_run"],
        "best_epoch": manifest["best_epoch"],
        "train_windows": manifest["data"]["train_size"],
        "train_s": manifest["seconds"],
        "reused_model": reused,
        "run_s": round(time.perf_counter() - started, 1),
    }
    print(
        f"[{scene}] " + "  ".join(f"{k} {v:.3f}" for k, v in row.items() if k.endswith(METRICS)), flush=True
    )
    return row


def eth_at_true_step(path: Path, threads: int) -> dict[str, float]:
    """Most likely / min over K / CV figures of a model on eth re-timed to 0.4 s (a diagnostic, not the benchmark).

    The released biwi_eth.txt rows step 10 frames of a recording annotated every 6 frames = 0.4 s, so each step is
    0.667 s (median walking speed reads 2.45 m/s); ``trajectories.resample`` re-times it to 0.4 s by interpolation
    inside each pedestrian's runs, and the same window and scoring code runs on it.
    """
    from toolkit.eval import load_predictor
    from toolkit.eval.behaviour import mode_scores, predict_modes
    from toolkit.paths import shared_dir

    rows = traj.read_trajectory_file(shared_dir() / "data" / "eth_ucy" / "eth" / "test" / "biwi_eth.txt")
    rows = traj.resample(rows, traj.ETH_RELEASE_STEP_FRAMES, traj.ETH_ANNOTATION_STEP_FRAMES)
    windows = traj.make_windows(rows, "biwi_eth", neighbours=6)
    obs, fut, _ = traj.to_relative(windows.obs, windows.fut)
    cv = traj.displacement(traj.constant_velocity(obs), fut)
    with load_predictor(path, threads=threads) as predictor:
        modes, probs, _ = predict_modes(predictor, obs, windows.neighbours)
    s = mode_scores(modes, probs, fut)
    return {
        "windows": len(windows),
        "cv_ade": float(cv.mean()),
        "cv_fde": float(cv[:, -1].mean()),
        **{k: float(s[m].mean()) for k, m in (("ade", "ml_ade"), ("fde", "ml_fde"))},
        **{k: float(s[k].mean()) for k in ("min_ade", "min_fde")},
    }


def summarise(
    rows: list[dict[str, Any]], recipe: dict[str, Any], sets: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    old = _old_rows(args.old_table)
    for r in rows:
        if r["scene"] in old:
            r |= {f"old_{k}": v for k, v in old[r["scene"]].items()}
    keys = [f"{p}_{m}" for p in ("cv", "float", "int8") for m in METRICS]
    keys += [f"{p}_{m}" for p in ("float", "int8") for m in MODE_METRICS]
    keys += [k for k in ("old_int8_ade", "old_int8_fde") if all(k in r for r in rows)]
    average = {"scenes": len(rows), **{k: sum(r[k] for r in rows) / len(rows) for k in keys}}
    complete = [r["scene"] for r in rows] == list(SCENES)
    eth = next((r for r in rows if "eth04_int8_ade" in r), None)
    eth04 = None
    if complete and eth is not None:  # the same means with eth's row replaced by its 0.4 s diagnostic
        swap = {"cv_ade": "eth04_float_cv_ade", "cv_fde": "eth04_float_cv_fde"}
        swap |= {
            f"{p}_{m}": f"eth04_{p}_{m}" for p in ("float", "int8") for m in (*METRICS, "min_ade", "min_fde")
        }
        eth04 = {
            "scenes": len(rows),
            "eth_windows": eth["eth04_int8_windows"],
            **{k: sum(r[v] if r is eth else r[k] for r in rows) / len(rows) for k, v in swap.items()},
        }
    better = [r["scene"] for r in rows if r["int8_ade"] < r["float_ade"] - 0.005]
    verdict = {
        f"{p}_below_cv": all(average[f"{p}_{m}"] < average[f"cv_{m}"] for m in METRICS)
        for p in ("float", "int8")
    }
    return {
        "title": "ETH/UCY leave-one-scene-out: constant velocity vs previous model vs social multi-modal (float, int8)",
        "notes": [
            "five models, each trained on the other four scenes' train splits (early stopping on their val splits), "
            "converted to full int8 calibrated on its own training windows, scored on the held-out scene's test "
            "split; 8 observed + 12 predicted steps of 0.4 s",
            "ade / fde = the MOST LIKELY mode (highest mode probability); min_ade / min_fde = the best of the K "
            "modes (oracle; K = the model's modes, deterministic, not best-of-20 samples); mode_nll = mean -log "
            "probability of the closest mode (nats); mode_ece = expected calibration error of 'this mode is the "
            "closest' over all (window, mode) pairs, 10 bins (pooled reliability table below); the constant-velocity "
            "columns come from the same evaluation code on the same windows",
            "old_* = the previous single-output model (8 -> 12 Transformer, no neighbours, one path) from its own "
            "leave-one-scene-out run (the table this one replaces; --old-table)",
            "LOO models train on ETH/UCY only; the shipped model also sees all five scenes' train parts and the "
            "synthetic street (crossing labels), so its ETH/UCY test figures are not held-out results -- these are",
            "average = mean of the per-scene figures"
            + ("" if complete else " (NOT all five scenes were run)"),
            "reproduce: python scripts/zoo_behaviour.py (about 5 trainings of 1.5-6 minutes on 2 CPU cores)",
            "eth as released steps 0.667 s, not 0.4 s: biwi_eth.txt's rows are every 10 frames of a recording "
            "annotated every 6 frames = 0.4 s (Trajectron++ issue #67; its walkers read a median 2.45 m/s at 0.4 s). "
            "The table scores it as released, like every published figure; average_eth_at_0.4s is a diagnostic "
            "with eth re-timed to 0.4 s by interpolation inside each track (toolkit.data.trajectories.resample; "
            "interpolated points lie on straight segments, which flatters constant velocity a little)",
            *(
                [
                    f"int8 below float on {', '.join(better)}: the int8 model's calibrated ranges cap the longest "
                    "extrapolations (fastest walkers), and those walkers cover less ground than constant velocity "
                    "predicts -- an artefact of the ranges, not better modelling"
                ]
                if better
                else []
            ),
            *args.note,
        ],
        "per_scene": _columns(
            rows,
            ["scene", "windows", "cv_ade", "cv_fde", "old_int8_ade", "old_int8_fde"]
            + [f"int8_{m}" for m in (*METRICS, "min_ade", "min_fde")],
        ),
        "per_scene_float": _columns(rows, ["scene"] + [f"float_{m}" for m in (*METRICS, *MODE_METRICS)]),
        "per_scene_int8": _columns(rows, ["scene"] + [f"int8_{m}" for m in (*METRICS, *MODE_METRICS)]),
        "training": _columns(
            rows, ["scene", "epochs", "best_epoch", "train_windows", "train_s", "reused_model"]
        ),
        "average": [average],
        "average_eth_at_0.4s": [eth04] if eth04 else [],
        "int8_reliability_pooled": _pooled_reliability(rows),
        **verdict,
        "config": {
            "recipe": str(args.recipe.relative_to(REPO) if args.recipe.is_relative_to(REPO) else args.recipe),
            "train": recipe.get("train", {}),
            "model": merged(recipe, sets, "model"),
            "task": loo_task(recipe, sets),
            "overrides": sets,
            "epochs": args.epochs,
        },
    }


def _columns(rows: list[dict[str, Any]], keys: list[str]) -> list[dict[str, Any]]:
    """The rows cut to ``keys`` (those present)."""
    return [{k: r[k] for k in keys if k in r} for r in rows]


def _old_rows(path: Path | None) -> dict[str, dict[str, float]]:
    """scene -> the previous (single-output) model's float / int8 ADE / FDE from its loo table, if given."""
    if path is None:
        return {}
    data = json.loads(Path(path).read_text())
    keys = [f"{p}_{m}" for p in ("float", "int8") for m in METRICS]
    return {r["scene"]: {k: r[k] for k in keys if k in r} for r in data.get("per_scene", [])}


def _pooled_reliability(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The int8 reliability bins of all scenes pooled (counts added, means weighted by count)."""
    bins: dict[str, dict[str, float]] = {}
    for r in rows:
        for b in r.get("int8_reliability", []):
            acc = bins.setdefault(b["bin"], {"count": 0, "prob": 0.0, "hit": 0.0})
            acc["count"] += b["count"]
            acc["prob"] += b["mean_prob"] * b["count"]
            acc["hit"] += b["hit_rate"] * b["count"]
    return [
        {
            "bin": k,
            "count": int(v["count"]),
            "mean_prob": v["prob"] / v["count"],
            "hit_rate": v["hit"] / v["count"],
        }
        for k, v in sorted(bins.items())
    ]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_arguments(parser, RECIPE, WORK, OUT, set_example="model.d_model=48")
    parser.add_argument(
        "--scenes", default=",".join(SCENES), help="comma-separated held-out scenes (default: all)"
    )
    parser.add_argument(
        "--note", action="append", default=[], help="a sentence appended to the table's notes (repeatable)"
    )
    parser.add_argument("--skip-train", action="store_true", help="reuse WORK/<scene>.keras when present")
    parser.add_argument(
        "--old-table",
        type=Path,
        help="a previous model's loo_eth_ucy.json: its per-scene ADE / FDE go beside the new ones (old_*)",
    )
    args = parser.parse_args()
    try:
        scenes = [s.strip() for s in args.scenes.split(",") if s.strip()]
        unknown = [s for s in scenes if s not in SCENES]
        if unknown or not scenes:
            raise UsageError(f"--scenes: unknown {unknown or 'empty'}; choose from {', '.join(SCENES)}")
        recipe = load_recipe(args.recipe)
        sets = parse_sets(args.set)
        args.work.mkdir(parents=True, exist_ok=True)
        rows = [run_scene(scene, recipe, sets, args) for scene in scenes]
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    table = summarise(rows, recipe, sets, args)
    write_json_atomic(args.out, table)
    avg = table["average"][0]
    print(
        f"average over {avg['scenes']} scene(s): CV {avg['cv_ade']:.3f}/{avg['cv_fde']:.3f}  float "
        f"{avg['float_ade']:.3f}/{avg['float_fde']:.3f}  int8 {avg['int8_ade']:.3f}/{avg['int8_fde']:.3f}  "
        f"int8 min over K {avg['int8_min_ade']:.3f}/{avg['int8_min_fde']:.3f}  "
        f"(float below CV: {table['float_below_cv']}, int8 below CV: {table['int8_below_cv']}) -> {args.out}"
    )
    for e in table["average_eth_at_0.4s"]:
        print(
            f"diagnostic, eth re-timed to 0.4 s: CV {e['cv_ade']:.3f}/{e['cv_fde']:.3f}  int8 {e['int8_ade']:.3f}/"
            f"{e['int8_fde']:.3f}  int8 min over K {e['int8_min_ade']:.3f}/{e['int8_min_fde']:.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
