#!/usr/bin/env python3
"""Issue 17 experiment: does a speed-normalised frame let the behaviour model generalise across ETH/UCY scenes?

The eth scene dominates the leave-one-scene-out (LOSO) mean: its walkers are much faster than those of the four
scenes a LOSO model trains on. Two parts, both per held-out scene, constant velocity (CV) beside them, all scored
with ``toolkit.data.trajectories`` (``load_split``, ``constant_velocity``, ``ade``, ``fde``):

``analysis`` (numpy only, no training):
  * CV-damped: the last observed step repeated with geometric decay, step k moves ``v * d**k``; the decay ``d``
    is fitted (grid, minimum train ADE) on the held-out scene's LOSO *train* split (the other four scenes).
  * CV-mean3: CV on the mean of the last 3 observed steps (smoothed velocity), and the same damped.
  * CV-hybrid: CV on the mean of the last 3 steps for tracks slower than a threshold (fitted on the train split),
    on the last step otherwise.
  * Oracle speed: CV along the last step's direction at the TRUE mean future speed -- an upper bound on what
    fixing the speed scale alone can give (not a predictor).
  * Observed step length (m/step) and future/observed speed ratio per scene.

``train`` (Keras, float only): K=6 mode behaviour models (``toolkit.models.behaviour.build``, no neighbours),
trained with the shipped multi-modal loss (``BehaviourTask().compile``: winner-takes-all + mode cross-entropy +
top_weight regression of the most likely mode) on windows prepared here, two frames with the same code:
  * ``metres``: the shipped heading frame (``toolkit.adapters.behaviour.normalise``), metres.
  * ``speed``: the same heading-frame input and targets divided by the track's observed speed
    s = max(mean observed step length, ``--min-speed``); predictions multiplied back by s. Sample weights are
    multiplied by s so that the loss is still in metres.
  Mirror augmentation (fixed random half), recording balance n**-0.5 as in the shipped task; fixed epochs, the
  epoch with the lowest val most-likely ADE (metres) is kept.

    python scripts/behaviour_speed_norm.py analysis --out runs/speed_norm/analysis.json
    python scripts/behaviour_speed_norm.py train --epochs 4 --out runs/speed_norm/train.json
    python scripts/behaviour_speed_norm.py train --scenes eth --frames speed --epochs 2   # a quick look
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.adapters.behaviour import normalise
from toolkit.data.trajectories import SCENES, ade, constant_velocity, fde, load_split
from toolkit.paths import shared_dir
from toolkit.train.task_behaviour import BehaviourOptions, recording_weights

ROOT = shared_dir() / "data" / "eth_ucy"
DECAYS = np.round(np.arange(0.90, 1.0001, 0.0025), 4)  # grid for the CV damping factor per step


def damped_cv(obs: np.ndarray, decay: float, horizon: int = 12, last: int = 1) -> np.ndarray:
    """CV on the mean of the last ``last`` observed steps, step k moving ``v * decay**k`` -> (N, horizon, 2)."""
    v = (obs[:, -1] - obs[:, -1 - last]) / last
    steps = np.cumsum(decay ** np.arange(1, horizon + 1))[None, :, None]
    return obs[:, -1:, :] + steps * v[:, None, :]


def fit_decay(obs: np.ndarray, fut: np.ndarray, last: int) -> float:
    """The grid decay with the lowest ADE on these (training) windows."""
    scores = [ade(damped_cv(obs, d, fut.shape[1], last), fut) for d in DECAYS]
    return float(DECAYS[int(np.argmin(scores))])


def hybrid_cv(obs: np.ndarray, threshold: float, last: int = 3, horizon: int = 12) -> np.ndarray:
    """CV on the last step, or on the mean of the last ``last`` steps where that mean is below ``threshold`` m/step
    (slow / standing people, whose last step is mostly annotation jitter)."""
    smooth = (obs[:, -1] - obs[:, -1 - last]) / last
    slow = np.linalg.norm(smooth, axis=-1, keepdims=True) < threshold
    v = np.where(slow, smooth, obs[:, -1] - obs[:, -2])
    steps = np.arange(1, horizon + 1)[None, :, None]
    return obs[:, -1:, :] + steps * v[:, None, :]


THRESHOLDS = np.round(np.arange(0.0, 0.4001, 0.02), 2)  # grid for hybrid_cv's slow-walker threshold


def oracle_speed_cv(obs: np.ndarray, fut: np.ndarray) -> np.ndarray:
    """CV along the last step's direction at the true mean future step length (an upper bound, not a predictor)."""
    v = obs[:, -1] - obs[:, -2]
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    direction = np.where(n > 1e-6, v / np.maximum(n, 1e-6), 0.0)
    track = np.concatenate([obs[:, -1:], fut], axis=1)
    speed = np.linalg.norm(np.diff(track, axis=1), axis=-1).mean(axis=1, keepdims=True)
    steps = np.arange(1, fut.shape[1] + 1)[None, :, None]
    return obs[:, -1:, :] + steps * (direction * speed)[:, None, :]


