#!/usr/bin/env python3
"""COCO128 k-fold cross-validation of the scene segmenter -> models/scene_segmenter/coco128_cv.json (in the card).

The shipped segmenter trains on synthetic street frames plus ALL 100 masked COCO128 photos, so its own COCO128
figures would score images it trained on. This script estimates them honestly: for each fold k a fresh model is
trained with the same recipe but with only the other folds' photos (``extra_data = coco128:fold=k,split=train``),
converted to full int8 (the recipe's calibration data), and scored float and int8 on the held-out fold -- every
photo is scored exactly once, by a model that never saw it. All with the toolkit's own functions:

    toolkit.train.trainer.train("segmenter", ..., task_overrides={"extra_data": coco128:fold=k,split=train})
    toolkit.convert.convert(k.keras, k_int8.tflite, ConvertConfig(**recipe [convert]))
    toolkit.eval.segmenter.predict_labels(load_predictor(k.keras | k_int8.tflite), coco128:fold=k,split=val)

Pooled figures sum the pixel confusion matrices of the folds (IoU over all 100 photos); the per-fold mean is given
too. The MediaPipe selfie segmenter is scored on the same photos by the same code. ``--zero-shot MODEL`` also
scores a model that never saw COCO128 (e.g. one trained on synthetic frames only) on every fold.

    python scripts/zoo_segmenter.py                                 # 4 folds, recipe settings
    python scripts/zoo_segmenter.py --folds-to-run 0,1 --skip-train # reuse WORK/fold<k>.keras when present
    python scripts/zoo_segmenter.py --epochs 8 --set task.per_epoch=240 --out /tmp/cv.json   # cheaper, recorded
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.config import apply_overrides
from toolkit.errors import UsageError
from toolkit.fileio import write_json_atomic
from toolkit.train.trainer import load_recipe
from toolkit.zoobuild.recipes import add_common_arguments, checkout_root, merged, parse_sets, train_config

REPO = checkout_root()  # models/ and runs/ of this source checkout
RECIPE = REPO / "models" / "scene_segmenter" / "recipe.toml"
WORK = REPO / "runs" / "zoo" / "scene_segmenter_cv"
OUT = REPO / "models" / "scene_segmenter" / "coco128_cv.json"
FOLDS = 4


def fold_spec(args: argparse.Namespace, fold: int, split: str) -> str:
    return f"coco128:fold={fold},folds={args.folds},split={split}"


def confusions_of(model: Path | None, spec: str, threads: int) -> Any:
    """Pixel confusion matrices of ``model`` on ``spec`` (None = the MediaPipe selfie baseline)."""
    from toolkit.adapters.segment import CLASS_NAMES
    from toolkit.data.segmentation_samples import load_samples
    from toolkit.data.spec import parse_spec
    from toolkit.eval.predictor import load_predictor
    from toolkit.eval.segmenter import SELFIE_MODEL, predict_labels, selfie_baseline
    from toolkit.paths import shared_path

    samples = load_samples(parse_spec(spec))
    if model is None:
        return selfie_baseline(samples, len(CLASS_NAMES), shared_path(*SELFIE_MODEL))
    with load_predictor(model, threads=threads) as predictor:
        return predict_labels(predictor, samples, len(CLASS_NAMES))


def figures(conf: Any) -> dict[str, Any]:
    from toolkit.adapters.segment import CLASS_NAMES
    from toolkit.eval.segmenter import iou_metrics

    keep = (
        "person_iou",
        "miou",
        "pixel_accuracy",
        "person_iou_input",
        "iou_road",
        "iou_sidewalk",
        "iou_vehicle",
    )
    metrics = iou_metrics(conf, CLASS_NAMES)
    return {k: metrics[k] for k in keep if k in metrics}


def run_fold(
    fold: int, recipe: dict[str, Any], sets: dict[str, dict[str, Any]], args: argparse.Namespace
) -> dict[str, Any]:
    """Train (unless reused), convert and score one held-out fold; returns its row and confusion matrices."""
    from toolkit.convert import ConvertConfig, convert
    from toolkit.train.trainer import train

    cached = args.work / f"fold{fold}.json"
    if args.skip_train and cached.is_file():
        return json.loads(cached.read_text())
    keras_path, tflite_path = args.work / f"fold{fold}.keras", args.work / f"fold{fold}_int8.tflite"
    config = train_config(recipe, sets, args.epochs, run_dir=str(args.work / f"fold{fold}.run"))
    task = merged(recipe, sets, "task", extra_data=fold_spec(args, fold, "train"))
    model = merged(recipe, sets, "model")
    started = time.perf_counter()
    if not (args.skip_train and keras_path.exists()):
        print(f"[fold {fold}] training with {task['extra_data']}, {config.epochs} epochs", flush=True)
        train("segmenter", keras_path, config, model, task)
    manifest = json.loads(keras_path.with_suffix(".train.json").read_text())
    print(f"[fold {fold}] converting to int8", flush=True)
    convert(
        keras_path,
        tflite_path,
        apply_overrides(ConvertConfig(), recipe.get("convert", {}), where="[convert]"),
    )
    val = fold_spec(args, fold, "val")
    row: dict[str, Any] = {"fold": fold}
    matrices: dict[str, Any] = {}
    for label, path in (("float", keras_path), ("int8", tflite_path), ("selfie", None)):
        conf = confusions_of(path, val, args.threads)
        matrices[label] = {
            "frame": conf.frame.tolist(),
            "input": conf.input.tolist(),
            "images_with": conf.images_with.tolist(),
        }
        row |= {f"{label}_{k}": v for k, v in figures(conf).items() if label != "selfie" or k == "person_iou"}
    from toolkit.data.segmentation_samples import load_samples
    from toolkit.data.spec import parse_spec

    row |= {
        "images": len(load_samples(parse_spec(val))),
        "epochs": manifest["epochs_run"],
        "best_epoch": manifest["best_epoch"],
        "train_items_per_epoch": manifest["data"]["train_size"],
        "train_s": manifest["seconds"],
        "total_s": round(time.perf_counter() - started, 1),
    }
    print(
        f"[fold {fold}] float person IoU {row['float_person_iou']:.3f}, int8 {row['int8_person_iou']:.3f}, "
        f"selfie {row['selfie_person_iou']:.3f}",
        flush=True,
    )
    result = {"row": row, "confusions": matrices}
    write_json_atomic(cached, result)
    return result


def pooled(results: list[dict[str, Any]], label: str) -> dict[str, Any]:
    from toolkit.eval.segmenter import Confusions

    total = Confusions(
        *(
            sum(np.asarray(r["confusions"][label][k], np.int64) for r in results)
            for k in ("frame", "input", "images_with")
        )
    )
    return figures(total)


def zero_shot(model: Path, args: argparse.Namespace) -> dict[str, Any]:
    from toolkit.eval.segmenter import Confusions

    confs = [confusions_of(model, fold_spec(args, k, "val"), args.threads) for k in range(args.folds)]
    total = Confusions(
        sum(c.frame for c in confs), sum(c.input for c in confs), sum(c.images_with for c in confs)
    )
    return {"model": str(model), **figures(total)}


def summarise(
    results: list[dict[str, Any]],
    recipe: dict[str, Any],
    sets: dict[str, Any],
    args: argparse.Namespace,
    zero: dict[str, Any] | None,
) -> dict[str, Any]:
    rows = [r["row"] for r in results]
    folds = [r["fold"] for r in rows]
    pooled_rows = [{"model": label, **pooled(results, label)} for label in ("float", "int8", "selfie")]
    pooled_rows[2] = {"model": "selfie", "person_iou": pooled_rows[2]["person_iou"]}
    mean = {
        "folds": len(rows),
        **{
            k: round(float(np.mean([r[k] for r in rows])), 6)
            for k in ("float_person_iou", "int8_person_iou", "selfie_person_iou", "float_miou", "int8_miou")
        },
    }
    complete = sorted(folds) == list(range(args.folds))
    notes = [
        f"{args.folds}-fold cross-validation over the 100 COCO128 photos with semantic masks (stratified by person "
        "pixels, by file name); each fold model is trained afresh with the shipped recipe (from its recipe's "
        "starting point: random, or ImageNet features never trained on COCO), its COCO128 "
        "training photos being the other folds only, then converted to full int8 and scored float and int8 on the "
        "held-out fold",
        "COCO panoptic classes mapped to ours: person, road -> road, pavement -> sidewalk, car/bus/truck/motorcycle/"
        "bicycle -> vehicle, unlabeled -> ignore, everything else -> background; most photos hold no road, "
        "sidewalk or vehicle, so person IoU is the figure that matters here",
        "frame-resolution IoU (labels resized to the photo as the camera pipeline does); pooled = confusion "
        "matrices summed over the folds (each photo scored once)",
        "selfie = MediaPipe selfie segmentation 0.10.14 on the same photos (person vs rest), a pretrained peer",
    ]
    if not complete:
        notes.append(f"NOT all folds were run: {folds}")
    changed = {
        k: v
        for k, v in {"epochs": args.epochs, **sets["train"], **sets["task"], **sets["model"]}.items()
        if v is not None
    }
    if changed:
        notes.append(f"fold models used these settings instead of the recipe's: {changed}")
    out = {
        "title": f"COCO128 {args.folds}-fold cross-validation: person IoU of fold models never trained on the "
        "scored photos",
        "notes": notes,
        "per_fold": rows,
        "pooled": pooled_rows,
        "mean_over_folds": [mean],
    }
    if zero is not None:
        out["zero_shot"] = [zero]
        notes.append(
            "zero_shot = a model trained without any COCO128 photo, scored on all 100 (no fold needed)"
        )
    out["config"] = {"recipe": str(args.recipe), "model": merged(recipe, sets, "model"), "overrides": changed}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_arguments(parser, RECIPE, WORK, OUT, set_example="task.per_epoch=240")
    parser.add_argument("--folds", type=int, default=FOLDS, help=f"number of folds (default {FOLDS})")
    parser.add_argument(
        "--folds-to-run",
        help="comma-separated fold indices (default: all); others are read from "
        "WORK/fold<k>.json when present",
    )
    parser.add_argument(
        "--zero-shot", type=Path, help="also score this model (never trained on COCO128) on all folds"
    )
    parser.add_argument("--skip-train", action="store_true", help="reuse WORK/fold<k>.keras / fold<k>.json")
    args = parser.parse_args()
    try:
        if args.folds < 2:
            raise UsageError("--folds must be >= 2")
        run = (
            [int(k) for k in args.folds_to_run.split(",") if k.strip()]
            if args.folds_to_run
            else list(range(args.folds))
        )
        if any(not 0 <= k < args.folds for k in run):
            raise UsageError(f"--folds-to-run: indices must be 0..{args.folds - 1}, got {run}")
        recipe = load_recipe(args.recipe)
        sets = parse_sets(args.set)
        args.work.mkdir(parents=True, exist_ok=True)
        results = [run_fold(k, recipe, sets, args) for k in run]
        done = {r["row"]["fold"] for r in results}
        for k in range(args.folds):  # folds run earlier (e.g. by a second process) complete the table
            cached = args.work / f"fold{k}.json"
            if k not in done and cached.is_file():
                results.append(json.loads(cached.read_text()))
        results.sort(key=lambda r: r["row"]["fold"])
        zero = zero_shot(args.zero_shot, args) if args.zero_shot else None
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    table = summarise(results, recipe, sets, args, zero)
    write_json_atomic(args.out, table)
    for row in table["pooled"]:
        print(f"pooled {row['model']}: person IoU {row['person_iou']:.3f}")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
