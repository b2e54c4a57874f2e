"""toolkit bench matrix end to end on a small MNIST classifier trained briefly here: one table with the Keras
reference and four formats, each scored and timed, stored with its accuracy; the launching process never imports
TensorFlow; a data error in the conversion worker comes back as one line."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, assert_one_line_error, require_tf

pytestmark = [pytest.mark.tf, pytest.mark.slow, pytest.mark.shared]

# Trained in a child process so TensorFlow never loads into the test process.
TRAIN = r"""
import importlib, sys
import keras
from toolkit.data.spec import parse_spec
from toolkit.data.model_inputs import classifier_inputs
from toolkit.models import builder, config_for
from toolkit.train.config import TrainConfig

out, mnist = sys.argv[1], sys.argv[2]
task = importlib.import_module("toolkit.train.task_classifier").TASK
config = TrainConfig(epochs=8, batch_size=32, learning_rate=1e-2, seed=0, augment=False)
model_config = config_for("classifier", {"width": 0.5, "filters": [32, 64], "strides": [2, 2], "dropout": 0.0})
data = task.datasets(parse_spec(f"{mnist},split=train,limit=1024"), None, config, task.options_type(), model_config)
keras.utils.set_random_seed(0)
model = builder("classifier").build(model_config)
task.compile(model, config, task.options_type(), steps_per_epoch=32)
model.jit_compile = False
model.fit(data.train, epochs=config.epochs, verbose=0)
# 256 optimizer steps leave BatchNorm's moving statistics (momentum 0.99) partly at their initial values: settle them
# with training-mode passes so the float model scores what it learned (~0.75 top-1 on 200 test digits).
x = classifier_inputs(f"{mnist},split=train,limit=256", {"image": (28, 28, 1)})["image"]
for _ in range(150):
    model(x, training=True)
