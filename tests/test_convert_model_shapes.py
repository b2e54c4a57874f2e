"""`convert` takes any reasonable Keras 3 model: Sequential, functional and subclassed, one or more inputs and
outputs, default or custom names -- in every mode, with the TFLite outputs matching Keras (the parity in the
manifest), outputs named where the model names them and by position otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import require_tf, run_cli

pytestmark = [pytest.mark.tf, pytest.mark.slow]

MODES = ("fp32", "fp16", "dynamic", "int8")
# Max |TFLite - Keras| allowed per mode on these tiny models with outputs in about [-3, 3].
TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2, "dynamic": 0.15, "int8": 0.15}


def _models(folder: Path) -> dict[str, tuple[Path, list[str], list[str]]]:
    """name -> (.keras path, expected input names, expected output names)."""
    import keras

    keras.utils.set_random_seed(0)

    @keras.saving.register_keras_serializable(package="test_shapes")
    class TwoHeads(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.conv = keras.layers.Conv2D(4, 3, padding="same", activation="relu")
            self.pool = keras.layers.GlobalAveragePooling2D()
            self.a = keras.layers.Dense(3)
            self.b = keras.layers.Dense(2)

        def call(self, x):
            h = self.pool(self.conv(x))
            return self.a(h), self.b(h)

    out: dict[str, tuple[Path, list[str], list[str]]] = {}
    seq = keras.Sequential(
        [
            keras.Input((12, 12, 1)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(5),
        ]
    )
    out["sequential"] = (folder / "seq.keras", ["input"], [seq.layers[-1].name])
    seq.save(out["sequential"][0])

    x = keras.Input((10, 10, 3))
    y = keras.Input((4,))
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(x))
    j = keras.layers.Concatenate()([h, y])
    functional = keras.Model([x, y], [keras.layers.Dense(3)(j), keras.layers.Dense(1)(j)])
    out["functional_default_names"] = (
        folder / "fdef.keras",
        ["input_0", "input_1"],
        list(functional.output_names),
    )
    functional.save(out["functional_default_names"][0])

    a = keras.Input((8,), name="speed")
    b = keras.Input((6, 2), name="track")
    joined = keras.layers.Concatenate()([a, keras.layers.Flatten()(b)])
    named = keras.Model(
        {"speed": a, "track": b},
        {
            "path": keras.layers.Dense(4, name="path_head")(joined),
            "stop": keras.layers.Dense(1, name="stop_head")(joined),
        },
    )
    out["functional_named_dicts"] = (folder / "fnamed.keras", ["speed", "track"], ["path", "stop"])
    named.save(out["functional_named_dicts"][0])

    sub = TwoHeads()
    sub(np.zeros((1, 9, 9, 3), np.float32))  # a subclassed model knows its input shape once called
    out["subclassed_two_outputs"] = (folder / "sub.keras", ["input"], ["output_0", "output_1"])
    sub.save(out["subclassed_two_outputs"][0])
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, tuple[Path, list[str], list[str]]]:
    require_tf()
    return _models(tmp_path_factory.mktemp("shapes"))


def _calibration(path: Path, folder: Path) -> Path:
    from toolkit.convert.keras_export import input_specs, load_keras_model

    shapes = input_specs(load_keras_model(path, None, False))
    rng = np.random.default_rng(1)
    file = folder / f"{path.stem}_calib.npz"
    np.savez(file, **{k: rng.random((48, *s), dtype=np.float32) for k, s in shapes.items()})
    return file


@pytest.mark.parametrize("mode", MODES)
def test_every_model_shape_converts_in_every_mode(models, mode: str, tmp_path: Path) -> None:
    from toolkit.convert import ConvertConfig, convert

    for name, (path, inputs, outputs) in models.items():
        calib = str(_calibration(path, tmp_path)) if mode == "int8" else None
        out = tmp_path / f"{name}_{mode}.tflite"
        result = convert(
            path, out, ConvertConfig(quantize=mode, calib=calib, calib_samples=32, parity_samples=8)
        )
        manifest = result.manifest
        assert [t["signature_name"] for t in manifest["inputs"]] == inputs, name
        assert sorted(t["signature_name"] for t in manifest["outputs"]) == sorted(outputs), name
        for output, err in manifest["parity"]["outputs"].items():
            assert err["max_abs_error"] <= TOLERANCE[mode], (name, mode, output, err)
        if mode == "int8":
            assert manifest["precision"] == "int8", name


def test_the_sequential_reproduction_converts_from_the_cli(models, tmp_path: Path, shared: Path) -> None:
    # The reproduction: a Sequential MNIST-shaped model calibrated from a data SPEC.
    import keras

    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.save(tmp_path / "m.keras")
    proc = run_cli(
        "convert",
        str(tmp_path / "m.keras"),
        "-o",
        str(tmp_path / "m_int8.tflite"),
        "--calib",
        "mnist:split=train,limit=400",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no TensorFlow logging around the result
    verbose = run_cli(
        "convert",
        str(tmp_path / "m.keras"),
        "-o",
        str(tmp_path / "v.tflite"),
        "--quantize",
        "fp32",
        "--verbose",
    )
    assert verbose.returncode == 0 and verbose.stderr.strip()  # TensorFlow's own log lines, when asked for
    manifest = json.loads((tmp_path / "m_int8.json").read_text())
    assert manifest["precision"] == "int8" and manifest["calibration"]["count"] > 0
    assert manifest["parity"]["outputs"][model.layers[-1].name]["max_abs_error"] < 0.02


def test_same_seed_and_calibration_give_bit_identical_int8(models, tmp_path: Path) -> None:
    from toolkit.convert import ConvertConfig, convert
    from toolkit.runtime import Runner

    path = models["functional_named_dicts"][0]
    calib = str(_calibration(path, tmp_path))
    results = []
    for run in ("a", "b"):
        out = tmp_path / f"{run}.tflite"
        manifest = convert(
            path, out, ConvertConfig(quantize="int8", calib=calib, calib_samples=32, seed=3)
        ).manifest
        with Runner(out, num_threads=1) as runner:
            feeds = {
                n: np.random.default_rng(5).random((1, *s.shape[1:]), dtype=np.float32)
                for n, s in runner.inputs.items()
            }
            raw = runner.run_raw({n: runner.inputs[n].quantize(v) for n, v in feeds.items()})
        quant = [(t["signature_name"], t["quantization"]) for t in manifest["inputs"] + manifest["outputs"]]
        results.append(
            (
                raw,
                quant,
                manifest["calibration"]["sha256"]
                if "sha256" in manifest["calibration"]
                else json.dumps(manifest["calibration"], sort_keys=True),
            )
        )
    (raw_a, quant_a, calib_a), (raw_b, quant_b, calib_b) = results
    assert quant_a == quant_b and calib_a == calib_b
    assert all(np.array_equal(raw_a[k], raw_b[k]) for k in raw_a)


def test_keep_float_and_quant_report_feed_inputs_in_the_converted_models_order(tmp_path: Path) -> None:
    """Keras inputs (track, neighbours) convert to a model that takes (neighbours, track): the quantization
    debugger behind --keep-float and quant-report must feed each sample in that order (it failed to prepare the
    graph before, on the shipped behaviour model too)."""
    require_tf()
    import keras

    track = keras.Input((8, 2), name="track")
    neighbours = keras.Input((6, 5), name="neighbours")
    joined = keras.layers.Concatenate(name="joined")(
        [keras.layers.Flatten()(track), keras.layers.Flatten()(neighbours)]
    )
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(joined)
    model = keras.Model([track, neighbours], keras.layers.Dense(3, name="out")(hidden))
    path = tmp_path / "two_inputs.keras"
    model.save(path)
    calib = _calibration(path, tmp_path)
    out = tmp_path / "kept.tflite"
    proc = run_cli(
        "convert",
        str(path),
        "-o",
        str(out),
        "--quantize",
        "int8",
        "--calib",
        str(calib),
        "--keep-float",
        "hidden",
    )
    assert proc.returncode == 0, proc.stderr
    assert "kept in float" in proc.stdout + proc.stderr and out.exists()
    report = run_cli("quant-report", str(path), "--calib", str(calib))
    assert report.returncode == 0, report.stderr
    assert "hidden" in report.stdout


def test_a_dict_input_model_whose_keys_are_not_sorted_converts_with_exact_parity(tmp_path: Path) -> None:
    """{"track": ..., "neighbours": ...}: model.inputs come key-sorted, the call wants the dict -- it failed with
    "the structure of inputs doesn't match" before."""
    require_tf()
    import keras

    track = keras.Input((8, 2), name="track")
    neighbours = keras.Input((6, 5), name="neighbours")
    joined = keras.layers.Concatenate()([keras.layers.Flatten()(track), keras.layers.Flatten()(neighbours)])
    model = keras.Model(
        {"track": track, "neighbours": neighbours}, {"out": keras.layers.Dense(3, name="out")(joined)}
    )
    path = tmp_path / "dict_inputs.keras"
    model.save(path)
    out = tmp_path / "dict_inputs.tflite"
    proc = run_cli("convert", str(path), "-o", str(out), "--quantize", "fp32")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads(out.with_suffix(".json").read_text())
    shapes = {i["signature_name"]: i["shape"] for i in manifest["inputs"]}
    assert shapes == {"track": [1, 8, 2], "neighbours": [1, 6, 5]}
    assert manifest["parity"]["outputs"]["out"]["max_abs_error"] < 1e-5
