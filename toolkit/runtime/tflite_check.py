"""Check what LiteRT's loader trusts in a parsed ``.tflite`` graph, before the native code sees it.

``allocate_tensors`` assumes a converter made the file: an int8 tensor with a zero point of -3221225472 feeding
BATCH_MATMUL segfaults it, an int8 ADD output without a scale aborts it. Each rule below mirrors an assumption
of LiteRT's InterpreterBuilder or its kernels' Prepare; a file that breaks one is refused with one line naming
the tensor (:class:`~toolkit.runtime.tflite_file.ModelFault`, exit 2). Every model a TFLite converter writes
passes: the rules only reject what no converter writes.

The rules:

* quantization: ``scale`` and ``zero_point`` of equal length; ``quantized_dimension`` inside the shape; one
  scale per tensor or one per channel of that dimension; scales finite, and > 0 on 4/8/16-bit integer tensors;
  zero points inside the tensor type's range (int8 -128..127, uint8 0..255, ...);
* a 4/8/16-bit integer tensor that an arithmetic op reads or writes carries a scale and a zero point (only
  data-movement ops such as RESHAPE or CAST take plain integers);
* shapes: no negative dimension, at most 2**31 - 1 bytes per tensor (kernels index with 32-bit ints);
* constant data: exactly shape x itemsize bytes (what LiteRT's SetTensorParametersReadOnly demands);
* the inputs an op cannot do without are present (not -1), and its outputs; every input holds data (a
  constant, a graph input, a variable or some op's output: LiteRT fails on "Input tensor N lacks data");
* elementwise ops, pools, convolutions and matmuls: the activation input(s) and the output of one type;
* types and operators known to the schema that ships with the runtime; operator versions >= 1.

What depends on one kernel's arithmetic (e.g. ADD aborts when an output scale is so small that its rescale
factor exceeds 1) is not replicated here: :mod:`toolkit.runtime.probe` catches it in a child process.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from toolkit.runtime.tflite_file import ModelFault, OpInfo, TensorInfo, itemsize

# zero-point range of the integer types that are quantized (4/8/16-bit)
QUANTIZED_RANGES: dict[str, tuple[int, int]] = {
    "int4": (-8, 7),
    "int8": (-128, 127),
    "uint8": (0, 255),
    "int16": (-32768, 32767),
    "uint16": (0, 65535),
}
INT32_RANGE = (-(2**31), 2**31 - 1)  # LiteRT keeps zero points as int32
MAX_TENSOR_BYTES = 2**31 - 1  # kernels compute flat sizes and offsets in int32
# Ops that move or reinterpret integers without arithmetic on their real values: a plain (unquantized) int8
# tensor is legal around them (e.g. a CAST to int8 in a float model). Every other op needs scale + zero point.
RAW_INTEGER_OPS = frozenset(
    "CAST RESHAPE SQUEEZE EXPAND_DIMS TRANSPOSE GATHER GATHER_ND SLICE STRIDED_SLICE PACK UNPACK SPLIT SPLIT_V "
    "TILE SHAPE BROADCAST_TO REVERSE_V2 IDENTITY".split()
)
# Ops whose listed inputs and first output have one type: kernels read the output's quantization as that of the
# inputs' type (an int8 ADD writing a float32 output divides by its scale of 0 and aborts). Hybrid ops (float
# activations, int8 weights) keep their weights out of the list: only input 0 is compared for them.
_BINARY = "ADD SUB MUL SQUARED_DIFFERENCE MAXIMUM MINIMUM"
_UNARY = (
    "RSQRT SQRT ABS NEG RELU RELU6 RELU_N1_TO_1 TANH LOGISTIC HARD_SWISH LEAKY_RELU MEAN SUM REDUCE_MAX "
    "REDUCE_MIN AVERAGE_POOL_2D MAX_POOL_2D CONV_2D DEPTHWISE_CONV_2D FULLY_CONNECTED BATCH_MATMUL"
)
SAME_TYPE_INPUTS: dict[str, tuple[int, ...]] = {
    **dict.fromkeys(_BINARY.split(), (0, 1)),
    **dict.fromkeys(_UNARY.split(), (0,)),
}
# How many leading inputs an op must have (-1: all): the kernels read them without checking for an absent
# (-1) tensor and dereference null (an ADD with input 1 = -1 segfaults). Ops with optional inputs (a convolution's
# bias, LSTM's peepholes) list only the required ones; ops not listed here are not checked.
_NEEDS_ONE = (
    "RSQRT SQRT ABS NEG EXP LOG RELU RELU6 RELU_N1_TO_1 TANH LOGISTIC HARD_SWISH LEAKY_RELU GELU SOFTMAX "
    "LOG_SOFTMAX QUANTIZE DEQUANTIZE CAST SHAPE SQUEEZE RESHAPE AVERAGE_POOL_2D MAX_POOL_2D"
)
_NEEDS_TWO = (
    "ADD SUB MUL DIV SQUARED_DIFFERENCE MAXIMUM MINIMUM POW BATCH_MATMUL GATHER TRANSPOSE MEAN SUM REDUCE_MAX "
    "REDUCE_MIN REDUCE_PROD PAD PADV2 BROADCAST_TO TILE EXPAND_DIMS CONV_2D DEPTHWISE_CONV_2D FULLY_CONNECTED "
    "SPLIT RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR ARG_MAX ARG_MIN"
)
REQUIRED_INPUTS: dict[str, int] = {
    **dict.fromkeys(_NEEDS_ONE.split(), 1),
    **dict.fromkeys(_NEEDS_TWO.split(), 2),
    **dict.fromkeys(("TRANSPOSE_CONV", "SLICE", "SPLIT_V"), 3),
    "STRIDED_SLICE": 4,
    **dict.fromkeys(("CONCATENATION", "PACK", "ADD_N"), -1),
}
_UNSIZED = frozenset({"string", "resource", "variant", "int4"})  # no fixed bytes per element (int4: packed)


def check_graph(
    tensors: Sequence[TensorInfo],
    ops: Sequence[OpInfo],
    subgraph: int = 0,
    inputs: Sequence[int] = (),
    outputs: Sequence[int] = (),
) -> None:
    """Raise :class:`ModelFault` for the first tensor or operator of a subgraph (with its ``inputs`` and
    ``outputs``) that LiteRT would trust blindly."""
    if any(i < 0 for i in (*inputs, *outputs)):
        raise ModelFault(f"subgraph {subgraph} names an absent tensor (-1) as an input or output")
    users: dict[int, list[str]] = {}
    for op in ops:
        if op.op.startswith("BUILTIN_"):
            raise ModelFault(
                f"operator {op.index} has an unknown builtin code ({op.op}); the file was made by a "
                "newer TensorFlow than this runtime knows, or is corrupt"
            )
        if op.version < 1:
            raise ModelFault(f"operator {op.index} ({op.op}) has version {op.version}; versions start at 1")
        for i in (*op.inputs, *op.outputs):
            if i >= 0:
                users.setdefault(i, []).append(op.op)
    where = f" of subgraph {subgraph}" if subgraph else ""
    written = {*inputs, *(i for op in ops for i in op.outputs)}
    for op in ops:
        fault = _missing_fault(op) or _type_fault(op, tensors) or _unwritten_fault(op, tensors, written)
        if fault:
            raise ModelFault(f"operator {op.index} ({op.op}){where}: {fault}")
    for tensor in tensors:
        fault = tensor_fault(tensor, users.get(tensor.index, []))
        if fault:
            raise ModelFault(
                f"tensor {tensor.index} '{tensor.name}'{where} ({tensor.dtype} {list(tensor.shape)}): {fault}"
            )


def _missing_fault(op: OpInfo) -> str | None:
    required = REQUIRED_INPUTS.get(op.op)
    if required is None:
        return None
    needed = len(op.inputs) if required < 0 else required
    if len(op.inputs) < needed or any(i < 0 for i in op.inputs[:needed]):
        return f"takes {needed} input(s), has {list(op.inputs)} (-1: absent)"
    if not op.outputs or any(i < 0 for i in op.outputs):
        return f"an output is absent ({list(op.outputs)})"
    return None


def _unwritten_fault(op: OpInfo, tensors: Sequence[TensorInfo], written: set[int]) -> str | None:
    for i in op.inputs:
        if i >= 0 and i not in written and not tensors[i].constant and not tensors[i].variable:
            return (
                f"reads tensor {i} '{tensors[i].name}', which holds no data (no constant, no graph input, "
                "no op writes it)"
            )
    return None


def _type_fault(op: OpInfo, tensors: Sequence[TensorInfo]) -> str | None:
    positions = SAME_TYPE_INPUTS.get(op.op)
    if positions is None or not op.outputs or op.outputs[0] < 0:
        return None
    out = tensors[op.outputs[0]]
    for k in positions:
        if k < len(op.inputs) and op.inputs[k] >= 0 and tensors[op.inputs[k]].dtype != out.dtype:
            return f"input {k} is {tensors[op.inputs[k]].dtype} but the output is {out.dtype}"
    return None


def tensor_fault(tensor: TensorInfo, used_by: Sequence[str] = ()) -> str | None:
    """What is wrong with one tensor, or None. ``used_by``: the names of the ops that read or write it."""
    if tensor.dtype.startswith("type"):
        return f"unknown tensor type {tensor.dtype.removeprefix('type')}"
    return _shape_fault(tensor) or _data_fault(tensor) or _quantization_fault(tensor, used_by)


def _shape_fault(tensor: TensorInfo) -> str | None:
    if any(d < 0 for d in tensor.shape):
        return "a negative dimension"
    elements = math.prod(tensor.shape)
    size = elements * (1 if tensor.dtype in _UNSIZED else itemsize(tensor.dtype))
    if size > MAX_TENSOR_BYTES:
        return f"{size} bytes, more than a tensor can hold (2**31 - 1)"
    return None


def _data_fault(tensor: TensorInfo) -> str | None:
    if not tensor.constant or tensor.sparse or tensor.dtype in _UNSIZED:
        return None
    expected = math.prod(tensor.shape) * itemsize(tensor.dtype)
    if tensor.buffer_bytes != expected:
        return f"buffer {tensor.buffer} holds {tensor.buffer_bytes} bytes of constant data, its shape needs {expected}"
    return None


def _quantization_fault(tensor: TensorInfo, used_by: Sequence[str]) -> str | None:
    scales, zps = tensor.scales, tensor.zero_points
    quantized_type = tensor.dtype in QUANTIZED_RANGES
    if not scales or not zps:  # LiteRT treats a tensor with either vector missing as not quantized
        arithmetic = sorted({op for op in used_by if op not in RAW_INTEGER_OPS})
        if quantized_type and arithmetic:
            return (
                f"a quantized {tensor.dtype} tensor used by {', '.join(arithmetic[:3])} without a scale and "
                "zero point"
            )
        return None
    if len(scales) != len(zps):
        return f"{len(scales)} scales but {len(zps)} zero points"
    rank, axis = len(tensor.shape), tensor.quantized_dimension
    if axis < 0 or (rank and axis >= rank):
        return f"quantized dimension {axis} outside its {rank} dimensions"
    if len(scales) > 1 and (not rank or len(scales) != tensor.shape[axis]):
        return f"{len(scales)} scales for dimension {axis} of size {tensor.shape[axis] if rank else 0}"
    if tensor.dtype in ("float32", "float16", "float64", "bfloat16"):
        return None  # LiteRT does not read the quantization of float tensors
    bad = next((s for s in scales if not math.isfinite(s) or s < 0 or (quantized_type and s == 0)), None)
    if bad is not None:
        return f"scale {bad!r} (scales must be finite and > 0)"
    low, high = QUANTIZED_RANGES.get(tensor.dtype, INT32_RANGE)
    bad_zp = next((z for z in zps if not low <= z <= high), None)
    if bad_zp is not None:
        return f"zero point {bad_zp} outside {tensor.dtype} [{low}, {high}]"
    return None
