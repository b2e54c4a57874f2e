"""The accuracy gate of `convert --eval`: float and int8 scored on the same samples; a drop past the limit is
exit 4 with the output kept and marked failed, within the limit exit 0; both scores in the manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, require_tf, run_cli

pytestmark = [pytest.mark.tf, pytest.mark.shared]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory, shared: Path) -> Path:
    """A small MNIST classifier (toolkit names: image -> probs) trained for a few seconds: about 90 % top-1."""
    require_tf()
    import keras

    from toolkit.data.labelled_images import load_labelled_images

    keras.utils.set_random_seed(0)
    data = load_labelled_images("mnist:split=train", (28, 28, 1), limit=3000)
    image = keras.Input((28, 28, 1), name="image")
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(image)
    x = keras.layers.Flatten()(x)
    model = keras.Model(image, keras.layers.Dense(10, activation="softmax", name="probs")(x))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(data.images, data.labels, epochs=3, batch_size=64, verbose=0)
    path = tmp_path_factory.mktemp("gate") / "clf.keras"
    model.save(path)
    return path


def test_gate_passes_with_real_calibration(classifier: Path, tmp_path: Path) -> None:
    out = tmp_path / "clf_int8.tflite"
    proc = run_cli(
        "convert",
        str(classifier),
        "-o",
        str(out),
        "--calib",
        "mnist:split=train,limit=300",
        "--eval",
        "mnist:split=test",
        "--eval-limit",
        "500",
    )
    assert proc.returncode == 0, proc.stderr
    gate = json.loads(out.with_suffix(".json").read_text())["accuracy_gate"]
    assert gate["metric"] == "top1" and gate["samples"] == 500 and gate["passed"]
    assert gate["float"] > 0.8 and gate["drop"] <= 0.01 and gate["max_drop"] == 0.01
    assert "accuracy gate passed: top1" in proc.stdout


def test_gate_fails_with_exit_4_and_keeps_the_marked_output(classifier: Path, tmp_path: Path) -> None:
    # Calibrating on near-black noise squeezes the input range: real digits saturate and top-1 collapses.
    calib = tmp_path / "dark.npy"
    np.save(calib, np.random.default_rng(0).random((64, 28, 28, 1), dtype=np.float32) * 0.02)
    out = tmp_path / "bad_int8.tflite"
    proc = run_cli(
        "convert",
        str(classifier),
        "-o",
        str(out),
        "--calib",
        str(calib),
        "--eval",
        "mnist:split=test",
        "--eval-limit",
        "500",
        "--max-drop",
        "0.05",
    )
    assert_one_line_error(proc, 4, "accuracy gate FAILED: top1")
    assert out.is_file()
    manifest = json.loads(out.with_suffix(".json").read_text())
    assert manifest["status"] == "failed: accuracy gate" and not manifest["accuracy_gate"]["passed"]
    assert manifest["accuracy_gate"]["drop"] > 0.05


def test_a_gate_that_cannot_run_is_refused_before_anything_is_written(
    classifier: Path, tmp_path: Path
) -> None:
    bad = run_cli(
        "convert",
        str(classifier),
        "-o",
        str(tmp_path / "x.tflite"),
        "--quantize",
        "fp32",
        "--eval",
        "bogus:split=test",
    )
    assert_one_line_error(bad, 2, "unknown dataset 'bogus'")
    assert not list(tmp_path.iterdir())


def test_max_drop_needs_eval(classifier: Path, tmp_path: Path) -> None:
    proc = run_cli(
        "convert",
        str(classifier),
        "-o",
        str(tmp_path / "x.tflite"),
        "--quantize",
        "fp32",
        "--max-drop",
        "0.1",
    )
    assert_one_line_error(proc, 2, "--max-drop needs --eval DATA")
    assert not list(tmp_path.iterdir())


def test_aeq_backend_gives_a_full_int8_model_as_accurate(classifier: Path, tmp_path: Path) -> None:
    results = {}
    for backend in ("tflite", "aeq"):
        out = tmp_path / f"clf_{backend}.tflite"
        proc = run_cli(
            "convert",
            str(classifier),
            "-o",
            str(out),
            "--calib",
            "mnist:split=train,limit=300",
            "--eval",
            "mnist:split=test",
            "--eval-limit",
            "500",
            "--backend",
            backend,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""  # the quantizer's progress bars and logs are held back
        results[backend] = json.loads(out.with_suffix(".json").read_text())
    aeq = results["aeq"]
    assert aeq["config"]["backend"] == "aeq" and aeq["precision"] == "int8"
    assert [t["dtype"] for t in aeq["inputs"] + aeq["outputs"]] == ["int8", "int8"]
    assert abs(aeq["accuracy_gate"]["converted"] - results["tflite"]["accuracy_gate"]["converted"]) <= 0.01
    refused = run_cli(
        "convert",
        str(classifier),
        "-o",
        str(tmp_path / "x.tflite"),
        "--calib",
        "mnist:split=train,limit=300",
        "--backend",
        "aeq",
        "--io",
        "uint8",
    )
    assert_one_line_error(refused, 2, "--backend aeq makes static int8 with int8 I/O")
