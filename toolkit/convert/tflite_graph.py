"""Read a ``.tflite`` graph for rebuilding it in Keras: dequantized constants, op options, names, cuts, strides.

Pure Python + numpy on top of :mod:`toolkit.runtime.tflite_file` (no TensorFlow), so a file that cannot be
rebuilt (an Edge TPU compilation, a custom op, a truncated file) is refused in well under a second, before Keras
loads. What it offers:

* :data:`SUPPORTED_OPS` -- the ops :mod:`toolkit.convert.tflite_ops` can rebuild (capability data: it drives
  validation, ``toolkit import --help`` and the manifest);
* :func:`load_graph` -> :class:`Graph` -- constants dequantized as ``(q - zero_point) * scale`` (per channel along
  the quantized dimension when the tensor has several scales; float16 weights behind a DEQUANTIZE are folded);
* :func:`resolve_outputs` / :func:`needed_ops` -- cut the graph at chosen tensors and keep only what they need;
* :func:`feature_tensors` -- the 4-D activations with their stride relative to the input (backbone cut points).

Limits: subgraph 0 only (control flow ops are not supported anyway); batch-1 graphs (the batch dimension is the
Keras batch dimension and must never be merged into another one).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from toolkit.config import suggest
from toolkit.errors import UsageError
from toolkit.runtime.tflite_file import (
    ModelFile,
    OpInfo,
    TensorInfo,
    op_options,
    read_model_bytes,
    tensor_data,
)

# op -> how it is rebuilt (one line each; shown by `toolkit import --help`).
SUPPORTED_OPS: dict[str, str] = {
    "CONV_2D": "Conv2D (stride, dilation, SAME/VALID, fused activation; groups=1)",
    "DEPTHWISE_CONV_2D": "DepthwiseConv2D (depth multiplier, dilation)",
    "FULLY_CONNECTED": "Dense (flattening a rank > 2 input first)",
    "ADD": "Add, or a constant operand layer",
    "SUB": "Subtract, or a constant operand layer",
    "MUL": "Multiply, or a constant operand layer",
    "CONCATENATION": "Concatenate",
    "PAD": "ZeroPadding2D (spatial, zero padding)",
    "PADV2": "ZeroPadding2D (spatial, padding with real 0)",
    "AVERAGE_POOL_2D": "AveragePooling2D",
    "MAX_POOL_2D": "MaxPooling2D",
    "MEAN": "GlobalAveragePooling2D (over H and W)",
    "RESHAPE": "Reshape (batch kept)",
    "SQUEEZE": "Reshape",
    "SOFTMAX": "Softmax",
    "LOGISTIC": "sigmoid",
    "TANH": "tanh",
    "RELU": "ReLU",
    "RELU6": "ReLU(6)",
    "RELU_N1_TO_1": "clip to [-1, 1]",
    "LEAKY_RELU": "LeakyReLU",
    "HARD_SWISH": "hard_swish",
    "RESIZE_BILINEAR": "Resizing, or an exact align_corners / asymmetric resize layer",
    "RESIZE_NEAREST_NEIGHBOR": "Resizing / UpSampling2D, or an exact index resize layer",
    "QUANTIZE": "identity (the Keras model is float)",
    "DEQUANTIZE": "identity, or folded into a float16 weight",
    "ARG_MAX": "registered arg-max layer",
    "TILE": "UpSampling2D (1x1 input) or a registered tile layer",
}
SUPPORTED_SUMMARY = (
    "conv/depthwise/fully-connected, add/sub/mul, concatenation, pad, average/max pool, mean, "
    "reshape/squeeze, resize bilinear/nearest, tile, softmax/logistic/tanh/relu/relu6/hard-swish, "
    "quantize/dequantize, arg-max"
)
# ops whose result does not depend on the spatial size (allowed when building for another input size)
SIZE_FREE = frozenset(
    "CONV_2D DEPTHWISE_CONV_2D ADD SUB MUL CONCATENATION PAD PADV2 MEAN LOGISTIC TANH RELU RELU6 RELU_N1_TO_1 "
    "LEAKY_RELU HARD_SWISH QUANTIZE DEQUANTIZE ARG_MAX SOFTMAX MAX_POOL_2D AVERAGE_POOL_2D".split()
)
EDGETPU_OP = "CUSTOM:edgetpu-custom-op"
_FOLDABLE = ("DEQUANTIZE",)  # an op of a constant input that is itself a constant (float16 weights)


@dataclass(frozen=True)
class FeatureTensor:
    """A 4-D activation tensor: a candidate cut point (``outputs=[name]``) for a pretrained backbone."""

    name: str  # the TFLite tensor name
    layer: str  # the Keras layer that produces it in the rebuilt model
    shape: tuple[int, ...]
    stride: float | None  # input size / tensor size (ceil division); None for a non-image input
    op: str
    deepest_at_stride: bool = False  # the last tensor at this stride in graph order (before it shrinks)


@dataclass
class Graph:
    """A parsed graph plus what rebuilding needs: the file bytes, producers, unique Keras-safe names."""

    model: ModelFile
    data: bytes
    sha256: str
    producer: dict[int, int] = field(default_factory=dict)  # tensor index -> index of the op that writes it

    def tensor(self, index: int) -> TensorInfo:
        """The :class:`TensorInfo` at tensor ``index`` of the main graph."""
        return self.model.tensors[index]

    def options(self, op: OpInfo) -> dict[str, object]:
        """The builtin options of ``op`` as a dict of the schema's camelCase fields (``{}`` when it has none)."""
        return op_options(self.data, op.index)

    @cached_property
    def layer_names(self) -> dict[int, str]:
        """Tensor index -> a unique Keras-safe layer name: the signature name of a model input or output, else
        the tensor's name (its first ';' part). Activations are named before constants, so a bias that shares
        an activation's first part never takes its name."""
        names: dict[int, str] = {}
        taken: set[str] = set()
        signature = {index: name for part in self.model.io_names() for name, index in part.items()}
        ordered = sorted(
            self.model.tensors,
            key=lambda t: (t.index not in signature, t.index not in self.producer, t.index),
        )
        for tensor in ordered:
            text = signature.get(tensor.index) or tensor.name.split(";")[0]
            base = _sanitize(text) or f"tensor_{tensor.index}"
            name = base if base not in taken else f"{base}_{tensor.index}"
            taken.add(name)
            names[tensor.index] = name
        return names

    def is_constant(self, index: int) -> bool:
        """A tensor with stored data, or a DEQUANTIZE of one (float16 weights)."""
        if self.tensor(index).constant:
            return True
        op = self.producer.get(index)
        return (
            op is not None
            and self.model.ops[op].op in _FOLDABLE
            and self.is_constant(self.model.ops[op].inputs[0])
        )

    def raw(self, index: int) -> np.ndarray:
        """The stored values of a constant tensor (integers for shapes, axes, sizes, paddings)."""
        return tensor_data(self.data, self.tensor(index))

    def real(self, index: int) -> np.ndarray:
        """A constant tensor's real values as float32: dequantized, per channel where it has several scales."""
        tensor = self.tensor(index)
        if not tensor.constant:
            op = self.model.ops[self.producer[index]]  # a folded DEQUANTIZE (is_constant said so)
            return self.real(op.inputs[0])
        return dequantize(tensor, self.raw(index))

    def shape(self, index: int) -> tuple[int, ...]:
        """The shape the file stores for tensor ``index``."""
        return self.tensor(index).shape