def observed_speed(obs: np.ndarray) -> np.ndarray:
    """Mean observed step length per window (m/step)."""
    return np.linalg.norm(np.diff(obs, axis=1), axis=-1).mean(axis=1)


def analysis(scenes: list[str]) -> dict[str, Any]:
    """Learning-free baselines per held-out scene (decays fitted on the scene's LOSO train split)."""
    rows = []
    for scene in scenes:
        train, test = load_split(ROOT, scene, "train"), load_split(ROOT, scene, "test")
        row: dict[str, Any] = {"scene": scene, "windows": len(test)}
        row["cv_ade"], row["cv_fde"] = (
            ade(constant_velocity(test.obs), test.fut),
            fde(constant_velocity(test.obs), test.fut),
        )
        for name, last in (("damped", 1), ("mean3", 3), ("mean3_damped", 3)):
            d = 1.0 if name == "mean3" else fit_decay(train.obs, train.fut, last)
            pred = damped_cv(test.obs, d, test.fut.shape[1], last)
            row |= {
                f"{name}_decay": d,
                f"{name}_ade": ade(pred, test.fut),
                f"{name}_fde": fde(pred, test.fut),
            }
            # The decay the held-out scene itself would want (diagnostic only, fitted on its test windows).
            if name == "damped":
                row["damped_decay_own_test"] = fit_decay(test.obs, test.fut, 1)
        scores_t = [ade(hybrid_cv(train.obs, t), train.fut) for t in THRESHOLDS]
        t = float(THRESHOLDS[int(np.argmin(scores_t))])
        pred = hybrid_cv(test.obs, t)
        row |= {"hybrid_threshold": t, "hybrid_ade": ade(pred, test.fut), "hybrid_fde": fde(pred, test.fut)}
        pred = oracle_speed_cv(test.obs, test.fut)
        row |= {"oracle_speed_ade": ade(pred, test.fut), "oracle_speed_fde": fde(pred, test.fut)}
        s_test, s_train = observed_speed(test.obs), observed_speed(train.obs)
        fut_speed = np.linalg.norm(np.diff(np.concatenate([test.obs[:, -1:], test.fut], 1), axis=1), axis=-1)
        row |= {
            "test_obs_speed_median": float(np.median(s_test)),
            "train_obs_speed_median": float(np.median(s_train)),
            "test_future_over_observed_speed_median": float(
                np.median(fut_speed.mean(1) / np.maximum(s_test, 0.05))
            ),
        }
        rows.append(row)
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    keys = [k for k in rows[0] if k.endswith(("_ade", "_fde"))]
    return {"per_scene": rows, "average": {k: float(np.mean([r[k] for r in rows])) for k in keys}}


def prepare(w: Any, frame: str, min_speed: float) -> dict[str, np.ndarray]:
    """Windows -> model input track, target future (heading frame, maybe speed units), scale s, rotation."""
    obs_rel = (w.obs - w.obs[:, -1:]).astype(np.float64)
    fut_rel = (w.fut - w.obs[:, -1:]).astype(np.float64)
    track, rotation = normalise(obs_rel)
    future = fut_rel @ rotation
    s = np.maximum(observed_speed(obs_rel), min_speed) if frame == "speed" else np.ones(len(track))
    return {
        "track": (track / s[:, None, None]).astype(np.float32),
        "future": (future / s[:, None, None]).astype(np.float32),
        "s": s,
        "rotation": rotation,
        "fut_rel": fut_rel,
        "weight": recording_weights(w.scene, 0.5) * s.astype(np.float32),
    }


