"""Human-readable text for ``toolkit inspect``."""

from __future__ import annotations

from typing import Any


def human_count(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:.0f}"


def _quant(q: dict[str, Any] | None) -> str:
    if not q:
        return "-"
    if "per_channel" in q:
        return f"per-channel x{q['per_channel']} (axis {q['axis']})"
    return f"scale={q['scale']:.6g} zp={q['zero_point']}"


def render_report(info: dict[str, Any], show_ops: bool = False) -> str:
    lines = [
        f"{info['path']}",
        f"  size {info['size_bytes'] / 1024:.1f} KiB, {info['op_count']} ops, precision: {info['precision']}, "
        f"parameters {human_count(info['parameters'])} ({info['parameter_bytes'] / 1024:.1f} KiB), "
        f"MACs {human_count(info['macs_total'])}",
    ]
    if info["signatures"]:
        lines.append(f"  signatures: {', '.join(info['signatures'])}")
    for title, key in (("inputs", "inputs"), ("outputs", "outputs")):
        lines.append(f"  {title}:")
        for t in info[key]:
            lines.append(f"    {t['signature_name']:<20} {str(t['shape']):<20} {t['dtype']:<8} {_quant(t['quantization'])}")
    lines.append("  op histogram (op, activation dtype, count, MACs):")
    macs = info["macs_by_op"]
    for row in info["op_histogram"]:
        m = macs.get(row["op"], 0)
        lines.append(f"    {row['op']:<28} {row['dtype']:<18} {row['count']:>5}  {human_count(m) if m else '':>8}")
    non = info["non_int8_ops"]
    if info["precision"] == "float":
        lines.append("  not int8: the whole model runs in float (convert with --quantize int8 for integer-only "
                     "devices such as the Edge TPU)")
    elif non:
        lines.append("  not int8:")
        for e in non:
            tag = " (documented)" if e["documented"] else ""
            lines.append(f"    {e['op']} {e['dtype']} x{e['count']}{tag}: {e['why']}")
    else:
        lines.append("  not int8: none (every op runs in int8)")
    if show_ops:
        lines.append("  ops:")
        for op in info["ops"]:
            lines.append(f"    {op['index']:>4} {op['op']:<26} {op['dtype']:<16} {str(op['output_shape']):<20} "
                         f"{human_count(op['macs']) if op['macs'] else ''}")
    return "\n".join(lines)
