"""The zoo's recipes (``models/<name>/recipe.toml``), the checkout they live in, and ``--set`` overrides.

A recipe holds ``kind``, ``name``, ``description``, the ``[train]`` / ``[model]`` / ``[task]`` tables of
``toolkit train --config``, a ``[convert]`` table of ``toolkit convert`` flags (``[convert.parts.<part>]`` for
models that ship as several files) and ``[[eval]]`` entries (``data``, ``label``, ``artifacts``).

The protocol scripts (``scripts/zoo_behaviour.py``, ``zoo_detector.py``, ``zoo_segmenter.py``) train variants of
a recipe; they share :func:`parse_sets`, :func:`merged`, :func:`train_config` and :func:`add_common_arguments`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from toolkit.config import apply_overrides, suggest
from toolkit.errors import UsageError
from toolkit.paths import repo_root
from toolkit.train.config import TrainConfig

TABLES = ("model", "task", "train")  # recipe tables a --set may override
RECIPE = "recipe.toml"


def checkout_root() -> Path:
    """The source checkout holding this package (its ``models/`` and ``runs/``); UsageError for an installed
    package, where the zoo is read-only package data."""
    root = repo_root()
    if root is None or not (root / "models").is_dir():
        raise UsageError(
            "building the zoo needs a source checkout (models/ beside the toolkit package); "
            "pass --models DIR to work on another copy of models/"
        )
    return root


def find_recipes(models_dir: str | Path, only: list[str] | tuple[str, ...] = ()) -> list[tuple[str, Path]]:
    """[(name, recipe path)] of ``models_dir/*/recipe.toml``, sorted by name; ``only`` keeps these names (each
    must exist: UsageError with the known names)."""
    folder = Path(models_dir)
    if not folder.is_dir():
        raise UsageError(
            f"model zoo folder not found: {folder} (expected models/ with <name>/{RECIPE} inside)"
        )
    recipes = {path.parent.name: path for path in sorted(folder.glob(f"*/{RECIPE}"))}
    if not recipes:
        raise UsageError(f"{folder}: no <name>/{RECIPE} inside; is this the zoo's models/ folder?")
    for name in only:
        if name not in recipes:
            raise UsageError(
                f"no recipe for '{name}' in {folder}{suggest(name, recipes)} (models: {', '.join(recipes)})"
            )
    return [(name, path) for name, path in recipes.items() if not only or name in only]


def load_zoo_recipe(path: Path) -> dict[str, Any]:
    """A recipe checked for what the build needs beyond ``toolkit train``'s tables: kind, [convert], [[eval]]."""
    from toolkit.train.trainer import load_recipe

    recipe = load_recipe(path)
    if not isinstance(recipe.get("kind"), str):
        raise UsageError(f'{path}: no kind = "..." (the model kind toolkit train builds)')
    convert = recipe.get("convert", {})
    parts = convert.get("parts", {})
    if not isinstance(parts, dict) or not all(isinstance(v, dict) for v in parts.values()):
        raise UsageError(f"{path}: [convert.parts.NAME] must be tables of toolkit convert flags")
    evals = recipe.get("eval", [])
    if not isinstance(evals, list) or not all(
        isinstance(e, dict) and isinstance(e.get("data"), str) for e in evals
    ):
        raise UsageError(
            f'{path}: every [[eval]] entry needs data = "SPEC" (and optionally label, artifacts)'
        )
    return recipe


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


def merged(
    recipe: dict[str, Any], sets: dict[str, dict[str, Any]], table: str, **fixed: Any
) -> dict[str, Any]:
    """The recipe's ``[table]``, then the ``--set table.*`` overrides, then ``fixed`` (what the protocol imposes)."""
    return {**recipe.get(table, {}), **sets[table], **fixed}


def train_config(
    recipe: dict[str, Any], sets: dict[str, dict[str, Any]], epochs: int | None = None, **fixed: Any
) -> TrainConfig:
    """The validated TrainConfig of :func:`merged` ``[train]`` (``fixed`` e.g. data, run_dir), ``epochs`` if given."""
    overrides = merged(recipe, sets, "train", **fixed)
    if epochs:
        overrides["epochs"] = epochs
    return apply_overrides(TrainConfig(), overrides, where="[train]")


def add_common_arguments(
    parser: argparse.ArgumentParser, recipe: Path, work: Path, out: Path, set_example: str
) -> None:
    """Add --recipe, --epochs, --set, --work, --out and --threads with these defaults to a protocol script's parser."""
    parser.add_argument(
        "--recipe",
        type=Path,
        default=recipe,
        help="recipe with [train], [model], [task] and [convert] tables",
    )
    parser.add_argument(
        "--epochs", type=int, help="override [train] epochs (quick looks; recorded in the output)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="TABLE.KEY=VALUE",
        help=f"override a model / task / train key, e.g. {set_example} (repeatable, recorded)",
    )
    parser.add_argument("--work", type=Path, default=work, help=f"models and run folders (default {work})")
    parser.add_argument("--out", type=Path, default=out, help=f"JSON table to write (default {out})")
    parser.add_argument("--threads", type=int, default=2, help="interpreter threads for the int8 evaluation")
