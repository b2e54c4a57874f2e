"""Stored results -> one table per model family, rendered as text, Markdown, CSV, JSON or HTML. Pure functions.

Rows are per (format, target, threads, delegate), newest result of each. Speed-up = p50 of the fp32 row of the
same family on the same target with the same threads and delegate, divided by this row's p50 (blank when the
family has no such fp32 row). Families are defined in toolkit.bench.modelinfo.
"""

from __future__ import annotations

import csv
import html
import io
import json
from dataclasses import asdict, dataclass
from typing import Any

FORMAT_ORDER = {"fp32": 0, "fp16": 1, "dynamic": 2, "int8": 3}
REPORT_FORMATS = ("table", "md", "csv", "json", "html")


@dataclass(frozen=True)
class Row:
    """One line of a report table: a model's stored result on one target, thread count and delegate (latencies in
    ms, size in bytes, peak RSS in MiB), with its speed-up over the fp32 model of its family."""

    format: str
    target: str
    threads: int
    delegate: str
    model_name: str
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    count: int
    size_bytes: int | None
    peak_rss_mb: float | None
    accuracy: float | None
    accuracy_metric: str | None
    speedup: float | None  # fp32 p50 / this p50, same family/target/threads/delegate
    throttled: bool


@dataclass(frozen=True)
class FamilyTable:
    """The report table of one model family: its name, the file names in it and its rows, sorted."""

    family: str
    models: tuple[str, ...]  # file names in this family
    rows: tuple[Row, ...]


def build_tables(results: list[dict[str, Any]]) -> list[FamilyTable]:
    """Group stored results (BenchStore.results()) into one table per family, with speed-ups filled in."""
    families: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        families.setdefault(result["family"], []).append(result)
    tables = []
    for family in sorted(families):
        members = families[family]
        baseline = {}
        for r in members:  # newest fp32 wins (results come oldest first)
            if r["format"] == "fp32":
                baseline[(r["target"], r["threads"], r["delegate"])] = r["p50_ms"]
        rows = []
        for r in members:
            base = baseline.get((r["target"], r["threads"], r["delegate"]))
            speedup = base / r["p50_ms"] if base and r["p50_ms"] else None
            rows.append(
                Row(
                    format=r["format"],
                    target=r["target"],
                    threads=int(r["threads"]),
                    delegate=r["delegate"],
                    model_name=r["model_name"],
                    p50_ms=r["p50_ms"],
                    p90_ms=r["p90_ms"],
                    p99_ms=r["p99_ms"],
                    mean_ms=r["mean_ms"],
                    count=int(r["count"] or 0),
                    size_bytes=r["size_bytes"],
                    peak_rss_mb=r["peak_rss_mb"],
                    accuracy=r.get("accuracy"),
                    accuracy_metric=r.get("accuracy_metric"),
                    speedup=speedup,
                    throttled=bool(r["throttled"]),
                )
            )
        rows.sort(
            key=lambda x: (x.target, x.threads, FORMAT_ORDER.get(x.format, 9), x.delegate, x.model_name)
        )
        models = tuple(sorted({r["model_name"] for r in members}))
        tables.append(FamilyTable(family, models, tuple(rows)))
    return tables


def ms(value: float | None) -> str:
    """Milliseconds for a table cell with about four significant digits (``"-"`` for None)."""
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 10 else f"{value:.2f}" if value < 100 else f"{value:.1f}"


def _cells(row: Row) -> list[str]:
    accuracy = "-" if row.accuracy is None else f"{row.accuracy_metric}={row.accuracy:.4g}"
    return [
        row.format,
        row.target,
        str(row.threads),
        row.delegate,
        ms(row.p50_ms),
        ms(row.p90_ms),
        ms(row.p99_ms),
        ms(row.mean_ms),
        "-" if row.size_bytes is None else f"{row.size_bytes / 1024:.0f}",
        "-" if row.peak_rss_mb is None else f"{row.peak_rss_mb:.0f}",
        accuracy,
        "-" if row.speedup is None else f"{row.speedup:.2f}x",
        str(row.count),
        "THROTTLED" if row.throttled else "",
    ]


HEADER = [
    "format",
    "target",
    "threads",
    "delegate",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "mean ms",
    "size KB",
    "RSS MB",
    "accuracy",
    "vs fp32",
    "runs",
    "flag",
]


def _title(table: FamilyTable) -> str:
    return f"{table.family} ({', '.join(table.models)})"


def _text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i >= 4 and i != 13 else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def describe_host(host: dict[str, Any]) -> str:
    """One line: CPU, architecture, cores, OS, Python and interpreter of a stored fingerprint."""
    governors = "/".join(host.get("governors") or []) or "n/a"
    return (
        f"{host.get('cpu_model', '?')} ({host.get('arch', '?')}, {host.get('usable_cores', '?')}/"
        f"{host.get('cores', '?')} cores), {host.get('os', '?')}, Python {host.get('python', '?')}, "
        f"{host.get('backend', '?')} {host.get('backend_version', '')}, governor {governors}".rstrip()
    )


