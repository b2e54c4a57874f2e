"""Behaviour data: observed / future track windows with crossing labels from a SPEC (ETH/UCY scenes from the
shared data, a MOTChallenge sequence's world ground truth, or the synthetic street), the one loader training,
calibration and evaluation use.

>>> windows = load_windows("eth_ucy:scene=eth,split=test")     # BehaviourWindows, metres, 0.4 s steps
>>> windows = load_windows("mot", neighbours=6)                 # the shared PETS09-S2L1 gt, 7 fps -> 0.4 s

A ``mot`` sequence's world positions (MOT15 columns X, Y) are resampled to the model's 0.4 s step on one time
grid for every track (:func:`resample_runs`: linear interpolation inside contiguous runs of a track, never across
a missing frame), written as ``frame_id ped_id x y`` rows with frame ids stepping by 10 and cut by the same
:func:`toolkit.data.trajectories.make_windows` as ETH/UCY (neighbours included).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from toolkit.data import trajectories as traj
from toolkit.data.spec import DataSpec, parse_spec
from toolkit.errors import UsageError

if TYPE_CHECKING:
    from toolkit.data.mot import MotWorld  # cv2 is imported only when a mot SPEC is loaded

VAL_SEED_OFFSET = 1000  # synthetic split=val uses seeds seed + 1000 ... (the SPEC table's rule)
SYNTHETIC_FRAMES = 400  # default frames per synthetic scene (the SPEC table's default)


@dataclass(frozen=True, eq=False)
class BehaviourWindows:
    """N samples for the behaviour model; positions are relative to each window's last observed point."""

    obs: np.ndarray  # float32 (N, T, 2) observed positions, metres, last row (0, 0)
    fut: np.ndarray  # float32 (N, H, 2) future positions (the target), same origin
    crossing: np.ndarray  # float32 (N,) 1 = will be crossing within the horizon (0 where unlabelled)
    labelled: np.ndarray  # bool (N,) a crossing label exists (synthetic scenes; ETH/UCY has none)
    group: np.ndarray  # str (N,) table row the window belongs to (held-out scene, recording, synthetic seed)
    source: str  # what was loaded, for notes and manifests
    # float32 (N, M, 5) nearest other pedestrians at the last observed frame, world axes relative to the agent
    # (toolkit.data.trajectories.neighbour_states); M = 0 when not asked for; synthetic windows: none present
    neighbours: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.obs)

    def take(self, index: np.ndarray) -> BehaviourWindows:
        return BehaviourWindows(
            self.obs[index],
            self.fut[index],
            self.crossing[index],
            self.labelled[index],
            self.group[index],
            self.source,
            None if self.neighbours is None else self.neighbours[index],
        )


def load_windows(
    spec: str | DataSpec, observed: int = traj.OBS_LEN, horizon: int = traj.PRED_LEN, neighbours: int = 0
) -> BehaviourWindows:
    """Windows from an ``eth_ucy`` or ``synthetic`` SPEC (see the module docstring); UsageError for other data.

    ``neighbours`` M > 0 fills ``BehaviourWindows.neighbours`` (N, M, 5) (synthetic windows: all absent).
    """
    spec = parse_spec(spec)
    if spec.name == "eth_ucy":
        windows = _eth_ucy(spec, observed, horizon, neighbours)
    elif spec.name == "mot":
        windows = _mot(spec, observed, horizon, neighbours)
    elif spec.name == "synthetic":
        windows = _synthetic(spec, observed, horizon)
        windows = replace(windows, neighbours=np.zeros((len(windows), neighbours, 5), np.float32))
    else:
        raise UsageError(
            f"data '{spec}': the behaviour model needs trajectories: eth_ucy:scene=...,split=..., "
            "mot[:seq=DIR] (world ground truth) or synthetic:split=..."
        )
    if not len(windows):
        raise UsageError(f"data '{spec}' has no {observed}+{horizon}-step windows")
    limit = None if spec.name == "mot" else spec.get_int("limit")  # mot: limit = the first N frames
    return windows.take(spread(len(windows), limit)) if limit else windows


def spread(n: int, limit: int | None) -> np.ndarray:
    """Indices of at most ``limit`` of ``n`` samples, evenly spread (deterministic, covers every recording)."""
    if limit is not None and limit < 1:
        raise UsageError(f"limit must be >= 1, got {limit}")
    if limit is None or limit >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))


