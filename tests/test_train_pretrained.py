"""Pretrained backbone loading: a hand-built source with a Rescaling layer (exact oracle), Coral's ImageNet
MobileNetV2 through ``toolkit import`` (shared), and one clear UsageError per way the source can be wrong."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import require_tf

from toolkit.errors import UsageError

pytestmark = pytest.mark.tf

CORAL_MNV2 = Path("models", "coral-test-data", "mobilenet_v2_1.0_224_quant.tflite")
# What `toolkit import --input-range unit` puts in front of Coral's MobileNetV2: [0, 1] -> (q - 128) / 128.
SCALE, OFFSET = 255 / 128, -1.0


def _stem(hw: tuple[int, int] = (32, 32)):
    """The backbone cut after block 0: mnv2_conv0, mnv2_b0_dw, mnv2_b0_project (3 convolutions)."""
    import keras

    from toolkit.models import mobilenet_v2

    image = keras.Input((*hw, 3), name="image")
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", name="mnv2_conv0")(image)
    x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="mnv2_b0_dw")(x)
    x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.Conv2D(16, 1, name="mnv2_b0_project")(x)
    model = keras.Model(image, x)
    assert [layer.name for layer in mobilenet_v2.conv_layers(model)] == [
        "mnv2_conv0",
        "mnv2_b0_dw",
        "mnv2_b0_project",
    ]
    return model


def _source(
    path: Path,
    convs: int = 3,
    first_filters: int = 32,
    bias: bool = True,
    rescale: bool = True,
    hw: tuple[int, int] = (32, 32),
) -> Path:
    """A source .keras like an import: [Rescaling], then the stem's convolutions (other names), seeded weights."""
    import keras

    keras.utils.set_random_seed(0)
    image = keras.Input((*hw, 3), name="input")
    x = keras.layers.Rescaling(SCALE, OFFSET, name="input_real")(image) if rescale else image
    x = keras.layers.Conv2D(
        first_filters, 3, strides=2, padding="same", activation="relu6", use_bias=bias, name="src_conv"
    )(x)
    if convs >= 2:
        x = keras.layers.DepthwiseConv2D(
            3, padding="same", activation="relu6", name="src_dw", bias_initializer="random_normal"
        )(x)
    if convs >= 3:
        x = keras.layers.Conv2D(16, 1, name="src_project", bias_initializer="random_normal")(x)
    keras.Model(image, x).save(path)
    return path


def test_loads_a_rescaled_source_exactly_away_from_the_border(tmp_path: Path) -> None:
    require_tf()
    import keras

    from toolkit.train.pretrained import load_pretrained_backbone

    source_path = _source(tmp_path / "src.keras")
    target = _stem()
    assert load_pretrained_backbone(target, source_path) == 3
    source = keras.saving.load_model(source_path, compile=False)
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    expected, got = source(x).numpy(), target(x).numpy()
    assert got.shape == expected.shape == (2, 16, 16, 16)
    # The stride-2 stem pads the bottom/right: the last row/column differs after folding, and the 3x3 depthwise
    # carries that one more cell in.
    assert np.abs(got - expected)[:, :-2, :-2].max() < 1e-4
    assert np.abs(got - expected).max() > 1e-3  # ... and the border really is different (a meaningful cut)
    # the later layers are plain copies
    assert np.array_equal(
        target.get_layer("mnv2_b0_dw").get_weights()[0], source.get_layer("src_dw").get_weights()[0]
    )


def test_missing_or_foreign_files_are_usage_errors(tmp_path: Path) -> None:
    require_tf()
    from toolkit.train.pretrained import load_pretrained_backbone

    target = _stem()
    with pytest.raises(UsageError, match=r"nope\.keras: expected an existing \.keras file"):
        load_pretrained_backbone(target, tmp_path / "nope.keras")
    other = tmp_path / "weights.h5"
    other.write_bytes(b"not keras")
    with pytest.raises(UsageError, match=r"weights\.h5: expected an existing \.keras file"):
        load_pretrained_backbone(target, other)
    damaged = tmp_path / "damaged.keras"
    damaged.write_bytes(b"not a zip")
    with pytest.raises(UsageError, match=r"damaged\.keras: cannot load"):
        load_pretrained_backbone(target, damaged)


