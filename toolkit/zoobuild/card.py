"""Model cards for the zoo: models/<name>/README.md and models/README.md from the JSON the build wrote.

>>> text = render_card("mnist_classifier", load_recipe(folder / "recipe.toml"), folder)

Everything in a card comes from files beside it (recipe.toml, train.json, <name>*_int8.json manifests,
eval.json, protocol tables such as loo_eth_ucy.json / coco128_cv.json, PNG artifacts), so a card never states a
number that is not in a committed file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SKIP_JSON = {"eval.json", "train.json"}


def _load(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:
            return "nan"
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def md_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """A Markdown table of ``rows`` (columns: ``columns``, else every key in first-seen order)."""
    if not rows:
        return ""
    cols = columns or list(dict.fromkeys(k for row in rows for k in row))
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(_fmt(row.get(c, "")) for c in cols) + " |" for row in rows]
    return "\n".join(out)


def manifests(folder: Path) -> list[tuple[Path, dict[str, Any]]]:
    """[(int8 .tflite, its conversion manifest)] in ``folder``, by file name."""
    out = []
    for tflite in sorted(folder.glob("*_int8.tflite")):
        manifest = _load(tflite.with_suffix(".json"))
        if manifest:
            out.append((tflite, manifest))
    return out


def _metrics_rows(float_report: dict[str, Any], int8_report: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, value in float_report["metrics"].items():
        other = int8_report["metrics"].get(name)
        row: dict[str, Any] = {
            "metric": name + (" (primary)" if name == float_report["primary"] else ""),
            "float (Keras)": value,
            "int8 (TFLite)": other,
        }
        if isinstance(value, (int, float)) and isinstance(other, (int, float)):
            row["int8 - float"] = float(other) - float(value)
        rows.append(row)
    return rows


def _latency_rows(latency: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for part, result in latency.items():
        for r in result.get("results", []):
            rows.append(
                {
                    "model": part if part != "model" else r["model_name"],
                    "threads": r["threads"],
                    "batch": _batch(r),  # samples per invoke (toolkit convert --batch N): p50 is per invoke
                    "p50 ms": r["p50_ms"],
                    "p90 ms": r["p90_ms"],
                    "p99 ms": r["p99_ms"],
                    "peak RSS MB": r["peak_rss_mb"],
                }
            )
    if all(row["batch"] == 1 for row in rows):  # the column only where a model was converted with --batch N
        rows = [{k: v for k, v in row.items() if k != "batch"} for row in rows]
    return rows


def _batch(result: dict[str, Any]) -> int:
    """Samples one invoke of a bench result's model runs: its first input's first dimension (1 if unknown)."""
    shape = (result.get("inputs") or [{}])[0].get("shape") or [1]
    return int(shape[0])


def _host_line(latency: dict[str, Any]) -> str:
    for result in latency.values():
        host = result.get("host", {})
        if host:
            return (
                f"{host.get('cpu_model')} ({host.get('usable_cores')} cores, {host.get('arch')}), "
                f"{host.get('os')}, {host.get('backend')} {host.get('backend_version')}"
            )
    return "unknown host"


def _protocol_sections(folder: Path) -> list[str]:
    parts = []
    for path in sorted(folder.glob("*.json")):
        if path.name in SKIP_JSON or path.name.endswith("_int8.json"):
            continue
        data = _load(path)
        title = data.get("title", path.stem) if isinstance(data, dict) else path.stem
        parts.append(f"### {title} (`{path.name}`)\n")
        if isinstance(data, dict):
            for note in data.get("notes", []):
                parts.append(f"- {note}")
            for key, rows in data.items():
                if isinstance(rows, list) and rows and isinstance(rows[0], dict):
                    parts.append(f"\n{key}:\n\n{md_table(rows)}\n")
                elif (
                    isinstance(rows, dict)
                    and rows
                    and all(isinstance(v, (int, float, str)) for v in rows.values())
                ):
                    parts.append(f"\n{key}:\n\n{md_table([rows])}\n")  # e.g. pooled figures
            summary = {k: v for k, v in data.items() if isinstance(v, (int, float, str)) and k != "title"}
            if summary:
                parts.append("\n" + md_table([summary]) + "\n")
    return parts


def _extra_data(options: dict[str, Any]) -> list[str]:
    """Additional training SPECs a task mixes in (e.g. the behaviour task's synthetic windows)."""
    extra = options.get("extra_data") or []
    return [extra] if isinstance(extra, str) else list(extra)


def render_card(name: str, recipe: dict[str, Any], folder: Path) -> str:
    """The Markdown card of the model ``name`` whose files (recipe, manifests, eval.json, ...) are in ``folder``."""
    train = _load(folder / "train.json") or {}
    evals = _load(folder / "eval.json") or {"evals": [], "latency": {}}
    lines = [f"# {name}", "", recipe.get("description", ""), ""]
    lines += ["| | |", "|---|---|", f"| kind | `{recipe['kind']}` |"]
    for tflite, m in manifests(folder):
        io = ", ".join(f"{t['signature_name']} {t['shape']} {t['dtype']}" for t in m["inputs"])
        oo = ", ".join(f"{t['signature_name']} {t['shape']} {t['dtype']}" for t in m["outputs"])
        lines += [
            f"| file | `{tflite.name}` ({m['output']['size_bytes'] / 1024:.0f} KiB, {m['precision']}, "
            f"{m['parameters']:,} parameters, {m['macs_total'] / 1e6:.1f} M MACs) |",
            f"| inputs / outputs | {io} -> {oo} |",
        ]
    if train:
        lines += [
            f"| training | {train.get('epochs_run')} epochs ({train.get('seconds')} s on the build host), "
            f"best epoch {train.get('best_epoch')}, seed {train.get('train_config', {}).get('seed')} |",
            f"| training data | `{train.get('train_config', {}).get('data')}`"
            + "".join(f" + `{extra}`" for extra in _extra_data(train.get("task_options", {})))
            + f" ({train.get('data', {}).get('train_size')} samples), validation "
            f"`{train.get('train_config', {}).get('val_data')}` ({train.get('data', {}).get('val_size')}) |",
        ]
    lines.append("")
    for entry in evals.get("evals", []):
        f, q = entry["float"], entry["int8"]
        lines += [
            f"## {entry['label']}",
            "",
            f"`toolkit eval --data {entry['data']}`: {q['samples']} samples, "
            "float Keras model vs the int8 TFLite model, same metric code.",
            "",
            md_table(_metrics_rows(f, q)),
            "",
        ]
        for title in dict.fromkeys([*f.get("tables", {}), *q.get("tables", {})]):
            for label, report in (("float", f), ("int8", q)):
                rows = report.get("tables", {}).get(title)
                if rows:
                    lines += [f"{title} ({label}):", "", md_table(rows), ""]
        for note in dict.fromkeys([*f.get("notes", []), *q.get("notes", [])]):
            lines.append(f"- {note}")
        for art_name, art in q.get("artifacts", {}).items():
            lines += ["", f"![{art_name}]({Path(art).name})"]
        lines.append("")
    protocol = _protocol_sections(folder)
    if protocol:
        lines += ["## Protocol tables", "", *protocol, ""]
    if evals.get("latency"):
        lines += [
            "## Latency on the build host",
            "",
            f"Host: {_host_line(evals['latency'])}. Medians from "
            "`toolkit bench`; the build host is shared and noisy, compare rows of one run only.",
            "",
            md_table(_latency_rows(evals["latency"])),
            "",
        ]
    for tflite, m in manifests(folder):
        parity = m.get("parity", {})
        lines += [
            f"## Conversion: `{tflite.name}`",
            "",
            f"- mode {m['mode']}, I/O {m['io']}, calibration: "
            f"{(m.get('calibration') or {}).get('source')} ({(m.get('calibration') or {}).get('count')} samples)",
            f"- parity vs Keras on {parity.get('samples')} {parity.get('inputs')}: "
            + "; ".join(
                f"{k} max {v['max_abs_error']:.4g} / mean {v['mean_abs_error']:.4g}"
                for k, v in parity.get("outputs", {}).items()
            ),
            "- not int8: "
            + (
                ", ".join(
                    f"{e['op']} {e['dtype']} x{e['count']}" + (" (documented)" if e["documented"] else "")
                    for e in m["non_int8_ops"]
                )
                or "none"
            ),
            f"- sha256 {m['output']['sha256']}; source {m['source']['sha256'][:16]}...; "
            f"tensorflow {m['libraries'].get('tensorflow')}, keras {m['libraries'].get('keras')}",
            "",
        ]
    lines += [
        "## Reproduce",
        "",
        f"    toolkit zoo build --only {name}",
        "",
        "Recipe: [`recipe.toml`](recipe.toml).",
        "",
    ]
    return "\n".join(lines)


def render_index(models_dir: Path) -> str:
    """The zoo's index (models/README.md): one row per model folder with a recipe, and the int8 workflow table."""
    rows = []
    for folder in sorted(p for p in models_dir.iterdir() if (p / "recipe.toml").is_file()):
        evals = _load(folder / "eval.json") or {"evals": []}
        ms = manifests(folder)
        size = sum(m["output"]["size_bytes"] for _, m in ms) / 1024
        headline = ""
        if evals["evals"]:
            e = evals["evals"][0]
            primary = e["int8"]["primary"]
            headline = (
                f"{primary} {_fmt(e['float']['metrics'].get(primary))} float / "
                f"{_fmt(e['int8']['metrics'].get(primary))} int8 ({e['data']})"
            )
        p50 = [
            f"{r['p50_ms']:.2f}" + (f" (batch {_batch(r)})" if _batch(r) != 1 else "")
            for res in evals.get("latency", {}).values()
            for r in res.get("results", [])
            if r["threads"] == 2
        ]
        rows.append(
            {
                "model": f"[{folder.name}]({folder.name}/README.md)",
                "kind": ms[0][1].get("kind") if ms else "",
                "int8 KiB": round(size),
                "headline": headline,
                "p50 ms (2 threads)": ", ".join(p50),
            }
        )
    return (
        "# Model zoo\n\nSmall int8 models trained on real data (and our synthetic street scenes) by "
        "`toolkit zoo build`. Each folder holds the int8 `.tflite`, its conversion manifest, "
        "the evaluation JSON and a model card.\n\n" + md_table(rows) + "\n" + _workflow_section(models_dir)
    )


def _workflow_section(models_dir: Path) -> str:
    """The int8 trust workflow table (models/int8_workflow.json, from scripts/zoo_int8_workflow.py)."""
    data = _load(models_dir / "int8_workflow.json")
    if not data:
        return ""
    rows = []

    def cell(r: dict[str, Any], key: str) -> str:
        value, size, p50 = r.get(key), r.get(f"{key}_size"), r.get(f"{key}_p50_ms")
        if value is None:
            return "-"
        extra = f", {size / 1024:.1f} KiB, p50 {p50:.3f} ms" if size and p50 is not None else ""
        return f"{value:.4f}{extra}"

    for r in data["rows"]:
        kept = ", ".join(r.get("auto_kept") or []) or "nothing kept"
        rows.append(
            {
                "model": r["model"],
                "metric (data)": f"{r['metric']} ({r['eval']})",
                "float": f"{r['float']:.4f}",
                "PTQ int8": cell(r, "ptq"),
                "PTQ + auto-keep-float": f"{cell(r, 'auto')} ({kept})",
                "QAT int8": cell(r, "qat") if r.get("qat") is not None else f"- ({r.get('qat_note', '')})",
            }
        )
    return (
        "\n## int8 you can trust: float, PTQ, PTQ + auto-keep-float, QAT\n\nMeasured by "
        "`python scripts/zoo_int8_workflow.py` with the toolkit's own gate (the same samples for every column); "
        "p50: one thread, median of 300 invokes, three alternating rounds. Models not listed have not been run "
        "through it yet.\n\n" + md_table(rows) + "\n"
    )
