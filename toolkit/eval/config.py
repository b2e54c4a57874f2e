"""Defaults for ``toolkit eval`` in one typed place."""

from __future__ import annotations

from dataclasses import dataclass


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
