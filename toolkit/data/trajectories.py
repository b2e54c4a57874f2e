"""ETH/UCY pedestrian trajectories: text files, 8 + 12 step windows, leave-one-scene-out splits, baselines.

File format: one row per (frame, pedestrian), ``frame_id ped_id x y`` separated by tabs or spaces, x y in
ground-plane metres, frame ids stepping by 10 = 0.4 s. As in Social-GAN and Trajectron++, a sample is a
window of ``obs_len + pred_len`` consecutive frames (no gaps) of one pedestrian, taken at every start frame.

>>> train = load_split(shared_dir() / "data" / "eth_ucy", "eth", "train")
>>> train.obs.shape, train.fut.shape                    # (N, 8, 2), (N, 12, 2) float32 metres
>>> ade(constant_velocity(test.obs), test.fut)          # the baseline row of every table
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit.config import suggest
from toolkit.data._text import numbered_fields, read_text, to_floats
from toolkit.errors import UsageError

SCENES = ("eth", "hotel", "univ", "zara1", "zara2")  # the held-out scene of each leave-one-scene-out split
SPLITS = ("train", "val", "test")
FRAME_STEP = 10  # frame ids between consecutive annotations
SECONDS_PER_STEP = 0.4  # 2.5 annotations per second
OBS_LEN = 8  # observed steps (3.2 s)
PRED_LEN = 12  # predicted steps (4.8 s)


@dataclass(frozen=True, eq=False)
class Windows:
    """N trajectory samples; ``obs[i]`` then ``fut[i]`` are one pedestrian's consecutive positions in metres."""

    obs: np.ndarray  # float32 (N, obs_len, 2) observed x y
    fut: np.ndarray  # float32 (N, pred_len, 2) future x y (the target)
    scene: np.ndarray  # str (N,) recording the window comes from (file stem, e.g. 'biwi_eth')
    ped: np.ndarray  # int64 (N,) pedestrian id within that recording
    frame: np.ndarray  # int64 (N,) frame id of the first observed step
    # float32 (N, M, 5) the M nearest other pedestrians at the last observed frame (see neighbour_states)
    neighbours: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.obs)


def read_trajectory_file(path: str | Path) -> np.ndarray:
    """Parse ``frame_id ped_id x y`` rows -> float64 (R, 4). Malformed lines are UsageErrors with file and line."""
    rows = []
    for lineno, fields in numbered_fields(read_text(path, "trajectory file")):
        where = f"{path} line {lineno}"
        if len(fields) != 4:
            raise UsageError(f"{where}: expected 4 columns 'frame_id ped_id x y', got {len(fields)}")
        values = to_floats(fields, where)
        if values[0] != int(values[0]) or values[1] != int(values[1]):
            raise UsageError(
                f"{where}: frame_id and ped_id must be whole numbers, got {fields[0]} {fields[1]}"
            )
        rows.append(values)
    if not rows:
        raise UsageError(f"trajectory file {path} has no rows")
    return np.asarray(rows, dtype=np.float64)


def make_windows(
    rows: np.ndarray,
    scene: str = "",
    obs_len: int = OBS_LEN,
    pred_len: int = PRED_LEN,
    frame_step: int = FRAME_STEP,
    stride: int = 1,
    neighbours: int = 0,
) -> Windows:
    """Cut every pedestrian's track into windows of ``obs_len + pred_len`` consecutive annotated frames.

    A track is broken wherever two of its frames are not exactly ``frame_step`` apart, and no window crosses a
    break. Windows start every ``stride`` frames. Returns :class:`Windows` (possibly empty), ordered by
    pedestrian id then start frame. ``neighbours`` > 0 also fills ``Windows.neighbours`` (:func:`neighbour_states`).
    """
    total = obs_len + pred_len
    if obs_len < 2 or pred_len < 1 or stride < 1:
        raise UsageError(
            f"make_windows: need obs_len >= 2, pred_len >= 1, stride >= 1; got {obs_len}, {pred_len}, {stride}"
        )
    rows = np.asarray(rows, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] != 4:
        raise UsageError(
            f"make_windows: expected rows of 'frame_id ped_id x y' shaped (R, 4), got {rows.shape}"
        )
    order = np.lexsort((rows[:, 0], rows[:, 1]))  # by pedestrian, then frame
    data = rows[order]
    starts: list[int] = []
    # Runs of consecutive rows of one pedestrian with frame gaps of exactly frame_step.
    breaks = np.flatnonzero((np.diff(data[:, 1]) != 0) | (np.diff(data[:, 0]) != frame_step)) + 1
    for begin, end in zip(np.r_[0, breaks], np.r_[breaks, len(data)], strict=True):
        starts.extend(range(begin, end - total + 1, stride))
    index = np.asarray(starts, dtype=np.int64)[:, None] + np.arange(total)
    xy = data[:, 2:4][index].astype(np.float32).reshape(-1, total, 2)
    first = data[index[:, 0]]
    ped, frame = first[:, 1].astype(np.int64), first[:, 0].astype(np.int64)
    return Windows(
        obs=xy[:, :obs_len],
        fut=xy[:, obs_len:],
        scene=np.full(len(xy), scene),
        ped=ped,
        frame=frame,
        neighbours=neighbour_states(rows, ped, frame + (obs_len - 1) * frame_step, neighbours, frame_step)
        if neighbours > 0
        else None,
    )


