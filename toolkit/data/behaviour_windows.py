"""Behaviour data: observed / future track windows with crossing labels from a SPEC (ETH/UCY scenes from the
shared data, or the synthetic street), the one loader training, calibration and evaluation use.

>>> windows = load_windows("eth_ucy:scene=eth,split=test")     # BehaviourWindows, metres, 0.4 s steps
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from toolkit.data import trajectories as traj
from toolkit.data.spec import DataSpec, parse_spec
from toolkit.errors import UsageError

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
    elif spec.name == "synthetic":
        windows = _synthetic(spec, observed, horizon)
        windows = replace(windows, neighbours=np.zeros((len(windows), neighbours, 5), np.float32))
    else:
        raise UsageError(
            f"data '{spec}': the behaviour model needs trajectories: eth_ucy:scene=...,split=... or "
            "synthetic:split=..."
        )
    if not len(windows):
        raise UsageError(f"data '{spec}' has no {observed}+{horizon}-step windows")
    limit = spec.get_int("limit")
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
