"""Anchor-free pedestrian detector (CenterNet-like) on a MobileNet-style backbone with a small FPN.

Input ``image`` (H, W, 3) float32 RGB in [0, 1], default 192x256 (4:3 like cameras). Outputs at stride 4:

* ``heatmap`` (H/4, W/4, 1) sigmoid: probability that a person's centre lies in the cell;
* ``box`` (H/4, W/4, 4) sigmoid: ``(dx, dy, sw, sh)``, centre offset in the cell and sqrt(box size / image
  size); see :mod:`toolkit.models.detector_targets` for the numpy encoding and decoding (no NMS in the graph).

The backbone downsamples to stride 32; a top-down path (2x upsampling + Add of 1x1 lateral projections, as in
FPN) brings context back to stride 4 so small people get both resolution and context. Bilinear upsampling is
the default because it lowers to one RESIZE_BILINEAR op (Edge TPU-mappable); Keras 3 lowers "nearest" to
RESHAPE + TILE pairs instead (same speed on CPU).
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from toolkit.config import Limits, check_ranges
from toolkit.errors import UsageError
from toolkit.models.blocks import (
    check_image_shape,
    conv_bn,
    is_keras3,
    make_divisible,
    resolve_keras,
    separable,
    upsample,
)
from toolkit.models.detector_targets import NO_BOX

STRIDE = 4  # output stride of "heatmap" and "box"


@dataclass(frozen=True)
class Config:
    input_shape: tuple[int, int, int] = (192, 256, 3)  # (height, width, channels); H and W multiples of 32
    width: float = 1.0  # width multiplier for every backbone, FPN and head channel count
    stem_filters: int = 16  # channels of the stride-2 stem convolution
    stage_filters: tuple[int, int, int, int] = (24, 48, 96, 128)  # backbone channels at strides 4, 8, 16, 32
    stage_blocks: tuple[int, int, int, int] = (
        2,
        3,
        3,
        2,
    )  # separable blocks per stage (the first is strided)
    fpn_filters: int = 48  # channels of the top-down path
    head_filters: int = 48  # channels of the 3x3 separable block in each head
    upsample: Literal["bilinear", "nearest"] = "bilinear"  # top-down 2x upsampling (see the module docstring)
    heatmap_prior: float = 0.1  # initial heatmap probability (bias init; CenterNet uses 0.1)
    backbone: Literal["compact", "mobilenet_v2"] = (
        "compact"  # compact: the stages above, trained from scratch;
    )
    # mobilenet_v2: MobileNetV2 1.0 blocks (toolkit.models.mobilenet_v2, loadable from a pretrained .tflite via
    # `toolkit import` + the detector task's `pretrained` option) up to stride 16, then top_blocks of our own
    backbone_blocks: int = (
        13  # mobilenet_v2: inverted-residual blocks used (13 = through the stride-16 stage)
    )
    top_filters: int = (
        160  # mobilenet_v2: channels of the stride-32 blocks added on top of the pretrained ones
    )
    top_blocks: int = 2  # mobilenet_v2: separable blocks at stride 32 (context for people up to ~400 px tall)

    LIMITS: ClassVar[
        Limits
    ] = {  # valid values of numeric keys (config files, --set); build() checks combinations
        "input_shape": (1, 4096),  # each of height, width, channels
        "width": (0.01, 10.0),
        "stem_filters": (1, 4096),
        "stage_filters": (1, 4096),
        "stage_blocks": (1, 64),
        "fpn_filters": (1, 4096),
        "head_filters": (1, 4096),
        "heatmap_prior": (1e-6, 0.999999),
        "backbone_blocks": (1, 64),
        "top_filters": (1, 4096),
        "top_blocks": (0, 64),
    }

    def __post_init__(self) -> None:
        check_ranges(self, "detector model config")


def build(config: Config = Config(), keras: Any = None) -> Any:
    """Build the detector: {"image"} -> {"heatmap", "box"}; ``keras`` None = Keras 3, or the tf_keras module."""
    keras = resolve_keras(keras)
    shape = check_image_shape(config.input_shape, 32, "detector")
    if len(config.stage_filters) != 4 or len(config.stage_blocks) != 4 or min(config.stage_blocks) < 1:
        raise UsageError(
            "detector: stage_filters and stage_blocks need 4 entries each (strides 4, 8, 16, 32), "
            f"blocks >= 1; got {config.stage_filters} and {config.stage_blocks}"
        )
    if not 0 < config.heatmap_prior < 1:
        raise UsageError(f"detector: heatmap_prior must be in (0, 1), got {config.heatmap_prior}")
    if config.width <= 0:
        raise UsageError(f"detector: width must be positive, got {config.width}")

    def ch(n: int) -> int:
        return make_divisible(n * config.width)

    image = keras.Input(shape=shape, name="image")
    features = (
        _mobilenet_features(keras, image, config, ch)
        if config.backbone == "mobilenet_v2"
        else _compact_features(keras, image, config, ch)
    )  # strides 4, 8, 16, 32

    fpn = ch(config.fpn_filters)
    p = conv_bn(keras, features[-1], fpn, "fpn_top", kernel=1)
    for level in (3, 2, 1):  # strides 16, 8, 4
        up = upsample(keras, p, config.upsample, f"fpn_up{level}")
        lateral = conv_bn(keras, features[level - 1], fpn, f"fpn_lateral{level}", kernel=1, relu6=False)
        p = keras.layers.Add(name=f"fpn_add{level}")([up, lateral])
        p = separable(keras, p, fpn, f"fpn_smooth{level}")

    prior_bias = -math.log((1 - config.heatmap_prior) / config.heatmap_prior)
    h = separable(keras, p, ch(config.head_filters), "heatmap_head")
    heatmap = keras.layers.Conv2D(
        1, 1, activation="sigmoid", name="heatmap", bias_initializer=keras.initializers.Constant(prior_bias)
    )(h)
    b = separable(keras, p, ch(config.head_filters), "box_head")
    box = keras.layers.Conv2D(4, 1, activation="sigmoid", name="box")(b)
    return keras.Model(inputs=image, outputs={"heatmap": heatmap, "box": box}, name="detector")


def _compact_features(keras: Any, image: Any, config: Config, ch: Any) -> list[Any]:
    """The compact backbone: a stride-2 stem and four stages of separable blocks (strides 4, 8, 16, 32)."""
    x = conv_bn(keras, image, ch(config.stem_filters), "stem", stride=2)
    features = []
    for s, (filters, blocks) in enumerate(zip(config.stage_filters, config.stage_blocks, strict=True)):
        for b in range(blocks):
            x = separable(keras, x, ch(filters), f"stage{s + 1}_block{b + 1}", stride=2 if b == 0 else 1)
        features.append(x)
    return features


def _mobilenet_features(keras: Any, image: Any, config: Config, ch: Any) -> list[Any]:
    """MobileNetV2 blocks (strides 4, 8, 16 from the pretrained network) + ``top_blocks`` of ours at stride 32."""
    from toolkit.models import mobilenet_v2

    if not 7 <= config.backbone_blocks <= 13:
        raise UsageError(
            f"detector: backbone_blocks must be 7-13 for mobilenet_v2 (block 6, the 7th, reaches stride 16; "
            f"stride 32 comes from the top blocks), got {config.backbone_blocks}"
        )
    if config.top_blocks < 1:
        raise UsageError(f"detector: top_blocks must be >= 1, got {config.top_blocks}")
    by_stride = dict(mobilenet_v2.features(keras, image, config.backbone_blocks))  # strides 4, 8, 16
    x = by_stride[16]
    for b in range(config.top_blocks):  # the first one halves the resolution to stride 32
        x = separable(keras, x, ch(config.top_filters), f"top_block{b + 1}", stride=2 if b == 0 else 1)
    return [by_stride[4], by_stride[8], by_stride[16], x]


def detector_losses(
    keras: Any = None, alpha: float = 2.0, beta: float = 4.0, box_weight: float = 1.0
) -> dict[str, Any]:
    """Training losses keyed by output name, for ``model.compile(loss=...)`` or a custom loop.

    * ``heatmap``: CenterNet focal loss (penalty-reduced near centres by ``(1 - target) ** beta``), summed per
      image and divided by the number of centres (at least 1). Cells whose target is negative
      (``detector_targets.IGNORE``) cost nothing.
    * ``box``: on the cells holding a centre, divided by their number: L1 on the centre offsets plus L1 on the
      log of the size channels (a relative size error, scale-invariant). Its target must come from
      ``detector_targets.box_target_for_loss`` (cells without a centre hold ``NO_BOX``) because Keras gives a
      loss only its own target. Scaled by ``box_weight``.

    Both take ``(y_true, y_pred)`` batches and return one value per image.
    """
    keras = resolve_keras(keras)
    ops = _ops(keras)
    eps = 1e-6

    def heatmap_focal_loss(y_true: Any, y_pred: Any) -> Any:
        y_true = ops.cast(y_true, "float32")
        y_pred = ops.clip(ops.cast(y_pred, "float32"), eps, 1.0 - eps)
        pos = ops.cast(y_true >= 1.0 - 1e-4, "float32")
        neg = ops.cast(y_true >= 0.0, "float32") * (1.0 - pos)  # ignored cells (target < 0) are neither
        pos_loss = -ops.log(y_pred) * (1.0 - y_pred) ** alpha * pos
        neg_loss = -ops.log(1.0 - y_pred) * y_pred**alpha * (1.0 - ops.clip(y_true, 0.0, 1.0)) ** beta * neg
        num_pos = ops.maximum(ops.sum(pos, axis=(1, 2, 3)), 1.0)
        return ops.sum(pos_loss + neg_loss, axis=(1, 2, 3)) / num_pos

    def box_l1_loss(y_true: Any, y_pred: Any) -> Any:
        y_true = ops.cast(y_true, "float32")
        y_pred = ops.cast(y_pred, "float32")
        mask = ops.cast(y_true[..., :1] > NO_BOX / 2, "float32")
        offset = ops.abs(y_pred[..., :2] - y_true[..., :2])
        # Sizes: L1 of log(sqrt size) = half the relative error of the size, the same for a 10 px and a 100 px
        # person (plain L1 on sqrt(size / input) gave a 10 px-wide person a sixth of the signal per % error).
        size = ops.abs(
            ops.log(ops.clip(y_pred[..., 2:], eps, 1.0)) - ops.log(ops.clip(y_true[..., 2:], eps, 1.0))
        )
        l1 = ops.sum(ops.concatenate([offset, size], axis=-1) * mask, axis=(1, 2, 3))
        return box_weight * l1 / ops.maximum(ops.sum(mask, axis=(1, 2, 3)), 1.0)

    return {"heatmap": heatmap_focal_loss, "box": box_l1_loss}


def _ops(keras: Any) -> types.SimpleNamespace:
    """The tensor ops the losses use, from keras.ops (Keras 3) or TensorFlow (tf_keras)."""
    if is_keras3(keras):
        o = keras.ops
        return types.SimpleNamespace(
            cast=o.cast,
            clip=o.clip,
            log=o.log,
            sum=o.sum,
            abs=o.abs,
            maximum=o.maximum,
            concatenate=o.concatenate,
        )
    import tensorflow as tf

    return types.SimpleNamespace(
        cast=tf.cast,
        clip=tf.clip_by_value,
        log=tf.math.log,
        sum=tf.reduce_sum,
        abs=tf.abs,
        maximum=tf.maximum,
        concatenate=tf.concat,
    )
