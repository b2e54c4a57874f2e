"""One local ``toolkit bench`` run: validate everything first, then measure each configuration and hand each
result to a callback (the CLI stores it at once, so an interrupted run keeps what it finished)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from toolkit.bench.config import BenchConfig
from toolkit.bench.measure import MeasureSpec, measure, measure_isolated
from toolkit.capabilities import DELEGATES
from toolkit.errors import UsageError


def check_models(paths: Sequence[str | Path]) -> list[Path]:
    """Every path must be a sound .tflite file (verified in Python, without the native loader)."""
    from toolkit.runtime import read_model_file

    checked = []
    for path in paths:
        read_model_file(path)
        checked.append(Path(path))
    return checked


def check_delegate(name: str) -> None:
    """Accept a delegate name from capabilities.DELEGATES or the path of an existing ``.so``; else UsageError."""
    if name in DELEGATES:
        return
    if not Path(name).is_file():
        raise UsageError(
            f"delegate library not found: {name} (give the path of a delegate .so, or one of "
            f"{', '.join(DELEGATES)})"
        )


def resolve_config(config: BenchConfig) -> BenchConfig:
    """``config`` with empty ``threads`` replaced by every usable core; UsageError for a thread count < 1, runs < 1,
    warmup < 0 or seconds <= 0."""
    from toolkit.runtime import default_threads

    if not config.threads:
        config = replace(config, threads=(default_threads(),))
    if any(t < 1 for t in config.threads):
        raise UsageError(f"threads must be >= 1, got {list(config.threads)}")
    if config.runs < 1 or config.warmup < 0 or (config.seconds is not None and config.seconds <= 0):
        raise UsageError("runs must be >= 1, warmup >= 0 and seconds > 0")
    return config


def bench_models(
    models: Sequence[str | Path],
    config: BenchConfig,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Measure every model x thread count with ``config``; returns the result dicts in measuring order.

    ``on_result`` is called with each result as soon as it is measured; ``log`` with one status line per step.
    """
    config = resolve_config(config)
    paths = check_models(models)
    check_delegate(config.delegate)
    say = log or (lambda text: print(text, file=sys.stderr, flush=True))
    results = []
    for path in paths:
        for threads in config.threads:
            spec = MeasureSpec(
                model=str(path),
                threads=threads,
                delegate=config.delegate,
                fallback=config.fallback,
                warmup=config.warmup,
                runs=config.runs,
                seconds=config.seconds,
                seed=config.seed,
                max_samples=config.max_samples_stored,
            )
            what = f"{config.seconds:g} s" if config.seconds else f"{config.runs} runs"
            say(f"bench: {path.name} threads={threads} delegate={config.delegate} ({what}) ...")
            result = measure_isolated(spec) if config.isolate else measure(spec)
            if threads == config.threads[0] and result.get("model_check"):
                say(f"bench: {path.name}: {result['model_check']}")
            if result.get("fallback"):
                say(f"bench: warning: {result['fallback']}")
            say(
                f"bench: {path.name} threads={threads}: p50 {result['p50_ms']:.3f} ms, p99 "
                f"{result['p99_ms']:.3f} ms over {result['count']} runs"
            )
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results
