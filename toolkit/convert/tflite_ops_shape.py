"""TFLite ops -> Keras 3 layers, part 2: layout ops (reshape, pad, resize, tile, identity, arg-max).

Exact where Keras allows: a resize uses Keras' ``Resizing`` only when it matches TFLite (half-pixel centres),
``UpSampling2D`` for 1x1 inputs (a broadcast) and integer-factor asymmetric nearest, an identity for same-size
resizes, and the registered ``TFLiteResize`` (TFLite's own index maths) otherwise, e.g. DeepLab's
align_corners=True upsampling. A TILE of a 1x1 map is an ``UpSampling2D``. Nothing here is approximated; the
registered layers only cost portability (load them after ``register_layers()``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from toolkit.convert.tflite_ops import Context
from toolkit.errors import UsageError
from toolkit.models import tflite_layers
from toolkit.runtime.tflite_file import OpInfo


def _reshape(ctx: Context, op: OpInfo) -> Any:
    shape = ctx.graph.shape(op.outputs[0])
    if not shape or shape[0] != 1:
        raise UsageError(
            f"{op.op} '{ctx.graph.tensor(op.outputs[0]).name}' to shape {list(shape)} changes the "
            "batch dimension, which a Keras model cannot do"
        )
    return keras.layers.Reshape(tuple(shape[1:]), name=ctx.name(op))(ctx.x(op))


def _pad(ctx: Context, op: OpInfo) -> Any:
    x = ctx.x(op)
    pads = ctx.graph.raw(op.inputs[1]).astype(int).reshape(-1, 2)
    value = (
        float(ctx.graph.real(op.inputs[2]).ravel()[0]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else 0.0
    )
    if len(x.shape) != 4 or pads[0].any() or pads[3].any() or value != 0.0:
        raise UsageError(
            f"{op.op} '{ctx.graph.tensor(op.outputs[0]).name}' pads {pads.tolist()} with {value}; "
            "only zero padding of the spatial axes of an NHWC map can be rebuilt"
        )
    return keras.layers.ZeroPadding2D(
        ((pads[1][0], pads[1][1]), (pads[2][0], pads[2][1])), name=ctx.name(op)
    )(x)


def _identity(ctx: Context, op: OpInfo) -> Any:
    return keras.layers.Identity(name=ctx.name(op))(ctx.x(op))


def _resize(ctx: Context, op: OpInfo) -> Any:
    x = ctx.x(op)
    o = ctx.options(op)
    align, half = bool(o.get("alignCorners")), bool(o.get("halfPixelCenters"))
    method = "bilinear" if op.op == "RESIZE_BILINEAR" else "nearest"
    size = tuple(int(s) for s in ctx.graph.raw(op.inputs[1]).ravel())
    in_hw = tuple(int(s) for s in x.shape[1:3])
    name = ctx.name(op)
    mode = "align_corners" if align else "half_pixel_centers" if half else "asymmetric"
    if in_hw == size:
        how, layer = "identity (same size)", keras.layers.Identity(name=name)
    elif in_hw == (1, 1) or (
        method == "nearest" and not align and not half and size[0] % in_hw[0] == 0 and size[1] % in_hw[1] == 0
    ):
        how = "UpSampling2D nearest (a broadcast or integer repeat: exact)"
        layer = keras.layers.UpSampling2D((size[0] // in_hw[0], size[1] // in_hw[1]), name=name)
    elif half and not align:
        how, layer = (
            "Keras Resizing (half-pixel centres: exact)",
            keras.layers.Resizing(*size, method, name=name),
        )
    else:
        how = "registered TFLiteResize (exact)"
        layer = tflite_layers.TFLiteResize(size, method, align, half, name=name)
    ctx.notes[f"{op.op} {mode} {in_hw[0]}x{in_hw[1]}->{size[0]}x{size[1]}: {how}"] += 1
    return layer(x)


def _arg_max(ctx: Context, op: OpInfo) -> Any:
    x = ctx.x(op)
    axis = int(np.ravel(ctx.graph.raw(op.inputs[1]))[0])
    dtype = ctx.graph.tensor(op.outputs[0]).dtype
    ctx.notes["ARG_MAX: registered layer TFLiteArgMax"] += 1
    return tflite_layers.TFLiteArgMax(
        axis, dtype if dtype in ("int32", "int64") else "int32", name=ctx.name(op)
    )(x)


def _tile(ctx: Context, op: OpInfo) -> Any:
    x = ctx.x(op)
    multiples = tuple(int(m) for m in np.ravel(ctx.graph.raw(op.inputs[1])))
    if multiples[0] != 1:
        raise UsageError(
            f"TILE '{ctx.graph.tensor(op.outputs[0]).name}' repeats the batch dimension, which a "
            "Keras model cannot do"
        )
    if len(x.shape) == 4 and tuple(x.shape[1:3]) == (1, 1) and multiples[3] == 1:
        ctx.notes["TILE of a 1x1 map: UpSampling2D (a broadcast: exact)"] += 1
        return keras.layers.UpSampling2D(multiples[1:3], name=ctx.name(op))(x)
    ctx.notes["TILE: registered layer TFLiteTile"] += 1
    return tflite_layers.TFLiteTile(multiples, name=ctx.name(op))(x)


BUILDERS: dict[str, Callable[[Context, OpInfo], Any]] = {
    "RESHAPE": _reshape,
    "SQUEEZE": _reshape,
    "PAD": _pad,
    "PADV2": _pad,
    "RESIZE_BILINEAR": _resize,
    "RESIZE_NEAREST_NEIGHBOR": _resize,
    "QUANTIZE": _identity,
    "DEQUANTIZE": _identity,
    "ARG_MAX": _arg_max,
    "TILE": _tile,
}
