"""The Coral Edge TPU, offline: which ops of an int8 ``.tflite`` it can map, where the compiler will cut the graph,
whether the parameters fit its on-chip memory, and what a compiled ``_edgetpu.tflite`` holds. No compiler needed.

Rules from Coral's documentation ("TensorFlow models on the Edge TPU", coral.ai/docs/edgetpu/models-intro):
tensors are 8-bit quantized, of constant size, with at most the 3 innermost dimensions > 1; parameters are
constants; the ops are those of the supported-operations table, with its per-op limits; and the compiler
partitions the graph once: the first op it cannot map, and **every op after it**, run on the CPU. Two rules are
not written down and are calibrated on Coral's own compilations in ``../shared/models/coral-test-data`` (the
test checks that this module predicts exactly the CPU ops the real compiler left in each of them):
RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR map when the output is the input size or an integer multiple up to
8x (1x1 -> 33x33 and 33x33 -> 513x513 stay on the CPU), and TILE maps (compiler 16).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from toolkit.runtime.edgetpu import CUSTOM_OP, cpu_original, is_compiled
from toolkit.runtime.tflite_file import ModelFile, OpInfo, itemsize, op_options

__all__ = [
    "Compatibility",
    "CompiledSummary",
    "compatibility",
    "compiled_summary",
    "cpu_original",
    "is_compiled",
]
# On-chip memory for caching parameters, as edgetpu_compiler 16 reports it for one Edge TPU ("used" + "remaining"
# on Coral's MobileNetV2: 3.42 + 4.31 MiB). Parameters beyond it stream from host memory on every inference.
ON_CHIP_BYTES = int(7.73 * 2**20)
MAX_RESIZE_FACTOR = 8
SOFTMAX_MAX = 16000

# Supported operations and their documented limits (checked below where the file tells).
SUPPORTED: dict[str, str] = {
    "ADD": "",
    "SUB": "",
    "MUL": "",
    "MAXIMUM": "",
    "MINIMUM": "",
    "SQUARED_DIFFERENCE": "",
    "LOGISTIC": "",
    "RELU": "",
    "RELU6": "",
    "RELU_N1_TO_1": "",
    "TANH": "",
    "RSQRT": "",
    "AVERAGE_POOL_2D": "no fused activation function",
    "MAX_POOL_2D": "no fused activation function",
    "CONCATENATION": "no fused activation function; a constant input must be all zeros (padding) with 2 inputs",
    "CONV_2D": "the same dilation in x and y",
    "DEPTHWISE_CONV_2D": "the same dilation in x and y",
    "TRANSPOSE_CONV": "",
    "FULLY_CONNECTED": "default weight format; one-dimensional output",
    "L2_NORMALIZATION": "",
    "MEAN": "no reduction over the batch dimension",
    "SUM": "no reduction over the batch dimension",
    "REDUCE_MAX": "no reduction over the batch dimension",
    "REDUCE_MIN": "no reduction over the batch dimension",
    "PAD": "no padding of the batch dimension",
    "PACK": "no packing in the batch dimension",
    "SPLIT": "no splitting of the batch dimension",
    "RESHAPE": "large reshapes may not be mapped",
    "EXPAND_DIMS": "",
    "SQUEEZE": "",
    "SLICE": "",
    "TRANSPOSE": "",
    "SPACE_TO_DEPTH": "",
    "TILE": "",
    "STRIDED_SLICE": "all strides 1",
    "RESIZE_BILINEAR": "3-dimensional input and output; some sizes are left on the CPU to keep precision",
    "RESIZE_NEAREST_NEIGHBOR": "3-dimensional input and output; some sizes are left on the CPU",
    "SOFTMAX": f"one-dimensional input of at most {SOFTMAX_MAX} elements",
    "LSTM": "unidirectional only",
    "PRELU": "alpha one-dimensional",
    "QUANTIZE": "",
}
# What to do about the common blockers (the fix where one exists).
FIXES: dict[str, str] = {
    "DEQUANTIZE": "convert with full integer quantization (toolkit convert --quantize int8): no float ops inside",
    "ARG_MAX": "take the argmax on the CPU after the model (it is the last op: nothing after it is lost)",
    "BATCH_MATMUL": "the Edge TPU has no matrix-matrix product: attention and Transformer blocks run on the CPU",
    "GELU": "use ReLU (or a hard approximation) in the model",
    "HARD_SWISH": "use ReLU6 in the model",
    "GATHER": "move embedding lookups out of the model",
    "CUSTOM": "custom ops never map: replace them with builtin ops",
    "FULLY_CONNECTED": "a Dense layer on a sequence ([1, T, C]) has a 2-D output: use a 1x1 Conv2D on [1, 1, T, C] "
    "(or flatten first)",
    "SOFTMAX": "a softmax over a whole image is not mapped: drop it from the model and take the argmax of the "
    "logits on the CPU (the order of the classes is the same)",
    "RESIZE_BILINEAR": "resize by integer factors of at most 8 (e.g. two 4x steps instead of one 16x), or keep "
    "the upsampling after the last convolution",
}
FUSED_NONE = 0
QUANTIZED = frozenset({"int8", "uint8"})


@dataclass(frozen=True)
class OpVerdict:
    index: int
    op: str
    mapped: bool
    reason: str = ""  # why it cannot be mapped (empty when mapped, or "after the cut")


@dataclass
class Compatibility:
    """The offline Edge TPU report for one model (see :func:`compatibility`)."""

    path: str
    ops: list[OpVerdict]
    cut: OpVerdict | None  # the first op the compiler cannot map (None: the whole graph maps)
    model_problems: list[str] = field(
        default_factory=list
    )  # blockers for the whole model (I/O, batch, shapes)
    parameter_bytes: int = 0  # constants read by the mapped ops
    fix: str | None = None

    @property
    def mapped_ops(self) -> int:
        return sum(1 for v in self.ops if v.mapped)

    @property
    def fully_mapped(self) -> bool:
        return self.cut is None and not self.model_problems

    @property
    def fits_on_chip(self) -> bool:
        return self.parameter_bytes <= ON_CHIP_BYTES

    def cpu_ops(self) -> list[str]:
        return [v.op for v in self.ops if not v.mapped]

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "ops": len(self.ops),
            "mapped_ops": self.mapped_ops,
            "fully_mapped": self.fully_mapped,
            "model_problems": self.model_problems,
            "cut": None
            if self.cut is None
            else {"index": self.cut.index, "op": self.cut.op, "reason": self.cut.reason},
            "cpu_ops": self.cpu_ops(),
            "parameter_bytes": self.parameter_bytes,
            "on_chip_bytes": ON_CHIP_BYTES,
            "fits_on_chip": self.fits_on_chip,
            "fix": self.fix,
        }


def _big_dims(shape: tuple[int, ...]) -> int:
    """Dimensions > 1 outside the innermost three (the Edge TPU handles only those three)."""
    return sum(1 for d in shape[:-3] if d > 1)


def _spatial(shape: tuple[int, ...]) -> tuple[int, int] | None:
    return (shape[1], shape[2]) if len(shape) == 4 else None


def _resize_reason(model: ModelFile, op: OpInfo) -> str:
    src = _spatial(model.tensors[op.inputs[0]].shape)
    dst = _spatial(model.tensors[op.outputs[0]].shape)
    if src is None or dst is None:
        return "input/output is not an image tensor"
    for a, b in zip(src, dst, strict=True):
        if b == a:
            continue
        if b % a or not 1 < b // a <= MAX_RESIZE_FACTOR:
            return (
                f"resize {src[0]}x{src[1]} -> {dst[0]}x{dst[1]} is not an integer factor of at most "
                f"{MAX_RESIZE_FACTOR}: the compiler leaves such resizes on the CPU"
            )
    return ""


def _op_reason(model: ModelFile, data: bytes, op: OpInfo) -> str:
    """Why the Edge TPU cannot map ``op`` ('' when it can)."""
    name = op.op
    if name == CUSTOM_OP:
        return "already compiled for the Edge TPU"
    if name not in SUPPORTED:
        return f"{name} is not an Edge TPU operation"
    tensors = [model.tensors[i] for i in (*op.inputs, *op.outputs) if i >= 0]
    for t in tensors:
        if (
            t.constant
            and t.dtype == "int32"
            and name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")
        ):
            continue  # int32 biases are what the int8 kernels use
        if t.constant and t.dtype == "int32":
            continue  # shapes, axes, paddings
        if t.dtype not in QUANTIZED:
            return f"tensor '{t.name}' is {t.dtype}: the Edge TPU runs 8-bit quantized tensors only"
        if not t.constant and _big_dims(t.shape):
            return f"tensor '{t.name}' {list(t.shape)} has more than 3 dimensions larger than 1"
    options = op_options(data, op.index)
    if (
        name in ("AVERAGE_POOL_2D", "MAX_POOL_2D", "CONCATENATION")
        and options.get("fusedActivationFunction", FUSED_NONE) != FUSED_NONE
    ):
        return f"{name} with a fused activation"
    if name in ("CONV_2D", "DEPTHWISE_CONV_2D") and options.get("dilationWFactor", 1) != options.get(
        "dilationHFactor", 1
    ):
        return f"{name} with different dilations in x and y"
    if name in ("RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"):
        return _resize_reason(model, op)
    if name == "SOFTMAX":
        shape = model.tensors[op.inputs[0]].shape
        inner = [d for d in shape if d > 1]
        if len(inner) > 1 or (inner and inner[0] > SOFTMAX_MAX):
            return (
                f"SOFTMAX over {list(shape)}: only one-dimensional inputs of at most {SOFTMAX_MAX} elements"
            )
    if name == "FULLY_CONNECTED":
        out = model.tensors[op.outputs[0]].shape
        if len([d for d in out if d > 1]) > 1:
            return f"FULLY_CONNECTED output {list(out)} is not one-dimensional"
    return ""


def _model_problems(model: ModelFile) -> list[str]:
    problems = []
    for i in (*model.inputs, *model.outputs):
        t = model.tensors[i]
        if t.shape and t.shape[0] != 1:
            problems.append(f"'{t.name}' has batch {t.shape[0]}: export with a fixed batch of 1")
        if any(d < 1 for d in t.shape):
            problems.append(f"'{t.name}' has a dynamic shape {list(t.shape)}: export with static shapes")
    quantized = [
        op
        for op in model.ops
        if op.op != CUSTOM_OP and any(model.tensors[j].dtype in QUANTIZED for j in op.outputs if j >= 0)
    ]
    if not quantized:
        problems.append("the model is not quantized: convert with --quantize int8 (full integer)")
    return problems


def compatibility(model: ModelFile, data: bytes) -> Compatibility:
    """Predict what ``edgetpu_compiler`` maps: ops in execution order up to the first unmappable one."""
    verdicts: list[OpVerdict] = []
    cut: OpVerdict | None = None
    mapped_inputs: set[int] = set()
    for op in model.ops:
        if cut is not None:
            verdicts.append(OpVerdict(op.index, op.op, False, f"after the cut at op {cut.index} ({cut.op})"))
            continue
        reason = _op_reason(model, data, op)
        verdict = OpVerdict(op.index, op.op, not reason, reason)
        if reason:
            cut = verdict
        else:
            mapped_inputs.update(i for i in op.inputs if i >= 0)
        verdicts.append(verdict)
    params = sum(
        model.tensors[i].size * itemsize(model.tensors[i].dtype)
        for i in mapped_inputs
        if model.tensors[i].constant
    )
    fix = None
    if cut is not None:
        key = "CUSTOM" if cut.op.startswith("CUSTOM:") else cut.op
        fix = FIXES.get(key)
        if fix is None and cut.op in SUPPORTED and SUPPORTED[cut.op]:
            fix = f"keep {cut.op} within its Edge TPU limits: {SUPPORTED[cut.op]}"
        later = next(
            (
                f"{op.op} at op {op.index}"
                for op in model.ops[cut.index + 1 :]
                if op.op != cut.op and _op_reason(model, data, op)
            ),
            None,
        )
        if later is not None and fix is not None:
            fix += f"; the next blocker would be {later}"
        tail = len(model.ops) - cut.index
        if tail <= 2:
            fix = f"only the last {tail} op(s) run on the CPU, a small cost" + (
                f"; to map everything: {fix}" if fix else ""
            )
    return Compatibility(str(model.path), verdicts, cut, _model_problems(model), params, fix)


@dataclass(frozen=True)
class CompiledSummary:
    """What an ``edgetpu_compiler`` output holds: the custom op(s) and the ops left on the CPU."""

    custom_ops: int
    cpu_ops: list[str]
    original: str | None  # the CPU original beside it (``X.tflite`` for ``X_edgetpu.tflite``), when present
    original_ops: int | None

    def as_dict(self) -> dict[str, Any]:
        held = None if self.original_ops is None else self.original_ops - len(self.cpu_ops)
        return {
            "custom_ops": self.custom_ops,
            "cpu_ops": self.cpu_ops,
            "original": self.original,
            "original_ops": self.original_ops,
            "edgetpu_holds_ops": held,
        }


def compiled_summary(model: ModelFile) -> CompiledSummary | None:
    """None for a model that was not compiled for the Edge TPU."""
    if not is_compiled(model):
        return None
    from toolkit.runtime.tflite_file import read_model_file

    original = cpu_original(model.path)
    original_ops = len(read_model_file(original).ops) if original is not None else None
    return CompiledSummary(
        sum(1 for op in model.ops if op.op == CUSTOM_OP),
        [op.op for op in model.ops if op.op != CUSTOM_OP],
        str(original) if original else None,
        original_ops,
    )
