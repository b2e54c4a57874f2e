"""toolkit train KIND --data SPEC -o model.keras [--config recipe.toml] [flags]"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from toolkit.capabilities import MODEL_KINDS
from toolkit.cli.common import add_json_flag, config_type, emit

HELP = "train a model kind on real or synthetic data (seeded, best checkpoint, early stopping, resumable)"
DESCRIPTION = (
    HELP
    + """

  toolkit train classifier --data mnist:split=train -o classifier.keras
  toolkit train behaviour --config models/behaviour/recipe.toml -o behaviour.keras --epochs 5
  toolkit train classifier -o c.keras --strategy mirrored --devices 2     # tf.distribute on 2 logical CPUs
  toolkit train classifier -o c.keras --resume                            # continue an interrupted run

A config file (TOML or JSON) mirrors the flags: [train] holds TrainConfig keys, [model] the kind's model config,
[task] the task options; flags override the file. --set model.width=0.5 overrides one key.
Writes OUT.keras (best weights), OUT.train.json (manifest) and OUT.run/ (TensorBoard logs, history, backups).
Kinds: """
    + ", ".join(MODEL_KINDS)
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=list(MODEL_KINDS), help="model kind")
    parser.add_argument("-o", "--output", required=True, help="output .keras file")
    parser.add_argument("--config", help="TOML/JSON config with [train], [model], [task] tables")
    parser.add_argument("--data", help="training data SPEC (default: the kind's default)")
    parser.add_argument("--val-data", help="validation data SPEC")
    parser.add_argument("--epochs", type=_train("epochs"))
    parser.add_argument("--batch-size", type=_train("batch_size"))
    parser.add_argument("--lr", type=_train("learning_rate"), dest="learning_rate", help="peak learning rate")
    parser.add_argument("--seed", type=_train("seed"))
    parser.add_argument(
        "--patience", type=_train("patience"), help="early-stopping patience in epochs (0 disables)"
    )
    parser.add_argument("--no-augment", action="store_const", const=False, dest="augment")
    parser.add_argument("--strategy", choices=["default", "mirrored"])
    parser.add_argument(
        "--devices", type=_train("devices"), help="replicas for mirrored on a CPU-only host (default 2)"
    )
    parser.add_argument(
        "--resume", action="store_const", const=True, help="continue from the run directory's backup"
    )
    parser.add_argument("--run-dir", help="logs/checkpoints folder (default OUT.run)")
    parser.add_argument("--steps-per-epoch", type=_train("steps_per_epoch"), help="cap batches per epoch")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="TABLE.KEY=VALUE",
        help="override one key, e.g. model.width=0.5 or task.rotate=false (repeatable)",
    )
    add_json_flag(parser)


def _train(key: str) -> Any:
    """The argparse type of a TrainConfig flag: parsed and range-checked against TrainConfig.LIMITS."""
    return config_type("toolkit.train.config:TrainConfig", key)


def _parse_value(item: str, text: str) -> Any:
    """A --set value as TOML (1e400 is inf, refused later as out of range); anything else is a bare string."""
    import tomllib

    from toolkit.config import check_nesting
    from toolkit.errors import UsageError

    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare string
    except (RecursionError, ValueError):  # arrays nested thousands deep; integers beyond the digit limit
        raise UsageError(
            f"--set {item[:60]}: not a value a config key takes (nested too deep or too long)"
        ) from None
    check_nesting(value, f"--set {item[:60]}")
    return value


def run(args: argparse.Namespace) -> int:
    from toolkit.config import apply_overrides
    from toolkit.errors import UsageError
    from toolkit.train.config import TrainConfig
    from toolkit.train.trainer import load_recipe, train

    recipe: dict[str, Any] = load_recipe(args.config) if args.config else {}
    if recipe.get("kind") and recipe["kind"] != args.kind:
        raise UsageError(f"{args.config} is a recipe for '{recipe['kind']}', not '{args.kind}'")
    tables: dict[str, dict[str, Any]] = {t: dict(recipe.get(t, {})) for t in ("train", "model", "task")}
    for item in args.set:
        key, eq, value = item.partition("=")
        table, dot, name = key.partition(".")
        if not eq or not dot or table not in tables:
            raise UsageError(f"--set {item}: expected TABLE.KEY=VALUE with TABLE one of train, model, task")
        tables[table][name] = _parse_value(item, value)
    flags = {
        k: getattr(args, k)
        for k in (
            "data",
            "val_data",
            "epochs",
            "batch_size",
            "learning_rate",
            "seed",
            "patience",
            "augment",
            "strategy",
            "devices",
            "resume",
            "run_dir",
            "steps_per_epoch",
        )
    }
    config = apply_overrides(TrainConfig(), tables["train"], where=f"{args.config or 'config'} [train]")
    config = apply_overrides(config, flags, where="flags")
    result = train(args.kind, Path(args.output), config, tables["model"], tables["task"])
    emit(result.manifest, args.json, _render)
    return 0


def _render(m: dict[str, Any]) -> str:
    best = ", ".join(f"{k} {v:.4g}" for k, v in m["best"].items())
    return (
        f"wrote {m['model']['path']} ({m['kind']}, {m['model']['parameters']:,} parameters): "
        f"{m['epochs_run']} epochs in {m['seconds']:.0f}s, best epoch {m['best_epoch']}: {best}\n"
        f"logs: tensorboard --logdir {m['run_dir']}/logs\n"
        f"next: toolkit convert {m['model']['path']} -o {Path(m['model']['path']).with_suffix('')}_int8.tflite "
        f"--quantize int8 --calib <data>"
    )
