"""What a ``.tflite`` model contains: I/O and quantization, op histogram with dtypes, float islands, MACs.

Works on any TFLite file (ours or third-party) from the verified flatbuffer alone: nothing is executed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from toolkit.capabilities import BOUNDARY_OPS, DOCUMENTED_FLOAT_OPS
from toolkit.runtime.tflite_file import ModelFile, OpInfo, TensorInfo, itemsize

FLOAT_TYPES = frozenset({"float32", "float16", "float64", "bfloat16"})
QUANT_TYPES = frozenset({"int8", "uint8", "int16", "int4"})

WHY_FLOAT = (
    "runs in float: the int8 graph pays DEQUANTIZE/QUANTIZE around it and loses the integer speed-up; "
    "the Edge TPU compiler stops mapping at the first such op and runs the rest on the CPU"
)
WHY_INDEX = "an index output (argmax): integer by design; it runs on the CPU after an Edge TPU part"
WHY_INT32 = (
    "integer index/shape math, usually from a dynamic batch dimension: re-export with a fixed batch-1 "
    "signature; the Edge TPU does not map it"
)


@dataclass(frozen=True)
class OpCost:
    index: int
    op: str
    dtype: str  # activation dtype, "in->out" when the op changes type
    macs: int  # multiply-accumulates (0 for ops that are not matmul/conv-like)
    output_shape: tuple[int, ...]


def _activation_tensors(model: ModelFile, op: OpInfo) -> tuple[list[TensorInfo], list[TensorInfo]]:
    ins = [model.tensors[i] for i in op.inputs if i >= 0 and not model.tensors[i].constant]
    outs = [model.tensors[i] for i in op.outputs if i >= 0]
    return ins, outs


def op_dtype(model: ModelFile, op: OpInfo) -> str:
    ins, outs = _activation_tensors(model, op)
    src = (
        ins[0].dtype
        if ins
        else (model.tensors[op.inputs[0]].dtype if op.inputs and op.inputs[0] >= 0 else "")
    )
    dst = outs[0].dtype if outs else src
    return src if src == dst or not src else f"{src}->{dst}"


def _mac_count(model: ModelFile, op: OpInfo) -> int:
    t = model.tensors

    def shape(i: int) -> tuple[int, ...]:
        return t[i].shape if 0 <= i < len(t) else ()

    out = shape(op.outputs[0]) if op.outputs else ()
    out_size = int(np.prod(out)) if out else 0
    if op.op == "CONV_2D" and len(op.inputs) > 1:
        w = shape(op.inputs[1])  # [out_c, kh, kw, in_c]
        return out_size * int(np.prod(w[1:])) if len(w) == 4 else 0
    if op.op == "DEPTHWISE_CONV_2D" and len(op.inputs) > 1:
        w = shape(op.inputs[1])  # [1, kh, kw, out_c]
        return out_size * int(w[1] * w[2]) if len(w) == 4 else 0
    if op.op == "CONV_3D" and len(op.inputs) > 1:
        w = shape(op.inputs[1])  # [kd, kh, kw, in_c, out_c]
        return out_size * int(np.prod(w[:4])) if len(w) == 5 else 0
    if op.op == "FULLY_CONNECTED" and len(op.inputs) > 1:
        w = shape(op.inputs[1])  # [units, in]
        return out_size * int(w[-1]) if w else 0
    if op.op == "TRANSPOSE_CONV" and len(op.inputs) > 2:
        w, x = shape(op.inputs[1]), shape(op.inputs[2])  # weights [out_c, kh, kw, in_c], input NHWC
        return int(np.prod(x)) * int(w[0] * w[1] * w[2]) if len(w) == 4 and x else 0
    if op.op == "BATCH_MATMUL" and len(op.inputs) > 1:
        a = shape(op.inputs[0])
        return out_size * int(a[-1]) if a else 0
    return 0


def op_costs(model: ModelFile) -> list[OpCost]:
    return [
        OpCost(
            op.index,
            op.op,
            op_dtype(model, op),
            _mac_count(model, op),
            model.tensors[op.outputs[0]].shape if op.outputs else (),
        )
        for op in model.ops
    ]


def op_histogram(model: ModelFile) -> list[dict[str, Any]]:
    """[{op, dtype, count}] sorted by count, then name."""
    counts = Counter((op.op, op_dtype(model, op)) for op in model.ops)
    return [
        {"op": op, "dtype": dtype, "count": n}
        for (op, dtype), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def _documented_island(model: ModelFile, op: OpInfo) -> bool:
    """True for a DEQUANTIZE/QUANTIZE that only feeds / is only fed by documented float ops (e.g. LayerNorm's NEG)."""
    if op.op == "DEQUANTIZE":
        consumers = [o for o in model.ops if set(o.inputs) & set(op.outputs)]
        return bool(consumers) and all(o.op in DOCUMENTED_FLOAT_OPS for o in consumers)
    if op.op == "QUANTIZE":
        producers = [o for o in model.ops if set(o.outputs) & set(op.inputs)]
        return bool(producers) and all(o.op in DOCUMENTED_FLOAT_OPS for o in producers)
    return False


def non_int8_ops(model: ModelFile) -> list[dict[str, Any]]:
    """Ops whose activations are not 8-bit integers, grouped, with why it matters.

    Model-boundary QUANTIZE/DEQUANTIZE (float I/O) and fp16 weight DEQUANTIZE are not listed. Float ops that
    STACK.md documents as unavoidable (and the (de)quantize pair around them) are listed with ``documented``.
    """
    graph_in, graph_out = set(model.inputs), set(model.outputs)
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for op in model.ops:
        dtype = op_dtype(model, op)
        types = set(dtype.split("->"))
        if types <= QUANT_TYPES or not dtype:
            continue
        if op.op in BOUNDARY_OPS and (set(op.inputs) & graph_in or set(op.outputs) & graph_out):
            continue
        if op.op in BOUNDARY_OPS and model.tensors[op.inputs[0]].constant:
            continue  # fp16 weights dequantized once at load
        if types & FLOAT_TYPES:
            documented = op.op in DOCUMENTED_FLOAT_OPS or _documented_island(model, op)
            why = (
                DOCUMENTED_FLOAT_OPS.get(op.op, "enters/leaves a documented float op")
                if documented
                else WHY_FLOAT
            )
        elif op.op in ("ARG_MAX", "ARG_MIN") and set(op.outputs) & graph_out:
            why, documented = WHY_INDEX, True
        else:
            why, documented = WHY_INT32, False
        entry = groups.setdefault(
            (op.op, dtype),
            {"op": op.op, "dtype": dtype, "count": 0, "indices": [], "documented": documented, "why": why},
        )
        entry["count"] += 1
        entry["documented"] = entry["documented"] and documented
        entry["indices"].append(op.index)
    return sorted(groups.values(), key=lambda e: (-e["count"], e["op"]))


def undocumented_float_ops(model: ModelFile) -> list[dict[str, Any]]:
    """The non-int8 ops that are NOT explained by STACK.md: what a full-int8 model must not have."""
    return [e for e in non_int8_ops(model) if not e["documented"]]


def precision(model: ModelFile) -> str:
    """'int8' (full integer), 'mixed' (int8 with float islands), or 'float'."""
    dtypes = [set(op_dtype(model, op).split("->")) for op in model.ops if op.op not in BOUNDARY_OPS]
    quant = sum(1 for d in dtypes if d & QUANT_TYPES)
    if not quant:
        return "float"
    islands = [e for e in undocumented_float_ops(model) if set(e["dtype"].split("->")) & FLOAT_TYPES]
    return "mixed" if islands else "int8"


def tensor_summary(t: TensorInfo) -> dict[str, Any]:
    quant: dict[str, Any] | None = None
    if t.scales:
        if len(t.scales) == 1:
            quant = {"scale": t.scales[0], "zero_point": t.zero_points[0] if t.zero_points else 0}
        else:
            quant = {
                "per_channel": len(t.scales),
                "axis": t.quantized_dimension,
                "scale_min": min(t.scales),
                "scale_max": max(t.scales),
            }
    return {"name": t.name, "index": t.index, "shape": list(t.shape), "dtype": t.dtype, "quantization": quant}


def parameter_count(model: ModelFile) -> tuple[int, int]:
    """(number of constant values, their bytes) over tensors that operators read."""
    used = {i for op in model.ops for i in op.inputs if i >= 0}
    params = [model.tensors[i] for i in used if model.tensors[i].constant]
    return sum(t.size for t in params), sum(t.size * itemsize(t.dtype) for t in params)


def edgetpu_section(model: ModelFile, data: bytes) -> dict[str, Any]:
    """A compiled model: what the Edge TPU holds and what stays on the CPU; else the offline compatibility."""
    from toolkit.inspect.edgetpu import compatibility, compiled_summary

    compiled = compiled_summary(model)
    if compiled is not None:
        return {"compiled": True, **compiled.as_dict()}
    return {"compiled": False, **compatibility(model, data).as_dict()}


def analyze(model: ModelFile, data: bytes | None = None) -> dict[str, Any]:
    """Everything ``toolkit inspect`` reports, as plain JSON-able data (``data``, the file's bytes, adds the Edge
    TPU section: it reads op options)."""
    ins, outs = model.io_names()
    costs = op_costs(model)
    params, param_bytes = parameter_count(model)
    per_op = [
        {"index": c.index, "op": c.op, "dtype": c.dtype, "macs": c.macs, "output_shape": list(c.output_shape)}
        for c in costs
    ]
    macs_by_op: Counter[str] = Counter()
    for c in costs:
        macs_by_op[c.op] += c.macs
    return {
        "path": str(model.path),
        "size_bytes": model.size_bytes,
        "schema_version": model.version,
        "description": model.description,
        "subgraphs": model.subgraph_count,
        "signatures": [s.key for s in model.signatures],
        "metadata": list(model.metadata),
        "precision": precision(model),
        "inputs": [{**tensor_summary(model.tensors[i]), "signature_name": n} for n, i in ins.items()],
        "outputs": [{**tensor_summary(model.tensors[i]), "signature_name": n} for n, i in outs.items()],
        "op_count": len(model.ops),
        "op_histogram": op_histogram(model),
        "non_int8_ops": non_int8_ops(model),
        "undocumented_non_int8_ops": sum(e["count"] for e in undocumented_float_ops(model)),
        "parameters": params,
        "parameter_bytes": param_bytes,
        "macs_total": sum(c.macs for c in costs),
        "macs_by_op": dict(macs_by_op.most_common()),
        "ops": per_op,
        **({"edgetpu": edgetpu_section(model, data)} if data is not None else {}),
    }
