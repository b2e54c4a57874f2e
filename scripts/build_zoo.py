#!/usr/bin/env python3
"""Build the shipped model zoo: train -> int8 convert -> evaluate float and int8 -> model card.

Every ``models/<name>/recipe.toml`` is one shipped model. For each, this script runs the toolkit's own commands
(so the zoo is also an end-to-end test of them):

    toolkit train KIND --config recipe.toml -o runs/zoo/<name>/<name>.keras
    toolkit convert <name>.keras -o models/<name>/<name>_int8.tflite --quantize int8 --calib <[convert] calib>
    toolkit eval <name>.keras / <name>_int8.tflite --data <each [[eval]] data>     (same metric code)
    toolkit bench <name>_int8.tflite --threads 1,2                                   (latency on this machine)

and writes models/<name>/{<name>_int8.tflite, <name>_int8.json (manifest), eval.json, train.json, README.md}
plus models/README.md (one table over the zoo). Float .keras files stay in runs/zoo/ (not committed).

    python scripts/build_zoo.py                      # everything
    python scripts/build_zoo.py --only mnist_classifier --skip-train   # reuse runs/zoo/<name>/<name>.keras
    python scripts/build_zoo.py --cards-only         # re-render cards from the JSON already in models/
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "scripts")]

from zoo_card import render_card, render_index  # noqa: E402

from toolkit.train.trainer import load_recipe  # noqa: E402

RUNS = REPO / "runs" / "zoo"


def toolkit(*args: str, log: Path | None = None) -> dict[str, Any]:
    """Run a toolkit command with --json; return its parsed output (fail loudly with its stderr)."""
    cmd = [sys.executable, "-m", "toolkit", *map(str, args), "--json"]
    print("$", " ".join(cmd[2:]), flush=True)
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    if log:
        with open(log, "a") as handle:
            handle.write(f"$ {' '.join(cmd)}\n{proc.stderr}\n")
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    print(f"  ok ({time.perf_counter() - started:.0f}s)", flush=True)
    return json.loads(proc.stdout)


def build(name: str, recipe_path: Path, skip_train: bool) -> None:
    recipe = load_recipe(recipe_path)
    kind = recipe["kind"]
    out_dir = recipe_path.parent
    run_dir = RUNS / name
    run_dir.mkdir(parents=True, exist_ok=True)
    log = run_dir / "build.log"
    keras_path = run_dir / f"{name}.keras"
    if not (skip_train and keras_path.exists()):
        toolkit("train", kind, "--config", recipe_path, "-o", keras_path, log=log)
    shutil.copy2(keras_path.with_suffix(".train.json"), out_dir / "train.json")

    convert = dict(recipe.get("convert", {}))
    parts = convert.pop("parts", None) or {None: {}}
    tflites: dict[str | None, Path] = {}
    for part, overrides in parts.items():
        opts = {**convert, **overrides}
        suffix = f"_{part}" if part else ""
        target = out_dir / f"{name}{suffix}_int8.tflite"
        args = ["convert", keras_path, "-o", target, "--quantize", "int8"]
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
        int8_args = ["eval", primary, "--data", entry["data"], *int8_extra]
        if companion is not None and companion != primary:
            int8_args += ["--companion", companion]
        int8_report = toolkit(*int8_args, log=log)
        evals.append({"label": entry.get("label", entry["data"]), "data": entry["data"],
                      "float": float_report, "int8": int8_report})

    latency = {}
    for part, path in tflites.items():
        db = run_dir / "bench.sqlite"
        result = toolkit("bench", path, "--threads", "1,2", "--runs", "300", "--warmup", "30", "--db", db,
                         "--target", "build-host", log=log)
        latency[part or "model"] = result
    (out_dir / "eval.json").write_text(json.dumps({"evals": evals, "latency": latency}, indent=2) + "\n")
    (out_dir / "README.md").write_text(render_card(name, recipe, out_dir))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", help="build only this model (repeatable)")
    parser.add_argument("--skip-train", action="store_true", help="reuse runs/zoo/<name>/<name>.keras if present")
    parser.add_argument("--cards-only", action="store_true", help="only re-render README cards")
    args = parser.parse_args()
    recipes = sorted((REPO / "models").glob("*/recipe.toml"))
    for recipe_path in recipes:
        name = recipe_path.parent.name
        if args.only and name not in args.only:
            continue
        if args.cards_only:
            recipe = load_recipe(recipe_path)
            (recipe_path.parent / "README.md").write_text(render_card(name, recipe, recipe_path.parent))
        else:
            print(f"== {name}", flush=True)
            build(name, recipe_path, args.skip_train)
    (REPO / "models" / "README.md").write_text(render_index(REPO / "models"))
    print("wrote models/README.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
