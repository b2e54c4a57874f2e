"""Plots of stored results (matplotlib, the optional 'plot' extra): latency distributions and per-target bars.

Top panel: a box plot per configuration drawn from the stored per-run latency samples (real distributions, not
summaries). Bottom panel: p50 per model configuration, one bar per target, whiskers to p90.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import UsageError
from toolkit.fileio import atomic_path


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only; never needs a display
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install 'edge-toolkit[plot]'") from None
    return plt


def _label(r: dict[str, Any]) -> str:
    return f"{r['model_name'].removesuffix('.tflite')}\n{r['target']} t={r['threads']} {r['delegate']}"


def plot_results(results: list[dict[str, Any]], out: str | Path) -> Path:
    """Write a PNG of ``results`` (BenchStore.results(with_samples=True)) to ``out``; returns the path."""
    if not results:
        raise UsageError("no results to plot; run 'toolkit bench MODEL.tflite' first")
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise UsageError(f"--plot {out}: expected a .png file name")
    plt = _pyplot()
    ordered = sorted(
        results, key=lambda r: (r["family"], r["model_name"], r["threads"], r["delegate"], r["target"])
    )
    targets = sorted({r["target"] for r in ordered})
    configs = list(dict.fromkeys((r["model_name"], r["threads"], r["delegate"]) for r in ordered))
    width = max(8.0, 1.1 * max(len(ordered), len(configs) * max(1, len(targets)) * 0.6))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(min(width, 40.0), 10), constrained_layout=True)
    colors = {t: plt.get_cmap("tab10")(i % 10) for i, t in enumerate(targets)}

    data = [r["samples"] if len(r["samples"]) else np.array([r["p50_ms"]], np.float32) for r in ordered]
    box = top.boxplot(
        data, showfliers=True, patch_artist=True, whis=(1, 99), flierprops={"markersize": 2, "alpha": 0.4}
    )
    for patch, r in zip(box["boxes"], ordered, strict=True):
        patch.set_facecolor(colors[r["target"]])
        patch.set_alpha(0.6)
    top.set_xticks(
        range(1, len(ordered) + 1), [_label(r) for r in ordered], fontsize=7, rotation=25, ha="right"
    )
    for median in box["medians"]:
        median.set_color("black")
    top.legend(
        [box["boxes"][[r["target"] for r in ordered].index(t)] for t in targets],
        targets,
        title="target",
        fontsize=8,
    )
    low = min(float(np.min(d)) for d in data)
    high = max(float(np.max(d)) for d in data)
    if low > 0 and high / low > 10:  # preemption outliers would flatten every box on a linear axis
        top.set_yscale("log")
    top.set_ylabel("latency per invoke (ms)" + (", log scale" if top.get_yscale() == "log" else ""))
    top.set_title("latency distribution per configuration (box: p25-p75, whiskers: p1-p99)")
    top.grid(axis="y", alpha=0.3)

    step = 0.8 / max(1, len(targets))
    for ti, target in enumerate(targets):
        xs, p50, err = [], [], []
        for ci, cfg in enumerate(configs):
            match = [
                r
                for r in ordered
                if (r["model_name"], r["threads"], r["delegate"]) == cfg and r["target"] == target
            ]
            if match:
                xs.append(ci - 0.4 + step * (ti + 0.5))
                p50.append(match[-1]["p50_ms"])
                err.append(match[-1]["p90_ms"] - match[-1]["p50_ms"])
        bottom.bar(
            xs,
            p50,
            width=step * 0.9,
            color=colors[target],
            label=target,
            yerr=[np.zeros(len(err)), err],
            capsize=2,
        )
    bottom.set_xticks(
        range(len(configs)),
        [f"{m.removesuffix('.tflite')}\nt={t} {d}" for m, t, d in configs],
        fontsize=7,
        rotation=25,
        ha="right",
    )
    bottom.set_ylabel("p50 latency (ms), whisker to p90")
    bottom.set_title("p50 per target")
    bottom.legend(title="target", fontsize=8)
    bottom.grid(axis="y", alpha=0.3)

    with atomic_path(out, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return out
