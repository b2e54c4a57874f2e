"""MobileNetV2 backbone: block plan, feature strides and channels, layer names and conv order (checked against
Coral's MobileNetV2 file), exact input-scaling folding, and the detector's mobilenet_v2 option down to int8."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import require_tf

from toolkit.errors import UsageError
from toolkit.models import mobilenet_v2
from toolkit.models.mobilenet_v2 import MAX_BLOCKS, block_plan, fold_input_scaling

CORAL_MNV2 = Path("models", "coral-test-data", "mobilenet_v2_1.0_224_quant.tflite")
# Blocks that keep their stride and width, so end in a residual Add (the paper's Table 2; Coral's file agrees).
RESIDUAL_BLOCKS = (2, 4, 5, 7, 8, 9, 11, 12, 14, 15)


def test_block_plan_follows_the_paper() -> None:
    plan = block_plan(MAX_BLOCKS)
    assert MAX_BLOCKS == 17 and len(plan) == 17
    assert plan[0] == (1, 16, 1)  # block 0: no expansion
    assert all(t == 6 for t, _, _ in plan[1:])
    strided = [i for i, (_, _, s) in enumerate(plan) if s == 2]
    assert strided == [1, 3, 6, 13]  # strides 4, 8, 16, 32 start here
    assert [c for _, c, _ in plan] == [16, 24, 24, 32, 32, 32, 64, 64, 64, 64, 96, 96, 96, 160, 160, 160, 320]
    assert block_plan(13) == plan[:13] and block_plan(1) == plan[:1]


@pytest.mark.parametrize("blocks", [0, 18, -1])
def test_block_plan_refuses_counts_outside_1_to_17(blocks: int) -> None:
    with pytest.raises(UsageError, match=rf"blocks must be 1-17, got {blocks}"):
        block_plan(blocks)


def test_fold_input_scaling_on_hand_checked_numbers() -> None:
    # Two output channels: all-ones 3x3x3 kernels, the second doubled -> sums 27 and 54.
    kernel = np.ones((3, 3, 3, 2), np.float32) * np.float32([1, 2])
    bias = np.float32([0.5, -1.0])
    folded_kernel, folded_bias = fold_input_scaling(kernel, bias, scale=2.0, offset=-1.0)
    assert np.array_equal(folded_kernel, 2 * kernel) and folded_kernel.dtype == np.float32
    assert np.allclose(folded_bias, [0.5 - 27, -1.0 - 54])  # bias + offset * per-output-channel sum
    assert np.array_equal(kernel, np.ones((3, 3, 3, 2), np.float32) * np.float32([1, 2]))  # input untouched


def _conv_valid(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Plain 'valid' convolution, stride 1: (H, W, C) x (kh, kw, C, O) -> (H-kh+1, W-kw+1, O)."""
    kh, kw = kernel.shape[:2]
    h, w = x.shape[0] - kh + 1, x.shape[1] - kw + 1
    out = np.zeros((h, w, kernel.shape[3]), np.float64)
    for dy in range(kh):
        for dx in range(kw):
            out += x[dy : dy + h, dx : dx + w] @ kernel[dy, dx]
    return out + bias


def test_fold_input_scaling_is_exact_on_random_convolutions() -> None:
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 3, 3, 5)).astype(np.float32)
    bias = rng.normal(size=5).astype(np.float32)
    x = rng.random((9, 11, 3)).astype(np.float32)
    scale, offset = 255 / 128, -1.0  # Coral MobileNetV2: [0, 1] pixels -> (q - 128) / 128
    folded = fold_input_scaling(kernel, bias, scale, offset)
    expected = _conv_valid(x.astype(np.float64) * scale + offset, kernel, bias)
    assert np.allclose(_conv_valid(x.astype(np.float64), *folded), expected, atol=1e-4)