def test_missing_file_message_names_the_import_that_the_loader_accepts(tmp_path: Path) -> None:
    require_tf()
    from toolkit.train.pretrained import load_pretrained_backbone

    with pytest.raises(UsageError) as error:
        load_pretrained_backbone(_stem(), tmp_path / "nope.keras")
    assert "--input-range unit" in str(error.value) and "--pixels" not in str(error.value)


def test_source_with_too_few_convolutions(tmp_path: Path) -> None:
    require_tf()
    from toolkit.train.pretrained import load_pretrained_backbone

    with pytest.raises(UsageError, match="2 convolutions, the backbone needs 3"):
        load_pretrained_backbone(_stem(), _source(tmp_path / "short.keras", convs=2))


def test_shape_mismatch_names_the_layers(tmp_path: Path) -> None:
    require_tf()
    from toolkit.train.pretrained import load_pretrained_backbone

    target = _stem()
    before = target.get_layer("mnv2_conv0").get_weights()[0].copy()
    with pytest.raises(
        UsageError, match=r"src_conv has kernel \(3, 3, 3, 16\), mnv2_conv0 expects \(3, 3, 3, 32\)"
    ):
        load_pretrained_backbone(target, _source(tmp_path / "narrow.keras", first_filters=16))
    assert np.array_equal(target.get_layer("mnv2_conv0").get_weights()[0], before)  # nothing half-loaded


def test_convolution_without_bias_is_refused(tmp_path: Path) -> None:
    require_tf()
    from toolkit.train.pretrained import load_pretrained_backbone

    with pytest.raises(UsageError, match="src_conv has no bias"):
        load_pretrained_backbone(_stem(), _source(tmp_path / "nobias.keras", bias=False))


@pytest.mark.parametrize("input_range", ["uint8", "real"])
def test_source_imported_for_another_input_range(tmp_path: Path, input_range: str) -> None:
    require_tf()
    from toolkit.train.pretrained import load_pretrained_backbone

    source = tmp_path / "mnv2.keras"
    source.write_bytes(b"never read: the sidecar is checked first")
    source.with_suffix(".json").write_text(json.dumps({"input_convention": {"range": input_range}}))
    with pytest.raises(UsageError, match=rf"imported for input range '{input_range}'") as error:
        load_pretrained_backbone(_stem(), source)
    assert "--input-range unit" in str(error.value)


def test_sidecar_that_says_unit_is_accepted(tmp_path: Path) -> None:
    require_tf()
    from toolkit.train.pretrained import load_pretrained_backbone

    source = _source(tmp_path / "src.keras")
    source.with_suffix(".json").write_text(json.dumps({"input_convention": {"range": "unit"}}))
    assert load_pretrained_backbone(_stem(), source) == 3


def test_model_without_a_mobilenet_backbone(tmp_path: Path) -> None:
    require_tf()
    from toolkit.models import build_model
    from toolkit.train.pretrained import load_pretrained_backbone

    compact = build_model("detector", {"input_shape": (64, 64, 3), "width": 0.25})
    with pytest.raises(UsageError, match="no 'mnv2_\\*' convolution layers .*backbone = 'mobilenet_v2'"):
        load_pretrained_backbone(compact, _source(tmp_path / "src.keras"))


