"""`toolkit quant-report`: per-layer int8 error from TFLite's quantization debugger, worst first, written as
markdown (+ plot), HTML or JSON; and `--task` scoring a model of no toolkit kind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import assert_one_line_error, require_tf, run_cli

pytestmark = [pytest.mark.tf, pytest.mark.shared]


@pytest.fixture(scope="module")
def sequential(tmp_path_factory, shared: Path) -> Path:
    """A Sequential MNIST classifier with Keras' default names (no toolkit kind), trained a few seconds."""
    require_tf()
    import keras

    from toolkit.data.labelled_images import load_labelled_images

    keras.utils.set_random_seed(0)
    data = load_labelled_images("mnist:split=train", (28, 28, 1), limit=2000)
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
            keras.layers.DepthwiseConv2D(3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(data.images, data.labels, epochs=2, batch_size=64, verbose=0)
    path = tmp_path_factory.mktemp("qr") / "seq.keras"
    model.save(path)
    return path


def test_report_lists_every_quantized_layer_worst_first(sequential: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    proc = run_cli("quant-report", str(sequential), "--calib", "mnist:split=train,limit=200", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    layers = report["layers"]
    ops = [layer["op"] for layer in layers]
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "SOFTMAX"} <= set(ops)
    errors = [layer["rmse_per_step"] for layer in layers]
    assert errors == sorted(errors, reverse=True) and all(0 < e < 5 for e in errors)
    assert report["calibration"]["count"] == 200 and report["ideal_rmse_per_step"] == pytest.approx(
        0.2887, 1e-3
    )
    assert "rmse/scale" in proc.stdout and "worst first" in proc.stdout


def test_markdown_and_html_with_the_plot_and_the_model_gate(sequential: Path, tmp_path: Path) -> None:
    md = tmp_path / "r.md"
    proc = run_cli(
        "quant-report",
        str(sequential),
        "--calib",
        "mnist:split=train,limit=200",
        "--eval",
        "mnist:split=test",
        "--task",
        "classifier",
        "-o",
        str(md),
    )
    assert proc.returncode == 0, proc.stderr
    text = md.read_text()
    assert "![rmse/scale per layer](r.png)" in text and (tmp_path / "r.png").stat().st_size > 1000
    assert "Model: top1 " in text and "| DEPTHWISE_CONV_2D |" in text
    html = tmp_path / "r.html"
    proc = run_cli("quant-report", str(sequential), "--calib", "mnist:split=train,limit=200", "-o", str(html))
    assert proc.returncode == 0 and "data:image/png;base64," in html.read_text()
    bad = run_cli(
        "quant-report",
        str(sequential),
        "--calib",
        "mnist:split=train,limit=200",
        "-o",
        str(tmp_path / "r.txt"),
    )
    assert_one_line_error(bad, 2, "write a .md, .html or .json report")
    (tmp_path / "a_file").write_text("")
    blocked = run_cli(
        "quant-report",
        str(sequential),
        "--calib",
        "mnist:split=train,limit=200",
        "-o",
        str(tmp_path / "a_file" / "r.md"),
    )
    assert_one_line_error(blocked, 2, "is a file, not a folder")


def test_eval_of_a_model_of_no_kind_needs_and_takes_a_task(sequential: Path) -> None:
    unknown = run_cli("eval", str(sequential), "--data", "mnist:split=test", "--limit", "200")
    assert_one_line_error(unknown, 2, "declare it with --task KIND")
    assert "classifier: image -> probs" in unknown.stderr
    proc = run_cli(
        "eval",
        str(sequential),
        "--data",
        "mnist:split=test",
        "--limit",
        "200",
        "--task",
        "classifier",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["kind"] == "classifier" and result["samples"] == 200 and result["metrics"]["top1"] > 0.7
    wrong = run_cli("eval", str(sequential), "--data", "mnist:split=test", "--task", "detector")
    assert_one_line_error(wrong, 2, "--task detector needs 1 input(s) and 2 output(s)")


def test_bench_matrix_takes_a_task_for_a_model_of_no_kind(sequential: Path, tmp_path: Path) -> None:
    proc = run_cli(
        "bench",
        "matrix",
        str(sequential),
        "--data",
        "mnist:split=test",
        "--limit",
        "200",
        "--calib",
        "mnist:split=train,limit=200",
        "--modes",
        "fp32,int8",
        "--runs",
        "10",
        "--task",
        "classifier",
        "--db",
        str(tmp_path / "m.db"),
    )
    assert proc.returncode == 0, proc.stderr
    assert "(classifier)" in proc.stdout and "int8" in proc.stdout and "top1" in proc.stdout
    unknown = run_cli(
        "bench",
        "matrix",
        str(sequential),
        "--data",
        "mnist:split=test",
        "--modes",
        "fp32",
        "--db",
        str(tmp_path / "n.db"),
    )
    assert_one_line_error(unknown, 2, "declare it with --task KIND")