@pytest.mark.tf
def test_folded_first_convolution_matches_away_from_the_padded_border() -> None:
    require_tf()
    import keras

    # The stem as the backbone builds it (3x3, stride 2, "same": zero padding at the bottom and right only).
    rng = np.random.default_rng(1)
    kernel = rng.normal(size=(3, 3, 3, 32)).astype(np.float32)
    bias = rng.normal(size=32).astype(np.float32)
    scale, offset = 255 / 128, -1.0
    x = rng.random((1, 16, 16, 3)).astype(np.float32)
    conv = keras.layers.Conv2D(32, 3, strides=2, padding="same")
    conv.build((None, 16, 16, 3))
    conv.set_weights([kernel, bias])
    expected = conv(x * scale + offset).numpy()
    conv.set_weights(list(fold_input_scaling(kernel, bias, scale, offset)))
    got = conv(x).numpy()
    assert np.abs(got - expected)[:, :-1, :-1].max() < 1e-4  # the last row/column reads the padding
    assert np.abs(got - expected)[:, -1].max() > 1e-2  # where zero padding means another value: not exact


def _backbone(blocks: int, hw: tuple[int, int] = (64, 64)):
    import keras

    image = keras.Input((*hw, 3), name="image")
    feats = mobilenet_v2.features(keras, image, blocks)
    model = keras.Model(image, [t for _, t in feats]) if feats else None
    return feats, model


@pytest.mark.tf
@pytest.mark.parametrize(
    "blocks, expected",
    [
        (17, {4: (16, 16, 24), 8: (8, 8, 32), 16: (4, 4, 96), 32: (2, 2, 320)}),
        (13, {4: (16, 16, 24), 8: (8, 8, 32), 16: (4, 4, 96)}),
        (6, {4: (16, 16, 24), 8: (8, 8, 32)}),
        (7, {4: (16, 16, 24), 8: (8, 8, 32), 16: (4, 4, 64)}),
        (2, {4: (16, 16, 24)}),
        (1, {}),  # block 0 stays at stride 2
    ],
)
def test_features_strides_and_channels(blocks: int, expected: dict) -> None:
    require_tf()
    feats, _ = _backbone(blocks)
    assert [s for s, _ in feats] == sorted(expected)
    assert {s: tuple(t.shape[1:]) for s, t in feats} == expected


@pytest.mark.tf
def test_layer_names_conv_order_and_folded_batch_norm() -> None:
    require_tf()
    _, model = _backbone(MAX_BLOCKS)
    names = [layer.name for layer in model.layers]
    assert names[1:6] == ["mnv2_conv0", "mnv2_conv0_relu", "mnv2_b0_dw", "mnv2_b0_dw_relu", "mnv2_b0_project"]
    assert "mnv2_b0_expand" not in names and "mnv2_b1_expand" in names
    assert not [n for n in names if "batch" in n.lower()]  # batch norm is folded into the conv biases
    assert sorted(int(n[6:-4]) for n in names if n.endswith("_add")) == list(RESIDUAL_BLOCKS)
    relus = [layer for layer in model.layers if type(layer).__name__ == "ReLU"]
    assert relus and all(float(layer.max_value) == 6.0 for layer in relus)
    convs = mobilenet_v2.conv_layers(model)
    # stem + block 0 (depthwise, project) + 16 blocks x (expand, depthwise, project) = 51; Coral's file has 53
    # convolution ops: these 51, then Conv_1 (1x1 to 1280) and the logits.
    assert len(convs) == 1 + 2 + 16 * 3 == 51
    expected = ["mnv2_conv0", "mnv2_b0_dw", "mnv2_b0_project"] + [
        f"mnv2_b{i}_{part}" for i in range(1, 17) for part in ("expand", "dw", "project")
    ]
    assert [c.name for c in convs] == expected
    assert all(c.use_bias for c in convs)
    assert len(mobilenet_v2.conv_layers(_backbone(13)[1])) == 39
    assert mobilenet_v2.conv_layers(model, prefix="other_") == []


