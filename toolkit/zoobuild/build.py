"""``toolkit zoo build``: train -> int8 convert -> evaluate float and int8 -> benchmark -> model card, per recipe.

>>> build_zoo(BuildConfig(only=("mnist_classifier",), skip_train=True), say=print)
>>> write_cards(BuildConfig(), say=print)                     # toolkit zoo card: re-render from the JSON only

Every ``models/<name>/recipe.toml`` is one shipped model. For each, the build runs the toolkit's own commands, each
in a fresh process (so the zoo is also an end-to-end test of them, and every model trains in a clean TensorFlow
and Keras state -- layer names and seeds do not depend on what was built before):

    toolkit train KIND --config recipe.toml -o RUNS/<name>/<name>.keras
    toolkit convert <name>.keras -o models/<name>/<name>[_part]_int8.tflite --quantize int8 [--part P] <[convert]>
    toolkit eval <name>.keras / <name>_int8.tflite --data <each [[eval]] data>     (same metric code)
    toolkit bench <name>_int8.tflite --threads 1,2                                  (latency on this machine)

and writes models/<name>/{<name>_int8.tflite, <name>_int8.json (manifest), eval.json, train.json, README.md}
plus models/README.md (one table over the zoo). Float .keras files and each model's ``build.log`` (every command
with its stderr) stay in RUNS (default ``runs/zoo/`` beside ``models/``; not committed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from toolkit.config import THREADS_RANGE, Limits, check_ranges
from toolkit.errors import DeviceUnavailable, QualityGateFailed, ToolkitError, UsageError, one_line
from toolkit.fileio import atomic_open, write_json_atomic
from toolkit.zoobuild.card import render_card, render_index
from toolkit.zoobuild.recipes import checkout_root, find_recipes, load_zoo_recipe

Say = Callable[[str], None]
Toolkit = Callable[..., dict[str, Any]]  # (*args, log=Path, cwd=Path) -> the command's --json output


@dataclass(frozen=True)
class BuildConfig:
    models_dir: str | None = None  # the zoo folder with <name>/recipe.toml (None: the checkout's models/)
    runs_dir: str | None = None  # float models, logs, bench store (None: runs/zoo beside models_dir)
    only: tuple[str, ...] = ()  # build only these models (names of their folders); () = every recipe
    skip_train: bool = False  # reuse RUNS/<name>/<name>.keras when it exists
    bench_threads: tuple[int, ...] = (1, 2)  # thread counts of the latency table in each card
    bench_runs: int = 300  # timed invokes per thread count
    bench_warmup: int = 30  # untimed invokes before timing

    LIMITS: ClassVar[Limits] = {
        "bench_threads": THREADS_RANGE,
        "bench_runs": (1, 10_000_000),
        "bench_warmup": (0, 1_000_000),
    }

    def __post_init__(self) -> None:
        check_ranges(self, "zoo build config")

    def models(self) -> Path:
        return Path(self.models_dir).expanduser() if self.models_dir else checkout_root() / "models"

    def runs(self) -> Path:
        return (
            Path(self.runs_dir).expanduser()
            if self.runs_dir
            else self.models().resolve().parent / "runs" / "zoo"
        )


_EXIT_ERRORS = {
    UsageError.exit_code: UsageError,
    DeviceUnavailable.exit_code: DeviceUnavailable,
    QualityGateFailed.exit_code: QualityGateFailed,
}


def run_toolkit(*args: str | Path, log: Path, cwd: Path, say: Say = lambda _: None) -> dict[str, Any]:
    """Run ``toolkit ARGS --json`` in a child process (this interpreter, working folder ``cwd``: recipes name
    files relative to the checkout); append the command and its stderr to ``log``; return its parsed JSON output.
    A failure raises the error class of the child's exit code with its last stderr line."""
    import json

    cmd = [sys.executable, "-m", "toolkit", *map(str, args), "--json"]
    shown = " ".join(["toolkit", *map(str, args)])
    say(f"$ {shown}")
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=dict(os.environ))
    with open(log, "a") as handle:
        handle.write(f"$ {' '.join(cmd)}\n{proc.stderr}\n")
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        error = _EXIT_ERRORS.get(proc.returncode, ToolkitError)
        raise error(
            f"'{one_line(shown, 200)}' failed (exit {proc.returncode}): "
            f"{lines[-1] if lines else 'no error output'} (full output: {log})"
        )
    say(f"  ok ({time.perf_counter() - started:.0f}s)")
    return json.loads(proc.stdout)


