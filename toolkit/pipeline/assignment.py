"""Optimal assignment (the Hungarian problem) in numpy: rectangular cost matrices, forbidden pairs, cost gating.

:func:`linear_sum_assignment` returns the same optimum as ``scipy.optimize.linear_sum_assignment`` (scipy is not
a device dependency, so it is only the test oracle). It is the shortest-augmenting-path method that scipy uses
(Crouse, "On implementing 2D rectangular assignment algorithms", IEEE TAES 2016): one Dijkstra search per row,
each step vectorised over the columns, so a tracker's 20 x 20 matrix costs a few hundred numpy operations.

:func:`match` is what a tracker wants: pairs whose cost is above ``max_cost`` are never returned, and the
solver is free to leave a row or column unmatched instead of being forced into a bad pair. It solves the
extended problem that ``lap.lapjv(..., cost_limit=...)`` solves for ByteTrack: every row and every column may
be left unmatched at a cost of ``max_cost / 2``, so a pair is only matched when its cost is below ``max_cost``
and the total (matched costs + unmatched penalties) is minimal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class InfeasibleAssignment(ValueError):
    """No complete assignment avoids the forbidden (``inf``) pairs."""


def linear_sum_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost assignment of ``min(n_rows, n_cols)`` pairs.

    Takes an (n, m) array of finite costs or ``+inf`` for forbidden pairs. Returns ``(rows, cols)``, int arrays
    of equal length sorted by row, such that ``cost[rows, cols].sum()`` is minimal. Raises
    :class:`InfeasibleAssignment` when every complete assignment uses a forbidden pair, ``ValueError`` for NaN,
    ``-inf`` or a non-2-D input.
    """
    matrix = np.asarray(cost, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"cost must be a 2-D matrix, got shape {matrix.shape}")
    if np.isnan(matrix).any() or np.isneginf(matrix).any():
        raise ValueError("cost matrix contains NaN or -inf")
    if matrix.size == 0:
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty.copy()
    transposed = matrix.shape[1] < matrix.shape[0]
    if transposed:  # the search runs over rows; make rows the shorter side
        matrix = matrix.T
    col_for_row = _solve(matrix)
    if transposed:
        order = np.argsort(col_for_row)
        return col_for_row[order], order.astype(np.intp)
    return np.arange(matrix.shape[0], dtype=np.intp), col_for_row


def _solve(cost: np.ndarray) -> np.ndarray:
    """Shortest augmenting paths for an (nr, nc) matrix with nr <= nc; returns the column of each row."""
    n_rows, n_cols = cost.shape
    u = np.zeros(n_rows)  # row duals
    v = np.zeros(n_cols)  # column duals
    col_for_row = np.full(n_rows, -1, dtype=np.intp)
    row_for_col = np.full(n_cols, -1, dtype=np.intp)
    for start in range(n_rows):
        shortest = np.full(n_cols, np.inf)
        path = np.full(n_cols, -1, dtype=np.intp)
        seen_rows = np.zeros(n_rows, dtype=bool)
        seen_cols = np.zeros(n_cols, dtype=bool)
        min_val = 0.0
        row = start
        sink = -1
        while sink < 0:
            seen_rows[row] = True
            open_cols = ~seen_cols
            reduced = min_val + cost[row] - u[row] - v
            better = open_cols & (reduced < shortest)
            path[better] = row
            shortest[better] = reduced[better]
            candidates = np.flatnonzero(open_cols)
            values = shortest[candidates]
            lowest = values.min()
            if not np.isfinite(lowest):
                raise InfeasibleAssignment("no complete assignment avoids the forbidden (inf) pairs")
            ties = candidates[values == lowest]
            free = ties[row_for_col[ties] < 0]
            col = int(free[0]) if free.size else int(ties[0])  # prefer ending the path at a free column
            min_val = float(lowest)
            seen_cols[col] = True
            if row_for_col[col] < 0:
                sink = col
            else:
                row = int(row_for_col[col])
        # Dual update keeps reduced costs non-negative (uses the assignment *before* augmenting).
        u[start] += min_val
        others = seen_rows.copy()
        others[start] = False
        u[others] += min_val - shortest[col_for_row[others]]
        v[seen_cols] -= min_val - shortest[seen_cols]
        # Augment along the path back to the start row.
        col = sink
        while True:
            row = int(path[col])
            row_for_col[col] = row
            col_for_row[row], col = col, int(col_for_row[row])
            if row == start:
                break
    return col_for_row


@dataclass(frozen=True)
class Matching:
    """Result of :func:`match`: matched (row, col) pairs and the rows / columns left alone."""

    pairs: np.ndarray  # (k, 2) int: row index, column index; sorted by row
    unmatched_rows: np.ndarray  # (n - k,) int, ascending
    unmatched_cols: np.ndarray  # (m - k,) int, ascending


def match(cost: np.ndarray, max_cost: float) -> Matching:
    """Gated assignment: minimise matched costs + ``max_cost / 2`` per unmatched row and per unmatched column.

    Takes an (n, m) cost matrix (``inf`` allowed: never matched) and the gate ``max_cost`` (> 0). Every returned
    pair has ``cost <= max_cost``; a row is left unmatched rather than forced onto a far column.
    """
    matrix = np.asarray(cost, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"cost must be a 2-D matrix, got shape {matrix.shape}")
    if not max_cost > 0:
        raise ValueError(f"max_cost must be > 0, got {max_cost}")
    n, m = matrix.shape
    if n == 0 or m == 0:
        return Matching(np.zeros((0, 2), np.intp), np.arange(n, dtype=np.intp), np.arange(m, dtype=np.intp))
    allowed = matrix <= max_cost
    # A row or column with no allowed pair can only stay unmatched, whatever the others do: solve the rest only
    # (a frame's many low-score detections far from every track cost nothing this way).
    live_rows, live_cols = np.flatnonzero(allowed.any(axis=1)), np.flatnonzero(allowed.any(axis=0))
    gated = np.where(allowed, matrix, np.inf)[np.ix_(live_rows, live_cols)]
    n_live, m_live = gated.shape
    # Extended (n + m) square matrix [[C, R], [K, 0]] (as lap.lapjv's cost_limit): any row may take a dummy
    # column and any column a dummy row, each at max_cost / 2; dummies pair with each other for free.
    extended = np.full((n_live + m_live, m_live + n_live), max_cost / 2.0)
    extended[:n_live, :m_live] = gated
    extended[n_live:, m_live:] = 0.0
    rows, cols = linear_sum_assignment(extended)
    real = (rows < n_live) & (cols < m_live)
    pairs = np.stack([live_rows[rows[real]], live_cols[cols[real]]], axis=1).astype(np.intp)
    matched_rows = np.zeros(n, bool)
    matched_cols = np.zeros(m, bool)
    matched_rows[pairs[:, 0]] = True
    matched_cols[pairs[:, 1]] = True
    return Matching(pairs, np.flatnonzero(~matched_rows), np.flatnonzero(~matched_cols))
