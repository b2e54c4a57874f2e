"""MobileNet-style image classifier: a strided stem, depthwise separable blocks, global pooling, softmax.

Input ``image`` (H, W, C) float32 in [0, 1]; output ``probs`` (num_classes,) softmax. Defaults fit MNIST
(28x28x1, 10 classes); ``input_shape=(96, 96, 3)`` gives a small colour classifier.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from toolkit.config import Limits, check_ranges
from toolkit.errors import UsageError
from toolkit.models.blocks import check_image_shape, conv_bn, make_divisible, resolve_keras, separable


@dataclass(frozen=True)
class Config:
    input_shape: tuple[int, int, int] = (28, 28, 1)  # (height, width, channels) of the "image" input
    num_classes: int = 10  # size of the "probs" output
    width: float = 1.0  # width multiplier applied to every channel count (MobileNet alpha)
    stem_filters: int = 16  # channels of the stride-2 3x3 stem convolution (before the width multiplier)
    filters: tuple[int, ...] = (32, 64, 64, 128, 128)  # pointwise channels of each separable block
    strides: tuple[int, ...] = (1, 2, 1, 2, 1)  # depthwise stride of each separable block (same length)
    dropout: float = 0.1  # dropout before the classifier Dense (training only)

    LIMITS: ClassVar[
        Limits
    ] = {  # valid values of numeric keys (config files, --set); build() checks combinations
        "input_shape": (1, 4096),  # each of height, width, channels
        "num_classes": (1, 100_000),
        "width": (0.01, 10.0),
        "stem_filters": (1, 4096),
        "filters": (1, 4096),
        "strides": (1, 4),
        "dropout": (0.0, 0.99),
    }

    def __post_init__(self) -> None:
        check_ranges(self, "classifier model config")


def build(config: Config = Config(), keras: Any = None) -> Any:
    """Build the classifier as a functional model: {"image"} -> {"probs"}; ``keras`` None = Keras 3."""
    keras = resolve_keras(keras)
    if len(config.filters) != len(config.strides) or not config.filters:
        raise UsageError(
            f"classifier: filters {config.filters} and strides {config.strides} must be non-empty "
            "and of the same length"
        )
    if any(s not in (1, 2) for s in config.strides):
        raise UsageError(f"classifier: strides must be 1 or 2, got {config.strides}")
    if config.num_classes < 2:
        raise UsageError(f"classifier: num_classes must be at least 2, got {config.num_classes}")
    if config.width <= 0:
        raise UsageError(f"classifier: width must be positive, got {config.width}")
    shape = check_image_shape(config.input_shape, 1, "classifier")

    image = keras.Input(shape=shape, name="image")
    x = conv_bn(keras, image, make_divisible(config.stem_filters * config.width), "stem", stride=2)
    for i, (filters, stride) in enumerate(zip(config.filters, config.strides, strict=True)):
        x = separable(keras, x, make_divisible(filters * config.width), f"block{i + 1}", stride=stride)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    if config.dropout > 0:
        x = keras.layers.Dropout(config.dropout, name="dropout")(x)
    x = keras.layers.Dense(config.num_classes, name="logits")(x)
    probs = keras.layers.Softmax(name="probs")(x)
    return keras.Model(inputs=image, outputs={"probs": probs}, name="classifier")