def dequantize(tensor: TensorInfo, raw: np.ndarray) -> np.ndarray:
    """``(q - zero_point) * scale`` as float32; along ``quantized_dimension`` for per-channel tensors."""
    values = raw.astype(np.float32)
    if not tensor.scales or not np.issubdtype(raw.dtype, np.integer):
        return values
    scales = np.asarray(tensor.scales, np.float32)
    zps = np.asarray(tensor.zero_points or [0] * len(scales), np.float32)
    if len(scales) > 1:
        axis_shape = [1] * raw.ndim
        axis_shape[tensor.quantized_dimension] = len(scales)
        scales, zps = scales.reshape(axis_shape), zps.reshape(axis_shape)
    return ((values - zps) * scales).astype(np.float32)


def is_index(graph: Graph, index: int) -> bool:
    """An integer tensor without quantization: indices (ARG_MAX), not real values."""
    t = graph.tensor(index)
    return t.dtype in ("int32", "int64") and not t.scales


def load_graph(path: str | Path) -> Graph:
    """Parse and verify a .tflite file (UsageError with one line for a missing, truncated or non-TFLite file)."""
    from toolkit.fileio import sha256_bytes

    data, model = read_model_bytes(path)
    graph = Graph(model=model, data=data, sha256=sha256_bytes(data))
    for op in model.ops:
        for out in op.outputs:
            graph.producer[out] = op.index
    return graph


