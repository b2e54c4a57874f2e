"""toolkit bench on models this test converts with TensorFlow: int8 detection, fp32 speed-up rows, real tracks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_tf

pytestmark = [pytest.mark.tf, pytest.mark.slow]

# Runs in a child process so TensorFlow never loads into the test process (the bench path must not need it).
BUILD = r"""
import sys, numpy as np, tensorflow as tf, keras
out = sys.argv[1]
keras.utils.set_random_seed(0)
inp = keras.Input((32, 32, 3), batch_size=1, name="image")
x = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(inp)
x = keras.layers.DepthwiseConv2D(3, activation="relu")(x)
x = keras.layers.Conv2D(32, 1, activation="relu")(x)
x = keras.layers.GlobalAveragePooling2D()(x)
cnn = keras.Model(inp, keras.layers.Dense(10, activation="softmax", name="probs")(x))
rng = np.random.default_rng(0)

def convert(model, path, mode):
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode == "int8":
        # The fixture needs a valid full-int8 file, not a calibrated one: random calibration is enough here.
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        shape = [1, *model.input_shape[1:]]
        conv.representative_dataset = lambda: ([rng.random(shape, dtype=np.float32)] for _ in range(20))
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    open(path, "wb").write(conv.convert())

convert(cnn, f"{out}/cnn_fp32.tflite", "fp32")
convert(cnn, f"{out}/cnn_int8.tflite", "int8")
convert(cnn, f"{out}/renamed.tflite", "int8")  # no suffix: the format must be inferred from the tensors
track = keras.Input((8, 2), batch_size=1, name="track")
y = keras.layers.Flatten()(track)
y = keras.layers.Dense(24, name="future")(keras.layers.Dense(32, activation="relu")(y))
convert(keras.Model(track, y), f"{out}/walker_fp32.tflite", "fp32")
"""


@pytest.fixture(scope="session")
def tf_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tf()
    out = tmp_path_factory.mktemp("bench_tf_models")
    proc = subprocess.run(
        [sys.executable, "-c", BUILD, str(out)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (out / "walker_fp32.json").write_text(json.dumps({"kind": "behaviour"}))
    return out


def test_int8_fp32_family_speedup_and_inference(cli, tf_models: Path, tmp_path: Path) -> None:
    db = tmp_path / "b.sqlite"
    models = [tf_models / "cnn_fp32.tflite", tf_models / "cnn_int8.tflite", tf_models / "renamed.tflite"]
    result = cli("bench", *models, "--runs", "30", "--warmup", "3", "--threads", "1", "--db", db, "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["model_name"]: r for r in json.loads(result.stdout)["results"]}
    assert (rows["cnn_int8.tflite"]["format"], rows["cnn_int8.tflite"]["format_source"]) == ("int8", "name")
    assert (rows["renamed.tflite"]["format"], rows["renamed.tflite"]["format_source"]) == ("int8", "inferred")
    assert rows["cnn_int8.tflite"]["inputs"][0]["dtype"] == "int8"
    assert rows["cnn_int8.tflite"]["size_bytes"] < rows["cnn_fp32.tflite"]["size_bytes"]

    report = json.loads(cli("bench", "report", "--db", db, "--format", "json").stdout)
    cnn = next(t for t in report if t["family"] == "cnn")
    assert cnn["models"] == ["cnn_fp32.tflite", "cnn_int8.tflite"]
    by_format = {r["format"]: r for r in cnn["rows"]}
    assert by_format["fp32"]["speedup"] == pytest.approx(1.0)
    expected = by_format["fp32"]["p50_ms"] / by_format["int8"]["p50_ms"]
    assert by_format["int8"]["speedup"] == pytest.approx(expected)
    assert next(t for t in report if t["family"] == "renamed")["rows"][0]["speedup"] is None


def test_behaviour_model_gets_a_real_track(cli, tf_models: Path, shared: Path) -> None:
    result = cli(
        "bench",
        tf_models / "walker_fp32.tflite",
        "--runs",
        "10",
        "--threads",
        "1",
        "--no-store",
        "--json",
        "--in-process",
    )
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)["results"][0]
    assert (
        row["input_source"].startswith("eth_ucy:scene=eth,split=test sample") and row["kind"] == "behaviour"
    )
