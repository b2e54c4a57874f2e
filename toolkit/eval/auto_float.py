"""``convert --auto-keep-float``: keep the worst int8 layers in float, one at a time, until the accuracy drop is
within ``--max-drop``; report each step's metric and latency so the cost of every kept layer is visible.

Order: the layers of ``toolkit quant-report``, worst rmse/scale first. Each step reconverts with one more layer
kept in float (selective quantization), scores float and converted on the same samples (the accuracy gate) and
times the converted model (median of 50 single-thread invokes in this process).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

MAX_LAYERS = 8  # give up after keeping this many layers in float: the model needs QAT or better calibration


def p50_ms(path: Path, runs: int = 50) -> float:
    """Median single-thread latency of ``path`` on zero inputs (a cost comparison between steps, not a benchmark)."""
    from toolkit.runtime import Runner

    with Runner(path, num_threads=1) as runner:
        runner.set_inputs({n: np.zeros(s.shape, s.dtype) for n, s in runner.inputs.items()})
        runner.invoke()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            runner.invoke()
            times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


def auto_keep_float(
    model: Path,
    out: Path,
    config: Any,
    eval_data: str,
    max_drop: float | None,
    limit: int | None = None,
    task: str | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> tuple[Any, Any, list[dict[str, Any]]]:
    """Returns (the final ConvertResult, its GateResult, the steps); the final model is written to ``out``."""
    from toolkit.convert import convert
    from toolkit.convert.quant_report import quant_report
    from toolkit.eval.gate import accuracy_gate

    def step(kept: tuple[str, ...]) -> tuple[Any, Any, dict[str, Any]]:
        say(f"auto-keep-float: converting with {len(kept)} layer(s) in float")
        result = convert(model, out, replace(config, keep_float=kept))
        gate = accuracy_gate(model, out, eval_data, max_drop, limit, task=task)
        record = {
            "kept_float": [p.strip("^$").replace("\\", "") for p in kept],
            "metric": gate.metric,
            "converted": gate.converted_value,
            "drop": gate.drop,
            "passed": gate.passed,
            "p50_ms": p50_ms(out),
        }
        return result, gate, record

    result, gate, first = step(())
    steps = [first]
    if gate.passed:
        return result, gate, steps
    say("auto-keep-float: ranking layers by their int8 error")
    report = quant_report(model, config.calib, config)
    layers = list(dict.fromkeys(e.layer for e in report.worst_first()))
    kept: tuple[str, ...] = ()
    for layer in layers[:MAX_LAYERS]:
        kept = (*kept, f"^{re.escape(layer)}$")
        result, gate, record = step(kept)
        steps.append(record)
        if gate.passed:
            break
    return result, gate, steps