def predict(model: Any, data: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """-> ((N, K, H, 2) modes in the world frame relative to the last point, metres; (N, K) probabilities)."""
    out = model.predict(data["track"], batch_size=1024, verbose=0)
    modes = out["future"].astype(np.float64) * data["s"][:, None, None, None]
    modes = np.einsum("nkhj,nij->nkhi", modes, data["rotation"])  # heading frame -> world (R^T)
    return modes, out["mode_probs"]


def scores(modes: np.ndarray, probs: np.ndarray, fut_rel: np.ndarray) -> dict[str, float]:
    """Most-likely and min-over-K ADE / FDE (metres)."""
    top = modes[np.arange(len(modes)), probs.argmax(1)]
    d = np.linalg.norm(modes - fut_rel[:, None], axis=-1)  # (N, K, H)
    return {
        "ade": ade(top, fut_rel),
        "fde": fde(top, fut_rel),
        "min_ade": float(d.mean(-1).min(-1).mean()),
        "min_fde": float(d[..., -1].min(-1).mean()),
    }


def train_scene(scene: str, frame: str, args: argparse.Namespace) -> dict[str, Any]:
    """Train one LOSO model for ``scene`` in ``frame`` ('metres' or 'speed') and score it on the test split."""
    import keras

    from toolkit.models.behaviour import Config, build
    from toolkit.train.config import TrainConfig
    from toolkit.train.task_behaviour import BehaviourTask

    started = time.perf_counter()
    keras.utils.set_random_seed(0)
    tr, va, te = (
        prepare(load_split(ROOT, scene, s), frame, args.min_speed) for s in ("train", "val", "test")
    )
    rng = np.random.default_rng(0)
    flip = np.where(rng.random(len(tr["track"])) < 0.5, -1.0, 1.0).astype(np.float32)[:, None, None]
    flip = np.concatenate([np.ones_like(flip), flip], axis=-1)
    x, y = tr["track"] * flip, tr["future"] * flip
    n, k = len(x), 6
    model = build(Config(modes=k, neighbours=0))
    options = BehaviourOptions(extra_data="", extra_val_data="", fde_weight=0.5, top_weight=3.0)
    steps = int(np.ceil(n / 64))
    BehaviourTask().compile(model, TrainConfig(epochs=args.epochs, learning_rate=1e-3), options, steps)
    targets = {"future": y[:, None], "mode_probs": np.zeros((n, k), np.float32), "crossing": np.zeros((n, 1))}
    weights = {
        "future": tr["weight"],
        "mode_probs": np.ones(n, np.float32),
        "crossing": np.zeros(n, np.float32),
    }
    best: dict[str, Any] = {"val_ade": np.inf}
    history = []
    for epoch in range(args.epochs):
        model.fit(
            x, targets, sample_weight=weights, batch_size=64, epochs=epoch + 1, initial_epoch=epoch, verbose=0
        )
        val = scores(*predict(model, va), va["fut_rel"])
        history.append({"epoch": epoch + 1, **{f"val_{m}": v for m, v in val.items()}})
        print(f"[{frame} {scene}] epoch {epoch + 1} val {val}", flush=True)
        if val["ade"] < best["val_ade"]:
            best = {
                "val_ade": val["ade"],
                "epoch": epoch + 1,
                "test": scores(*predict(model, te), te["fut_rel"]),
            }
    test_w = load_split(ROOT, scene, "test")
    cv = constant_velocity(test_w.obs)
    return {
        "scene": scene,
        "frame": frame,
        "windows": len(te["track"]),
        "train_windows": n,
        "cv_ade": ade(cv, test_w.fut),
        "cv_fde": fde(cv, test_w.fut),
        **best["test"],
        "best_epoch": best["epoch"],
        "history": history,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("part", choices=("analysis", "train"))
    parser.add_argument("--scenes", default=",".join(SCENES), help="comma-separated held-out scenes")
    parser.add_argument("--frames", default="speed,metres", help="train: comma-separated frames to train")
    parser.add_argument("--epochs", type=int, default=4, help="train: epochs per model (best val epoch kept)")
    parser.add_argument("--min-speed", type=float, default=0.05, help="speed floor, metres per 0.4 s step")
    parser.add_argument("--out", type=Path, required=True, help="JSON results file")
    args = parser.parse_args()
    scenes = [s for s in args.scenes.split(",") if s]
    bad = [s for s in scenes if s not in SCENES]
    if bad:
        parser.error(f"unknown scenes {bad}; choose from {', '.join(SCENES)}")
    started = time.perf_counter()
    if args.part == "analysis":
        result = analysis(scenes)
    else:
        rows = []
        for frame in args.frames.split(","):
            for scene in scenes:
                rows.append(train_scene(scene, frame, args))
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps({"per_scene": rows}, indent=1))
        result = {"per_scene": rows, "epochs": args.epochs, "min_speed": args.min_speed}
    result["wall_s"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"-> {args.out} ({result['wall_s']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
