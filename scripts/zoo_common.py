"""What the zoo protocol scripts (zoo_behaviour.py, zoo_detector.py, zoo_segmenter.py) share: ``--set``
overrides, recipe tables merged with them and the common command-line arguments.

Importing this module puts the repository on ``sys.path`` (the scripts run from a checkout), so a script imports
it before anything from ``toolkit``::

    from zoo_common import REPO, add_common_arguments, merged, parse_sets, train_config
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from toolkit.config import apply_overrides  # noqa: E402
from toolkit.errors import UsageError  # noqa: E402
from toolkit.train.config import TrainConfig  # noqa: E402

TABLES = ("model", "task", "train")  # recipe tables a --set may override


def parse_sets(values: list[str]) -> dict[str, dict[str, Any]]:
    """``table.key=value`` strings -> {"model": {...}, "task": {...}, "train": {...}} (values parsed as TOML)."""
    import tomllib

    tables: dict[str, dict[str, Any]] = {name: {} for name in TABLES}
    for item in values:
        name, eq, value = item.partition("=")
        table, dot, key = name.partition(".")
        if not eq or not dot or table not in tables:
            raise UsageError(f"--set {item}: expected model.KEY=VALUE, task.KEY=VALUE or train.KEY=VALUE")
        try:
            tables[table][key] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            tables[table][key] = value  # a bare string such as a SPEC
    return tables


def merged(recipe: dict[str, Any], sets: dict[str, dict[str, Any]], table: str, **fixed: Any) -> dict[str, Any]:
    """The recipe's ``[table]``, then the ``--set table.*`` overrides, then ``fixed`` (what the protocol imposes)."""
    return {**recipe.get(table, {}), **sets[table], **fixed}


def train_config(recipe: dict[str, Any], sets: dict[str, dict[str, Any]], epochs: int | None = None,
                 **fixed: Any) -> TrainConfig:
    """The validated TrainConfig of :func:`merged` ``[train]`` (``fixed`` e.g. data, run_dir), ``epochs`` if given."""
    overrides = merged(recipe, sets, "train", **fixed)
    if epochs:
        overrides["epochs"] = epochs
    return apply_overrides(TrainConfig(), overrides, where="[train]")


def add_common_arguments(parser: argparse.ArgumentParser, recipe: Path, work: Path, out: Path,
                         set_example: str) -> None:
    """Add --recipe, --epochs, --set, --work, --out and --threads with these defaults to a zoo script's parser."""
    parser.add_argument("--recipe", type=Path, default=recipe,
                        help="recipe with [train], [model], [task] and [convert] tables")
    parser.add_argument("--epochs", type=int, help="override [train] epochs (quick looks; recorded in the output)")
    parser.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE",
                        help=f"override a model / task / train key, e.g. {set_example} (repeatable, recorded)")
    parser.add_argument("--work", type=Path, default=work, help=f"models and run folders (default {work})")
    parser.add_argument("--out", type=Path, default=out, help=f"JSON table to write (default {out})")
    parser.add_argument("--threads", type=int, default=2, help="interpreter threads for the int8 evaluation")
