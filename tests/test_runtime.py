"""The device runtime: verified loading, named I/O, (de)quantization, corrupt files never crash the process."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, assert_one_line_error, require_tf

from toolkit.errors import DeviceUnavailable, ToolkitError, UsageError
from toolkit.runtime import Runner, read_model_file
from toolkit.runtime.runner import TensorSpec


@pytest.fixture(scope="session")
def face_model(shared) -> Path:
    return shared / "models" / "mediapipe-0.10.14" / "face_detection_short_range.tflite"


@pytest.fixture(scope="session")
def int8_model(tmp_path_factory) -> Path:
    """A tiny full-int8 model made with the converter (needs TensorFlow)."""
    require_tf()
    from helpers_tf import calib_npy, tiny_cnn

    from toolkit.convert import ConvertConfig, convert

    tmp = tmp_path_factory.mktemp("int8")
    keras_path = tiny_cnn(tmp / "tiny.keras")
    out = tmp / "tiny_int8.tflite"
    convert(keras_path, out, ConvertConfig(quantize="int8", calib=str(calib_npy(tmp / "calib.npy"))))
    return out


def test_tensor_spec_quantize_round_trip() -> None:
    spec = TensorSpec("x", 0, (1, 4), np.dtype(np.int8), 0.5, -3)
    raw = spec.quantize(np.array([[0.0, 1.0, -64.0, 1000.0]]))
    assert raw.tolist() == [[-3, -1, -128, 127]]  # saturates instead of wrapping
    assert spec.dequantize(raw).tolist() == [[0.0, 1.0, -62.5, 65.0]]


def test_tensor_spec_dequantize_is_float32_for_every_dtype() -> None:
    # run() promises float32: integer tensors without quantization (an ARG_MAX's indices) and bools are cast too.
    cases = [
        (np.int32, [[0, 7, -3]]),
        (np.int64, [[2**20, 1, 0]]),
        (np.bool_, [[True, False, True]]),
        (np.float16, [[0.5, -1.0, 2.0]]),
        (np.float32, [[0.25, 3.0, -8.0]]),
    ]
    for dtype, values in cases:
        spec = TensorSpec("y", 0, (1, 3), np.dtype(dtype), 0.0, 0)
        out = spec.dequantize(np.array(values, dtype))
        assert out.dtype == np.float32 and out.tolist() == np.array(values, np.float32).tolist(), dtype


def test_closed_runner_says_it_is_closed() -> None:
    model = REPO / "models" / "mnist_classifier" / "mnist_classifier_int8.tflite"  # tracked in git
    image = np.zeros((1, 28, 28, 1), np.float32)
    with Runner(model, num_threads=1) as runner:
        assert runner.run(image=image)["probs"].shape == (1, 10)
    raw = {"image": runner.inputs["image"].quantize(image)}
    calls = [
        lambda: runner.run(image=image),
        lambda: runner.run_raw(raw),
        lambda: runner.set_inputs(raw),
        runner.invoke,
        lambda: runner.get_output("probs"),
        lambda: runner.interpreter,
    ]
    for call in calls:
        with pytest.raises(
            ToolkitError, match=r"Runner of mnist_classifier_int8\.tflite is closed.*new Runner"
        ):
            call()
    runner.close()  # closing twice is fine
    assert runner.describe()["outputs"][0]["name"] == "probs"  # what it was stays readable


@pytest.mark.tf
def test_runner_returns_float32_for_an_integer_output(tmp_path: Path) -> None:
    """A float model whose second output is ARG_MAX indices (int64, no quantization): run() gives them as float32,
    run_raw() as the model's integers."""
    require_tf()
    import tensorflow as tf

    class ArgMax(tf.Module):  # plain TF: keras.ops.argmax lowers to a BitwiseAnd that only Flex runs
        @tf.function(input_signature=[tf.TensorSpec((1, 6), tf.float32, name="x")])
        def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"score": x * 2.0, "best": tf.math.argmax(x, axis=-1)}

    module = ArgMax()
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.serve.get_concrete_function()], module
    )
    path = tmp_path / "argmax.tflite"
    path.write_bytes(converter.convert())
    x = np.array([[0.1, 0.9, -2.0, 3.5, 0.0, 1.0]], np.float32)
    with Runner(path, num_threads=1) as runner:
        best = next(name for name, spec in runner.outputs.items() if np.issubdtype(spec.dtype, np.integer))
        assert not runner.outputs[best].quantized
        out = runner.run(x=x)
        assert all(value.dtype == np.float32 for value in out.values())
        assert out[best].tolist() == [3.0]
        raw = runner.run_raw({"x": x})[best]
        assert np.issubdtype(raw.dtype, np.integer) and raw.tolist() == [3]


