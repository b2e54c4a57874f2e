"""toolkit import: a .tflite graph rebuilt as a float Keras model agrees with its original (LiteRT is the oracle).

Fast tests need neither TensorFlow nor the real data (refusals happen before Keras loads). The TensorFlow tests
build tiny Keras models, convert them (float and int8) and import them back; the acceptance tests import the
pretrained Coral MobileNetV2 / DeepLab graphs from the shared folder and compare with them on real images.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, require_tf

CORAL = "models/coral-test-data"
MNV2 = "mobilenet_v2_1.0_224_quant.tflite"
DEEPLAB = "deeplabv3_mnv2_dm05_pascal_quant.tflite"
MILITARY_UNIFORM = 653  # ImageNet id in the 1001-class (background first) label file


def _coral(shared: Path, name: str) -> Path:
    path = shared / CORAL / name
    if not path.exists():
        pytest.skip(f"{path} not in the shared folder")
    return path


def _pixels(path: Path, hw: tuple[int, int]) -> np.ndarray:
    from toolkit.adapters.image import resize_image
    from toolkit.data.image_folder import read_rgb

    return resize_image(read_rgb(path), hw)[None]


# ------------------------------------------------------------------------------------------ no TensorFlow


def test_stride_of_same_padded_sizes() -> None:
    from toolkit.convert.tflite_graph import stride_of

    assert stride_of((224, 224), (7, 7)) == 32
    assert stride_of((513, 513), (257, 257)) == 2  # ceil(513 / 2)
    assert stride_of((513, 513), (33, 33)) == 16
    assert stride_of((481, 641), (31, 41)) == 16
    assert stride_of((10, 10), (3, 3)) == 4  # ceil(10 / 4) = 3 (the smallest such stride)


def test_supported_ops_are_listed_in_the_help() -> None:
    from toolkit.cli.import_cmd import DESCRIPTION
    from toolkit.convert.tflite_graph import SUPPORTED_OPS

    listed = DESCRIPTION.split("Ops rebuilt:")[1].split(".")[0].replace("\n", " ")
    assert {op.strip() for op in listed.split(",")} == set(SUPPORTED_OPS)


@pytest.mark.shared
@pytest.mark.parametrize(
    ("name", "op"),
    [
        (
            "mobilenet_v2_1.0_224_quant_edgetpu.tflite",
            "CUSTOM:edgetpu-custom-op (1 op): an Edge TPU compilation",
        ),
        ("posenet_mobilenet_v1_075_481_641_quant_decoder.tflite", "CUSTOM:PosenetDecoderOp (1 op)"),
    ],
)
def test_custom_ops_are_refused_by_name(cli, shared, tmp_path: Path, name: str, op: str) -> None:
    out = tmp_path / "m.keras"
    result = cli("import", _coral(shared, name), "-o", out)
    assert_one_line_error(result, 2, op)
    assert "supported:" in result.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.shared
def test_bad_files_and_arguments_exit_2_and_write_nothing(cli, shared, tmp_path: Path) -> None:
    mnv2 = _coral(shared, MNV2)
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(mnv2.read_bytes()[:100_000])
    text = tmp_path / "notes.tflite"
    text.write_text("not a model\n" * 10)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    out = tmp_path / "out" / "m.keras"
    cases = [
        ((truncated, "-o", out), "truncated"),
        ((text, "-o", out), "TFL3"),
        ((tmp_path / "missing.tflite", "-o", out), "not found"),
        (
            (mnv2, "-o", out, "--outputs", "MobilenetV2_Conv_1_Relu"),
            "did you mean 'MobilenetV2_Conv_1_Relu6'",
        ),
        ((mnv2, "-o", out, "--outputs", "input"), "is the model input"),
        ((mnv2, "-o", tmp_path / "m.tflite"), "must end in .keras"),
        ((mnv2, "-o", blocker / "m.keras"), "not a writable folder"),
        (
            (mnv2, "-o", "/proc/no_such_dir/m.keras", "--check-samples", "0"),
            "cannot write",
        ),  # fails at the write
        ((mnv2,), "missing -o"),
        ((mnv2, "-o", out, "--input-size", "192x256"), "RESHAPE"),  # the classifier head needs 224x224
    ]
    for args, message in cases:
        assert_one_line_error(cli("import", *args), 2, message)
    assert not (tmp_path / "out").exists() and not (tmp_path / "m.tflite").exists()


@pytest.mark.shared
def test_list_shows_backbone_cut_points(cli, shared) -> None:
    result = cli("import", _coral(shared, MNV2), "--list", "--json")
    assert result.returncode == 0, result.stderr
    deepest = {
        f["stride"]: (f["layer"], f["shape"])
        for f in json.loads(result.stdout)["features"]
        if f["deepest_at_stride"]
    }
    assert deepest == {
        2.0: ("MobilenetV2_expanded_conv_1_expand_Relu6", [1, 112, 112, 96]),
        4.0: ("MobilenetV2_expanded_conv_3_expand_Relu6", [1, 56, 56, 144]),
        8.0: ("MobilenetV2_expanded_conv_6_expand_Relu6", [1, 28, 28, 192]),
        16.0: ("MobilenetV2_expanded_conv_13_expand_Relu6", [1, 14, 14, 576]),
        32.0: ("MobilenetV2_Conv_1_Relu6", [1, 7, 7, 1280]),
    }
    text = cli("import", _coral(shared, MNV2), "--list")
    assert text.returncode == 0 and "MobilenetV2_expanded_conv_13_expand_Relu6" in text.stdout


# ------------------------------------------------------------------------------------------ tiny models


@pytest.mark.tf
def test_resize_tables_follow_tflite_reference_maths() -> None:
    require_tf()
    from toolkit.models.tflite_layers import bilinear_matrix, nearest_indices

    # align_corners 3 -> 5: positions 0, 0.5, 1, 1.5, 2
    np.testing.assert_allclose(
        bilinear_matrix(3, 5, True, False),
        [[1, 0, 0], [0.5, 0.5, 0], [0, 1, 0], [0, 0.5, 0.5], [0, 0, 1]],
    )
    # half-pixel 2 -> 4: positions -0.25 (clamped to row 0), 0.25, 0.75, 1.25 (clamped to row 1)
    np.testing.assert_allclose(
        bilinear_matrix(2, 4, False, True), [[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]]
    )
    assert nearest_indices(3, 5, True, False).tolist() == [
        0,
        1,
        1,
        2,
        2,
    ]  # round(0.5) = 1: half away from zero
    assert nearest_indices(2, 5, False, False).tolist() == [0, 0, 0, 1, 1]  # floor(i * 0.4)
    assert nearest_indices(2, 4, False, True).tolist() == [0, 0, 1, 1]  # floor((i + 0.5) * 0.5)


def _tiny_model():
    """A small graph covering the op builders: stride-2 SAME convs on an odd size, depthwise x2, dilation,
    pools, resizes in every TFLite mode, concat, add, mul, hard-swish, mean, dense, softmax, arg-max."""
    import keras
    import tensorflow as tf
    from keras import layers

    class TFResize(layers.Layer):  # TF1 flags no Keras layer expresses (converted, never saved)
        def __init__(self, method: str, align: bool, **kwargs) -> None:
            super().__init__(**kwargs)
            self.method, self.align = method, align

        def call(self, x):
            fn = (
                tf.compat.v1.image.resize_bilinear
                if self.method == "bilinear"
                else (tf.compat.v1.image.resize_nearest_neighbor)
            )
            return fn(x, (9, 11), align_corners=self.align, half_pixel_centers=False)

    class ArgMax(layers.Layer):
        def call(self, x):
            return tf.argmax(x, axis=-1)

    keras.utils.set_random_seed(0)
    image = keras.Input((15, 17, 3), name="image")
    a = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu6")(image)
    b = layers.Activation("hard_swish")(
        layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2)(a)
    )
    c = layers.Conv2D(16, 3, padding="same", dilation_rate=2)(b)
    d = layers.MaxPooling2D(3, strides=2, padding="same")(c)
    e = layers.Resizing(d.shape[1], d.shape[2], "bilinear")(layers.AveragePooling2D(2, strides=1)(c))
    f = layers.Concatenate()([d, e])
    g = layers.Add()([f, layers.Conv2D(32, 1, activation="sigmoid")(f)])
    g = layers.Multiply()([g, layers.Conv2D(32, 1, activation="tanh")(g)])
    resized = [layers.Resizing(9, 11, "nearest")(g)]
    resized += [TFResize(m, align)(g) for m in ("bilinear", "nearest") for align in (True, False)]
    mix = layers.Concatenate(name="mix")(resized)
    pooled = layers.Concatenate()(
        [
            layers.GlobalAveragePooling2D()(g),
            layers.GlobalAveragePooling2D()(layers.UpSampling2D(2, interpolation="bilinear")(g)),
        ]
    )
    probs = layers.Softmax(name="probs")(layers.Dense(10)(pooled))
    return keras.Model(image, {"probs": probs, "mix": mix, "seg": ArgMax()(mix)})


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    """The tiny model converted to float and int8 .tflite files (batch-1 signatures, builtin ops only)."""
    require_tf()
    from toolkit.convert import keras_export as kx

    tmp = tmp_path_factory.mktemp("tiny_import")
    model = _tiny_model()
    kx.write_batch1_savedmodel(model, {"image": (15, 17, 3)}, tmp / "saved")
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (6, 15, 17, 3)).astype(np.float32)

    def representative():
        for _ in range(32):
            yield {"image": rng.uniform(-1, 1, (1, 15, 17, 3)).astype(np.float32)}

    paths = {}
    for mode in ("fp32", "int8"):
        paths[mode] = tmp / f"tiny_{mode}.tflite"
        io = "int8" if mode == "int8" else "float32"
        paths[mode].write_bytes(kx.convert_savedmodel(tmp / "saved", mode, io, representative))
    return {"model": model, "x": x, "expected": model.predict(x, verbose=0), **paths}


@pytest.mark.tf
@pytest.mark.slow
def test_float_graph_round_trips_exactly(tiny, tmp_path: Path) -> None:
    from toolkit.convert.tflite_check import check_agreement
    from toolkit.convert.tflite_import import rebuild

    imported = rebuild(tiny["fp32"])
    assert sorted(imported.model.output_names) == ["mix", "probs", "seg"]  # signature names kept
    got = imported.model.predict(tiny["x"], verbose=0)
    for name in ("probs", "mix"):
        np.testing.assert_allclose(got[name], tiny["expected"][name], atol=2e-6)
    assert np.array_equal(got["seg"], tiny["expected"]["seg"])
    notes = " ".join(imported.notes)
    assert "align_corners" in notes and "asymmetric" in notes and "half_pixel_centers" in notes
    check = check_agreement(imported, samples=3)
    assert check["outputs"]["mix"]["max_abs_error"] < 1e-5
    assert check["outputs"]["seg"]["agreement"] == 1.0


@pytest.mark.tf
@pytest.mark.slow
def test_int8_graph_agrees_within_a_few_steps_and_saves_safely(tiny, tmp_path: Path) -> None:
    import keras

    from toolkit.convert.tflite_check import check_agreement
    from toolkit.convert.tflite_import import rebuild, register_layers

    imported = rebuild(tiny["int8"])  # per-channel int8 weights (depthwise: quantized dimension 3)
    check = check_agreement(imported, samples=4)
    for name in ("probs", "mix"):
        assert check["outputs"][name]["max_error_steps"] < 4, check
    path = tmp_path / "tiny.keras"
    imported.model.save(path)
    register_layers()
    loaded = keras.saving.load_model(path, safe_mode=True)  # registered layers, no Lambda
    x = tiny["x"][:2]
    for name, value in loaded.predict(x, verbose=0).items():
        np.testing.assert_allclose(value, imported.model.predict(x, verbose=0)[name], atol=1e-6)


def _constants_model():
    """Constant operands (1 - x * 0.5 + c), explicit PAD before a VALID stride-2 conv, LeakyReLU, MEAN with
    keepdims, TILE (of a 1x1 map, and along channels), RESHAPE + FULLY_CONNECTED."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(1)
    image = keras.Input((15, 17, 3), name="image")
    a = layers.Conv2D(8, 3, strides=2, padding="valid")(layers.ZeroPadding2D(((0, 1), (0, 1)))(image))
    a = layers.LeakyReLU(0.2)(a)
    h = layers.ReLU()(1.0 - a * 0.5 + keras.ops.convert_to_tensor(np.linspace(0, 1, 8, dtype=np.float32)))
    pooled = keras.ops.tile(keras.ops.mean(h, axis=(1, 2), keepdims=True), (1, 7, 8, 1))
    feat = layers.Concatenate(name="feat")([h, pooled, keras.ops.tile(h, (1, 1, 1, 2))])
    vec = layers.Dense(5, activation="relu", name="vec")(layers.Reshape((-1,))(layers.MaxPooling2D(4)(feat)))
    return keras.Model(image, {"feat": feat, "vec": vec})


