"""TFLite ops -> Keras 3 layers, part 1: the compute ops (conv, depthwise, dense, element-wise, pools,
activations) and the :class:`Context` every builder shares.

Imports Keras at import time (import it only when building). A builder takes the op and returns the Keras tensor
of its output; the layer that writes a TFLite tensor is named after it (``Graph.layer_names``), helper layers get
a suffix (``_pre`` before a separate activation, ``_flat`` before a Dense). Batch norm is already folded into
the conv weights and biases of these graphs. Fused activations become the layer's activation; graphs from the
old TOCO quantizer instead fold ReLU / ReLU6 into a uint8 / int8 output range of [0, x] with fused NONE, and
:func:`fused_code` restores them (without that, MobileNetV2's expand convs would have no ReLU6 at all).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from toolkit.convert.tflite_graph import Graph
from toolkit.errors import UsageError
from toolkit.models import tflite_layers
from toolkit.runtime.tflite_file import OpInfo

ACTIVATIONS = {0: None, 1: "relu", 3: "relu6", 4: "tanh"}  # TFLite ActivationFunctionType -> Keras activation
RELU_N1_TO_1 = 2
PADDING = {0: "same", 1: "valid"}  # TFLite Padding enum; TF's SAME == TFLite SAME (extra pad bottom/right)


@dataclass
class Context:
    """What builders share: the graph, Keras tensors built so far, the names used, notes for the manifest."""

    graph: Graph
    values: dict[int, Any] = field(default_factory=dict)  # tensor index -> Keras tensor
    used: set[str] = field(default_factory=set)
    notes: Counter = field(default_factory=Counter)  # "how an op was rebuilt" -> count
    resized_input: bool = False

    def x(self, op: OpInfo, k: int = 0) -> Any:
        """The Keras tensor already built for input ``k`` of ``op``. Raises UsageError when that input is a
        constant, which the op's builder cannot take as a Keras tensor."""
        index = op.inputs[k]
        if index not in self.values:
            raise UsageError(
                f"{op.op} '{self.graph.tensor(op.outputs[0]).name}': input {k} "
                f"'{self.graph.tensor(index).name}' is a constant, which is not supported there"
            )
        return self.values[index]

    def name(self, op: OpInfo, suffix: str = "") -> str:
        """A layer name for ``op`` not used yet: its output's Keras-safe name plus ``suffix``, then ``_2``, ``_3``...
        when taken; the name is recorded as used."""
        base = self.graph.layer_names[op.outputs[0]] + suffix
        name, n = base, 1
        while name in self.used:
            n += 1
            name = f"{base}_{n}"
        self.used.add(name)
        return name

    def options(self, op: OpInfo) -> dict[str, Any]:
        """The builtin options of ``op`` (see :meth:`Graph.options`)."""
        return self.graph.options(op)


def _activation(code: int, op: OpInfo) -> tuple[str | None, bool]:
    """(Keras activation, needs a separate [-1, 1] clip) for a fused activation code."""
    if code == RELU_N1_TO_1:
        return None, True
    if code not in ACTIVATIONS:
        raise UsageError(f"{op.op} with fused activation code {code} (SIGN_BIT) cannot be rebuilt")
    return ACTIVATIONS[code], False


def fused_code(ctx: Context, op: OpInfo) -> int:
    """The op's fused activation, or the one its output quantization range implies: graphs from the old TOCO
    quantizer fold ReLU / ReLU6 into the uint8 range ([0, 6] after a conv named .../Relu6, fused NONE)."""
    code = int(ctx.options(op).get("fusedActivationFunction", 0))
    t = ctx.graph.tensor(op.outputs[0])
    if code != 0 or t.dtype not in ("uint8", "int8") or len(t.scales) != 1:
        return code
    info = np.iinfo(t.dtype)
    if t.zero_points[0] != info.min:
        return code
    top = (info.max - info.min) * t.scales[0]
    implied = 3 if abs(top - 6.0) <= 3 * t.scales[0] else 1
    ctx.notes[
        f"{op.op} with fused NONE and a [0, {top:.3g}] {t.dtype} output range: "
        f"{ACTIVATIONS[implied]} (what the int8 graph computes)"
    ] += 1
    return implied


def then_activate(ctx: Context, op: OpInfo, make: Callable[[str], Any], code: int) -> Any:
    """Apply ``make(name)``; a fused activation becomes a separate layer that takes the tensor's name."""
    act, clip = _activation(code, op)
    if act is None and not clip:
        return make(ctx.name(op))
    value = make(ctx.name(op, "_pre"))
    if clip:
        return tflite_layers.TFLiteClip(-1.0, 1.0, name=ctx.name(op))(value)
    return keras.layers.Activation(act, name=ctx.name(op))(value)


