#!/usr/bin/env python3
"""Train the detector recipe with Keras 3 on the PyTorch backend (a GPU machine without TensorFlow).

    KERAS_BACKEND=torch python scripts/train_detector_torch.py --config models/person_detector/recipe.toml \\
        -o runs/det.keras [--workers 14] [--deadline-s 420] [--set train.epochs=60]

The same recipe, model builder, losses and training items as ``toolkit train detector``
(:class:`toolkit.train.task_detector.DetectorItems`): only the input pipeline differs. ``toolkit train`` streams
items through tf.data from one random stream per epoch; here a pool of forked worker processes makes them, item
``k`` of epoch ``e`` from its own generator seeded ``[seed, e, k]`` (same distribution, not the same draws), so
16 CPU cores keep a GPU busy. The schedule (Adam, cosine decay over the run) and the checkpoint rule (best
``val_loss``) are the trainer's, except with ``--deadline-s``: a lent GPU is lent for minutes, so the run then
plans its own length -- after two epochs it measures the epoch time and sets the number of epochs that fit the
budget (at most the recipe's), and the cosine decay runs per epoch over that number. The manifest records the
planned and the run epochs; the recipe should then say that number (``toolkit train`` decays per step over the
same epochs). Writes ``OUT.keras`` and ``OUT.train.json`` (the trainer's manifest schema) and the epoch history
as CSV beside them. Used where this workplace lends a GPU for a while; every recipe still trains with
``toolkit train`` on a CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from toolkit import __version__
from toolkit.config import apply_overrides
from toolkit.data.spec import parse_spec
from toolkit.errors import UsageError, run_script
from toolkit.fileio import library_versions
from toolkit.train.task_detector import DetectorItems, DetectorTaskOptions
from toolkit.train.trainer import load_recipe
from toolkit.zoobuild.recipes import merged, parse_sets, train_config

REPO = Path(__file__).resolve().parents[1]

_ITEMS: DetectorItems | None = None  # set in the parent before forking: workers share the loaded pools


def _make(args: tuple[int, int, int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    seed, epoch, k, pool, index = args
    image, targets = _ITEMS.item(pool, index, np.random.default_rng([seed, epoch, k]))  # type: ignore[union-attr]
    return image, targets["heatmap"], targets["box"]


def batches(items: DetectorItems, epochs: int, batch: int, workers: int):
    """Forever: float32 [0, 1] image batches and their targets, epoch after epoch (the last partial batch of
    an epoch is dropped)."""
    seed = items.config.seed
    with mp.get_context("fork").Pool(workers) as pool:
        for epoch in range(epochs):
            plan = items.epoch_plan(epoch)
            work = [(seed, epoch, k, p, i) for k, (p, i) in enumerate(plan)][: len(plan) // batch * batch]
            stream = pool.imap(_make, work, chunksize=4)
            for _ in range(len(work) // batch):
                chunk = [next(stream) for _ in range(batch)]
                x = np.stack([c[0] for c in chunk]).astype(np.float32) * np.float32(1 / 255)
                yield x, {"heatmap": np.stack([c[1] for c in chunk]), "box": np.stack([c[2] for c in chunk])}


def validation(items: DetectorItems) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    pairs = list(items.val_items())
    x = np.stack([p[0] for p in pairs]).astype(np.float32) * np.float32(1 / 255)
    return x, {name: np.stack([p[1][name] for p in pairs]) for name in ("heatmap", "box")}


def prerender(specs: list[str], workers: int) -> None:
    """Render the synthetic scenes of ``specs`` into the cache in parallel (DetectorItems then only reads)."""
    jobs = []
    for text in filter(None, specs):
        spec = parse_spec(text)
        if spec.name == "synthetic":
            seed, scenes = spec.get_int("seed", 0), spec.get_int("scenes", 1)
            jobs += [str(spec.with_options(seed=seed + s, scenes=1)) for s in range(scenes)]
    if jobs:
        with mp.get_context("fork").Pool(workers) as pool:
            pool.map(_render, jobs)


def _render(text: str) -> int:
    from toolkit.data.detection_samples import load_samples

    return len(load_samples(parse_spec(text)))


def main() -> int:
    global _ITEMS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the detector recipe (TOML)")
    parser.add_argument("-o", "--out", required=True, help="output .keras")
    parser.add_argument(
        "--set", action="append", default=[], help="table.key=value override (as the zoo protocol scripts)"
    )
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    parser.add_argument(
        "--deadline-s",
        type=float,
        default=0.0,
        help="wall-clock training budget: plan the epochs that fit it (see the module docstring)",
    )
    parser.add_argument(
        "--prepare-only",
        action="store_true",
        help="only render the synthetic scenes into the cache (run once before parallel trainings)",
    )
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args()
    # Checked before TensorFlow loads: a wrong recipe fails in a second, with or without the train extra.
    out = Path(args.out)
    if out.suffix != ".keras":
        raise UsageError(f"output {out} must end in .keras")
    recipe = load_recipe(args.config)
    if recipe.get("kind") != "detector":
        raise UsageError(f"{args.config}: this script trains detector recipes, not {recipe.get('kind')}")

    import keras

    from toolkit.models import builder, config_for
    from toolkit.models.detector import detector_losses
    from toolkit.train.pretrained import start_backbone

    sets = parse_sets(args.set)
    config = train_config(recipe, sets)
    model_config = config_for("detector", merged(recipe, sets, "model"))
    options = apply_overrides(
        DetectorTaskOptions(), merged(recipe, sets, "task"), where="detector task options"
    )
    started = time.perf_counter()
    prerender([config.data or "", config.val_data or "", options.extra_data], args.workers)
    if args.prepare_only:
        print(f"rendered the synthetic scenes in {time.perf_counter() - started:.0f} s")
        return 0
    items = DetectorItems(parse_spec(config.data), parse_spec(config.val_data), config, options, model_config)
    _ITEMS = items
    x_val, y_val = validation(items)
    prepared = time.perf_counter() - started
    steps = items.train_size // config.batch_size
    keras.utils.set_random_seed(config.seed)
    model = builder("detector").build(model_config)
    if options.pretrained:
        start_backbone(model, options.pretrained, options.freeze_backbone)  # as DetectorTask.compile
    model.input_spec = None  # window training: the layers are size-agnostic (as DetectorTask.compile)
    deadline = Deadline(args.deadline_s, config.epochs, config.learning_rate)
    if args.deadline_s:
        learning_rate: Any = float(config.learning_rate)  # set per epoch by the Deadline callback
    else:
        learning_rate = keras.optimizers.schedules.CosineDecay(
            config.learning_rate, decay_steps=max(1, config.epochs * steps)
        )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=detector_losses(keras, box_weight=options.box_weight),
    )
    run_dir = out.with_suffix(".run")
    run_dir.mkdir(parents=True, exist_ok=True)
    callbacks = [
        keras.callbacks.ModelCheckpoint(str(run_dir / "best.keras"), monitor="val_loss", save_best_only=True),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv")),
        keras.callbacks.TerminateOnNaN(),
        deadline,
    ]
    t0 = time.perf_counter()
    history = model.fit(
        batches(items, config.epochs, config.batch_size, args.workers),
        steps_per_epoch=steps,
        epochs=config.epochs,
        validation_data=(x_val, y_val),
        validation_batch_size=config.batch_size,
        callbacks=callbacks,
        verbose=args.verbose,
    )
    seconds = time.perf_counter() - t0
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    best_model = keras.saving.load_model(run_dir / "best.keras", compile=False)
    best_model.save(out)
    best = min(range(len(hist["val_loss"])), key=lambda i: hist["val_loss"][i])
    manifest = {
        "schema": "edge-toolkit/train-manifest@1",
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "tool": {"name": "edge-toolkit", "version": __version__, "command": " ".join(sys.argv)},
        "libraries": library_versions(("keras", "torch", "numpy", "opencv-python-headless")),
        "kind": "detector",
        "model": {
            "path": str(out),
            "parameters": int(model.count_params()),
            "config": dataclasses.asdict(model_config),
        },
        "train_config": dataclasses.asdict(config),
        "task_options": dataclasses.asdict(options),
        "data": {"train_size": items.train_size, "val_size": len(x_val), **items.describe()},
        "strategy": {
            "name": f"keras {keras.backend.backend()} backend",
            "replicas": 1,
            "device": _device(),
            "workers": args.workers,
            "input_pipeline": "forked worker pool, item k of epoch e seeded [seed, e, k]",
        },
        "epochs_run": len(hist["loss"]),
        "deadline_s": args.deadline_s or None,
        "planned_epochs": deadline.planned,
        "best_epoch": best + 1,
        "first_epoch_loss": hist["loss"][0],
        "best": {k: v[best] for k, v in hist.items()},
        "history": hist,
        "seconds": round(seconds, 1),
        "prepare_seconds": round(prepared, 1),
        "run_dir": str(run_dir),
    }
    out.with_suffix(".train.json").write_text(json.dumps(manifest, indent=2, default=str))
    print(
        f"trained {len(hist['loss'])} epochs in {seconds:.0f} s (+{prepared:.0f} s data); best epoch {best + 1} "
        f"val_loss {hist['val_loss'][best]:.4f}; wrote {out}"
    )
    return 0


class Deadline:
    """Keras callback for a wall-clock budget (``seconds`` 0 = none: the compiled schedule runs as it is).

    After two epochs it plans ``planned`` = the epochs that fit the budget (2..``epochs``); each epoch starts
    with the learning rate of a per-epoch cosine decay over ``planned``; training stops after epoch ``planned``.
    """

    def __new__(cls, seconds: float, epochs: int, learning_rate: float):  # keras is imported in main
        import math

        import keras

        class _Deadline(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.start = self.first_end = time.perf_counter()
                self.planned: int | None = None if seconds else epochs

            def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                if seconds:
                    horizon = self.planned or epochs
                    rate = 0.5 * learning_rate * (1 + math.cos(math.pi * min(epoch / horizon, 1.0)))
                    self.model.optimizer.learning_rate.assign(rate)

            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                if not seconds:
                    return
                now = time.perf_counter()
                elapsed = now - self.start
                if epoch == 1:  # two epochs done: plan the rest from the second one (the first compiles)
                    per_epoch = now - self.first_end
                    self.planned = int(max(2, min(epochs, 2 + (seconds - elapsed) // per_epoch)))
                self.first_end = now
                if self.planned is not None and epoch + 1 >= self.planned or elapsed > seconds:
                    self.model.stop_training = True

        return _Deadline()


def _device() -> str:
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(run_script(main, "train_detector_torch"))