@pytest.mark.tf
@pytest.mark.slow
def test_constant_operands_pad_tile_and_dense_round_trip(tmp_path: Path) -> None:
    require_tf()
    import keras

    from toolkit.convert import keras_export as kx
    from toolkit.convert.tflite_import import rebuild, register_layers

    model = _constants_model()
    kx.write_batch1_savedmodel(model, {"image": (15, 17, 3)}, tmp_path / "saved")
    path = tmp_path / "constants.tflite"
    path.write_bytes(kx.convert_savedmodel(tmp_path / "saved", "fp32", "float32", None))
    imported = rebuild(path)
    ops = imported.describe()["op_histogram"]
    assert {"PAD", "SUB", "MUL", "ADD", "TILE", "MEAN", "LEAKY_RELU", "RESHAPE", "FULLY_CONNECTED"} <= set(
        ops
    )
    x = np.random.default_rng(0).uniform(-1, 1, (3, 15, 17, 3)).astype(np.float32)
    expected = model.predict(x, verbose=0)
    imported.model.save(tmp_path / "constants.keras")
    register_layers()
    loaded = keras.saving.load_model(tmp_path / "constants.keras", safe_mode=True)
    for m in (imported.model, loaded):
        got = m.predict(x, verbose=0)
        for name in ("feat", "vec"):
            np.testing.assert_allclose(got[name], expected[name], atol=1e-5)


