"""Defaults for ``toolkit eval`` in one typed place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from toolkit.config import SEED_RANGE, THREADS_RANGE, Limits, check_ranges


@dataclass(frozen=True)
class EvalConfig:
    limit: int | None = None  # score at most this many samples (None: the whole split)
    batch_size: int = 64  # Keras batch; .tflite models run one sample at a time (batch-1 signature)
    threads: int | None = None  # interpreter threads for .tflite (None: all cores)
    out_dir: str | None = None  # where artifacts (e.g. the VAE sample grid PNG) go; None: beside the model
    seed: int = 0  # any sampling inside the evaluation (e.g. VAE prior samples)
    baselines: bool = True  # also score the classical baseline (HOG, constant velocity) on the same samples
    part: str | None = None  # a named sub-model of a .keras file
    companion: str | None = None  # a second model some kinds need (e.g. a VAE encoder's decoder .tflite)
    task: str | None = None  # score a model of no toolkit kind as this kind (its I/O matched by position)
    trust_model: bool = False  # unsafe .keras deserialization (Lambda layers) and SavedModel directories

    LIMITS: ClassVar[Limits] = {  # valid values of numeric keys (the eval flags are checked against these)
        "limit": (1, 10**9),
        "batch_size": (1, 65_536),
        "threads": THREADS_RANGE,
        "seed": SEED_RANGE,
    }

    def __post_init__(self) -> None:
        check_ranges(self, "eval config")