def _relative(obs: np.ndarray, fut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    obs_rel, fut_rel, _ = traj.to_relative(obs, fut)
    return obs_rel.astype(np.float32), fut_rel.astype(np.float32)


def _eth_ucy(spec: DataSpec, observed: int, horizon: int, neighbours: int) -> BehaviourWindows:
    from toolkit.paths import shared_path

    scene, split = spec.get("scene"), spec.get("split")
    if scene is None or split is None:  # a SPEC error is reported before any data is looked for
        raise UsageError(
            f"data '{spec}': eth_ucy needs scene=... and split=... (e.g. eth_ucy:scene=all,split=test)"
        )
    root = Path(spec.get("root") or shared_path("data", "eth_ucy"))
    stride = spec.get_int("stride", 1)
    if scene != "all":
        w = traj.load_split(root, scene, split, observed, horizon, stride, neighbours)
        groups = np.full(len(w), scene) if split == "test" else _recordings(w)
        return _from_trajectories(w, groups, f"ETH/UCY {scene} {split}")
    if split == "test":  # every held-out scene's recordings, one table row per scene
        parts = [traj.load_split(root, s, "test", observed, horizon, stride, neighbours) for s in traj.SCENES]
        w = traj.concat_windows(parts)
        groups = np.concatenate([np.full(len(p), s) for p, s in zip(parts, traj.SCENES, strict=True)])
        return _from_trajectories(w, groups, "ETH/UCY all five held-out test scenes")
    if split not in traj.SPLITS:
        raise UsageError(f"data '{spec}': unknown split '{split}' (choose from {', '.join(traj.SPLITS)})")
    # Each recording's train (val) part sits in the train (val) folder of every scene but its own: read it once.
    files = {f.name: f for s in traj.SCENES for f in sorted((root / s / split).glob("*.txt"))}
    if not files:
        raise UsageError(f"no trajectory files (*.txt) in {root}/<scene>/{split}")
    parts = [
        traj.make_windows(
            traj.read_trajectory_file(f), f.stem, observed, horizon, stride=stride, neighbours=neighbours
        )
        for _, f in sorted(files.items())
    ]
    w = traj.concat_windows(parts)
    return _from_trajectories(
        w, _recordings(w), f"ETH/UCY every recording's {split} part ({len(files)} files)"
    )


def _recordings(w: traj.Windows) -> np.ndarray:
    """Recording names without the split suffix ('crowds_zara01_train' -> 'crowds_zara01')."""
    return np.array([s.rsplit("_", 1)[0] for s in w.scene.astype(str)])


def _from_trajectories(w: traj.Windows, groups: np.ndarray, source: str) -> BehaviourWindows:
    obs, fut = _relative(w.obs, w.fut)
    n = len(obs)
    return BehaviourWindows(
        obs, fut, np.zeros(n, np.float32), np.zeros(n, bool), np.asarray(groups, str), source, w.neighbours
    )


def resample_runs(
    frames: np.ndarray, xy: np.ndarray, frame_rate: float, step_s: float = traj.SECONDS_PER_STEP
) -> list[tuple[np.ndarray, np.ndarray]]:
    """One track's positions at 0-based ``frames`` of a ``frame_rate`` sequence -> its positions every ``step_s``.

    The track is split wherever a frame is missing; each contiguous run is sampled at the times ``k * step_s``
    after frame 0 that it spans (one grid for every track, so neighbours line up), each position interpolated
    linearly between the two annotated frames around that time -- never across a gap. Returns one
    ``(k int64 (n,), xy float64 (n, 2))`` per run that spans at least one grid time.
    """
    order = np.argsort(frames, kind="stable")
    frames, xy = np.asarray(frames, np.float64)[order], np.asarray(xy, np.float64)[order]
    per_step = step_s * frame_rate  # frames per step: 2.8 at 7 fps
    breaks = np.flatnonzero(np.diff(frames) != 1) + 1
    runs = []
    for begin, end in zip(np.r_[0, breaks], np.r_[breaks, len(frames)], strict=True):
        f = frames[begin:end]
        # 1e-9: k * 2.8 lands a hair off a whole frame in floating point
        k = np.arange(np.ceil(f[0] / per_step - 1e-9), np.floor(f[-1] / per_step + 1e-9) + 1).astype(np.int64)
        if len(k):
            t = k * per_step
            runs.append((k, np.stack([np.interp(t, f, xy[begin:end, i]) for i in (0, 1)], axis=1)))
    return runs


def mot_rows(world: MotWorld, step_s: float = traj.SECONDS_PER_STEP) -> tuple[np.ndarray, np.ndarray]:
    """A sequence's world tracks as ETH/UCY-style rows: (float64 (R, 4) ``frame_id ped_id x y`` with frame ids
    ``k * FRAME_STEP`` every ``step_s``, int64 (P,) the gt track id of each ped_id). Each contiguous run of a
    track gets its own ped_id, so no window and no neighbour velocity spans a gap."""
    rows, tracks = [], []
    for track in np.unique(world.rows[:, 1]):
        mine = world.rows[world.rows[:, 1] == track]
        for k, xy in resample_runs(mine[:, 0], mine[:, 2:4], world.frame_rate, step_s):
            ped = np.full(len(k), len(tracks), np.float64)
            rows.append(np.column_stack([k * traj.FRAME_STEP, ped, xy]))
            tracks.append(int(track))
    return (np.concatenate(rows) if rows else np.zeros((0, 4))), np.asarray(tracks, np.int64)


def step_speeds(rows: np.ndarray, step_s: float = traj.SECONDS_PER_STEP) -> np.ndarray:
    """Speeds (units per second) of every step between consecutive rows of one ped_id in ``frame_id ped_id x y``
    rows with frame ids ``FRAME_STEP`` apart; float64 (S,)."""
    data = rows[np.lexsort((rows[:, 0], rows[:, 1]))]
    same = (np.diff(data[:, 1]) == 0) & (np.diff(data[:, 0]) == traj.FRAME_STEP)
    return np.linalg.norm(np.diff(data[:, 2:4], axis=0), axis=1)[same] / step_s


def _mot(spec: DataSpec, observed: int, horizon: int, neighbours: int) -> BehaviourWindows:
    from toolkit.data.mot import mot_world_from_spec

    world = mot_world_from_spec(spec)
    rows, tracks = mot_rows(world)
    w = traj.make_windows(
        rows, world.name, observed, horizon, stride=spec.get_int("stride", 1), neighbours=neighbours
    )
    speeds = step_speeds(rows)
    return _from_trajectories(
        w,
        np.full(len(w), world.name),
        f"{world.name} ground-truth world X,Y (MOT gt columns 8-9), {len(np.unique(tracks))} tracks at "
        f"{world.frame_rate:g} fps resampled to {traj.SECONDS_PER_STEP:g} s inside {len(tracks)} contiguous runs, "
        f"median step speed {np.median(speeds) if len(speeds) else float('nan'):.2f} m/s",
    )


def _synthetic(spec: DataSpec, observed: int, horizon: int) -> BehaviourWindows:
    from toolkit.data.synthetic import SceneConfig, trajectory_windows

    if spec.get("every") is not None:
        raise UsageError(
            f"data '{spec}': 'every' thins rendered frames; trajectory windows are always sampled every "
            "0.4 s -- drop it"
        )
    split = spec.get("split", "train")
    if split not in ("train", "val"):
        raise UsageError(f"data '{spec}': synthetic split must be train or val, got '{split}'")
    seed = spec.get_int("seed", 0) + (VAL_SEED_OFFSET if split == "val" else 0)
    scenes = spec.get_int("scenes", 1)
    frames = spec.get_int("frames", SYNTHETIC_FRAMES)
    if scenes < 1 or frames < 1:
        raise UsageError(f"data '{spec}': scenes and frames must be >= 1")
    size = {k: spec.get_int(k) for k in ("width", "height") if spec.get(k) is not None}
    try:  # the camera view decides which windows are fully in view (and the street layout)
        jitter = float(spec.get("jitter", "1"))
    except ValueError:
        raise UsageError(f"data '{spec}': jitter={spec.get('jitter')} is not a number") from None
    obs, fut, crossing, groups = [], [], [], []
    for s in range(seed, seed + scenes):
        w = trajectory_windows(
            SceneConfig(seed=s, camera_jitter=jitter, **size), frames, "ground", observed, horizon
        )
        obs.append(w["obs"])
        fut.append(w["fut"])
        crossing.append(w["crossing"].astype(np.float32))
        groups.append(np.full(len(w["obs"]), f"synthetic_s{s}"))
    o, f = _relative(np.concatenate(obs), np.concatenate(fut))
    c = np.concatenate(crossing)
    return BehaviourWindows(
        o,
        f,
        c,
        np.ones(len(c), bool),
        np.concatenate(groups),
        f"synthetic street seeds {seed}..{seed + scenes - 1}, {frames} frames each",
    )