# ------------------------------------------------------------------------------------------ real files


@pytest.fixture(scope="module")
def mnv2(shared):
    """Coral's MobileNetV2 imported once, taking 0-255 pixels (built once per module: ~2 s)."""
    require_tf()
    from toolkit.convert.tflite_import import rebuild

    path = _coral(shared, MNV2)
    return rebuild(path, input_range="uint8")


@pytest.mark.tf
@pytest.mark.shared
def test_mobilenet_v2_top1_on_grace_hopper_and_street(shared, mnv2) -> None:
    from toolkit.convert.tflite_check import check_agreement

    for name, top1 in (("grace_hopper.bmp", MILITARY_UNIFORM), ("cityscapes_segmentation.bmp", None)):
        pixels = _pixels(shared / CORAL / name, (224, 224))
        probs = next(iter(mnv2.model.predict(pixels.astype(np.float32), verbose=0).values()))
        check = check_agreement(mnv2, pixels)["outputs"]["MobilenetV2_Predictions_Softmax"]
        assert check["top1_agreement"] == 1.0, (name, check)
        assert check["max_error_steps"] < 16, check
        if top1 is not None:
            assert int(probs.argmax()) == top1
    labels = (shared / CORAL / "imagenet_labels.txt").read_text().splitlines()
    assert labels[MILITARY_UNIFORM] == "military uniform"


