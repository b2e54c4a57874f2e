"""MobileNetV2 feature extractor (Sandler et al., CVPR 2018) whose weights can come from a published int8 TFLite.

The layers are the ones a TF-slim MobileNetV2 graph holds after conversion: every convolution carries its folded
batch norm as a bias (``use_bias=True``, no BatchNormalization layer), ReLU6 after the expansion and depthwise
convolutions, a linear projection, and a residual Add where a block keeps its stride and width. So the Coral
``mobilenet_v2_1.0_224_quant.tflite`` (ImageNet, Apache-2.0) maps onto it convolution for convolution
(``toolkit import`` rebuilds it as a Keras model; :mod:`toolkit.train.pretrained` copies its kernels in), and
fine-tuning starts from real features -- the "frozen batch norm" set-up detection backbones are usually
fine-tuned in.

Layer names: ``{prefix}conv0``, ``{prefix}b{i}_expand`` / ``_dw`` / ``_project`` (block ``i`` from 0; block 0 has
no expansion), so a builder can find the stride-4/8/16/32 outputs and a loader can match kernels by order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from toolkit.errors import UsageError

# (expansion t, output channels c, repeats n, first stride s) per stage, as in the paper's Table 2.
STAGES: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
MAX_BLOCKS = sum(n for _, _, n, _ in STAGES)  # 17 inverted-residual blocks


def block_plan(blocks: int) -> list[tuple[int, int, int]]:
    """(expansion, channels, stride) of the first ``blocks`` blocks (1..17)."""
    if not 1 <= blocks <= MAX_BLOCKS:
        raise UsageError(f"mobilenet_v2: blocks must be 1-{MAX_BLOCKS}, got {blocks}")
    plan = [(t, c, s if i == 0 else 1) for t, c, n, s in STAGES for i in range(n)]
    return plan[:blocks]


def features(keras: Any, image: Any, blocks: int = 13, prefix: str = "mnv2_") -> list[tuple[int, Any]]:
    """Build the stem and the first ``blocks`` blocks on ``image``.

    Returns ``[(stride, tensor), ...]``: the last output at each stride from 4 on (stride 4 = after block 2,
    8 = block 5, 16 = block 12 (13 blocks), 32 = block 16). The input is whatever the first convolution was
    trained on; the pretrained loader folds the pixel scaling of the source graph into it
    (:func:`fold_input_scaling`).
    """
    layers = keras.layers
    x = layers.Conv2D(32, 3, strides=2, padding="same", name=f"{prefix}conv0")(image)
    x = layers.ReLU(6.0, name=f"{prefix}conv0_relu")(x)
    stride, channels = 2, 32
    out: dict[int, Any] = {}
    for i, (t, c, s) in enumerate(block_plan(blocks)):
        name = f"{prefix}b{i}"
        y = x
        if t != 1:
            y = layers.Conv2D(channels * t, 1, name=f"{name}_expand")(y)
            y = layers.ReLU(6.0, name=f"{name}_expand_relu")(y)
        y = layers.DepthwiseConv2D(3, strides=s, padding="same", name=f"{name}_dw")(y)
        y = layers.ReLU(6.0, name=f"{name}_dw_relu")(y)
        y = layers.Conv2D(c, 1, name=f"{name}_project")(y)
        if s == 1 and c == channels:
            y = layers.Add(name=f"{name}_add")([x, y])
        x, channels, stride = y, c, stride * s
        if stride >= 4:
            out[stride] = x
    return sorted(out.items())


def conv_layers(model: Any, prefix: str = "mnv2_") -> list[Any]:
    """The backbone's convolution layers in build order (the order of the pretrained graph's conv ops)."""
    return [
        layer
        for layer in model.layers
        if layer.name.startswith(prefix) and type(layer).__name__ in ("Conv2D", "DepthwiseConv2D")
    ]


def fold_input_scaling(
    kernel: np.ndarray, bias: np.ndarray, scale: float, offset: float
) -> tuple[np.ndarray, np.ndarray]:
    """A first convolution trained on ``x * scale + offset`` rewritten to take ``x`` directly.

    conv(x * s + o) = conv_{W s}(x) + o * sum(W) per output channel (exact away from the zero-padded border).
    """
    kernel = np.asarray(kernel, np.float32)
    sums = kernel.sum(axis=tuple(range(kernel.ndim - 1)))  # over kh, kw, in-channels: one per output channel
    return (kernel * np.float32(scale)).astype(np.float32), (np.asarray(bias, np.float32) + offset * sums)