NEIGHBOUR_RADIUS_M = (
    6.0  # pedestrians farther than this from the agent at its last observed frame are ignored
)
NEIGHBOUR_FEATURES = 5  # dx, dy, vx, vy, present


def neighbour_states(
    rows: np.ndarray,
    ped: np.ndarray,
    last_frame: np.ndarray,
    count: int,
    frame_step: int = FRAME_STEP,
    radius: float = NEIGHBOUR_RADIUS_M,
) -> np.ndarray:
    """The ``count`` nearest other pedestrians of each window at its last observed frame -> float32 (N, count, 5).

    Per neighbour (nearest first): position relative to the agent's position at that frame (x, y, metres, world
    axes), its velocity (metres per step: its position minus its position one ``frame_step`` earlier, 0 when it
    was not annotated then), and 1 for present. Rows past the pedestrians within ``radius`` are all zero. Only
    the past is used, as a tracker would see it.
    """
    rows = np.asarray(rows, np.float64)
    out = np.zeros((len(ped), count, NEIGHBOUR_FEATURES), np.float32)
    if not len(ped) or count < 1:
        return out
    position = {(int(f), int(p)): (x, y) for f, p, x, y in rows}
    by_frame: dict[int, list[int]] = {}
    for i, f in enumerate(rows[:, 0].astype(np.int64)):
        by_frame.setdefault(int(f), []).append(i)
    for n, (agent, frame) in enumerate(zip(ped.tolist(), last_frame.tolist(), strict=True)):
        here = rows[by_frame.get(int(frame), [])]
        me = position.get((int(frame), int(agent)))
        if me is None or not len(here):
            continue
        others = here[here[:, 1] != agent]
        rel = others[:, 2:4] - np.asarray(me)
        dist = np.linalg.norm(rel, axis=-1)
        order = np.argsort(dist, kind="stable")
        order = order[dist[order] <= radius][:count]
        for k, j in enumerate(order):
            before = position.get((int(frame) - frame_step, int(others[j, 1])))
            velocity = others[j, 2:4] - np.asarray(before) if before is not None else (0.0, 0.0)
            out[n, k] = (*rel[j], *velocity, 1.0)
    return out


def concat_windows(parts: list[Windows]) -> Windows:
    """Join several :class:`Windows` (e.g. one per recording) into one."""
    if not parts:
        raise UsageError("concat_windows: nothing to join")
    joined = [np.concatenate([getattr(p, f) for p in parts]) for f in ("obs", "fut", "scene", "ped", "frame")]
    have = [p.neighbours is not None for p in parts]
    if any(have) and not all(have):
        raise UsageError("concat_windows: some parts have neighbours and some do not")
    return Windows(*joined, np.concatenate([p.neighbours for p in parts]) if all(have) else None)


def load_split(
    root: str | Path,
    scene: str,
    split: str,
    obs_len: int = OBS_LEN,
    pred_len: int = PRED_LEN,
    stride: int = 1,
    neighbours: int = 0,
) -> Windows:
    """Windows from every ``root/<scene>/<split>/*.txt`` (leave-one-scene-out: ``scene`` is the held-out one).

    ``root`` is the ``eth_ucy`` folder. Train and val hold the other scenes' recordings; test holds ``scene``'s.
    Unknown scene or split names are UsageErrors with a suggestion.
    """
    if scene not in SCENES:
        raise UsageError(
            f"unknown ETH/UCY scene '{scene}'{suggest(scene, SCENES)} (choose from {', '.join(SCENES)})"
        )
    if split not in SPLITS:
        raise UsageError(f"unknown split '{split}'{suggest(split, SPLITS)} (choose from {', '.join(SPLITS)})")
    folder = Path(root) / scene / split
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise UsageError(f"no trajectory files (*.txt) in {folder}")
    return concat_windows(
        [
            make_windows(
                read_trajectory_file(f), f.stem, obs_len, pred_len, stride=stride, neighbours=neighbours
            )
            for f in files
        ]
    )