@pytest.mark.tf
@pytest.mark.shared
def test_mobilenet_v2_each_layer_matches_its_int8_kernel(shared, mnv2) -> None:
    """Fed the int8 graph's own (dequantized) input, every rebuilt layer lands within one output step of the
    int8 kernel (inside the int8 range): weights, biases, padding, strides and the implied ReLU6 are right, op by
    op. End-to-end differences are int8 rounding and saturation accumulated over 66 layers, not rebuild errors."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from toolkit.convert.tflite_graph import dequantize

    g = mnv2.graph
    interpreter = Interpreter(
        model_path=str(_coral(shared, MNV2)),
        experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interpreter.allocate_tensors()
    interpreter.set_tensor(g.model.inputs[0], _pixels(shared / CORAL / "grace_hopper.bmp", (224, 224)))
    interpreter.invoke()
    worst = {}
    for op in g.model.ops:
        if op.op not in ("CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "AVERAGE_POOL_2D"):
            continue
        inputs = [
            dequantize(g.tensor(i), interpreter.get_tensor(i)) for i in op.inputs if not g.is_constant(i)
        ]
        out = g.tensor(op.outputs[0])
        got = mnv2.model.get_layer(g.layer_names[out.index])(inputs if len(inputs) > 1 else inputs[0])
        expected = dequantize(out, interpreter.get_tensor(out.index))
        # an int8 tensor saturates at the ends of its range (-13..12.7 for expanded_conv_14/project); float does not
        lo, hi = (np.array([0, 255]) - out.zero_points[0]) * out.scales[0]
        worst[out.name] = float(np.abs(np.clip(got, lo, hi) - expected).max() / out.scales[0])
    assert len(worst) == 64
    assert max(worst.values()) <= 1.0, max(worst.items(), key=lambda kv: kv[1])  # measured 0.75


@pytest.mark.tf
@pytest.mark.shared
def test_mobilenet_v2_agrees_on_coco_photos(shared, mnv2) -> None:
    from toolkit.convert.tflite_check import check_agreement, load_check_images

    folder = shared / "data" / "coco128" / "images"
    if not folder.is_dir():
        pytest.skip(f"{folder} not in the shared folder")
    pixels = load_check_images(folder, (224, 224), 24)
    assert len(pixels) == 24
    check = check_agreement(mnv2, pixels)["outputs"]["MobilenetV2_Predictions_Softmax"]
    # measured: 24/24 top-1, max 20.2 / mean 0.041 output steps (1/256); over all 128 images 120/128, max 22.6
    assert check["top1_agreement"] >= 22 / 24, check
    assert check["mean_error_steps"] < 0.2 and check["max_error_steps"] < 32, check


@pytest.mark.tf
@pytest.mark.shared
def test_mobilenet_v2_backbone_cut_at_another_input_size(shared) -> None:
    from toolkit.convert.tflite_import import rebuild

    cuts = [
        "MobilenetV2_expanded_conv_6_expand_Relu6",
        "MobilenetV2_expanded_conv_13_expand_Relu6",
        "MobilenetV2_Conv_1_Relu6",
    ]
    imported = rebuild(_coral(shared, MNV2), outputs=cuts, input_range="unit", input_size=(192, 256))
    shapes = {
        name: tuple(t.shape)
        for name, t in zip(imported.model.output_names, imported.model.outputs, strict=True)
    }
    assert shapes == {cuts[0]: (None, 24, 32, 192), cuts[1]: (None, 12, 16, 576), cuts[2]: (None, 6, 8, 1280)}
    assert imported.describe()["op_histogram"] == {"CONV_2D": 35, "DEPTHWISE_CONV_2D": 17, "ADD": 10}
    assert all(type(layer).__module__.startswith("keras") for layer in imported.model.layers)  # stock Keras


@pytest.mark.tf
@pytest.mark.shared
@pytest.mark.slow
def test_deeplab_argmax_agrees_and_cuts(shared) -> None:
    from toolkit.convert.tflite_check import check_agreement
    from toolkit.convert.tflite_import import rebuild

    path = _coral(shared, DEEPLAB)
    imported = rebuild(path)
    pixels = np.concatenate(
        [_pixels(shared / CORAL / n, (513, 513)) for n in ("grace_hopper.bmp", "cityscapes_segmentation.bmp")]
    )
    check = check_agreement(imported, pixels)["outputs"]["ArgMax"]
    assert check["agreement"] >= 0.95, check  # measured 99.6 %
    mask = next(iter(imported.model.predict((pixels[:1] - 128.0) / 128.0, verbose=0).values()))
    assert (mask == 15).mean() > 0.1  # PASCAL 'person' covers Grace Hopper
    cut = rebuild(path, outputs=["MobilenetV2_expanded_conv_16_project_add_fold"])
    assert tuple(cut.model.outputs[0].shape) == (None, 33, 33, 160)
    steps = check_agreement(cut, pixels[:1])["outputs"]["MobilenetV2_expanded_conv_16_project_add_fold"]
    assert steps["mean_error_steps"] < 2, steps


@pytest.mark.tf
@pytest.mark.shared
@pytest.mark.slow
def test_cli_writes_model_and_sidecar(cli, shared, tmp_path: Path) -> None:
    out = tmp_path / "mnv2.keras"
    result = cli("import", _coral(shared, MNV2), "-o", out, "--pixels", "--check-images", shared / CORAL)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # TensorFlow and LiteRT kept quiet
    assert "top-1 agreement 100%" in result.stdout
    manifest = json.loads(out.with_suffix(".json").read_text())
    assert (
        manifest["source"]["sha256"]
        == __import__("hashlib").sha256(_coral(shared, MNV2).read_bytes()).hexdigest()
    )
    assert manifest["input_convention"]["range"] == "uint8"
    assert manifest["op_histogram"]["CONV_2D"] == 36 and manifest["parameters"] == 3_489_097
    assert manifest["agreement"]["samples"] == 3  # the three .bmp files
    assert manifest["outputs"][0]["quantization"] == {"scale": 0.00390625, "zero_point": 0}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnv2.json", "mnv2.keras"]
