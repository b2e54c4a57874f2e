"""Latency samples -> summary statistics, and the compact form the samples are stored in. Pure functions."""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class LatencyStats:
    """Summary of one run's per-invoke latencies, in milliseconds (see :func:`summarize`)."""

    count: int  # number of timed invokes
    mean_ms: float
    std_ms: float  # population standard deviation
    min_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    throughput: float  # inferences per second of one stream: 1000 / mean_ms

    def as_dict(self) -> dict[str, float]:
        """All fields as a JSON-ready dict."""
        return asdict(self)


def summarize(samples_ms: np.ndarray) -> LatencyStats:
    """Summary of per-invoke latencies in milliseconds (percentiles by linear interpolation, as numpy's default)."""
    values = np.asarray(samples_ms, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no latency samples to summarize")
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    mean = float(values.mean())
    return LatencyStats(
        count=int(values.size),
        mean_ms=mean,
        std_ms=float(values.std()),
        min_ms=float(values.min()),
        p50_ms=float(p50),
        p90_ms=float(p90),
        p99_ms=float(p99),
        max_ms=float(values.max()),
        throughput=1000.0 / mean if mean > 0 else float("inf"),
    )


def thin(samples_ms: np.ndarray, limit: int) -> np.ndarray:
    """At most ``limit`` samples, taken at an even stride so the distribution's shape is kept."""
    values = np.asarray(samples_ms, dtype=np.float32)
    if values.size <= limit:
        return values
    idx = np.linspace(0, values.size - 1, limit).round().astype(np.int64)
    return values[idx]


def pack_samples(samples_ms: np.ndarray) -> bytes:
    """float32 milliseconds, little-endian, zlib-compressed: what the database stores."""
    return zlib.compress(np.asarray(samples_ms, dtype="<f4").tobytes(), 6)


def unpack_samples(blob: bytes | None) -> np.ndarray:
    """Inverse of :func:`pack_samples`: the stored latencies as a float32 array in ms (empty for None or b"")."""
    if not blob:
        return np.zeros(0, dtype=np.float32)
    return np.frombuffer(zlib.decompress(blob), dtype="<f4").astype(np.float32)
