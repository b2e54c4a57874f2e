"""Selective float fallback on a real model that plain PTQ breaks: an MNIST classifier whose first Dense layer
has one huge weight on an always-black corner pixel (float output unchanged; int8 weights of that layer round to
zero). quant-report names the layer, --keep-float on it recovers the accuracy, --auto-keep-float finds it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import assert_one_line_error, require_tf, run_cli

pytestmark = [pytest.mark.tf, pytest.mark.shared, pytest.mark.slow]

CALIB = "mnist:split=train,limit=300"
EVAL = "mnist:split=test"


@pytest.fixture(scope="module")
def broken(tmp_path_factory, shared: Path) -> Path:
    require_tf()
    import keras

    from toolkit.data.labelled_images import load_labelled_images

    keras.utils.set_random_seed(0)
    data = load_labelled_images("mnist:split=train", (28, 28, 1), limit=3000)
    image = keras.Input((28, 28, 1), name="image")
    hidden = keras.layers.Dense(32, activation="relu", name="hidden")(
        keras.layers.Flatten(name="flat")(image)
    )
    model = keras.Model(image, keras.layers.Dense(10, activation="softmax", name="probs")(hidden))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(data.images, data.labels, epochs=3, batch_size=64, verbose=0)
    assert float(data.images[:, 0, 0, 0].max()) == 0.0  # the corner pixel is black in every training image
    kernel, bias = model.get_layer("hidden").get_weights()
    kernel[0, :] = 500.0  # multiplies a pixel that is always 0: the float model is unchanged
    model.get_layer("hidden").set_weights([kernel, bias])
    path = tmp_path_factory.mktemp("broken") / "broken.keras"
    model.save(path)
    return path


def test_plain_int8_fails_the_gate_and_the_report_names_the_layer(broken: Path, tmp_path: Path) -> None:
    plain = run_cli(
        "convert",
        str(broken),
        "-o",
        str(tmp_path / "plain.tflite"),
        "--calib",
        CALIB,
        "--eval",
        EVAL,
        "--eval-limit",
        "500",
    )
    assert_one_line_error(plain, 4, "accuracy gate FAILED: top1")
    report = tmp_path / "r.json"
    proc = run_cli("quant-report", str(broken), "--calib", CALIB, "-o", str(report))
    assert proc.returncode == 0, proc.stderr
    worst = json.loads(report.read_text())["layers"][0]
    assert worst["layer"] == "hidden" and worst["suspect"]


def test_keep_float_on_the_culprit_recovers_the_accuracy(broken: Path, tmp_path: Path) -> None:
    out = tmp_path / "kept.tflite"
    proc = run_cli(
        "convert",
        str(broken),
        "-o",
        str(out),
        "--calib",
        CALIB,
        "--eval",
        EVAL,
        "--eval-limit",
        "500",
        "--keep-float",
        "^hidden$",
    )
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads(out.with_suffix(".json").read_text())
    assert manifest["accuracy_gate"]["passed"] and manifest["kept_float"]
    assert all("hidden" in name for name in manifest["kept_float"])
    assert manifest["inputs"][0]["dtype"] == "int8"  # the model's I/O stays int8
    nothing = run_cli(
        "convert",
        str(broken),
        "-o",
        str(tmp_path / "x.tflite"),
        "--calib",
        CALIB,
        "--keep-float",
        "^nonexistent$",
    )
    assert_one_line_error(nothing, 2, "matches no quantized layer; layers:")


def test_auto_keep_float_finds_the_layer_and_reports_the_cost(broken: Path, tmp_path: Path) -> None:
    out = tmp_path / "auto.tflite"
    proc = run_cli(
        "convert",
        str(broken),
        "-o",
        str(out),
        "--calib",
        CALIB,
        "--eval",
        EVAL,
        "--eval-limit",
        "500",
        "--auto-keep-float",
    )
    assert proc.returncode == 0, proc.stderr
    steps = json.loads(out.with_suffix(".json").read_text())["auto_keep_float"]
    assert not steps[0]["passed"] and steps[-1]["passed"] and len(steps) == 2
    assert steps[-1]["kept_float"] == ["hidden"] and steps[-1]["p50_ms"] > 0
    assert "auto-keep-float: nothing (plain int8)" in proc.stdout and "<- within the limit" in proc.stdout