def _write_text(path: Path, text: str) -> None:
    with atomic_open(path, "w") as handle:
        handle.write(text)


def build_model(name: str, recipe_path: Path, config: BuildConfig, toolkit: Toolkit) -> None:
    """Train, convert, evaluate and benchmark one recipe; write its files and card beside the recipe."""
    recipe = load_zoo_recipe(recipe_path)
    out_dir = recipe_path.parent
    run_dir = config.runs() / name
    run_dir.mkdir(parents=True, exist_ok=True)
    log = run_dir / "build.log"
    keras_path = run_dir / f"{name}.keras"
    if not (config.skip_train and keras_path.exists()):
        toolkit("train", recipe["kind"], "--config", recipe_path, "-o", keras_path, log=log)
    shutil.copy2(keras_path.with_suffix(".train.json"), out_dir / "train.json")

    convert = dict(recipe.get("convert", {}))
    parts = convert.pop("parts", None) or {None: {}}
    tflites: dict[str | None, Path] = {}
    for part, overrides in parts.items():
        opts = {**convert, **overrides}
        suffix = f"_{part}" if part else ""
        target = out_dir / f"{name}{suffix}_int8.tflite"
        args: list[Any] = ["convert", keras_path, "-o", target, "--quantize", "int8"]
        if part:
            args += ["--part", part]
        for key, value in opts.items():
            args += [f"--{key.replace('_', '-')}", value]
        toolkit(*args, log=log)
        tflites[part] = target

    primary = tflites.get(None) or tflites.get("encoder") or next(iter(tflites.values()))
    companion = tflites.get("decoder")
    evals = []
    for entry in recipe.get("eval", []):
        # Artifacts (sample grids) of the shipped int8 model go beside it; the float model's stay in runs/.
        float_extra = ["--out-dir", run_dir] if entry.get("artifacts") else []
        int8_extra = ["--out-dir", out_dir] if entry.get("artifacts") else []
        float_report = toolkit("eval", keras_path, "--data", entry["data"], *float_extra, log=log)
        int8_args: list[Any] = ["eval", primary, "--data", entry["data"], *int8_extra]
        if companion is not None and companion != primary:
            int8_args += ["--companion", companion]
        int8_report = toolkit(*int8_args, log=log)
        evals.append(
            {
                "label": entry.get("label", entry["data"]),
                "data": entry["data"],
                "float": float_report,
                "int8": int8_report,
            }
        )

    latency = {}
    for part, path in tflites.items():
        latency[part or "model"] = toolkit(
            "bench",
            path,
            "--threads",
            ",".join(map(str, config.bench_threads)),
            "--runs",
            config.bench_runs,
            "--warmup",
            config.bench_warmup,
            "--db",
            run_dir / "bench.sqlite",
            "--target",
            "build-host",
            log=log,
        )
    write_json_atomic(out_dir / "eval.json", {"evals": evals, "latency": latency})
    _write_text(out_dir / "README.md", render_card(name, recipe, out_dir))


def build_zoo(
    config: BuildConfig = BuildConfig(), say: Say = lambda _: None, toolkit: Toolkit | None = None
) -> list[Path]:
    """Build every selected recipe (all recipes are checked first), then the index; return the cards written.
    ``toolkit`` runs one command (default :func:`run_toolkit` in the checkout); tests pass a stand-in."""
    models = config.models()
    recipes = find_recipes(models, config.only)
    for _, path in recipes:
        load_zoo_recipe(path)  # a broken recipe fails now, not after an hour of training the ones before it
    cwd = models.resolve().parent
    run = toolkit or (lambda *args, log: run_toolkit(*args, log=log, cwd=cwd, say=say))
    written = []
    for name, path in recipes:
        say(f"== {name}")
        build_model(name, path, config, run)
        written.append(path.parent / "README.md")
    _write_text(models / "README.md", render_index(models))
    say(f"wrote {models / 'README.md'}")
    return [*written, models / "README.md"]


def write_cards(config: BuildConfig = BuildConfig(), say: Say = lambda _: None) -> list[Path]:
    """Re-render the selected cards and the index from the files already in the zoo folder (nothing is run);
    return the files written."""
    models = config.models()
    written = []
    for name, path in find_recipes(models, config.only):
        card = path.parent / "README.md"
        _write_text(card, render_card(name, load_zoo_recipe(path), path.parent))
        written.append(card)
    _write_text(models / "README.md", render_index(models))
    written.append(models / "README.md")
    for path in written:
        say(f"wrote {path}")
    return written