def _sanitize(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_")


def resolve_outputs(graph: Graph, names: list[str] | None) -> list[int]:
    """Tensor indices for ``names`` (full tensor names, their first ';' part, Keras layer names or signature
    output names); the graph's own outputs when ``names`` is None. Unknown names: UsageError with examples."""
    if not names:
        return list(graph.model.outputs)
    lookup: dict[str, int] = {}
    for tensor in graph.model.tensors:
        if tensor.constant or tensor.index not in graph.producer:
            continue
        for key in (tensor.name, tensor.name.split(";")[0], graph.layer_names[tensor.index]):
            lookup.setdefault(key, tensor.index)
    lookup.update(graph.model.io_names()[1])
    found, unknown = [], []
    for name in names:
        if name in lookup:
            found.append(lookup[name])
        elif name in {graph.tensor(i).name for i in graph.model.inputs}:
            raise UsageError(
                f"--outputs '{name}' is the model input; choose a tensor computed from it "
                "(toolkit import MODEL --list)"
            )
        else:
            unknown.append(name)
    if unknown:
        examples = [f.layer for f in feature_tensors(graph) if f.deepest_at_stride][:4]
        raise UsageError(
            f"unknown output tensor{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}"
            f"{suggest(unknown[0], lookup)}; pass tensor or layer names as listed by "
            f"'toolkit import MODEL --list', e.g. {', '.join(examples) or 'none'}"
        )
    return list(dict.fromkeys(found))


def needed_ops(graph: Graph, outputs: list[int]) -> list[OpInfo]:
    """The ops that ``outputs`` depend on, in graph (topological) order; constant subgraphs are not walked."""
    keep: set[int] = set()
    stack = list(outputs)
    seen: set[int] = set()
    while stack:
        index = stack.pop()
        if index in seen or index < 0:
            continue
        seen.add(index)
        op_index = graph.producer.get(index)
        if op_index is None or graph.is_constant(index):
            continue
        keep.add(op_index)
        stack.extend(graph.model.ops[op_index].inputs)
    return [op for op in graph.model.ops if op.index in keep]


def graph_inputs(graph: Graph, ops: list[OpInfo]) -> list[int]:
    """The graph inputs that ``ops`` read (in the graph's input order)."""
    read = {i for op in ops for i in op.inputs}
    return [i for i in graph.model.inputs if i in read]


def check_supported(ops: list[OpInfo]) -> None:
    """UsageError (one line) naming every op of ``ops`` that cannot be rebuilt, with counts and a way out."""
    missing = Counter(op.op for op in ops if op.op not in SUPPORTED_OPS)
    if not missing:
        return
    listed = ", ".join(f"{name} ({n} op{'s' if n > 1 else ''})" for name, n in missing.most_common())
    if EDGETPU_OP in missing:
        why = "an Edge TPU compilation; import the CPU .tflite it was compiled from"
    elif any(name.startswith(("CUSTOM:", "FlexDelegate", "BUILTIN_")) for name in missing):
        why = "a custom op with no builtin definition; cut the graph before it with --outputs (see --list)"
    else:
        why = "not supported yet; cut the graph before it with --outputs (see --list)"
    raise UsageError(f"cannot rebuild {listed}: {why}; supported: {SUPPORTED_SUMMARY}")


def stride_of(input_hw: tuple[int, int], hw: tuple[int, int]) -> float:
    """The integer s with ceil(input / s) == size on both axes (SAME-padded strides), else input / size."""
    (ih, iw), (h, w) = input_hw, hw
    for s in range(1, max(ih, iw) + 1):
        if math.ceil(ih / s) == h and math.ceil(iw / s) == w:
            return float(s)
    return round(ih / h, 3)


def feature_tensors(graph: Graph) -> list[FeatureTensor]:
    """Every 4-D activation written by an op, in graph order, with its stride relative to the first 4-D input
    (None for a 1x1 global map). ``deepest_at_stride`` flags the last tensor of each stride while the strides
    still grow (the backbone): the tensor just before the resolution drops, e.g. MobileNetV2's expand ReLU6."""
    image = next((graph.shape(i) for i in graph.model.inputs if len(graph.shape(i)) == 4), None)
    found: list[FeatureTensor] = []
    for op in graph.model.ops:
        for index in op.outputs:
            shape = graph.shape(index)
            if len(shape) != 4 or graph.is_constant(index):
                continue
            globl = shape[1:3] == (1, 1) and image is not None and image[1:3] != (1, 1)
            stride = stride_of(image[1:3], shape[1:3]) if image and not globl else None
            found.append(
                FeatureTensor(graph.tensor(index).name, graph.layer_names[index], shape, stride, op.op)
            )
    out, top = [], 0.0
    for i, feature in enumerate(found):
        following = found[i + 1].stride if i + 1 < len(found) else None
        growing = feature.stride is not None and feature.stride >= top and float(feature.stride).is_integer()
        # a global map, an upsampling head or an odd size ends the backbone: stop flagging
        top = max(top, feature.stride) if growing else float("inf")
        deepest = growing and following != feature.stride
        out.append(FeatureTensor(**{**feature.__dict__, "deepest_at_stride": deepest}))
    return out
