"""The generic training loop behind ``toolkit train`` (imports TensorFlow).

Everything that is the same for every model kind lives here: seeds and op determinism, the ``tf.distribute``
strategy, callbacks (best checkpoint on ``val_loss``, early stopping that restores the best weights, TensorBoard
logs, CSV history, resumable backups), the atomic save of ``OUT.keras`` and the training manifest
``OUT.train.json`` (config, data, versions, history). A task module per kind supplies data and loss
(:mod:`toolkit.train.task`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from toolkit import __version__
from toolkit.capabilities import MODEL_KINDS
from toolkit.config import apply_overrides, suggest
from toolkit.data.spec import parse_spec
from toolkit.errors import ToolkitError, UsageError
from toolkit.fileio import AtomicFiles, json_text, library_versions, sha256_file
from toolkit.train.config import TrainConfig


@dataclass(frozen=True)
class TrainResult:
    model_path: Path
    manifest_path: Path
    manifest: dict[str, Any]


def get_task(kind: str) -> Any:
    if kind not in MODEL_KINDS:
        raise UsageError(
            f"unknown model kind '{kind}'{suggest(kind, MODEL_KINDS)} (choose from {', '.join(MODEL_KINDS)})"
        )
    try:
        module = importlib.import_module(f"toolkit.train.task_{kind}")
    except ModuleNotFoundError as exc:
        if exc.name == f"toolkit.train.task_{kind}":
            raise UsageError(f"training for '{kind}' is not available in this build") from None
        raise
    return module.TASK


def manifest_path_for(model_path: Path) -> Path:
    return model_path.with_suffix(".train.json")


def _configure_devices(tf: Any, config: TrainConfig) -> Any:
    """The distribution strategy; on a CPU-only host 'mirrored' splits the CPU into logical devices."""
    if config.strategy == "default":
        return tf.distribute.get_strategy()
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return tf.distribute.MirroredStrategy()
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(config.devices)]
        )
    except RuntimeError:
        pass  # already initialised (a second run in one process): use what exists
    logical = tf.config.list_logical_devices("CPU")
    if len(logical) < 2:
        raise ToolkitError(
            "--strategy mirrored needs >= 2 devices; TensorFlow was initialised before the logical "
            "CPU devices could be created (run it in a fresh process)"
        )
    return tf.distribute.MirroredStrategy([d.name for d in logical[: config.devices]])


def _seed_everything(tf: Any, seed: int, deterministic: bool) -> None:
    """Seed Python, numpy and TF; with ``deterministic`` also make every TF op deterministic.

    Op determinism can double a convolution step on CPU (a cached detector batch: 228 -> 427 ms), so a long
    recipe may turn it off: the batches stay the same (they come from the seeded numpy generators), the float sums
    inside ops may differ in the last bits between runs.
    """
    import keras

    keras.utils.set_random_seed(seed)
    if deterministic:
        with contextlib.suppress(Exception):  # not available / already enabled
            tf.config.experimental.enable_op_determinism()


def _set_initial_weights(model: Any, initial: dict[str, dict[str, Any]]) -> None:
    """Assign a task's data-derived starting weights (layer name -> {weight name: array}) to the built model."""
    for layer_name, weights in initial.items():
        layer = model.get_layer(layer_name)
        for variable in layer.weights:
            short = variable.path.rsplit("/", 1)[-1]
            if short in weights:
                variable.assign(weights[short])


def _callbacks(keras: Any, run_dir: Path, config: TrainConfig, has_val: bool) -> list[Any]:
    monitor = "val_loss" if has_val else "loss"
    callbacks = [
        keras.callbacks.BackupAndRestore(str(run_dir / "backup")),
        keras.callbacks.ModelCheckpoint(str(run_dir / "best.keras"), monitor=monitor, save_best_only=True),
        keras.callbacks.TensorBoard(log_dir=str(run_dir / "logs"), write_graph=False, profile_batch=0),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=config.resume),
        keras.callbacks.TerminateOnNaN(),
    ]
    if config.patience > 0:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, patience=config.patience, restore_best_weights=True, verbose=0
            )
        )
    return callbacks


