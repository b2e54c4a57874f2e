"""Building blocks shared by the model builders, written against a ``keras`` module argument.

Every builder takes ``keras=None`` (Keras 3) or the ``tf_keras`` module (for tfmot QAT / pruning, which only work
on tf_keras models; shared/STACK.md). The blocks below use only layers that exist in both and that convert to
int8 TFLite builtins which the Edge TPU can map: Conv2D / DepthwiseConv2D with BatchNorm folded in and ReLU6
fused, Add, Concatenate, UpSampling2D, Conv2DTranspose.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from toolkit.errors import UsageError


def resolve_keras(keras: Any = None) -> Any:
    """The Keras module to build with: ``None`` or any Keras 3 alias -> the ``keras`` package; tf_keras as given.

    Keras 3 aliases (``tf.keras`` under TF 2.16+) are normalised to one module so custom layer classes are
    created and registered once.
    """
    if keras is None or is_keras3(keras):
        import keras as keras3

        return keras3
    return keras


def is_keras3(keras: Any) -> bool:
    """True for Keras 3 (multi-backend), False for tf_keras (Keras 2)."""
    return int(str(getattr(keras, "__version__", "2")).split(".")[0]) >= 3


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor`` without dropping more than 10% (MobileNet rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def check_image_shape(shape: Sequence[int], multiple: int, where: str) -> tuple[int, int, int]:
    """Validate an (H, W, C) input shape whose H and W must divide by ``multiple``; returns it as a tuple."""
    shape = tuple(int(v) for v in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise UsageError(
            f"{where}: input_shape must be (height, width, channels) of positive ints, got {shape}"
        )
    height, width, _ = shape
    if height % multiple or width % multiple:
        raise UsageError(
            f"{where}: input height and width must be multiples of {multiple} (the model downsamples "
            f"{multiple}x), got {height}x{width}; e.g. use {height // multiple * multiple or multiple}x"
            f"{width // multiple * multiple or multiple}"
        )
    return shape  # type: ignore[return-value]


def conv_bn(
    keras: Any, x: Any, filters: int, name: str, kernel: int = 3, stride: int = 1, relu6: bool = True
) -> Any:
    """Conv2D (no bias) -> BatchNorm -> ReLU6: one fused CONV_2D after conversion."""
    x = keras.layers.Conv2D(
        filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu")(x) if relu6 else x


def separable(keras: Any, x: Any, filters: int, name: str, stride: int = 1) -> Any:
    """MobileNet block: 3x3 depthwise (stride) -> BN -> ReLU6 -> 1x1 pointwise -> BN -> ReLU6."""
    x = keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"{name}_dw")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_dw_bn")(x)
    x = keras.layers.ReLU(6.0, name=f"{name}_dw_relu")(x)
    return conv_bn(keras, x, filters, f"{name}_pw", kernel=1)


def upsample(keras: Any, x: Any, mode: str, name: str, filters: int | None = None) -> Any:
    """2x upsampling: "nearest" / "bilinear" (RESIZE_* ops, no weights) or "transpose" (learned Conv2DTranspose).

    ``filters`` is required for "transpose" (its output channels).
    """
    if mode == "transpose":
        if filters is None:
            raise ValueError("upsample(mode='transpose') needs filters")
        x = keras.layers.Conv2DTranspose(
            filters, 2, strides=2, padding="same", use_bias=False, name=f"{name}_tconv"
        )(x)
        x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
        return keras.layers.ReLU(6.0, name=f"{name}_relu")(x)
    return keras.layers.UpSampling2D(2, interpolation=mode, name=name)(x)