@pytest.mark.shared
@pytest.mark.tf
def test_conv_kernels_line_up_with_corals_mobilenet_v2_ops(shared: Path) -> None:
    require_tf()
    from toolkit.runtime.tflite_file import read_model_file

    graph = read_model_file(shared / CORAL_MNV2)
    ops = [op for op in graph.ops if op.op in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    assert len(ops) == 53
    _, model = _backbone(MAX_BLOCKS, (224, 224))
    convs = mobilenet_v2.conv_layers(model)
    for op, layer in zip(ops, convs, strict=False):  # the first 51; Conv_1 and the logits stay out
        weights = graph.tensors[op.inputs[1]].shape  # CONV_2D: (O, kh, kw, I); DEPTHWISE: (1, kh, kw, C)
        kernel = tuple(layer.kernel.shape)  # Conv2D: (kh, kw, I, O); DepthwiseConv2D: (kh, kw, C, 1)
        if op.op == "CONV_2D":
            assert type(layer).__name__ == "Conv2D" and kernel == (*weights[1:], weights[0]), layer.name
        else:
            assert type(layer).__name__ == "DepthwiseConv2D" and kernel == (*weights[1:], 1), layer.name
        assert tuple(graph.tensors[op.outputs[0]].shape[1:]) == tuple(layer.output.shape[1:]), layer.name
    adds = [graph.tensors[op.outputs[0]].name for op in graph.ops if op.op == "ADD"]
    assert adds == [f"MobilenetV2/expanded_conv_{i}/add" for i in RESIDUAL_BLOCKS]


@pytest.fixture(scope="module")
def mnv2_detector():
    require_tf()
    import keras

    from toolkit.models import build_model

    keras.utils.set_random_seed(0)
    return build_model("detector", {"backbone": "mobilenet_v2", "input_shape": (128, 160, 3)})


@pytest.mark.tf
def test_detector_with_mobilenet_v2_backbone_builds(mnv2_detector) -> None:
    outputs = {name: tuple(t.shape[1:]) for name, t in mnv2_detector.output.items()}
    assert outputs == {"heatmap": (32, 40, 1), "box": (32, 40, 4)}
    assert len(mobilenet_v2.conv_layers(mnv2_detector)) == 39  # 13 blocks (through stride 16)
    # our own stride-32 blocks on the stride-16 output, which also feeds the FPN
    assert tuple(mnv2_detector.get_layer("mnv2_b12_add").output.shape[1:]) == (8, 10, 96)
    assert any(layer.name.startswith("top_block2") for layer in mnv2_detector.layers)
    assert not any(layer.name.startswith("top_block3") for layer in mnv2_detector.layers)
    assert not any(layer.name.startswith("stage") for layer in mnv2_detector.layers)  # no compact backbone


@pytest.mark.tf
@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"backbone_blocks": 5}, "backbone_blocks must be 7-13 for mobilenet_v2"),
        ({"backbone_blocks": 14}, "backbone_blocks must be 7-13 for mobilenet_v2"),
        ({"top_blocks": 0}, "top_blocks must be >= 1, got 0"),
        ({"backbone": "resnet"}, "'resnet' is not one of compact, mobilenet_v2"),
    ],
)
def test_detector_refuses_bad_mobilenet_options(overrides: dict, message: str) -> None:
    require_tf()
    from toolkit.models import build_model

    with pytest.raises(UsageError, match=message):
        build_model("detector", {"backbone": "mobilenet_v2", "input_shape": (64, 64, 3), **overrides})


@pytest.mark.tf
def test_detector_with_the_fewest_blocks_takes_stride_16_from_block_6() -> None:
    require_tf()
    from toolkit.models import build_model

    model = build_model(
        "detector", {"backbone": "mobilenet_v2", "input_shape": (64, 64, 3), "backbone_blocks": 7}
    )
    assert len(mobilenet_v2.conv_layers(model)) == 1 + 2 + 6 * 3
    assert tuple(model.get_layer("fpn_lateral3_conv").input.shape[1:]) == (4, 4, 64)  # block 6's output
    assert tuple(model.output["heatmap"].shape[1:]) == (16, 16, 1)


@pytest.mark.tf
def test_detector_refuses_six_blocks_that_never_reach_stride_16() -> None:
    require_tf()
    from toolkit.models import build_model

    with pytest.raises(UsageError, match="backbone_blocks must be"):
        build_model(
            "detector", {"backbone": "mobilenet_v2", "input_shape": (64, 64, 3), "backbone_blocks": 6}
        )


