"""The behaviour model's coordinate frame: each track rotated so that its last observed step points along +x.

Training, evaluation and the camera pipeline all call these two functions around the model, so the model only
ever sees tracks in this "heading frame" and its predictions are rotated back the same way:

>>> track_n, rotation = normalise(obs_rel)            # (N, T, 2) relative to the last point -> model input
>>> future_rel = denormalise(model(track_n)["future"], rotation)

Why: pedestrians have no preferred compass direction, but they do have a preferred direction relative to their
own motion (keep going, veer a little, slow down). In the heading frame every window of a straight walker looks
the same whatever way it faces, so a small model learns deviations from constant velocity from far fewer samples,
and the int8 ranges of the output stay narrow (y is small, x mostly positive). Rotation augmentation is implied:
a rotated window normalises to exactly the same input.

int8: the model's built-in constant-velocity path repeats the last step (last two points) up to 12 times, so
their input quantization error is multiplied by up to 12, and one per-tensor int8 scale covers the whole track.
Left in metres, the oldest point of a fast walker (-6 m and beyond) would set that scale to ~0.03 m. So the two
newest points stay in metres and the older ones are scaled by ``OLDER_SCALE`` (a linear encoding the model
learns): the input range shrinks ~3x and the extrapolated step is quantized ~3x finer.

The heading is the direction of the last observed step (the step the constant-velocity baseline repeats). When
that step is shorter than ``MIN_STEP_M`` (a standing person, tracking noise), the direction from the first to the
last observed point is used; if that is short too, the track is left unrotated. numpy only (device path).
"""

from __future__ import annotations

import numpy as np

MIN_STEP_M = 0.02  # shorter last steps (metres, 0.05 m/s at 0.4 s/step) give no reliable heading
OLDER_SCALE = (
    0.25  # points before the last observed step enter the model scaled by this (int8 input precision)
)


def headings(tracks: np.ndarray, min_step: float = MIN_STEP_M) -> np.ndarray:
    """(N, T >= 2, 2) tracks -> (N, 2) unit heading (cos, sin) of each track's motion, as described above."""
    t = np.asarray(tracks, dtype=np.float64)
    if t.ndim != 3 or t.shape[-1] != 2 or t.shape[1] < 2:
        raise ValueError(f"tracks must be shaped (N, T >= 2, 2), got {t.shape}")
    last = t[:, -1] - t[:, -2]
    overall = t[:, -1] - t[:, 0]
    last_len = np.linalg.norm(last, axis=-1)
    overall_len = np.linalg.norm(overall, axis=-1)
    direction = np.where(
        (last_len >= min_step)[:, None],
        last,
        np.where((overall_len >= min_step)[:, None], overall, [1.0, 0.0]),
    )
    return direction / np.linalg.norm(direction, axis=-1, keepdims=True)


def rotations(heading: np.ndarray) -> np.ndarray:
    """(N, 2) unit headings -> (N, 2, 2) matrices R with ``points @ R`` = points in the heading frame."""
    c, s = heading[:, 0], heading[:, 1]
    # Columns are the frame's axes: x along the heading (c, s), y to its left (-s, c).
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)


def normalise(tracks: np.ndarray, min_step: float = MIN_STEP_M) -> tuple[np.ndarray, np.ndarray]:
    """(N, T, 2) tracks relative to their last point -> (float32 model input ``track``, (N, 2, 2) rotation).

    The tracks must already be relative to the last observed point (its row stays (0, 0)). They are rotated into
    the heading frame, and every point before the last step is scaled by ``OLDER_SCALE`` (see the module notes).
    """
    rotation = rotations(headings(tracks, min_step))
    track = np.asarray(tracks, np.float64) @ rotation
    track[:, :-2] *= OLDER_SCALE
    return track.astype(np.float32), rotation


def denormalise(points: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """(N, K, 2) points in the heading frame (e.g. the model's ``future``) -> float32 (N, K, 2) in the input frame."""
    return (np.asarray(points, np.float64) @ np.swapaxes(rotation, -1, -2)).astype(np.float32)


NEIGHBOUR_SCALE = 0.25  # neighbour positions (metres, up to the 6 m radius) enter the model scaled by this


def neighbour_input(neighbours: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """(N, M, 5) neighbours [dx, dy, vx, vy, present] in world axes relative to the agent -> float32 model input
    ``neighbours`` in the agent's heading frame: positions rotated and scaled by ``NEIGHBOUR_SCALE``, velocities
    (metres per 0.4 s step) rotated, absent rows all zero (the model relies on that: its neighbour encoder has no
    bias, so an absent neighbour encodes to zero)."""
    n = np.asarray(neighbours, np.float64)
    if n.ndim != 3 or n.shape[-1] != 5 or len(n) != len(rotation):
        raise ValueError(f"neighbours must be shaped (N={len(rotation)}, M, 5), got {n.shape}")
    out = np.zeros(n.shape, np.float32)
    present = n[..., 4:5] > 0.5
    out[..., 0:2] = np.where(present, (n[..., 0:2] @ rotation) * NEIGHBOUR_SCALE, 0.0)
    out[..., 2:4] = np.where(present, n[..., 2:4] @ rotation, 0.0)
    out[..., 4:5] = present
    return out


def split_modes(future: np.ndarray, mode_probs: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """A behaviour model's outputs -> ((N, K, H, 2) modes, (N, K) probabilities summing to 1).

    Single-output models (``future`` (N, H, 2), no ``mode_probs``) are K = 1 with probability 1.
    """
    f = np.asarray(future, np.float32)
    if f.ndim == 3:
        return f[:, None], np.ones((len(f), 1), np.float64)
    if f.ndim != 4 or mode_probs is None:
        raise ValueError(f"future must be (N, H, 2), or (N, K, H, 2) with mode_probs; got {f.shape}")
    p = np.clip(np.asarray(mode_probs, np.float64).reshape(len(f), f.shape[1]), 0.0, None)
    total = p.sum(axis=1, keepdims=True)
    p = np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / f.shape[1])
    return f, p


def model_track(obs_rel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Observed tracks relative to their last point -> (model input ``track`` in the heading frame, rotations)."""
    return normalise(obs_rel)