@pytest.fixture(scope="module")
def coral_import(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tf()
    from toolkit.convert.tflite_import import ImportConfig, import_to_file

    out = tmp_path_factory.mktemp("pretrained") / "mnv2.keras"
    import_to_file(shared / CORAL_MNV2, out, ImportConfig(input_range="unit", check_samples=0))
    return out


@pytest.mark.shared
@pytest.mark.slow
def test_coral_mobilenet_v2_features_reach_the_detector(coral_import: Path) -> None:
    import keras

    from toolkit.convert.tflite_import import register_layers
    from toolkit.models import build_model
    from toolkit.train.pretrained import load_pretrained_backbone

    assert json.loads(coral_import.with_suffix(".json").read_text())["input_convention"]["range"] == "unit"
    detector = build_model("detector", {"backbone": "mobilenet_v2", "input_shape": (224, 224, 3)})
    assert load_pretrained_backbone(detector, coral_import) == 39  # 13 blocks: 1 + 2 + 12 x 3 convolutions
    register_layers()
    source = keras.saving.load_model(coral_import, compile=False)
    x = np.random.default_rng(0).random((2, 224, 224, 3), dtype=np.float32)

    def pair(block: int) -> tuple[np.ndarray, np.ndarray]:
        ours = keras.Model(detector.input, detector.get_layer(f"mnv2_b{block}_add").output)
        theirs = keras.Model(source.input, source.get_layer(f"MobilenetV2_expanded_conv_{block}_add").output)
        return ours(x).numpy(), theirs(x).numpy()

    # Zero padding (bottom/right, stride-2 "same") means another value once the input scaling is folded into
    # the stem; the difference spreads inwards from there with the receptive field.
    got, ref = pair(2)  # stride 4, 56 x 56
    assert got.shape == ref.shape == (2, 56, 56, 24)
    assert np.abs(got - ref)[:, :-3, :-3].max() < 1e-3
    got, ref = pair(12)  # stride 16, 14 x 14, values up to ~20
    assert got.shape == ref.shape == (2, 14, 14, 96)
    assert np.abs(ref).max() > 5
    assert np.abs(got - ref)[:, :5, :5].max() < 0.02  # far from the padded edges: the same features
    interior = np.abs(got - ref)[:, :-3, :-3]
    assert interior.mean() < 0.05 * np.abs(ref[:, :-3, :-3]).mean()


@pytest.mark.shared
@pytest.mark.slow
def test_segmenter_starts_from_frozen_coral_features(coral_import: Path) -> None:
    # The segmenter task's pretrained + freeze_backbone options: the 39 backbone convolutions hold Coral's
    # weights and stay fixed through a training step; the head (everything not mnv2_*) trains.
    import keras

    from toolkit.models import build_model
    from toolkit.train.config import TrainConfig
    from toolkit.train.task_segmenter import TASK, SegmenterTaskOptions

    keras.utils.set_random_seed(0)
    model = build_model("segmenter", {"backbone": "mobilenet_v2", "input_shape": (64, 80, 3)})
    options = SegmenterTaskOptions(pretrained=str(coral_import), freeze_backbone=True)
    TASK.compile(model, TrainConfig(epochs=1, batch_size=2, learning_rate=0.01), options, steps_per_epoch=1)
    backbone = [layer for layer in model.layers if layer.name.startswith("mnv2_")]
    head = [layer for layer in model.layers if layer.weights and not layer.name.startswith("mnv2_")]
    assert backbone and head and not any(layer.trainable for layer in backbone)
    assert all(layer.trainable for layer in head)
    before = {layer.name: [w.copy() for w in layer.get_weights()] for layer in backbone + head}
    x = np.random.default_rng(0).random((2, 64, 80, 3), dtype=np.float32)
    y = np.random.default_rng(1).integers(0, 5, (2, 64, 80)).astype(np.int32)
    model.train_on_batch(x, {"mask": y})
    for layer in backbone:
        assert all(np.array_equal(a, b) for a, b in zip(before[layer.name], layer.get_weights(), strict=True))
    assert not np.array_equal(before["logits"][0], model.get_layer("logits").get_weights()[0])


def test_frozen_backbone_without_pretrained_weights_is_a_usage_error() -> None:
    from toolkit.train.task_segmenter import SegmenterTaskOptions, check_options

    with pytest.raises(UsageError, match="freeze_backbone needs pretrained"):
        check_options(SegmenterTaskOptions(freeze_backbone=True), 5)


def test_start_backbone_freezes_only_the_backbone(tmp_path: Path) -> None:
    require_tf()
    from toolkit.train.pretrained import start_backbone

    source = _source(tmp_path / "src.keras")
    frozen = _stem()
    assert start_backbone(frozen, source, freeze=True) == 3
    assert [layer.trainable for layer in frozen.layers if layer.weights] == [False, False, False]
    assert all(layer.trainable for layer in frozen.layers if not layer.name.startswith("mnv2_"))
    fresh = _stem()
    assert start_backbone(fresh, source, freeze=False) == 3
    assert all(layer.trainable for layer in fresh.layers)