@pytest.mark.tf
@pytest.mark.slow
def test_mobilenet_detector_converts_to_full_int8(mnv2_detector, tmp_path: Path) -> None:
    from toolkit.convert import ConvertConfig, convert
    from toolkit.inspect import analyze
    from toolkit.runtime.tflite_file import read_model_file

    model_path, calib, out = tmp_path / "det.keras", tmp_path / "calib.npy", tmp_path / "det.tflite"
    mnv2_detector.save(model_path)
    np.save(calib, np.random.default_rng(0).random((10, 128, 160, 3), dtype=np.float32))
    convert(
        model_path,
        out,
        ConvertConfig(quantize="int8", calib=str(calib), calib_samples=8, parity_samples=2, threads=1),
    )
    info = analyze(read_model_file(out))
    assert info["precision"] == "int8" and info["non_int8_ops"] == [], info["non_int8_ops"]
    assert all(entry["dtype"] == "int8" for entry in info["op_histogram"]), info["op_histogram"]
    assert all(t["dtype"] == "int8" for t in info["inputs"] + info["outputs"])
    assert sorted(tuple(t["shape"]) for t in info["outputs"]) == [(1, 32, 40, 1), (1, 32, 40, 4)]


@pytest.mark.tf
def test_segmenter_with_mobilenet_v2_backbone_builds() -> None:
    require_tf()
    from toolkit.models import build_model

    model = build_model("segmenter", {"backbone": "mobilenet_v2", "input_shape": (128, 160, 3)})
    assert tuple(model.output["mask"].shape[1:]) == (128, 160, 5)  # logits at stride 8, upsampled 8x
    assert len(mobilenet_v2.conv_layers(model)) == 39  # the 13 pretrained blocks, through stride 16
    assert tuple(model.get_layer("head_join").output.shape[1:]) == (
        16,
        20,
        64 + 32,
    )  # stride 16 up 2x + stride 8
    x = np.random.default_rng(0).random((1, 128, 160, 3), dtype=np.float32)
    probs = np.asarray(model(x)["mask"])
    assert np.allclose(probs.sum(-1), 1.0, atol=1e-4)
    fine = build_model(
        "segmenter", {"backbone": "mobilenet_v2", "input_shape": (128, 160, 3), "fine_filters": 24}
    )
    assert tuple(fine.get_layer("head_join_fine").output.shape[1:]) == (32, 40, 64 + 24)  # stride 4
    assert tuple(fine.get_layer("logits").output.shape[1:]) == (32, 40, 5)
    assert tuple(fine.output["mask"].shape[1:]) == (128, 160, 5)


@pytest.mark.tf
@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"input_shape": (120, 160, 3)}, "multiple"),  # stride 16: 120 rows do not divide
        ({"head_filters": 4}, "head_filters and skip_filters must be >= 8"),
        ({"fine_filters": -1}, r"fine_filters must be an integer in 0\.\.4096, got -1"),
        ({"backbone": "resnet"}, "'resnet' is not one of unet, mobilenet_v2"),
    ],
)
def test_segmenter_refuses_bad_mobilenet_options(overrides: dict, message: str) -> None:
    require_tf()
    from toolkit.models import build_model

    with pytest.raises(UsageError, match=message):
        build_model("segmenter", {"backbone": "mobilenet_v2", "input_shape": (64, 64, 3), **overrides})


@pytest.mark.tf
@pytest.mark.slow
def test_mobilenet_segmenter_converts_to_full_int8(tmp_path: Path) -> None:
    require_tf()
    from toolkit.convert import ConvertConfig, convert
    from toolkit.inspect import analyze
    from toolkit.models import build_model
    from toolkit.runtime.tflite_file import read_model_file

    model_path, calib, out = tmp_path / "seg.keras", tmp_path / "calib.npy", tmp_path / "seg.tflite"
    build_model("segmenter", {"backbone": "mobilenet_v2", "input_shape": (64, 96, 3)}).save(model_path)
    np.save(calib, np.random.default_rng(0).random((10, 64, 96, 3), dtype=np.float32))
    convert(
        model_path,
        out,
        ConvertConfig(quantize="int8", calib=str(calib), calib_samples=8, parity_samples=2, threads=1),
    )
    info = analyze(read_model_file(out))
    assert info["precision"] == "int8" and info["non_int8_ops"] == [], info["non_int8_ops"]
    assert [tuple(t["shape"]) for t in info["outputs"]] == [(1, 64, 96, 5)]