model.save(out)
"""


@pytest.fixture(scope="module")
def mnist(shared: Path) -> str:
    require_tf()
    return f"mnist:root={shared / 'data' / 'mnist'}"


@pytest.fixture(scope="module")
def keras_model(mnist: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("matrix") / "digits.keras"
    proc = subprocess.run(
        [sys.executable, "-c", TRAIN, str(out), mnist], capture_output=True, text=True, cwd=REPO, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def _rows(stdout: str) -> dict[str, list[str]]:
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("format"))
    rows = {}
    for line in lines[header + 2 :]:
        if not line.strip():
            break
        cells = line.split()
        rows[cells[0]] = cells
    return rows


def test_table_has_keras_and_four_formats_and_store_has_them(
    cli, keras_model: Path, mnist: str, tmp_path: Path
) -> None:
    db = tmp_path / "bench.sqlite"
    result = cli(
        "bench",
        "matrix",
        keras_model,
        "--data",
        f"{mnist},split=test,limit=200",
        "--calib",
        f"{mnist},split=train,limit=200",
        "--threads",
        "1",
        "--runs",
        "30",
        "--warmup",
        "3",
        "--db",
        db,
        "--target",
        "testbox",
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    rows = _rows(result.stdout)
    assert list(rows) == ["keras", "fp32", "fp16", "dynamic", "int8"]
    # format, file, size KiB, top1, vs keras, p50, p90, p99, RSS MB, vs fp32
    keras_top1 = float(rows["keras"][3])
    assert keras_top1 > 0.5, result.stdout  # a trained model, so the accuracy column means something
    assert rows["keras"][4:] == ["(ref)", "-", "-", "-", "-", "-"]
    for fmt in ("fp32", "fp16", "dynamic", "int8"):
        cells = rows[fmt]
        assert cells[1] == f"digits_{fmt}.tflite"
        top1, delta = float(cells[3]), float(cells[4])
        assert delta == pytest.approx(top1 - keras_top1, abs=1e-4)
        p50, p90, p99 = (float(c) for c in cells[5:8])
        assert 0 < p50 <= p90 <= p99
        assert float(cells[8]) > 0 and cells[9].endswith("x")
    assert rows["fp32"][9] == "1.00x"
    assert float(rows["fp32"][4]) == pytest.approx(
        0.0, abs=0.006
    )  # float conversion: same predictions (+-1 digit)
    assert abs(float(rows["int8"][4])) <= 0.05  # calibrated int8 keeps top-1 within 5 points on 200 digits
    assert float(rows["int8"][2]) < float(rows["fp32"][2])
    assert "converted models deleted" in result.stdout

    with sqlite3.connect(db) as conn:
        stored = conn.execute(
            "SELECT format, accuracy, accuracy_metric, target, family, p50_ms FROM results ORDER BY id"
        ).fetchall()
        accuracy = conn.execute(
            "SELECT model_name, metric, value, dataset FROM accuracy ORDER BY id"
        ).fetchall()
    assert [r[0] for r in stored] == ["fp32", "fp16", "dynamic", "int8"]
    assert len({r[4] for r in stored}) == 1 and all(r[3] == "testbox" and r[2] == "top1" for r in stored)
    for (fmt, value, *_), cells in zip(
        stored, (rows[f] for f in ("fp32", "fp16", "dynamic", "int8")), strict=True
    ):
        assert f"{value:.4f}" == cells[3], fmt
    assert [a[0] for a in accuracy] == [
        "digits.keras",
        *(f"digits_{f}.tflite" for f in ("fp32", "fp16", "dynamic", "int8")),
    ]
    assert all(a[1] == "top1" and a[3] == f"{mnist},split=test,limit=200" for a in accuracy)

    report = json.loads(cli("bench", "report", "--db", db, "--format", "json").stdout)
    assert len(report) == 1 and {r["format"]: r["accuracy"] for r in report[0]["rows"]} == {
        fmt: value for fmt, value, *_ in stored
    }


# Runs the CLI in a process that afterwards checks it never imported TensorFlow: conversion and Keras scoring live in
# the worker, so this process stays a device-sized parent of the benchmark workers.
NO_TF_PARENT = r"""
import sys
from toolkit.cli import main
code = main(sys.argv[1:])
assert "tensorflow" not in sys.modules and "keras" not in sys.modules, "the matrix parent imported TensorFlow"
sys.exit(code)
"""


def test_json_modes_npy_calibration_out_dir_and_no_tensorflow_in_parent(
    keras_model: Path, mnist: str, tmp_path: Path
) -> None:
    from toolkit.data.model_inputs import classifier_inputs

    calib = tmp_path / "calib.npy"
    np.save(calib, classifier_inputs(f"{mnist},split=train,limit=120", {"image": (28, 28, 1)})["image"])
    out = tmp_path / "exports"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            NO_TF_PARENT,
            "bench",
            "matrix",
            str(keras_model),
            "--data",
            f"{mnist},split=test,limit=100",
            "--modes",
            "int8,fp32",
            "--calib",
            str(calib),
            "--threads",
            "1",
            "--runs",
            "20",
            "--warmup",
            "2",
            "--no-store",
            "--out-dir",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert [r["format"] for r in report["rows"]] == ["keras", "fp32", "int8"]
    assert report["samples"] == 100 and report["metric"] == "top1" and report["db"] is None
    keras_row, fp32, int8 = report["rows"]
    assert keras_row["delta"] is None and keras_row["p50_ms"] is None
    assert fp32["speedup"] == pytest.approx(1.0)
    assert int8["speedup"] == pytest.approx(fp32["p50_ms"] / int8["p50_ms"])
    assert int8["delta"] == pytest.approx(int8["value"] - keras_row["value"])
    assert set(int8["metrics"]) >= {"top1", "top2", "log_loss"}
    assert report["out_dir"] == str(out)
    assert sorted(p.name for p in out.iterdir()) == [
        "digits_fp32.json",
        "digits_fp32.tflite",
        "digits_int8.json",
        "digits_int8.tflite",
    ]
    manifest = json.loads((out / "digits_int8.json").read_text())
    assert manifest["mode"] == "int8" and manifest["calibration"]["format"] == "npy"
    assert [b["format"] for b in report["bench"]] == ["fp32", "int8"]
    assert all("samples_zlib_b64" not in b for b in report["bench"])


def test_bad_data_root_fails_in_the_worker_as_one_line(cli, keras_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "exports"
    result = cli(
        "bench",
        "matrix",
        keras_model,
        "--data",
        f"mnist:root={tmp_path / 'nothing'},split=test",
        "--modes",
        "fp32",
        "--out-dir",
        out,
        "--no-store",
        timeout=600,
    )
    assert_one_line_error(result, 2, "nothing")
    assert not list(out.glob("*.tflite"))  # the Keras reference is scored first: nothing was converted
