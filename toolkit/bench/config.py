"""Defaults of ``toolkit bench`` in one typed place; CLI flags override them (validated in toolkit.cli.bench_cmd)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from toolkit.config import SEED_RANGE, THREADS_RANGE, Limits, check_ranges


@dataclass(frozen=True)
class BenchConfig:
    """Options of one ``toolkit bench`` run (numeric keys are range-checked on construction)."""

    threads: tuple[int, ...] = ()  # interpreter thread counts to measure; () = every core the process may use
    delegate: str = "xnnpack"  # xnnpack | none | edgetpu | path to a delegate .so (capabilities.DELEGATES)
    fallback: str | None = None  # "cpu": measure on the CPU when the delegate is missing (said in the result)
    warmup: int = 10  # untimed invokes after the first one, so caches and thread pools settle
    runs: int = 100  # timed invokes per configuration (ignored when seconds is set)
    seconds: float | None = None  # time budget per configuration instead of a fixed number of runs
    seed: int = 0  # seed of the random inputs used when no real sample fits the model
    max_samples_stored: int = 100_000  # per-run latencies kept in the database (evenly strided beyond this)
    isolate: bool = True  # measure each configuration in its own child process so peak RSS is per model
    connect_timeout: int = 10  # --remote: SSH connect timeout in seconds

    LIMITS: ClassVar[Limits] = {  # valid values of numeric keys (the bench flags are checked against these)
        "threads": THREADS_RANGE,  # each thread count
        "warmup": (0, 1_000_000),
        "runs": (1, 10_000_000),
        "seconds": (0.01, 86_400.0),  # up to a day per configuration; inf ran forever (issue 15)
        "seed": SEED_RANGE,
        "max_samples_stored": (1, 10_000_000),
        "connect_timeout": (1, 600),
    }

    def __post_init__(self) -> None:
        check_ranges(self, "bench config")