def test_runner_reads_third_party_model(face_model: Path) -> None:
    with Runner(face_model, num_threads=2) as runner:
        assert runner.num_threads == 2
        assert runner.backend.name == "ai_edge_litert"
        assert list(runner.inputs) == ["input"]
        out = runner.run(np.zeros((1, 128, 128, 3), np.float32))
        assert set(out) == {"regressors", "classificators"}
        assert out["regressors"].shape == (1, 896, 16)


def test_runner_default_threads_is_not_one(face_model: Path) -> None:
    from toolkit.runtime import default_threads

    with Runner(face_model) as runner:
        assert runner.num_threads == default_threads()


def test_runner_quantizes_int8_io(int8_model: Path) -> None:
    with Runner(int8_model, num_threads=1) as runner:
        spec = runner.inputs["image"]
        assert spec.dtype == np.int8 and spec.quantized
        x = np.random.default_rng(0).random((1, 16, 16, 3), dtype=np.float32)
        out = runner.run(image=x)
        assert set(out) == {"probs", "box"}
        assert out["probs"].dtype == np.float32
        assert abs(float(out["probs"].sum()) - 1.0) < 0.05
        raw = runner.run_raw({"image": spec.quantize(x)})
        assert raw["probs"].dtype == np.int8
        with pytest.raises(UsageError, match="expects shape"):
            runner.run(image=np.zeros((1, 8, 8, 3), np.float32))
        with pytest.raises(UsageError, match="no input 'img'"):
            runner.run(img=x)


def test_runner_without_default_delegate(face_model: Path) -> None:
    with Runner(face_model, delegate="none") as a, Runner(face_model) as b:
        x = np.random.default_rng(1).random((1, 128, 128, 3), dtype=np.float32)
        np.testing.assert_allclose(a.run(x)["regressors"], b.run(x)["regressors"], atol=1e-3)


def test_missing_delegate_library_is_usage_error(face_model: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="delegate library not found"):
        Runner(face_model, delegate=str(tmp_path / "libnothing.so"))


def test_edgetpu_missing_is_device_unavailable(face_model: Path) -> None:
    with pytest.raises(DeviceUnavailable, match="Edge TPU"):
        Runner(face_model, delegate="edgetpu")


def _bad_files(tmp_path: Path, source: Path) -> dict[str, Path]:
    data = source.read_bytes()
    files = {
        "empty": b"",
        "truncated_head": data[:40],
        "truncated_half": data[: len(data) // 2],
        "truncated_tail": data[:-1024],  # (the last bytes of mediapipe files are an appended zip)
        "jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(200),
        "text": b"this is not a model\n" * 10,
    }
    out = {}
    for name, blob in files.items():
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(blob)
        out[name] = path
    return out


def test_corrupt_files_are_usage_errors(face_model: Path, tmp_path: Path) -> None:
    for name, path in _bad_files(tmp_path, face_model).items():
        with pytest.raises(UsageError, match="not a valid TFLite model") as info:
            read_model_file(path)
        assert "\n" not in str(info.value), name
    with pytest.raises(UsageError, match="JPEG"):
        read_model_file(tmp_path / "jpeg.tflite")
    with pytest.raises(UsageError, match="not found"):
        read_model_file(tmp_path / "missing.tflite")


CHILD = """
import sys, numpy as np
from toolkit.runtime import Runner
from toolkit.errors import ToolkitError
try:
    with Runner(sys.argv[1], num_threads=1) as r:
        r.run_raw({n: np.zeros(s.shape, s.dtype) for n, s in r.inputs.items()})
    print("loaded")
except ToolkitError as e:
    print("refused")
"""


def test_damaged_models_never_crash_the_process(face_model: Path, tmp_path: Path) -> None:
    """Truncations and byte flips: every child process exits normally (a segfault would be rc < 0)."""
    data = face_model.read_bytes()
    rng = random.Random(0)
    blobs = [data[: int(len(data) * f)] for f in (0.02, 0.1, 0.3, 0.6, 0.9, 0.99)]
    for _ in range(10):
        b = bytearray(data)
        for _ in range(8):
            b[rng.randrange(8, 4096)] = rng.randrange(256)  # the flatbuffer tables live at the start
        blobs.append(bytes(b))
    outcomes = []
    for i, blob in enumerate(blobs):
        path = tmp_path / f"damaged{i}.tflite"
        path.write_bytes(blob)
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        )
        assert proc.returncode == 0, (i, proc.returncode, proc.stderr[-500:])
        outcomes.append(proc.stdout.strip())
    assert outcomes[:6] == ["refused"] * 6


def test_inspect_cli_bad_files_exit_2(cli, face_model: Path, tmp_path: Path) -> None:
    for path in _bad_files(tmp_path, face_model).values():
        assert_one_line_error(cli("inspect", str(path)), 2, "not a valid TFLite model")
    assert_one_line_error(cli("inspect", str(tmp_path / "nope.tflite")), 2, "not found")
