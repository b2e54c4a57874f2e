"""Behaviour model evaluation: ADE / FDE per ETH/UCY scene beside a constant-velocity row, crossing intent on the
synthetic street. numpy only: the same code scores a ``.keras`` model and its ``.tflite`` conversion on a device.

>>> report = evaluate(load_predictor("behaviour_int8.tflite"), parse_spec("eth_ucy:scene=all,split=test"))
>>> report.metrics["ade"], report.metrics["cv_ade"]      # model vs constant velocity, metres

Data SPECs (:func:`load_windows`):

* ``eth_ucy:scene=S,split=P[,stride=k][,limit=n]`` -- ETH/UCY leave-one-scene-out windows (no crossing labels).
  ``scene=all,split=test`` scores each held-out scene's test recording(s) and averages the five scenes (the
  ETH/UCY convention: the mean of per-scene figures). ``scene=all,split=train|val`` is every recording's
  train / val part once (what the shipped model trains / validates on).
* ``synthetic:split=train|val[,seed=s][,scenes=k][,frames=n][,jitter=j][,width=w,height=h]`` -- windows of the
  synthetic street scenes ``seed .. seed+k-1`` (val: seed + 1000 ..), ground metres, with crossing labels;
  ``jitter`` (default 1, the training spread) varies each scene's camera view, which decides what is in view.

Predictions are deterministic single samples (never best-of-20). The model sees each track in the heading frame
(:mod:`toolkit.data.behaviour_frames`); :func:`predict_windows` applies and undoes it, as the pipeline does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit.data import trajectories as traj
from toolkit.data.behaviour_frames import denormalise, normalise
from toolkit.data.spec import DataSpec, parse_spec
from toolkit.errors import UsageError
from toolkit.eval.config import EvalConfig
from toolkit.eval.metrics import auroc
from toolkit.eval.predictor import Predictor
from toolkit.eval.report import EvalReport

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

    def __len__(self) -> int:
        return len(self.obs)

    def take(self, index: np.ndarray) -> BehaviourWindows:
        return BehaviourWindows(self.obs[index], self.fut[index], self.crossing[index], self.labelled[index],
                                self.group[index], self.source)


def load_windows(spec: str | DataSpec, observed: int = traj.OBS_LEN, horizon: int = traj.PRED_LEN) -> BehaviourWindows:
    """Windows from an ``eth_ucy`` or ``synthetic`` SPEC (see the module docstring); UsageError for other data."""
    spec = parse_spec(spec)
    if spec.name == "eth_ucy":
        windows = _eth_ucy(spec, observed, horizon)
    elif spec.name == "synthetic":
        windows = _synthetic(spec, observed, horizon)
    else:
        raise UsageError(f"data '{spec}': the behaviour model needs trajectories: eth_ucy:scene=...,split=... or "
                         "synthetic:split=...")
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


def _eth_ucy(spec: DataSpec, observed: int, horizon: int) -> BehaviourWindows:
    from toolkit.paths import shared_path

    root = Path(spec.get("root") or shared_path("data", "eth_ucy"))
    scene, split = spec.get("scene"), spec.get("split")
    if scene is None or split is None:
        raise UsageError(f"data '{spec}': eth_ucy needs scene=... and split=... (e.g. eth_ucy:scene=all,split=test)")
    stride = spec.get_int("stride", 1)
    if scene != "all":
        w = traj.load_split(root, scene, split, observed, horizon, stride)
        groups = np.full(len(w), scene) if split == "test" else _recordings(w)
        return _from_trajectories(w, groups, f"ETH/UCY {scene} {split}")
    if split == "test":  # every held-out scene's recordings, one table row per scene
        parts = [traj.load_split(root, s, "test", observed, horizon, stride) for s in traj.SCENES]
        w = traj.concat_windows(parts)
        groups = np.concatenate([np.full(len(p), s) for p, s in zip(parts, traj.SCENES, strict=True)])
        return _from_trajectories(w, groups, "ETH/UCY all five held-out test scenes")
    if split not in traj.SPLITS:
        raise UsageError(f"data '{spec}': unknown split '{split}' (choose from {', '.join(traj.SPLITS)})")
    # Each recording's train (val) part sits in the train (val) folder of every scene but its own: read it once.
    files = {f.name: f for s in traj.SCENES for f in sorted((root / s / split).glob("*.txt"))}
    if not files:
        raise UsageError(f"no trajectory files (*.txt) in {root}/<scene>/{split}")
    parts = [traj.make_windows(traj.read_trajectory_file(f), f.stem, observed, horizon, stride=stride)
             for _, f in sorted(files.items())]
    w = traj.concat_windows(parts)
    return _from_trajectories(w, _recordings(w), f"ETH/UCY every recording's {split} part ({len(files)} files)")


def _recordings(w: traj.Windows) -> np.ndarray:
    """Recording names without the split suffix ('crowds_zara01_train' -> 'crowds_zara01')."""
    return np.array([s.rsplit("_", 1)[0] for s in w.scene.astype(str)])


def _from_trajectories(w: traj.Windows, groups: np.ndarray, source: str) -> BehaviourWindows:
    obs, fut = _relative(w.obs, w.fut)
    n = len(obs)
    return BehaviourWindows(obs, fut, np.zeros(n, np.float32), np.zeros(n, bool), np.asarray(groups, str), source)


def _synthetic(spec: DataSpec, observed: int, horizon: int) -> BehaviourWindows:
    from toolkit.data.synthetic import SceneConfig, trajectory_windows

    if spec.get("every") is not None:
        raise UsageError(f"data '{spec}': 'every' thins rendered frames; trajectory windows are always sampled every "
                         "0.4 s -- drop it")
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
        w = trajectory_windows(SceneConfig(seed=s, camera_jitter=jitter, **size), frames, "ground", observed, horizon)
        obs.append(w["obs"])
        fut.append(w["fut"])
        crossing.append(w["crossing"].astype(np.float32))
        groups.append(np.full(len(w["obs"]), f"synthetic_s{s}"))
    o, f = _relative(np.concatenate(obs), np.concatenate(fut))
    c = np.concatenate(crossing)
    return BehaviourWindows(o, f, c, np.ones(len(c), bool), np.concatenate(groups),
                            f"synthetic street seeds {seed}..{seed + scenes - 1}, {frames} frames each")


def model_track(obs_rel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Observed tracks relative to their last point -> (model input ``track`` in the heading frame, rotations)."""
    return normalise(obs_rel)


