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

Predictions are deterministic (never best-of-20 samples). The model sees each track (and, for a social model, its
nearest neighbours) in the heading frame (:mod:`toolkit.adapters.behaviour`); :func:`predict_windows` applies and
undoes it, as the pipeline does.

Multi-modal models (K paths + ``mode_probs``): ``ade`` / ``fde`` are the MOST LIKELY mode's (highest probability),
``min_ade`` / ``min_fde`` the best of the K modes (oracle choice), ``mode_nll`` the mean -log probability given to
the closest mode (nats), ``mode_ece`` the expected calibration error of "this mode is the closest one" over all
(window, mode) pairs in 10 probability bins (reliability table ``mode_reliability``), ``top_mode_accuracy`` how
often the most likely mode is the closest. Single-output models are K = 1 with probability 1 (min = most likely).
"""

from __future__ import annotations

import numpy as np

from toolkit.adapters.behaviour import denormalise, model_track, neighbour_input, split_modes
from toolkit.data import trajectories as traj
from toolkit.data.behaviour_windows import load_windows, spread
from toolkit.data.spec import DataSpec
from toolkit.errors import UsageError
from toolkit.eval.config import EvalConfig
from toolkit.eval.metrics import auroc
from toolkit.eval.predictor import Predictor
from toolkit.eval.report import EvalReport


def predict_modes(
    predictor: Predictor, obs_rel: np.ndarray, neighbours: np.ndarray | None = None, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the model on (N, T, 2) relative tracks (+ (N, M, 5) world-axis neighbours for a social model) ->
    (modes (N, K, H, 2) relative to the last point, mode probabilities (N, K), crossing (N,)).

    Single-output models give K = 1 with probability 1.
    """
    track, rotation = model_track(obs_rel)
    feeds = {"track": track}
    if "neighbours" in predictor.input_shapes:
        m = predictor.input_shapes["neighbours"][0]
        if neighbours is None or neighbours.shape[1] != m:
            raise UsageError(f"{predictor.path}: a social model needs {m} neighbours per window")
        feeds["neighbours"] = neighbour_input(neighbours, rotation)
    out = predictor.predict(feeds, batch_size=batch_size)
    if "future" not in out or "crossing" not in out:
        raise UsageError(
            f"{predictor.path}: outputs {sorted(out)}; a behaviour model has 'future' and 'crossing'"
        )
    modes, probs = split_modes(out["future"], out.get("mode_probs"))
    n, k, h, _ = modes.shape
    modes = denormalise(modes.reshape(n, k * h, 2), rotation).reshape(n, k, h, 2)
    return modes, probs, np.asarray(out["crossing"], np.float64).reshape(n)


