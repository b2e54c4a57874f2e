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
(:mod:`toolkit.adapters.behaviour`); :func:`predict_windows` applies and undoes it, as the pipeline does.
"""

from __future__ import annotations

import numpy as np

from toolkit.adapters.behaviour import denormalise, model_track
from toolkit.data import trajectories as traj
from toolkit.data.behaviour_windows import load_windows, spread
from toolkit.data.spec import DataSpec
from toolkit.errors import UsageError
from toolkit.eval.config import EvalConfig
from toolkit.eval.metrics import auroc
from toolkit.eval.predictor import Predictor
from toolkit.eval.report import EvalReport


def predict_windows(
    predictor: Predictor, obs_rel: np.ndarray, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Run the model on (N, T, 2) relative tracks -> (future (N, H, 2) relative to the last point, crossing (N,))."""
    track, rotation = model_track(obs_rel)
    out = predictor.predict({"track": track}, batch_size=batch_size)
    if "future" not in out or "crossing" not in out:
        raise UsageError(
            f"{predictor.path}: outputs {sorted(out)}; a behaviour model has 'future' and 'crossing'"
        )
    return denormalise(out["future"], rotation), np.asarray(out["crossing"], np.float64).reshape(len(track))


def _model_shape(predictor: Predictor) -> tuple[int, int]:
    """(observed, horizon) of a behaviour model, from its input shape and one probe prediction."""
    shape = tuple(predictor.input_shapes.get("track", ()))
    if len(shape) != 2 or shape[1] != 2 or shape[0] < 2:
        raise UsageError(
            f"{predictor.path}: input 'track' is {list(shape)}; a behaviour model takes (T >= 2, 2)"
        )
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
        row = {
            "scene": group,
            "windows": int(m.sum()),
            "ade": traj.ade(future[m], windows.fut[m]),
            "fde": traj.fde(future[m], windows.fut[m]),
        }
        if config.baselines:
            row |= {"cv_ade": traj.ade(cv[m], windows.fut[m]), "cv_fde": traj.fde(cv[m], windows.fut[m])}
        rows.append(row)
    per_scene = spec.name == "eth_ucy" and spec.get("scene") == "all" and spec.get("split") == "test"
    notes = [
        f"data: {windows.source}; {len(windows)} windows of {observed} observed + {horizon} future steps "
        "(0.4 s each)",
        "deterministic single prediction per window (not best-of-20); tracks enter the model in the heading "
        "frame (toolkit.adapters.behaviour)",
    ]

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
        tables["baselines"] = [
            {
                "baseline": "constant_velocity",
                "ade": metrics["cv_ade"],
                "fde": metrics["cv_fde"],
                "windows": len(windows),
            }
        ]
    labelled = windows.labelled
    if labelled.any():
        metrics |= crossing_metrics(windows.crossing[labelled], crossing[labelled])
        if config.baselines:
            tables["baselines"].append(
                {
                    "baseline": "majority_class",
                    "crossing_accuracy": max(
                        metrics["crossing_positive_rate"], 1 - metrics["crossing_positive_rate"]
                    ),
                    "windows": int(labelled.sum()),
                }
            )
    else:
        notes.append("no crossing labels in this data (only the synthetic street scenes have them)")
    return EvalReport(
        kind="behaviour",
        model=str(predictor.path),
        model_format=predictor.format,
        data=str(spec),
        samples=len(windows),
        primary="ade",
        metrics=metrics,
        higher_is_better=False,
        tables=tables,
        notes=notes,
    )


def crossing_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Binary crossing intent: accuracy at ``threshold``, AUROC (NaN with one class), positive rate, count."""
    labels = np.asarray(labels) > 0.5
    scores = np.asarray(scores, np.float64)
    return {
        "crossing_accuracy": float(np.mean((scores >= threshold) == labels)),
        "crossing_auroc": auroc(scores, labels),
        "crossing_positive_rate": float(labels.mean()),
        "crossing_windows": int(len(labels)),
    }
