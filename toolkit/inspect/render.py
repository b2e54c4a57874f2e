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
    if info.get("model_check"):
        lines.append(f"  check: {info['model_check']}")
    if info["signatures"]:
        lines.append(f"  signatures: {', '.join(info['signatures'])}")
    for title, key in (("inputs", "inputs"), ("outputs", "outputs")):
        lines.append(f"  {title}:")
        for t in info[key]:
            lines.append(
                f"    {t['signature_name']:<20} {str(t['shape']):<20} {t['dtype']:<8} {_quant(t['quantization'])}"
            )
    lines.append("  op histogram (op, activation dtype, count, MACs):")
    macs = info["macs_by_op"]
    for row in info["op_histogram"]:
        m = macs.get(row["op"], 0)
        lines.append(
            f"    {row['op']:<28} {row['dtype']:<18} {row['count']:>5}  {human_count(m) if m else '':>8}"
        )
    non = info["non_int8_ops"]
    if info["precision"] == "float":
        lines.append(
            "  not int8: the whole model runs in float (convert with --quantize int8 for integer-only "
            "devices such as the Edge TPU)"
        )
    elif non:
        lines.append("  not int8:")
        for e in non:
            tag = " (documented)" if e["documented"] else ""
            lines.append(f"    {e['op']} {e['dtype']} x{e['count']}{tag}: {e['why']}")
    else:
        lines.append("  not int8: none (every op runs in int8)")
    if "edgetpu" in info:
        lines.extend(render_edgetpu(info["edgetpu"]))
    if show_ops:
        lines.append("  ops:")
        for op in info["ops"]:
            lines.append(
                f"    {op['index']:>4} {op['op']:<26} {op['dtype']:<16} {str(op['output_shape']):<20} "
                f"{human_count(op['macs']) if op['macs'] else ''}"
            )
    return "\n".join(lines)


def _runs(ops: list[str], limit: int = 12) -> str:
    """['A', 'A', 'B'] -> 'A x2, B' (consecutive runs, in graph order); long lists as counts per op."""
    if len(ops) > limit:
        from collections import Counter

        counts = ", ".join(f"{op} x{n}" if n > 1 else op for op, n in Counter(ops).most_common())
        return f"{len(ops)} ops: {counts}"
    out: list[str] = []
    for op in ops:
        if out and out[-1].split(" x")[0] == op:
            head, _, n = out[-1].partition(" x")
            out[-1] = f"{head} x{int(n or 1) + 1}"
        else:
            out.append(op)
    return ", ".join(out)


def render_edgetpu(e: dict[str, Any]) -> list[str]:
    """The Edge TPU lines of ``toolkit inspect``."""
    from pathlib import Path

    if e["compiled"]:
        lines = [
            "  Edge TPU: compiled by edgetpu_compiler -- needs an Edge TPU and libedgetpu.so.1 to run "
            "(--delegate edgetpu); parameters and MACs above count the CPU part only"
        ]
        held = (
            f", holding {e['edgetpu_holds_ops']} of the {e['original_ops']} ops of {Path(e['original']).name}"
            if e["original"]
            else ""
        )
        lines.append(f"    on the Edge TPU: {e['custom_ops']} edgetpu-custom-op{held}")
        lines.append(f"    on the CPU: {_runs(e['cpu_ops']) if e['cpu_ops'] else 'nothing'}")
        return lines
    if e["model_problems"]:
        return [
            "  Edge TPU (offline check): cannot be compiled as it is:",
            *[f"    {p}" for p in e["model_problems"]],
        ]
    budget = f"{e['parameter_bytes'] / 2**20:.2f} of the ~{e['on_chip_bytes'] / 2**20:.1f} MiB on-chip memory"
    if e["fully_mapped"]:
        head = f"  Edge TPU (offline check): all {e['ops']} ops map; parameters {budget}"
    else:
        cut = e["cut"]
        head = (
            f"  Edge TPU (offline check): {e['mapped_ops']} of {e['ops']} ops map; the compiler cuts at op "
            f"{cut['index']} {cut['op']}: {cut['reason']}"
        )
    lines = [head]
    if not e["fully_mapped"]:
        lines.append(f"    on the CPU from there: {_runs(e['cpu_ops'])}")
        lines.append(f"    parameters of the mapped part: {budget}")
        if e["fix"]:
            lines.append(f"    fix: {e['fix']}")
    if not e["fits_on_chip"]:
        lines.append(
            "    the parameters exceed the on-chip memory: the rest streams from host memory on every "
            "inference (slower); a smaller model or a pipelined multi-TPU compile avoids it"
        )
    return lines
