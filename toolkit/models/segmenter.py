"""Street-scene semantic segmenter, two designs behind one interface.

* ``backbone = "unet"``: U-Net-lite -- depthwise separable encoder, 3 downsamplings, concatenated skips, trained
  from scratch (H and W multiples of 8).
* ``backbone = "mobilenet_v2"``: DeepLabV3+-lite on MobileNetV2 1.0 (:mod:`toolkit.models.mobilenet_v2`, the
  first 13 blocks, to stride 16) whose weights come from a pretrained network (the segmenter task's
  ``pretrained`` option): the stride-16 features go through a 1x1 projection and a separable 3x3, are upsampled
  2x and joined with a 1x1 projection of the stride-8 features, a separable 3x3 mixes them, and the class logits
  are upsampled 8x (bilinear) to the input size (H and W multiples of 16); ``fine_filters`` > 0 adds a stride-4
  stage before the logits (as DeepLabV3+ decodes), which are then upsampled 4x. Measured before it was built: frozen
  ImageNet features with this head scored COCO128 4-fold CV person IoU 0.585 where the U-Net-lite scored 0.08.

Input ``image`` (H, W, 3) float32 RGB in [0, 1]; output ``mask`` (H, W, num_classes) softmax over
:data:`toolkit.adapters.segment.CLASS_NAMES` by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from toolkit.adapters.segment import CLASS_NAMES
from toolkit.config import Limits, check_ranges
from toolkit.errors import UsageError
from toolkit.models.blocks import (
    check_image_shape,
    conv_bn,
    make_divisible,
    resolve_keras,
    separable,
    upsample,
)


@dataclass(frozen=True)
class Config:
    input_shape: tuple[int, int, int] = (120, 160, 3)  # (height, width, channels); H and W multiples of 8
    num_classes: int = len(CLASS_NAMES)  # channels of the "mask" softmax
    width: float = 1.0  # width multiplier for every channel count
    stem_filters: int = 16  # channels at full resolution (stem and last decoder block)
    encoder_filters: tuple[int, int, int] = (24, 40, 64)  # channels after each of the 3 downsamplings
    upsample: Literal["bilinear", "nearest", "transpose"] = "bilinear"  # unet: decoder 2x upsampling
    backbone: Literal["unet", "mobilenet_v2"] = "unet"  # see the module docstring
    head_filters: int = (
        64  # mobilenet_v2: channels of the stride-16 projection and of the fused stride-8 block
    )
    skip_filters: int = (
        32  # mobilenet_v2: channels of the stride-8 projection joined to the upsampled features
    )
    fine_filters: int = (
        0  # mobilenet_v2: > 0 adds a stride-4 stage (the fused features upsampled 2x, joined with
    )
    # a projection of the stride-4 features to this many channels, a separable 3x3): sharper masks of small people

    LIMITS: ClassVar[
        Limits
    ] = {  # valid values of numeric keys (config files, --set); build() checks combinations
        "input_shape": (1, 4096),  # each of height, width, channels
        "num_classes": (1, 100_000),
        "width": (0.01, 10.0),
        "stem_filters": (1, 4096),
        "encoder_filters": (1, 4096),
        "head_filters": (1, 4096),
        "skip_filters": (1, 4096),
        "fine_filters": (0, 4096),
    }

    def __post_init__(self) -> None:
        check_ranges(self, "segmenter model config")


def build(config: Config = Config(), keras: Any = None) -> Any:
    """Build the segmenter: {"image"} -> {"mask"}; ``keras`` None = Keras 3, or the tf_keras module."""
    keras = resolve_keras(keras)
    if config.backbone not in ("unet", "mobilenet_v2"):
        raise UsageError(f"segmenter: backbone must be 'unet' or 'mobilenet_v2', got {config.backbone!r}")
    if config.backbone == "mobilenet_v2":
        return _build_mobilenet(config, keras)
    shape = check_image_shape(config.input_shape, 8, "segmenter")
    if len(config.encoder_filters) != 3:
        raise UsageError(
            f"segmenter: encoder_filters needs 3 entries (one per downsampling), got {config.encoder_filters}"
        )
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


def _build_mobilenet(config: Config, keras: Any) -> Any:
    """DeepLabV3+-lite on the first 13 MobileNetV2 blocks (strides 8 and 16); see the module docstring."""
    from toolkit.models import mobilenet_v2

    shape = check_image_shape(config.input_shape, 16, "segmenter")
    if config.num_classes < 2:
        raise UsageError(f"segmenter: num_classes must be at least 2, got {config.num_classes}")
    if config.head_filters < 8 or config.skip_filters < 8 or config.fine_filters < 0:
        raise UsageError(
            f"segmenter: head_filters and skip_filters must be >= 8 and fine_filters >= 0, got "
            f"{config.head_filters}, {config.skip_filters} and {config.fine_filters}"
        )
    image = keras.Input(shape=shape, name="image")
    by_stride = dict(mobilenet_v2.features(keras, image, 13))
    x = conv_bn(keras, by_stride[16], config.head_filters, "head_s16", kernel=1)
    x = separable(keras, x, config.head_filters, "head_s16_context")
    x = keras.layers.UpSampling2D(2, interpolation="bilinear", name="head_up16")(x)
    skip = conv_bn(keras, by_stride[8], config.skip_filters, "head_s8", kernel=1)
    x = keras.layers.Concatenate(name="head_join")([x, skip])
    x = separable(keras, x, config.head_filters, "head_fuse")
    stride = 8
    if config.fine_filters > 0:
        x = keras.layers.UpSampling2D(2, interpolation="bilinear", name="head_up8")(x)
        fine = conv_bn(keras, by_stride[4], config.fine_filters, "head_s4", kernel=1)
        x = keras.layers.Concatenate(name="head_join_fine")([x, fine])
        x = separable(keras, x, config.head_filters, "head_fuse_fine")
        stride = 4
    x = keras.layers.Conv2D(config.num_classes, 1, name="logits")(x)
    x = keras.layers.UpSampling2D(stride, interpolation="bilinear", name=f"logits_up{stride}")(x)
    mask = keras.layers.Softmax(name="mask")(x)
    return keras.Model(inputs=image, outputs={"mask": mask}, name="segmenter")