def _bias(ctx: Context, op: OpInfo, units: int) -> np.ndarray:
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        return ctx.graph.real(op.inputs[2]).reshape(units)
    return np.zeros(units, np.float32)


def _weighted(
    ctx: Context, op: OpInfo, cls: type, x: Any, weights: list[np.ndarray], *args: Any, **kwargs: Any
) -> Any:
    """Build ``cls(*args, **kwargs)`` with the op's fused activation, call it on ``x``, then load ``weights``."""
    act, clip = _activation(fused_code(ctx, op), op)
    layer = cls(*args, activation=act, use_bias=True, name=ctx.name(op, "_pre" if clip else ""), **kwargs)
    value = layer(x)
    layer.set_weights(weights)
    if clip:
        value = tflite_layers.TFLiteClip(-1.0, 1.0, name=ctx.name(op))(value)
    return value


def _conv_common(ctx: Context, op: OpInfo) -> dict[str, Any]:
    o = ctx.options(op)
    strides = (o["strideH"], o["strideW"])
    dilation = (o.get("dilationHFactor", 1), o.get("dilationWFactor", 1))
    if max(strides) > 1 and max(dilation) > 1:
        raise UsageError(
            f"{op.op} '{ctx.graph.tensor(op.outputs[0]).name}' has both stride {strides} and "
            f"dilation {dilation}, which Keras cannot express"
        )
    return {"strides": strides, "dilation_rate": dilation, "padding": PADDING[o["padding"]]}


def _conv2d(ctx: Context, op: OpInfo) -> Any:
    x = ctx.x(op)
    kernel = ctx.graph.real(op.inputs[1])  # (out, kh, kw, in)
    out_ch, kh, kw, in_ch = kernel.shape
    if in_ch != x.shape[-1]:
        raise UsageError(
            f"grouped CONV_2D '{ctx.graph.tensor(op.outputs[0]).name}' ({x.shape[-1]} input "
            f"channels, {in_ch} per filter) cannot be rebuilt"
        )
    return _weighted(
        ctx,
        op,
        keras.layers.Conv2D,
        x,
        [kernel.transpose(1, 2, 3, 0), _bias(ctx, op, out_ch)],
        out_ch,
        (kh, kw),
        **_conv_common(ctx, op),
    )


def _depthwise(ctx: Context, op: OpInfo) -> Any:
    x = ctx.x(op)
    kernel = ctx.graph.real(op.inputs[1])  # (1, kh, kw, in * multiplier); channel c * m + k as in TF
    _, kh, kw, out_ch = kernel.shape
    in_ch = int(x.shape[-1])
    multiplier = out_ch // in_ch
    weights = [kernel.reshape(kh, kw, in_ch, multiplier), _bias(ctx, op, out_ch)]
    return _weighted(
        ctx,
        op,
        keras.layers.DepthwiseConv2D,
        x,
        weights,
        (kh, kw),
        depth_multiplier=multiplier,
        **_conv_common(ctx, op),
    )


def _fully_connected(ctx: Context, op: OpInfo) -> Any:
    x = ctx.x(op)
    o = ctx.options(op)
    if o.get("weightsFormat", 0) != 0:
        raise UsageError("FULLY_CONNECTED with shuffled weights cannot be rebuilt")
    kernel = ctx.graph.real(op.inputs[1])  # (units, in)
    units, depth = kernel.shape
    if len(x.shape) > 2 and not o.get("keepNumDims"):
        if int(np.prod(x.shape[1:])) != depth:
            raise UsageError(
                f"FULLY_CONNECTED '{ctx.graph.tensor(op.outputs[0]).name}' merges the batch "
                "dimension, which a Keras model cannot do"
            )
        x = keras.layers.Reshape((depth,), name=ctx.name(op, "_flat"))(x)
    return _weighted(ctx, op, keras.layers.Dense, x, [kernel.T, _bias(ctx, op, units)], units)


_MERGE = {
    "ADD": ("add", keras.layers.Add),
    "SUB": ("sub", keras.layers.Subtract),
    "MUL": ("mul", keras.layers.Multiply),
}