def predict_windows(
    predictor: Predictor, obs_rel: np.ndarray, batch_size: int = 64, neighbours: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Run the model -> (most likely future (N, H, 2) relative to the last point, crossing (N,))."""
    modes, probs, crossing = predict_modes(predictor, obs_rel, neighbours, batch_size)
    return most_likely(modes, probs), crossing


def most_likely(modes: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """(N, K, H, 2) modes, (N, K) probabilities -> (N, H, 2) the highest-probability mode of each window."""
    return modes[np.arange(len(modes)), np.argmax(probs, axis=1)]


def _model_shape(predictor: Predictor) -> tuple[int, int, int]:
    """(observed, horizon, neighbours M) of a behaviour model, from its input shapes and one probe prediction."""
    shape = tuple(predictor.input_shapes.get("track", ()))
    if len(shape) != 2 or shape[1] != 2 or shape[0] < 2:
        raise UsageError(
            f"{predictor.path}: input 'track' is {list(shape)}; a behaviour model takes (T >= 2, 2)"
        )
    feeds = {k: np.zeros((1, *v), np.float32) for k, v in predictor.input_shapes.items()}
    future = predictor.predict(feeds)["future"]
    m = tuple(predictor.input_shapes.get("neighbours", (0, 5)))[0]
    return shape[0], int(future.shape[-2]), int(m)


def mode_scores(modes: np.ndarray, probs: np.ndarray, fut: np.ndarray) -> dict[str, np.ndarray]:
    """Per-window figures of a multi-modal prediction against the truth ``fut`` (N, H, 2).

    Returns float64 arrays: ``ml_ade`` / ``ml_fde`` (most likely mode), ``min_ade`` / ``min_fde`` (best mode;
    each minimised on its own), ``closest`` (int, index of the mode with the lowest ADE), ``nll``
    (-log probability of that mode), ``top_hit`` (1 where the most likely mode is the closest).
    """
    d = np.linalg.norm(modes.astype(np.float64) - fut[:, None].astype(np.float64), axis=-1)  # (N, K, H)
    ade_k, fde_k = d.mean(axis=-1), d[..., -1]
    rows = np.arange(len(modes))
    top = np.argmax(probs, axis=1)
    closest = np.argmin(ade_k, axis=1)
    return {
        "ml_ade": ade_k[rows, top],
        "ml_fde": fde_k[rows, top],
        "min_ade": ade_k.min(axis=1),
        "min_fde": fde_k.min(axis=1),
        "closest": closest,
        "nll": -np.log(np.clip(probs[rows, closest], 1e-7, 1.0)),
        "top_hit": (top == closest).astype(np.float64),
    }


def reliability(probs: np.ndarray, closest: np.ndarray, bins: int = 10) -> tuple[float, list[dict]]:
    """Calibration of mode probabilities: every (window, mode) pair is one forecast "this mode is the closest".

    Returns (expected calibration error: bin-weighted mean |mean probability - hit rate|, the table of bins with
    ``count``, ``mean_prob``, ``hit_rate``). K = 1 is trivially calibrated (probability 1, always closest).
    """
    p = np.asarray(probs, np.float64).reshape(-1)
    hit = (np.arange(probs.shape[1])[None] == np.asarray(closest)[:, None]).reshape(-1)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        m = which == b
        if not m.any():
            continue
        mean_p, rate = float(p[m].mean()), float(hit[m].mean())
        ece += m.mean() * abs(mean_p - rate)
        table.append(
            {
                "bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}",
                "count": int(m.sum()),
                "mean_prob": mean_p,
                "hit_rate": rate,
            }
        )
    return float(ece), table


def evaluate(predictor: Predictor, spec: DataSpec, config: EvalConfig = EvalConfig()) -> EvalReport:
    """ADE / FDE (metres) per scene with the constant-velocity row; crossing accuracy / AUROC where labelled."""
    observed, horizon, m_neighbours = _model_shape(predictor)
    windows = load_windows(spec, observed, horizon, m_neighbours)
    windows = windows.take(spread(len(windows), config.limit))
    modes, probs, crossing = predict_modes(predictor, windows.obs, windows.neighbours, config.batch_size)
    future = most_likely(modes, probs)
    scores = mode_scores(modes, probs, windows.fut)
    cv = traj.constant_velocity(windows.obs, horizon)
    rows = []
    for group in dict.fromkeys(windows.group.tolist()):  # first-seen order: the scene order of the SPEC
        m = windows.group == group
        row = {
            "scene": group,
            "windows": int(m.sum()),
            "ade": traj.ade(future[m], windows.fut[m]),
            "fde": traj.fde(future[m], windows.fut[m]),
            "min_ade": float(scores["min_ade"][m].mean()),
            "min_fde": float(scores["min_fde"][m].mean()),
            "mode_nll": float(scores["nll"][m].mean()),
            "mode_ece": reliability(probs[m], scores["closest"][m])[0],
            "top_mode_accuracy": float(scores["top_hit"][m].mean()),
        }
        if config.baselines:
            row |= {"cv_ade": traj.ade(cv[m], windows.fut[m]), "cv_fde": traj.fde(cv[m], windows.fut[m])}
        rows.append(row)
    per_scene = spec.name == "eth_ucy" and spec.get("scene") == "all" and spec.get("split") == "test"
    notes = [
        f"data: {windows.source}; {len(windows)} windows of {observed} observed + {horizon} future steps "
        "(0.4 s each)",
        f"deterministic prediction, K = {modes.shape[1]} mode(s) per window (not best-of-20); ade / fde = the "
        "most likely mode, min_ade / min_fde = the best of the K; tracks enter the model in the heading frame "
        "(toolkit.adapters.behaviour)"
        + (f", with the {m_neighbours} nearest neighbours" if m_neighbours else ""),
    ]

    def summary(key: str, pred: np.ndarray | None) -> float:
        if per_scene or pred is None:  # the ETH/UCY convention: mean of the per-scene figures
            if per_scene:
                return float(np.mean([r[key] for r in rows]))
            named = {
                "min_ade": "min_ade",
                "min_fde": "min_fde",
                "mode_nll": "nll",
                "top_mode_accuracy": "top_hit",
            }
            return float(scores[named[key]].mean())
        return (traj.ade if key.endswith("ade") else traj.fde)(pred, windows.fut)

    ece, table = reliability(probs, scores["closest"])
    metrics = {"ade": summary("ade", future), "fde": summary("fde", future)}
    metrics |= {k: summary(k, None) for k in ("min_ade", "min_fde", "mode_nll", "top_mode_accuracy")}
    metrics |= {"modes": int(modes.shape[1]), "mode_ece": ece if not per_scene else summary("mode_ece", None)}
    tables: dict[str, list[dict]] = {"per_scene": rows, "mode_reliability": table}
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