def render(
    tables: list[FamilyTable], fmt: str = "table", hosts: dict[str, dict[str, Any]] | None = None
) -> str:
    """Render the family tables in one of REPORT_FORMATS; ``hosts`` (target -> fingerprint) adds a target legend."""
    hosts = hosts or {}
    if fmt == "json":
        return json.dumps(
            [
                {
                    "family": t.family,
                    "models": list(t.models),
                    "rows": [asdict(r) for r in t.rows],
                    "targets": {r.target: hosts.get(r.target) for r in t.rows},
                }
                for t in tables
            ],
            indent=2,
        )
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        fields = list(Row.__dataclass_fields__)
        writer.writerow(["family", *fields])
        for t in tables:
            for r in t.rows:
                writer.writerow([t.family, *("" if v is None else v for v in asdict(r).values())])
        return buffer.getvalue().rstrip("\n")
    if fmt == "md":
        parts = []
        for t in tables:
            lines = [
                f"### {_title(t)}",
                "",
                "| " + " | ".join(HEADER) + " |",
                "|" + "|".join("---:" if i >= 4 and i != 13 else "---" for i in range(len(HEADER))) + "|",
            ]
            lines += ["| " + " | ".join(_cells(r)) + " |" for r in t.rows]
            parts.append("\n".join(lines))
        if hosts:
            parts.append(
                "targets:\n\n" + "\n".join(f"- **{name}**: {describe_host(h)}" for name, h in hosts.items())
            )
        return "\n\n".join(parts)
    if fmt == "html":
        return _html(tables, hosts)
    if fmt != "table":
        raise ValueError(f"unknown report format {fmt!r}")
    text = "\n\n".join(f"== {_title(t)}\n" + _text_table(HEADER, [_cells(r) for r in t.rows]) for t in tables)
    if hosts:
        text += "\n\ntargets:\n" + "\n".join(f"  {name}: {describe_host(h)}" for name, h in hosts.items())
    return text


def _html(tables: list[FamilyTable], hosts: dict[str, dict[str, Any]]) -> str:
    esc = html.escape
    body = []
    for t in tables:
        head = "".join(f"<th>{esc(h)}</th>" for h in HEADER)
        rows = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in _cells(r)) + "</tr>" for r in t.rows)
        body.append(
            f"<h2>{esc(_title(t))}</h2>\n<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
        )
    if hosts:
        items = "".join(f"<li><b>{esc(n)}</b>: {esc(describe_host(h))}</li>" for n, h in hosts.items())
        body.append(f"<h2>targets</h2>\n<ul>{items}</ul>")
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:nth-child(-n+4),th{text-align:left}"
    )
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>toolkit bench report</title>'
        f"<style>{style}</style></head><body>\n<h1>toolkit bench report</h1>\n"
        + "\n".join(body)
        + "\n</body></html>"
    )


# -- the table printed by `toolkit bench MODEL...` -------------------------------------------------------------
RUN_HEADER = [
    "model",
    "format",
    "threads",
    "delegate",
    "load ms",
    "first ms",
    "mean ms",
    "std",
    "min",
    "p50",
    "p90",
    "p99",
    "max",
    "inf/s",
    "RSS MB",
    "size KB",
    "flag",
]


def render_run(results: list[dict[str, Any]], host: dict[str, Any], target: str) -> str:
    """The per-configuration table of one bench run, with the host line and the input source of each model."""
    rows = [
        [
            r["model_name"],
            r["format"],
            str(r["threads"]),
            r["delegate"],
            ms(r["load_ms"]),
            ms(r["first_ms"]),
            ms(r["mean_ms"]),
            ms(r["std_ms"]),
            ms(r["min_ms"]),
            ms(r["p50_ms"]),
            ms(r["p90_ms"]),
            ms(r["p99_ms"]),
            ms(r["max_ms"]),
            f"{r['throughput']:.1f}",
            f"{r['peak_rss_mb']:.0f}",
            f"{r['size_bytes'] / 1024:.0f}",
            " ".join(
                f
                for f in ("THROTTLED" if r.get("throttled") else "", "FALLBACK" if r.get("fallback") else "")
                if f
            ),
        ]
        for r in results
    ]
    widths = [
        max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(RUN_HEADER)
    ]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < 4 or i == 16 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    temp = host.get("temperature_c")
    throttle = host.get("throttle")
    lines = [
        f"target {target}: {describe_host(host)}",
        f"temperature {'n/a' if temp is None else f'{temp:.1f} C'}, throttling "
        f"{throttle['raw'] if throttle else 'n/a (' + str(host.get('throttle_note') or 'unknown') + ')'}",
        "latencies in ms over the timed runs (percentiles of per-invoke times); RSS = peak of the process "
        "measuring that configuration",
        "",
        line(RUN_HEADER),
        line(["-" * w for w in widths]),
        *(line(r) for r in rows),
        "",
    ]
    seen = set()
    for r in results:
        if r["model_name"] not in seen:
            seen.add(r["model_name"])
            tensors = ", ".join(f"{t['name']} {t['dtype']}{t['shape']}" for t in r.get("inputs") or [])
            lines.append(f"input of {r['model_name']}: {tensors} <- {r['input_source']}")
    for r in results:
        if r.get("fallback"):
            lines.append(f"FALLBACK (--fallback cpu): {r['fallback']}")
    return "\n".join(lines)