def _binary(ctx: Context, op: OpInfo) -> Any:
    kind, merge = _MERGE[op.op]
    const = [ctx.graph.is_constant(i) for i in op.inputs[:2]]
    code = fused_code(ctx, op)
    if all(const):
        raise UsageError(
            f"{op.op} of two constants ('{ctx.graph.tensor(op.outputs[0]).name}') cannot be rebuilt"
        )
    if any(const):
        c_index = op.inputs[0] if const[0] else op.inputs[1]
        value = ctx.graph.real(c_index)
        x = ctx.x(op, 1 if const[0] else 0)
        ctx.notes[f"{op.op} with a constant operand: registered layer TFLiteConstantOp"] += 1

        def make(name: str) -> Any:
            layer = tflite_layers.TFLiteConstantOp(kind, value.shape, constant_first=const[0], name=name)
            out = layer(x)
            layer.set_weights([value])
            return out

        return then_activate(ctx, op, make, code)
    a, b = ctx.x(op, 0), ctx.x(op, 1)
    return then_activate(ctx, op, lambda name: merge(name=name)([a, b]), code)


def _concat(ctx: Context, op: OpInfo) -> Any:
    o = ctx.options(op)
    parts = [ctx.x(op, k) for k in range(len(op.inputs))]
    return then_activate(
        ctx,
        op,
        lambda name: keras.layers.Concatenate(axis=int(o["axis"]), name=name)(parts),
        int(o.get("fusedActivationFunction", 0)),
    )


def _pool(ctx: Context, op: OpInfo) -> Any:
    o = ctx.options(op)
    x = ctx.x(op)
    size = (o["filterHeight"], o["filterWidth"])
    if ctx.resized_input and tuple(size) == tuple(ctx.graph.shape(op.inputs[0])[1:3]) and size != (1, 1):
        raise UsageError(
            f"{op.op} '{ctx.graph.tensor(op.outputs[0]).name}' pools the whole original "
            f"{size[0]}x{size[1]} map; it depends on the input size: cut before it with --outputs"
        )
    cls = keras.layers.AveragePooling2D if op.op == "AVERAGE_POOL_2D" else keras.layers.MaxPooling2D
    return then_activate(
        ctx,
        op,
        lambda name: cls(
            size, strides=(o["strideH"], o["strideW"]), padding=PADDING[o["padding"]], name=name
        )(x),
        int(o.get("fusedActivationFunction", 0)),
    )


def _mean(ctx: Context, op: OpInfo) -> Any:
    x = ctx.x(op)
    axes = sorted(int(a) % len(x.shape) for a in np.ravel(ctx.graph.raw(op.inputs[1])))
    if len(x.shape) != 4 or axes != [1, 2]:
        raise UsageError(
            f"MEAN over axes {axes} of a rank-{len(x.shape)} tensor cannot be rebuilt (only the "
            "spatial mean of an NHWC map)"
        )
    keep = bool(ctx.options(op).get("keepDims", False))
    return keras.layers.GlobalAveragePooling2D(keepdims=keep, name=ctx.name(op))(x)


def _softmax(ctx: Context, op: OpInfo) -> Any:
    x = ctx.x(op)
    beta = float(ctx.options(op).get("beta", 1.0))
    if beta != 1.0:
        layer = tflite_layers.TFLiteConstantOp("mul", (), name=ctx.name(op, "_beta"))
        x = layer(x)
        layer.set_weights([np.float32(beta)])
    return keras.layers.Softmax(axis=-1, name=ctx.name(op))(x)


def _activation_op(ctx: Context, op: OpInfo) -> Any:
    x = ctx.x(op)
    name = ctx.name(op)
    if op.op == "RELU":
        return keras.layers.ReLU(name=name)(x)
    if op.op == "RELU6":
        return keras.layers.ReLU(max_value=6.0, name=name)(x)
    if op.op == "RELU_N1_TO_1":
        return tflite_layers.TFLiteClip(-1.0, 1.0, name=name)(x)
    if op.op == "LEAKY_RELU":
        return keras.layers.LeakyReLU(negative_slope=float(ctx.options(op)["alpha"]), name=name)(x)
    keras_name = {"LOGISTIC": "sigmoid", "TANH": "tanh", "HARD_SWISH": "hard_swish"}[op.op]
    return keras.layers.Activation(keras_name, name=name)(x)


BUILDERS: dict[str, Callable[[Context, OpInfo], Any]] = {
    "CONV_2D": _conv2d,
    "DEPTHWISE_CONV_2D": _depthwise,
    "FULLY_CONNECTED": _fully_connected,
    "ADD": _binary,
    "SUB": _binary,
    "MUL": _binary,
    "CONCATENATION": _concat,
    "AVERAGE_POOL_2D": _pool,
    "MAX_POOL_2D": _pool,
    "MEAN": _mean,
    "SOFTMAX": _softmax,
    "LOGISTIC": _activation_op,
    "TANH": _activation_op,
    "RELU": _activation_op,
    "RELU6": _activation_op,
    "RELU_N1_TO_1": _activation_op,
    "LEAKY_RELU": _activation_op,
    "HARD_SWISH": _activation_op,
}
