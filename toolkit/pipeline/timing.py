"""Per-stage timings of the pipeline in fixed-size rings: percentiles without growth on runs of any length."""

from __future__ import annotations

import threading
from collections.abc import Mapping

import numpy as np


class StageTimes:
    """Milliseconds per stage per frame; the last ``window`` samples of each stage are kept.

    ``add`` is called from two threads (inference and output worker), hence the lock. A stage that does not run
    on every frame (segmentation) simply has fewer samples.
    """

    def __init__(self, window: int = 8192) -> None:
        self.window = int(window)
        self._rings: dict[str, np.ndarray] = {}
        self._counts: dict[str, int] = {}
        self._totals: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, stage_ms: Mapping[str, float]) -> None:
        """Record one frame's timings, ``{stage name: milliseconds}``; a new name gets its own ring."""
        with self._lock:
            for name, value in stage_ms.items():
                ring = self._rings.get(name)
                if ring is None:
                    # np.full writes every page now: np.zeros' lazily mapped pages would make resident memory
                    # creep for the first ``window`` frames and look like a leak in a soak test.
                    ring = self._rings[name] = np.full(self.window, np.nan)
                    self._counts[name] = 0
                    self._totals[name] = 0.0
                ring[self._counts[name] % self.window] = value
                self._counts[name] += 1
                self._totals[name] += float(value)

    def samples(self, name: str) -> np.ndarray:
        """The kept samples of ``name`` (empty when it never ran)."""
        with self._lock:
            ring = self._rings.get(name)
            if ring is None:
                return np.zeros(0)
            return ring[: min(self._counts[name], self.window)].copy()

    def percentile(self, name: str, q: float) -> float | None:
        """The ``q``-th percentile (0-100) of the kept samples of ``name`` in ms, or None when it never ran."""
        values = self.samples(name)
        return float(np.percentile(values, q)) if values.size else None

    def summary(self) -> dict[str, dict[str, float | int]]:
        """``{stage: {"count", "p50", "p90", "mean"}}`` in milliseconds (mean over the whole run)."""
        out: dict[str, dict[str, float | int]] = {}
        for name in list(self._rings):
            values = self.samples(name)
            p50, p90 = np.percentile(values, [50, 90])
            with self._lock:
                count, total = self._counts[name], self._totals[name]
            out[name] = {
                "count": count,
                "p50": round(float(p50), 3),
                "p90": round(float(p90), 3),
                "mean": round(total / max(count, 1), 3),
            }
        return out