def train(
    kind: str,
    out_path: str | Path,
    config: TrainConfig = TrainConfig(),
    model_overrides: dict[str, Any] | None = None,
    task_overrides: dict[str, Any] | None = None,
    log: Any = None,
) -> TrainResult:
    """Train a fresh ``kind`` model and save the best weights to ``out_path`` (a .keras file)."""
    out = Path(out_path)
    if out.suffix != ".keras":
        raise UsageError(f"output {out} must end in .keras")
    if config.epochs < 1 or config.batch_size < 1 or config.learning_rate <= 0:
        raise UsageError("epochs and batch_size must be >= 1 and learning_rate > 0")
    if config.strategy == "mirrored" and config.devices < 2:
        raise UsageError("--strategy mirrored needs --devices >= 2")
    task = get_task(kind)
    train_spec = parse_spec(config.data or task.default_data)
    val_spec = parse_spec(config.val_data or task.default_val_data)
    from toolkit.models import config_for

    model_config = config_for(kind, model_overrides or {})
    options = apply_overrides(task.options_type(), task_overrides or {}, where=f"{kind} task options")
    run_dir = Path(config.run_dir) if config.run_dir else out.with_suffix(".run")
    if not config.resume and run_dir.exists():
        shutil.rmtree(run_dir / "backup", ignore_errors=True)
    if config.resume and not (run_dir / "backup").exists():
        raise UsageError(
            f"--resume: no backup in {run_dir} to resume from (train once without --resume first)"
        )
    run_dir.mkdir(parents=True, exist_ok=True)

    from toolkit.models.tf_env import quiet_tensorflow

    tf = quiet_tensorflow("training")
    import keras

    strategy = _configure_devices(tf, config)
    _seed_everything(tf, config.seed, config.deterministic)
    data = task.datasets(train_spec, val_spec, config, options, model_config)
    steps = data.train_size // config.batch_size or 1
    if config.steps_per_epoch:
        steps = min(steps, config.steps_per_epoch)
    train_ds = data.train.repeat() if config.steps_per_epoch else data.train
    with strategy.scope():
        from toolkit.models import builder

        model = builder(kind).build(model_config)
        _set_initial_weights(model, data.initial_weights)
        task.compile(model, config, options, steps)
    verbose = config.verbose if config.verbose >= 0 else (1 if sys.stderr.isatty() else 2)
    started = time.perf_counter()
    try:  # Keras prints progress on stdout; stdout is for results (--json), so progress goes to stderr
        with contextlib.redirect_stdout(sys.stderr):
            history = model.fit(
                train_ds,
                validation_data=data.val,
                epochs=config.epochs,
                steps_per_epoch=steps if config.steps_per_epoch else None,
                callbacks=_callbacks(keras, run_dir, config, data.val is not None),
                verbose=verbose,
            )
    except KeyboardInterrupt:
        raise ToolkitError(f"interrupted; resume with --resume (backup in {run_dir / 'backup'})") from None
    seconds = time.perf_counter() - started
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    if not hist.get("loss") or any(v != v for v in hist["loss"]):  # NaN check
        raise ToolkitError(f"training diverged (loss {hist.get('loss', [])[-1:]}); lower --lr")
    # the model and its manifest appear together: the manifest (renamed last) never describes another model
    with AtomicFiles(manifest=manifest_path_for(out)) as files:
        tmp = files.add(out, suffix=".keras")
        model.save(tmp)
        manifest = _manifest(
            kind,
            out,
            sha256_file(tmp),
            config,
            model_config,
            options,
            data,
            hist,
            seconds,
            run_dir,
            strategy,
            int(model.count_params()),
        )
        files.manifest_tmp.write_text(json_text(manifest))
    return TrainResult(out, manifest_path_for(out), manifest)


def _manifest(
    kind: str,
    out: Path,
    sha256: str,
    config: TrainConfig,
    model_config: Any,
    options: Any,
    data: Any,
    hist: dict[str, list[float]],
    seconds: float,
    run_dir: Path,
    strategy: Any,
    parameters: int,
) -> dict[str, Any]:
    monitor = "val_loss" if "val_loss" in hist else "loss"
    best = min(range(len(hist[monitor])), key=lambda i: hist[monitor][i])
    return {
        "schema": "edge-toolkit/train-manifest@1",
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "tool": {"name": "edge-toolkit", "version": __version__, "command": " ".join(sys.argv)},
        "libraries": library_versions(),
        "kind": kind,
        "model": {
            "path": str(out),
            "sha256": sha256,
            "parameters": parameters,
            "config": dataclasses.asdict(model_config),
        },
        "train_config": dataclasses.asdict(config),
        "task_options": dataclasses.asdict(options),
        "data": {"train_size": data.train_size, "val_size": data.val_size, **data.describe},
        "strategy": {"name": type(strategy).__name__, "replicas": int(strategy.num_replicas_in_sync)},
        "epochs_run": len(hist["loss"]),
        "best_epoch": best + 1,
        "first_epoch_loss": hist["loss"][0],
        "best": {k: v[best] for k, v in hist.items()},
        "history": hist,
        "seconds": round(seconds, 1),
        "run_dir": str(run_dir),
        "environment": {"TF_NUM_INTRAOP_THREADS": os.environ.get("TF_NUM_INTRAOP_THREADS")},
    }


def load_recipe(path: str | Path) -> dict[str, Any]:
    """A TOML/JSON training config: [train], [model], [task] tables (plus zoo keys the trainer ignores)."""
    from toolkit.config import load_config_file

    data = load_config_file(path)
    known = {"kind", "name", "description", "train", "model", "task", "convert", "eval", "card"}
    for key in data:
        if key not in known:
            raise UsageError(f"{path}: unknown table or key '{key}'{suggest(key, known)}")
    for table in ("train", "model", "task", "convert"):
        if table in data and not isinstance(data[table], dict):
            raise UsageError(f"{path}: [{table}] must be a table of keys")
    return data


def dump_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=str)