def predict_windows(predictor: Predictor, obs_rel: np.ndarray, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Run the model on (N, T, 2) relative tracks -> (future (N, H, 2) relative to the last point, crossing (N,))."""
    track, rotation = model_track(obs_rel)
    out = predictor.predict({"track": track}, batch_size=batch_size)
    if "future" not in out or "crossing" not in out:
        raise UsageError(f"{predictor.path}: outputs {sorted(out)}; a behaviour model has 'future' and 'crossing'")
    return denormalise(out["future"], rotation), np.asarray(out["crossing"], np.float64).reshape(len(track))


def _model_shape(predictor: Predictor) -> tuple[int, int]:
    """(observed, horizon) of a behaviour model, from its input shape and one probe prediction."""
    shape = tuple(predictor.input_shapes.get("track", ()))
    if len(shape) != 2 or shape[1] != 2 or shape[0] < 2:
        raise UsageError(f"{predictor.path}: input 'track' is {list(shape)}; a behaviour model takes (T >= 2, 2)")
    future = predictor.predict({"track": np.zeros((1, *shape), np.float32)})["future"]
    return shape[0], int(future.shape[1])


def evaluate(predictor: Predictor, spec: DataSpec, config: EvalConfig = EvalConfig()) -> EvalReport:
    """ADE / FDE (metres) per scene with the constant-velocity row; crossing accuracy / AUROC where labelled."""
    observed, horizon = _model_shape(predictor)
    windows = load_windows(spec, observed, horizon)
    windows = windows.take(spread(len(windows), config.limit))
    future, crossing = predict_windows(predictor, windows.obs, config.batch_size)
    cv = traj.constant_velocity(windows.obs, horizon)
    rows = []
    for group in dict.fromkeys(windows.group.tolist()):  # first-seen order: the scene order of the SPEC
        m = windows.group == group
        row = {"scene": group, "windows": int(m.sum()), "ade": traj.ade(future[m], windows.fut[m]),
               "fde": traj.fde(future[m], windows.fut[m])}
        if config.baselines:
            row |= {"cv_ade": traj.ade(cv[m], windows.fut[m]), "cv_fde": traj.fde(cv[m], windows.fut[m])}
        rows.append(row)
    per_scene = spec.name == "eth_ucy" and spec.get("scene") == "all" and spec.get("split") == "test"
    notes = [f"data: {windows.source}; {len(windows)} windows of {observed} observed + {horizon} future steps "
             "(0.4 s each)",
             "deterministic single prediction per window (not best-of-20); tracks enter the model in the heading "
             "frame (toolkit.data.behaviour_frames)"]

    def summary(key: str, pred: np.ndarray) -> float:
        if per_scene:  # the ETH/UCY convention: mean of the per-scene figures
            return float(np.mean([r[key] for r in rows]))
        return (traj.ade if key.endswith("ade") else traj.fde)(pred, windows.fut)

    metrics = {"ade": summary("ade", future), "fde": summary("fde", future)}
    tables: dict[str, list[dict]] = {"per_scene": rows}
    if per_scene:
        notes.append("ade / fde: mean over the five held-out scenes (each scene weighs the same)")
    if config.baselines:
        metrics |= {"cv_ade": summary("cv_ade", cv), "cv_fde": summary("cv_fde", cv)}
        tables["baselines"] = [{"baseline": "constant_velocity", "ade": metrics["cv_ade"], "fde": metrics["cv_fde"],
                                "windows": len(windows)}]
    labelled = windows.labelled
    if labelled.any():
        metrics |= crossing_metrics(windows.crossing[labelled], crossing[labelled])
        if config.baselines:
            tables["baselines"].append({"baseline": "majority_class", "crossing_accuracy":
                                        max(metrics["crossing_positive_rate"], 1 - metrics["crossing_positive_rate"]),
                                        "windows": int(labelled.sum())})
    else:
        notes.append("no crossing labels in this data (only the synthetic street scenes have them)")
    return EvalReport(kind="behaviour", model=str(predictor.path), model_format=predictor.format, data=str(spec),
                      samples=len(windows), primary="ade", metrics=metrics, higher_is_better=False, tables=tables,
                      notes=notes)


def crossing_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Binary crossing intent: accuracy at ``threshold``, AUROC (NaN with one class), positive rate, count."""
    labels = np.asarray(labels) > 0.5
    scores = np.asarray(scores, np.float64)
    return {"crossing_accuracy": float(np.mean((scores >= threshold) == labels)),
            "crossing_auroc": auroc(scores, labels), "crossing_positive_rate": float(labels.mean()),
            "crossing_windows": int(len(labels))}


def model_inputs(spec: str | DataSpec, input_shapes: dict[str, tuple[int, ...]], limit: int | None = None,
                 seed: int = 0) -> dict[str, np.ndarray]:
    """Realistic ``track`` inputs (relative, heading frame) from a SPEC, for int8 calibration and benchmarks.

    ``limit`` samples drawn at random with ``seed`` (all windows when None).
    """
    shape = tuple(input_shapes.get("track", ()))
    if len(shape) != 2 or shape[1] != 2:
        raise UsageError(f"behaviour model_inputs: expected an input 'track' of shape (T, 2), got {input_shapes}")
    windows = load_windows(spec, observed=shape[0])
    index = np.arange(len(windows))
    if limit is not None and limit < len(windows):
        index = np.sort(np.random.default_rng(seed).choice(len(windows), limit, replace=False))
    return {"track": model_track(windows.obs[index])[0]}
