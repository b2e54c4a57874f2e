"""U-Net-lite semantic segmenter: depthwise separable encoder, 3 downsamplings, concatenated skips.

Input ``image`` (H, W, 3) float32 RGB in [0, 1], default 120x160; output ``mask`` (H, W, num_classes) softmax
over :data:`CLASS_NAMES` by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from toolkit.errors import UsageError
from toolkit.models.blocks import (
    check_image_shape,
    conv_bn,
    make_divisible,
    resolve_keras,
    separable,
    upsample,
)

CLASS_NAMES: tuple[str, ...] = ("background", "road", "sidewalk", "person", "vehicle")


@dataclass(frozen=True)
class Config:
    input_shape: tuple[int, int, int] = (120, 160, 3)  # (height, width, channels); H and W multiples of 8
    num_classes: int = len(CLASS_NAMES)  # channels of the "mask" softmax
    width: float = 1.0  # width multiplier for every channel count
    stem_filters: int = 16  # channels at full resolution (stem and last decoder block)
    encoder_filters: tuple[int, int, int] = (24, 40, 64)  # channels after each of the 3 downsamplings
    upsample: Literal["bilinear", "nearest", "transpose"] = "bilinear"  # decoder 2x upsampling


def build(config: Config = Config(), keras: Any = None) -> Any:
    """Build the segmenter: {"image"} -> {"mask"}; ``keras`` None = Keras 3, or the tf_keras module."""
    keras = resolve_keras(keras)
    shape = check_image_shape(config.input_shape, 8, "segmenter")
    if len(config.encoder_filters) != 3:
        raise UsageError(f"segmenter: encoder_filters needs 3 entries (one per downsampling), "
                         f"got {config.encoder_filters}")
    if config.num_classes < 2:
        raise UsageError(f"segmenter: num_classes must be at least 2, got {config.num_classes}")
    if config.width <= 0:
        raise UsageError(f"segmenter: width must be positive, got {config.width}")

    def ch(n: int) -> int:
        return make_divisible(n * config.width)

    image = keras.Input(shape=shape, name="image")
    x = conv_bn(keras, image, ch(config.stem_filters), "stem")
    skips = [x]  # full, 1/2, 1/4 resolution
    for i, filters in enumerate(config.encoder_filters):
        x = separable(keras, x, ch(filters), f"down{i + 1}", stride=2)
        x = separable(keras, x, ch(filters), f"enc{i + 1}")
        skips.append(x)
    skips.pop()  # the 1/8 feature map is the bottleneck input, not a skip
    x = separable(keras, x, ch(config.encoder_filters[-1]), "bottleneck")

    decoder_filters = (*config.encoder_filters[:-1][::-1], config.stem_filters)  # 1/4, 1/2, full
    for i, (skip, filters) in enumerate(zip(skips[::-1], decoder_filters, strict=True)):
        x = upsample(keras, x, config.upsample, f"up{i + 1}", filters=ch(filters))
        x = keras.layers.Concatenate(name=f"skip{i + 1}")([x, skip])
        x = separable(keras, x, ch(filters), f"dec{i + 1}")
    x = keras.layers.Conv2D(config.num_classes, 1, name="logits")(x)
    mask = keras.layers.Softmax(name="mask")(x)
    return keras.Model(inputs=image, outputs={"mask": mask}, name="segmenter")
