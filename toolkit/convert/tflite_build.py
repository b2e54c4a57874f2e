"""Rebuild a (cut) TFLite graph as a functional Keras 3 model from the op builders of
:mod:`toolkit.convert.tflite_ops` and :mod:`toolkit.convert.tflite_ops_shape`.

Imports Keras at import time. After every op the Keras shape is checked against the TFLite tensor's shape, so a
semantic slip fails loudly (exit 1, "please report") instead of producing a model that silently disagrees.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from toolkit.convert import tflite_ops, tflite_ops_shape
from toolkit.convert.tflite_graph import Graph
from toolkit.convert.tflite_ops import Context
from toolkit.errors import ToolkitError
from toolkit.runtime.tflite_file import OpInfo

BUILDERS: dict[str, Callable[[Context, OpInfo], Any]] = {**tflite_ops.BUILDERS, **tflite_ops_shape.BUILDERS}


def build_model(
    graph: Graph,
    ops: list[OpInfo],
    inputs: list[int],
    outputs: list[int],
    input_range: str,
    input_size: tuple[int, int] | None,
    model_name: str,
) -> tuple[Any, Context]:
    """The functional Keras model computing ``outputs`` from ``inputs`` with ``ops`` (already validated)."""
    ctx = Context(graph, resized_input=input_size is not None)
    keras_inputs = [_input(ctx, index, input_range, input_size) for index in inputs]
    for op in ops:
        if op.op == "DEQUANTIZE" and graph.is_constant(op.outputs[0]):
            continue  # a float16 weight: folded into its consumer
        value = BUILDERS[op.op](ctx, op)
        _check_shape(ctx, op, value)
        ctx.values[op.outputs[0]] = value
    result = {graph.layer_names[i]: ctx.values[i] for i in outputs}
    model = keras.Model(keras_inputs[0] if len(keras_inputs) == 1 else keras_inputs, result, name=model_name)
    return model, ctx


def _input(ctx: Context, index: int, input_range: str, input_size: tuple[int, int] | None) -> Any:
    tensor = ctx.graph.tensor(index)
    shape = list(tensor.shape[1:])
    if input_size is not None:
        shape[0:2] = input_size
    name = ctx.graph.layer_names[index]
    ctx.used.add(name)
    layer_input = keras.Input(shape=tuple(shape), name=name)
    value = layer_input
    if input_range in ("uint8", "unit"):  # pixels (0-255, or / 255) -> the real value the input represents
        scale, zp = tensor.scales[0], tensor.zero_points[0]
        shift = 128 if tensor.dtype == "int8" else 0  # an int8 input holds pixel - 128
        factor = 255.0 if input_range == "unit" else 1.0
        rescale = keras.layers.Rescaling(scale * factor, offset=-(zp + shift) * scale, name=f"{name}_real")
        value = rescale(value)
        ctx.used.add(f"{name}_real")
    ctx.values[index] = value
    return layer_input


def _check_shape(ctx: Context, op: OpInfo, value: Any) -> None:
    want = tuple(ctx.graph.shape(op.outputs[0])[1:])
    got = tuple(value.shape[1:])
    if ctx.resized_input and len(want) == len(got) and got[-1:] == want[-1:]:
        return  # spatial sizes follow the new input size
    if got != want:
        raise ToolkitError(
            f"rebuilding {op.op} '{ctx.graph.tensor(op.outputs[0]).name}' gave shape {list(got)}, "
            f"the TFLite tensor has {list(want)}; please report this model"
        )
