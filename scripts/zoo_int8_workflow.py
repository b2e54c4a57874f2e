#!/usr/bin/env python3
"""The zoo through the int8 trust workflow -> models/int8_workflow.json (a table in models/README.md).

For each zoo model whose float Keras file is in runs/zoo (``toolkit train`` or ``toolkit zoo build`` put it there;
give others with --model NAME=PATH), with the recipe's calibration data and first [[eval]] data, by the toolkit's
own code: float metric; PTQ int8 (the classic converter); PTQ int8 with ``--auto-keep-float``; QAT int8 where
``toolkit.convert.qat`` supports the kind -- each with its size and p50 (single thread, median of 300 invokes,
three alternating rounds). Rows of models that were not run are kept from the existing file.

    python scripts/zoo_int8_workflow.py --only mnist_classifier --only behaviour
    python scripts/zoo_int8_workflow.py --model scene_segmenter=runs/zoo/seg8/scene_segmenter.keras
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.convert import ConvertConfig, convert
from toolkit.convert.qat import QAT_KINDS, WHY_NOT, QatConfig
from toolkit.errors import ToolkitError
from toolkit.eval.auto_float import auto_keep_float, p50_ms
from toolkit.eval.gate import accuracy_gate
from toolkit.fileio import write_json_atomic
from toolkit.zoobuild.recipes import checkout_root

REPO = checkout_root()  # models/ and runs/ of this source checkout
OUT = REPO / "models" / "int8_workflow.json"
QAT_EPOCHS = 2


def run_model(name: str, keras_path: Path, log: Any) -> dict[str, Any]:
    recipe = tomllib.loads((REPO / "models" / name / "recipe.toml").read_text())
    calib = recipe["convert"]["calib"]
    samples = int(recipe["convert"].get("calib_samples", 200))
    data = recipe["eval"][0]["data"]
    train_data = recipe["train"]["data"]
    config = ConvertConfig(calib=calib, calib_samples=samples)
    row: dict[str, Any] = {
        "model": name,
        "float_model": str(
            keras_path.resolve().relative_to(REPO)
            if keras_path.resolve().is_relative_to(REPO)
            else keras_path
        ),
        "calib": calib,
        "eval": data,
        "measured_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    files: dict[str, Path] = {}
    with tempfile.TemporaryDirectory() as tmp:
        ptq = Path(tmp) / "ptq.tflite"
        log(f"{name}: PTQ")
        convert(keras_path, ptq, config)
        gate = accuracy_gate(keras_path, ptq, data)
        row.update(
            metric=gate.metric,
            higher_is_better=gate.higher_is_better,
            float=gate.float_value,
            ptq=gate.converted_value,
            ptq_size=ptq.stat().st_size,
        )
        files["ptq"] = ptq
        log(f"{name}: PTQ + auto-keep-float")
        auto = Path(tmp) / "auto.tflite"
        _, auto_gate, steps = auto_keep_float(keras_path, auto, config, data, None, say=log)
        row.update(
            auto=auto_gate.converted_value, auto_kept=steps[-1]["kept_float"], auto_size=auto.stat().st_size
        )
        files["auto"] = auto
        kind = json.loads(keras_path.with_suffix(".train.json").read_text())["kind"]
        if kind in QAT_KINDS:
            log(f"{name}: QAT ({QAT_EPOCHS} epochs on {train_data})")
            qat = Path(tmp) / "qat.tflite"
            try:
                convert(
                    keras_path, qat, replace(config), qat=QatConfig(epochs=QAT_EPOCHS, train_data=train_data)
                )
                row.update(
                    qat=accuracy_gate(keras_path, qat, data).converted_value,
                    qat_size=qat.stat().st_size,
                    qat_note=f"{QAT_EPOCHS} epochs on {train_data}",
                )
                files["qat"] = qat
            except ToolkitError as exc:
                row.update(qat=None, qat_note=str(exc))
        else:
            row.update(qat=None, qat_note=f"QAT refused for {kind}: {WHY_NOT.get(kind, 'not wired')}")
        times: dict[str, list[float]] = {k: [] for k in files}
        for (
            path
        ) in files.values():  # one untimed round: the first file timed was slower (page cache, CPU clocks)
            p50_ms(path, runs=50)
        for _ in range(3):  # alternating rounds: the host is shared
            for key, path in files.items():
                times[key].append(p50_ms(path, runs=300))
        for key, values in times.items():
            row[f"{key}_p50_ms"] = round(float(np.median(values)), 4)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], help="zoo model name (repeatable)")
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="float .keras for NAME (default runs/zoo/NAME/NAME.keras)",
    )
    args = parser.parse_args()
    paths = {name: REPO / "runs" / "zoo" / name / f"{name}.keras" for name in args.only}
    paths.update({k: Path(v) for k, v in (item.split("=", 1) for item in args.model)})
    existing = json.loads(OUT.read_text()) if OUT.is_file() else {"rows": []}
    rows = {row["model"]: row for row in existing["rows"]}
    for name, path in paths.items():
        if not path.is_file() or not path.with_suffix(".train.json").is_file():
            raise SystemExit(f"zoo_int8_workflow: {path} (and its .train.json) not found; train it first")
        rows[name] = run_model(name, path, lambda text: print(text, flush=True))
    write_json_atomic(
        OUT,
        {
            "title": "the zoo through the int8 trust workflow (scripts/zoo_int8_workflow.py)",
            "rows": [rows[k] for k in sorted(rows)],
        },
    )
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
