"""toolkit convert: every mode produces a verified model, a complete manifest, and refuses bad input cleanly."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, require_tf

pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    require_tf()
    from helpers_tf import calib_npy, tiny_cnn

    tmp = tmp_path_factory.mktemp("tiny")
    return {"model": tiny_cnn(tmp / "tiny.keras"), "calib": calib_npy(tmp / "calib.npy"), "dir": tmp}


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_fp32_matches_keras_and_writes_manifest(cli, tiny, tmp_path: Path) -> None:
    out = tmp_path / "tiny_fp32.tflite"
    result = cli("convert", tiny["model"], "-o", out, "--quantize", "fp32", "--json")
    assert result.returncode == 0, result.stderr
    manifest = json.loads(out.with_suffix(".json").read_text())
    assert json.loads(result.stdout)["output"]["sha256"] == manifest["output"]["sha256"]
    assert manifest["mode"] == "fp32" and manifest["precision"] == "float"
    for e in manifest["parity"]["outputs"].values():
        assert e["max_abs_error"] < 1e-4
    for key in ("source", "libraries", "inputs", "outputs", "op_histogram", "tool", "created_utc"):
        assert manifest[key]
    assert manifest["inputs"][0]["shape"] == [1, 16, 16, 3]  # fixed batch-1 signature
    assert {o["signature_name"] for o in manifest["outputs"]} == {"probs", "box"}


def test_int8_manifest_has_quantization_and_calibration(cli, tiny, tmp_path: Path) -> None:
    out = tmp_path / "tiny_int8.tflite"
    result = cli(
        "convert",
        tiny["model"],
        "-o",
        out,
        "--quantize",
        "int8",
        "--calib",
        tiny["calib"],
        "--calib-samples",
        "40",
        "--parity-samples",
        "8",
    )
    assert result.returncode == 0, result.stderr
    m = json.loads(out.with_suffix(".json").read_text())
    assert m["calibration"]["count"] == 40 and m["calibration"]["held_back_for_parity"] == 8
    assert len(m["calibration"]["files_sha256"]) == 64
    image = m["inputs"][0]
    assert image["dtype"] == "int8" and image["quantization"]["scale"] > 0
    assert m["precision"] == "int8" and not [e for e in m["non_int8_ops"] if not e["documented"]]
    assert m["parity"]["samples"] == 8
    assert m["parity"]["outputs"]["probs"]["max_abs_error"] < 0.05


@pytest.mark.slow
def test_uint8_and_float_io(cli, tiny, tmp_path: Path) -> None:
    from toolkit.runtime import Runner

    for io in ("uint8", "float32"):
        out = tmp_path / f"tiny_{io}.tflite"
        assert cli("convert", tiny["model"], "-o", out, "--calib", tiny["calib"], "--io", io).returncode == 0
        with Runner(out) as runner:
            assert runner.inputs["image"].dtype == np.dtype(io)


def test_calibration_from_image_folder(cli, tiny, tmp_path: Path) -> None:
    import cv2

    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        cv2.imwrite(str(images / f"{i}.png"), rng.integers(0, 255, (20 + i, 30, 3), dtype=np.uint8))
    out = tmp_path / "img_int8.tflite"
    result = cli("convert", tiny["model"], "-o", out, "--calib", images)
    assert result.returncode == 0, result.stderr
    m = json.loads(out.with_suffix(".json").read_text())
    assert m["calibration"]["format"] == "images" and m["calibration"]["available"] == 12


@pytest.mark.parametrize(
    "args, message",
    [
        (["--quantize", "int8"], "--calib"),
        (["--quantize", "int9"], "invalid choice"),
        (["--quantize", "fp16", "--io", "uint8"], "--io"),
        (["--calib", "/nonexistent/calib"], "calibration data not found"),
        (["--calib", "mnist:splt=train"], "did you mean 'split'"),
    ],
)
def test_bad_arguments_exit_2_and_write_nothing(cli, tiny, tmp_path: Path, args, message) -> None:
    result = cli("convert", tiny["model"], "-o", tmp_path / "x.tflite", *args)
    assert_one_line_error(result, 2, message)
    assert _files(tmp_path) == set()


def test_missing_and_corrupt_model_files(cli, tmp_path: Path) -> None:
    assert_one_line_error(
        cli("convert", tmp_path / "nope.keras", "-o", tmp_path / "x.tflite", "--quantize", "fp32"),
        2,
        "not found",
    )
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"garbage" * 10)
    assert_one_line_error(
        cli("convert", bad, "-o", tmp_path / "x.tflite", "--quantize", "fp32"),
        2,
        "not a Keras v3 .keras archive",
    )
    broken = tmp_path / "broken.keras"
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("config.json", "{not json")
    assert_one_line_error(
        cli("convert", broken, "-o", tmp_path / "x.tflite", "--quantize", "fp32"), 2, "cannot load"
    )
    jpeg = tmp_path / "photo.keras"
    jpeg.write_bytes(b"\xff\xd8\xff\xe0" + bytes(100))
    assert_one_line_error(cli("convert", jpeg, "-o", tmp_path / "x.tflite", "--quantize", "fp32"), 2)
    assert not (tmp_path / "x.tflite").exists() and not (tmp_path / "x.json").exists()


def test_calibration_shape_mismatch_and_pickle(cli, tiny, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((10, 8, 8, 3), np.float32))
    assert_one_line_error(
        cli("convert", tiny["model"], "-o", tmp_path / "x.tflite", "--calib", wrong),
        2,
        "expects samples of shape",
    )
    pickled = tmp_path / "obj.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert_one_line_error(
        cli("convert", tiny["model"], "-o", tmp_path / "x.tflite", "--calib", pickled), 2, "pickle"
    )
    assert not (tmp_path / "x.tflite").exists()


def test_lambda_layer_refused_in_safe_mode(cli, tmp_path: Path) -> None:
    require_tf()
    import keras

    inp = keras.Input((4,), name="x")
    out = keras.layers.Lambda(lambda t: t * 2.0, name="y")(inp)
    path = tmp_path / "lambda.keras"
    keras.Model(inp, out).save(path)
    result = cli("convert", path, "-o", tmp_path / "out" / "l.tflite", "--quantize", "fp32")
    assert_one_line_error(result, 2, "Lambda")
    assert not (tmp_path / "out").exists() or _files(tmp_path / "out") == set()


def test_unsupported_op_is_named(tmp_path: Path) -> None:
    require_tf()
    import keras

    from toolkit.convert import ConvertConfig, convert
    from toolkit.errors import UsageError

    @keras.saving.register_keras_serializable(package="test_convert")
    class Erfinv(keras.layers.Layer):
        def call(self, x):
            return keras.ops.erfinv(x)

    inp = keras.Input((4,), name="x")
    path = tmp_path / "erfinv.keras"
    keras.Model(inp, {"y": Erfinv(name="y")(inp)}).save(path)
    with pytest.raises(UsageError, match="(?i)erfinv"):
        convert(path, tmp_path / "e.tflite", ConvertConfig(quantize="fp32"))
    assert not (tmp_path / "e.tflite").exists()


def test_keras_file_is_a_zip_and_safe_mode_is_default(tiny) -> None:
    assert zipfile.is_zipfile(tiny["model"])