ETH_RELEASE_STEP_FRAMES = (
    10  # biwi_eth.txt of the Social-GAN / Trajectron++ release: rows every 10 frames ...
)
ETH_ANNOTATION_STEP_FRAMES = (
    6  # ... of a recording annotated every 6 frames = 0.4 s: one release step = 0.667 s
)


def resample(rows: np.ndarray, source_step: int, target_step: int) -> np.ndarray:
    """Re-time ``frame_id ped_id x y`` rows recorded every ``source_step`` frame ids to every ``target_step``.

    Each pedestrian's positions are linearly interpolated at frames ``first + target_step * k`` (``first`` = the
    file's first frame) inside each run of consecutive rows (exactly ``source_step`` apart), never across a gap;
    the output frame ids are renumbered to :data:`FRAME_STEP` per target step so :func:`make_windows` reads them.
    Used for the ETH eth recording, whose released rows step 0.667 s (see the constants above).
    """
    rows = np.asarray(rows, np.float64)
    if source_step < 1 or target_step < 1:
        raise UsageError(f"resample: steps must be >= 1, got {source_step} and {target_step}")
    start, out = rows[:, 0].min(), []
    for ped in np.unique(rows[:, 1]):
        r = rows[rows[:, 1] == ped]
        r = r[np.argsort(r[:, 0])]
        for run in np.split(r, np.flatnonzero(np.diff(r[:, 0]) != source_step) + 1):
            first = start + target_step * np.ceil((run[0, 0] - start) / target_step)
            frames = np.arange(first, run[-1, 0] + 1e-9, target_step)
            if not len(frames):
                continue
            x, y = np.interp(frames, run[:, 0], run[:, 2]), np.interp(frames, run[:, 0], run[:, 3])
            grid = (frames - start) / target_step * FRAME_STEP
            out.append(np.column_stack([grid, np.full(len(frames), ped), x, y]))
    return np.concatenate(out) if out else np.zeros((0, 4))


def to_relative(
    obs: np.ndarray, fut: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Shift tracks so each window's last observed point is the origin.

    Returns (obs_rel, fut_rel or None, origin (N, 2)); ``from_relative(x_rel, origin)`` undoes it.
    """
    origin = obs[:, -1, :]
    return obs - origin[:, None], None if fut is None else fut - origin[:, None], origin


def from_relative(tracks_rel: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_relative`: add each window's origin (N, 2) back to (N, T, 2) tracks."""
    return tracks_rel + origin[:, None]


def constant_velocity(obs: np.ndarray, pred_len: int = PRED_LEN) -> np.ndarray:
    """The constant-velocity baseline: continue each track with its last observed step. -> (N, pred_len, 2)."""
    velocity = obs[:, -1] - obs[:, -2]
    steps = np.arange(1, pred_len + 1, dtype=obs.dtype)[None, :, None]
    return obs[:, -1:, :] + steps * velocity[:, None, :]


def displacement(pred: np.ndarray, fut: np.ndarray) -> np.ndarray:
    """Euclidean error per window and step, float64 (N, T); shapes must match."""
    if pred.shape != fut.shape:
        raise UsageError(f"prediction shape {pred.shape} does not match the ground truth {fut.shape}")
    return np.linalg.norm(pred.astype(np.float64) - fut.astype(np.float64), axis=-1)


def ade(pred: np.ndarray, fut: np.ndarray) -> float:
    """Average displacement error in metres: mean over windows and predicted steps."""
    return float(displacement(pred, fut).mean())


def fde(pred: np.ndarray, fut: np.ndarray) -> float:
    """Final displacement error in metres: mean over windows of the last step's error."""
    return float(displacement(pred, fut)[:, -1].mean())


def random_rotation(
    obs: np.ndarray, fut: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Rotate each window by its own random angle in [0, 2 pi) about its last observed point (augmentation).

    Distances, speeds and hence ADE / FDE of a rotation-equivariant predictor are unchanged.
    """
    angle = rng.uniform(0.0, 2.0 * np.pi, size=len(obs))
    cos, sin = np.cos(angle), np.sin(angle)
    rot = np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], -2).astype(
        obs.dtype
    )  # row-vector form
    origin = obs[:, -1:, :]
    return (obs - origin) @ rot + origin, (fut - origin) @ rot + origin
