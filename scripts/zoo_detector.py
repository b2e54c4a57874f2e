#!/usr/bin/env python3
"""COCO128 k-fold cross-validation of the person detector -> models/person_detector/coco128_cv.json (in the card).

For each fold k of the documented stratified split (:mod:`toolkit.data.detection_samples`), a fresh detector is
trained with the shipped recipe's settings on the OTHER folds' COCO128 images plus the recipe's synthetic street
frames (synthetic data is in every fold's training set; validation / checkpoint choice uses synthetic
validation scenes, never COCO128), converted to full int8 (calibrated on its own training fold), and scored
float and int8 on fold k's images beside OpenCV's HOG people detector, all with the toolkit's own functions:

    toolkit.train.trainer.train("detector", ..., TrainConfig(data=coco128:fold=k,folds=K,split=train, ...))
    toolkit.convert.convert(k.keras, k_int8.tflite, ConvertConfig(calib=coco128:fold=k,folds=K,split=train))
    toolkit.eval.evaluate(k.keras | k_int8.tflite, coco128:fold=k,folds=K,split=val)     (COCO AP, pycocotools)

"Pooled" scores every image once, by the model of the fold that held it out (all 128 images, 254 people).
Each fold's finished figures are kept in the work folder, so an interrupted run continues where it stopped.

    python scripts/zoo_detector.py                             # 4 folds (4 trainings)
    python scripts/zoo_detector.py --folds-to-run 0 --epochs 2 --out /tmp/cv.json   # a quick look
    python scripts/zoo_detector.py --set task.mosaic=0.3 --set train.epochs=10
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from toolkit.errors import UsageError
from toolkit.fileio import write_json_atomic
from toolkit.train.trainer import load_recipe
from toolkit.zoobuild.recipes import add_common_arguments, checkout_root, merged, parse_sets, train_config

REPO = checkout_root()  # models/ and runs/ of this source checkout
RECIPE = REPO / "models" / "person_detector" / "recipe.toml"
WORK = REPO / "runs" / "zoo" / "person_detector_cv"
OUT = REPO / "models" / "person_detector" / "coco128_cv.json"
METRICS = ("ap50", "ap50_95")


def run_fold(
    fold: int,
    folds: int,
    recipe: dict[str, Any],
    sets: dict[str, dict[str, Any]],
    work: Path,
    threads: int = 2,
) -> dict:
    """Train, convert and score one fold; returns its row (also written to ``work/fold<k>.json``)."""
    from toolkit.convert import ConvertConfig, convert
    from toolkit.data.detection_samples import load_samples
    from toolkit.data.spec import parse_spec
    from toolkit.eval import EvalConfig, evaluate
    from toolkit.eval.detector import coco_ap, hog_predictions, predict_samples
    from toolkit.eval.predictor import load_predictor
    from toolkit.train.trainer import train

    train_spec = f"coco128:fold={fold},folds={folds},split=train"
    val_spec = f"coco128:fold={fold},folds={folds},split=val"
    config = train_config(recipe, sets, data=train_spec, run_dir=str(work / f"fold{fold}.run"))
    keras_path, tflite_path = work / f"fold{fold}.keras", work / f"fold{fold}_int8.tflite"
    started = time.perf_counter()
    result = train(
        "detector", keras_path, config, merged(recipe, sets, "model"), merged(recipe, sets, "task")
    )
    convert_opts = {k: v for k, v in recipe.get("convert", {}).items() if k != "calib"}
    convert(keras_path, tflite_path, ConvertConfig(**{**convert_opts, "calib": train_spec}))

    scores = EvalConfig(baselines=False, threads=threads)
    reports = {
        "float": evaluate(keras_path, val_spec, scores),
        "int8": evaluate(tflite_path, val_spec, scores),
    }
    samples = load_samples(parse_spec(val_spec))
    hog = hog_predictions(samples)
    with load_predictor(keras_path) as f, load_predictor(tflite_path, threads=threads) as q:
        predictions = {"float": predict_samples(f, samples), "int8": predict_samples(q, samples), "hog": hog}
    row = {
        "fold": fold,
        "train": train_spec,
        "scored": val_spec,
        "images": len(samples),
        "images_with_person": samples.describe["images_with_person"],
        "person_boxes": samples.describe["person_boxes"],
        **{f"{m}_{name}": reports[name].metrics[m] for name in reports for m in METRICS},
        **{f"{m}_hog": v for m, v in coco_ap(samples.records, hog).items() if m in METRICS},
        "epochs_run": result.manifest["epochs_run"],
        "train_seconds": result.manifest["seconds"],
        "seconds": round(time.perf_counter() - started, 1),
    }
    cached = {
        "row": row,
        "predictions": {k: [[b.tolist(), s.tolist()] for b, s in v] for k, v in predictions.items()},
    }
    write_json_atomic(work / f"fold{fold}.json", cached)
    return cached


def pooled(folds: int, cached: list[dict]) -> dict[str, float]:
    """One AP over all images, each scored by the model that did not train on it."""
    import numpy as np

    from toolkit.data.detection_samples import load_samples
    from toolkit.data.spec import parse_spec
    from toolkit.eval.detector import coco_ap

    records, preds = [], {"float": [], "int8": [], "hog": []}
    for fold, entry in enumerate(cached):
        records += load_samples(parse_spec(f"coco128:fold={fold},folds={folds},split=val")).records
        for name in preds:
            preds[name] += [
                (np.asarray(b, np.float32).reshape(-1, 4), np.asarray(s, np.float32))
                for b, s in entry["predictions"][name]
            ]
    return {f"{m}_{name}": coco_ap(records, p)[m] for name, p in preds.items() for m in METRICS}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_arguments(parser, RECIPE, WORK, OUT, set_example="task.mosaic=0.3")
    parser.add_argument("--folds", type=int, default=4, help="number of folds (default 4)")
    parser.add_argument(
        "--folds-to-run", type=int, nargs="*", help="only these folds (no pooled row unless all)"
    )
    parser.add_argument("--redo", action="store_true", help="retrain folds that already have results")
    args = parser.parse_args()
    try:
        recipe = load_recipe(args.recipe)
        sets = parse_sets(args.set)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.epochs:
        sets["train"]["epochs"] = args.epochs
    args.work.mkdir(parents=True, exist_ok=True)
    todo = args.folds_to_run if args.folds_to_run else list(range(args.folds))
    cached = []
    for fold in todo:
        done = args.work / f"fold{fold}.json"
        if done.is_file() and not args.redo:
            cached.append(json.loads(done.read_text()))
            print(f"fold {fold}: reusing {done}", flush=True)
        else:
            print(f"fold {fold}: training", flush=True)
            cached.append(run_fold(fold, args.folds, recipe, sets, args.work, args.threads))
        row = cached[-1]["row"]
        print("  " + ", ".join(f"{k} {row[k]:.3f}" for k in row if k.startswith("ap")), flush=True)
    rows = [entry["row"] for entry in cached]
    table: dict[str, Any] = {
        "protocol": (
            f"COCO128 {args.folds}-fold cross-validation (stratified by file name, see "
            "toolkit.data.detection_samples); each fold's model trains on the other folds' COCO128 images + "
            "synthetic street frames and is scored on its held-out fold; int8 calibrated on its own "
            "training fold; HOG = OpenCV's default people detector on the same images"
        ),
        "recipe": str(args.recipe.relative_to(REPO) if args.recipe.is_relative_to(REPO) else args.recipe),
        "overrides": sets,
        "folds": rows,
    }
    if sorted(todo) == list(range(args.folds)):
        table["pooled"] = {
            "images": sum(r["images"] for r in rows),
            "person_boxes": sum(r["person_boxes"] for r in rows),
            **pooled(args.folds, sorted(cached, key=lambda e: e["row"]["fold"])),
        }
        table["mean_of_folds"] = {
            k: round(sum(r[k] for r in rows) / len(rows), 4) for k in rows[0] if k.startswith("ap")
        }
    write_json_atomic(args.out, table)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
