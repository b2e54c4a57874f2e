"""Experiment (issue 17, point 3): learned crossing head vs road-grounded crossing vs a combination.

Synthetic street, unseen seeds (2000..): every pedestrian whose 8 observed foot points (0.4 s apart) are in view
is a sample at every 0.4 s step; the label is the scene's own ``intent`` (on the road within the next 4.8 s). True
foot positions are used (no detector / tracker), so the figures isolate the crossing step. Scores:

* ``learned``: the shipped behaviour model's crossing head (int8 TFLite; all tracks of a step in one batched call,
  each with its nearest neighbours from the scene);
* ``road_model`` / ``road_cv``: :func:`toolkit.pipeline.crossing.crossing_probabilities` of the model's K paths
  with their probabilities / the constant-velocity path against the road region, from (a) the segmenter's masks (int8, through
  :class:`~toolkit.pipeline.crossing.RoadMap`, as in the demo) and (b) the true label masks;
* ``combined``: mean of road_model (segmenter) and learned: the road decides, the head orders ties (fixed a
  priori, not fitted).

PETS clip: the segmenter's raw road share and the demo's road region (largest connected piece) per segmentation.

    .venv/bin/python scripts/crossing_eval.py --seeds 6 --frames 600 --out docs/pipeline/crossing.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from toolkit.data import trajectories
from toolkit.data.synthetic import SceneConfig, StreetScene
from toolkit.data.synthetic import camera as cam
from toolkit.eval import load_predictor
from toolkit.eval.behaviour import predict_modes
from toolkit.pipeline.config import PipelineConfig
from toolkit.pipeline.crossing import CrossingConfig, RoadMap, crossing_probabilities
from toolkit.pipeline.demo import locate_models
from toolkit.pipeline.segment import CLASSES, Segmenter
from toolkit.runtime.runner import Runner

OBS, HORIZON = 8, 12


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (ties count half), by ranks."""
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    s = scores[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos = labels.astype(bool)
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def figures(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """AUROC, accuracy at 0.5, precision and recall at 0.5, Brier score."""
    pred = scores >= 0.5
    tp = float((pred & labels).sum())
    return {
        "auroc": round(auroc(scores, labels), 4),
        "accuracy": round(float((pred == labels).mean()), 4),
        "precision": round(tp / max(pred.sum(), 1), 4),
        "recall": round(tp / max(labels.sum(), 1), 4),
        "brier": round(float(((scores - labels) ** 2).mean()), 4),
    }


def scene_samples(seed: int, frames: int, segmenter: Segmenter, predictor: Any) -> dict[str, np.ndarray]:
    """One synthetic seed -> per-sample scores and labels."""
    scene = StreetScene(SceneConfig(seed=seed))
    step = int(round(0.4 * scene.config.fps))
    to_image = scene.camera.homography()
    w, h = scene.config.width, scene.config.height
    seg_map, true_map = RoadMap(CrossingConfig()), RoadMap(CrossingConfig())
    history: dict[int, list[np.ndarray]] = {}
    out: dict[str, list] = {
        k: [] for k in ("label", "learned", "road_model", "road_cv", "true_model", "true_cv")
    }
    for t in range(frames):
        if t % step:
            scene.advance()
            continue
        frame = scene.step()
        if (t // step) % 3 == 0:  # segment every third sample step (1.2 s): the road does not move
            seg_map.update(segmenter(frame.image))
            true_map.update(frame.mask)
        ids, ground, intent = frame.person_ids, frame.ground.astype(np.float64), frame.intent
        for pid, g in zip(ids.tolist(), ground, strict=True):
            history.setdefault(pid, []).append(g)
        seen = set(ids.tolist())
        for pid in list(history):
            if pid not in seen:
                del history[pid]  # out of view: start again when it returns
        if seg_map.region() is None:
            continue
        rows, pids = [], []
        for row, pid in enumerate(ids.tolist()):
            hist = np.asarray(history[pid][-OBS:])
            if len(hist) < OBS:
                continue
            pix = cam.ground_to_image(to_image, hist)
            if not (np.isfinite(pix).all() and (pix[:, 0] >= 0).all() and (pix[:, 0] < w).all()):
                continue
            if not ((pix[:, 1] >= 0).all() and (pix[:, 1] < h).all()):
                continue
            rows.append(row)
            pids.append(pid)
        if not rows:
            continue
        hists = np.stack([np.asarray(history[pid][-OBS:]) for pid in pids])  # (n, OBS, 2) metres
        rel = hists - hists[:, -1:]
        neighbours = _neighbours(history, pids, predictor)
        modes, probs, crossing = predict_modes(
            predictor, rel, neighbours
        )  # all tracks of the step in one call
        cv = trajectories.constant_velocity(rel, HORIZON)
        k = modes.shape[1]
        model_paths = [
            cam.ground_to_image(to_image, (m + hists[i, -1]).reshape(-1, 2)).reshape(k, HORIZON, 2)
            for i, m in enumerate(modes.astype(np.float64))
        ]
        cv_paths = [cam.ground_to_image(to_image, c + hists[i, -1])[None] for i, c in enumerate(cv)]
        ones = [np.ones(1)] * len(rows)
        for region, prefix in ((seg_map.region(), "road"), (true_map.region(), "true")):
            out[f"{prefix}_model"] += [
                c.probability for c in crossing_probabilities(model_paths, list(probs), region)
            ]
            out[f"{prefix}_cv"] += [c.probability for c in crossing_probabilities(cv_paths, ones, region)]
        out["label"] += [bool(intent[r]) for r in rows]
        out["learned"] += np.clip(crossing, 0, 1).tolist()
    return {k: np.asarray(v) for k, v in out.items()}


def _neighbours(history: dict[int, list[np.ndarray]], pids: list[int], predictor: Any) -> np.ndarray | None:
    """World-axis neighbour states (n, M, 5) of the tracks ``pids`` from every visible person's last two samples
    (the layout of :func:`toolkit.data.trajectories.neighbour_states`), or None for a model without neighbours."""
    if "neighbours" not in predictor.input_shapes:
        return None
    m = predictor.input_shapes["neighbours"][0]
    rows = [
        (frame, pid, *point)
        for pid, points in history.items()
        for frame, point in (
            (trajectories.FRAME_STEP, points[-1]),
            *([(0, points[-2])] if len(points) > 1 else []),
        )
    ]
    last = np.full(len(pids), trajectories.FRAME_STEP)
    return trajectories.neighbour_states(np.asarray(rows, np.float64), np.asarray(pids), last, m)


def pets(segmenter: Segmenter, clip: Path, every: int = 3) -> dict[str, float]:
    """Road pixels the segmenter sees on the PETS clip, and what is left of them as the demo's road region."""
    capture = cv2.VideoCapture(str(clip))
    road = CLASSES.index("road")
    road_map, raw, region, largest, i = RoadMap(CrossingConfig(min_share=0.0)), [], [], [], 0
    kept = RoadMap(CrossingConfig())
    kept_share = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if i % every == 0:
            labels = segmenter(frame)
            road_map.update(labels)
            kept.update(labels)
            raw.append(float((labels == road).mean()))
            r = road_map.region()
            region.append(float(r.mean()))
            n, _, stats, _ = cv2.connectedComponentsWithStats(r.astype(np.uint8), connectivity=8)
            largest.append(float(stats[1:, cv2.CC_STAT_AREA].max() / r.size) if n > 1 else 0.0)
            kept_share.append(float(kept.region().mean()))
        i += 1
    raw_a, reg_a, big_a = np.array(raw), np.array(region), np.array(largest)
    return {
        "frames": i,
        "segmentations": len(raw),
        "raw_road_share_median": round(float(np.median(raw_a)), 4),
        "raw_road_share_max": round(float(raw_a.max()), 4),
        "segmentations_with_raw_road": int((raw_a > 0).sum()),
        "eroded_road_share_median_before_min_share": round(float(np.median(reg_a)), 4),
        "largest_road_piece_share_max": round(float(big_a.max()), 4),
        "min_share": CrossingConfig().min_share,
        "demo_region_share_max": round(float(max(kept_share)), 4),
    }


def main() -> None:
    """Run the comparison and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--first-seed", type=int, default=2000)
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--pets", default="../shared/data/pedestrian_video/pedestrians.avi")
    parser.add_argument("--out", default="docs/pipeline/crossing.json")
    parser.add_argument("--behaviour", help="behaviour model to score (default: the shipped zoo model)")
    args = parser.parse_args()
    models = locate_models(PipelineConfig())
    segmenter = Segmenter(Runner(models["segmenter"]))
    predictor = load_predictor(args.behaviour or models["behaviour"], threads=2)
    t0 = time.time()
    per_seed, pooled = {}, {}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        s = scene_samples(seed, args.frames, segmenter, predictor)
        labels = s.pop("label")
        s["combined"] = (s["road_model"] + s["learned"]) / 2
        per_seed[seed] = {
            "samples": len(labels),
            "positive_rate": round(float(labels.mean()), 4),
            **{k: figures(v, labels) for k, v in s.items()},
        }
        for k, v in {"label": labels, **s}.items():
            pooled.setdefault(k, []).append(v)
        print(seed, json.dumps(per_seed[seed]), flush=True)
    all_ = {k: np.concatenate(v) for k, v in pooled.items()}
    labels = all_.pop("label")
    result = {
        "synthetic": {
            "seeds": f"{args.first_seed}..{args.first_seed + args.seeds - 1} (unseen: training 0-7, val 1000-1001)",
            "frames_per_seed": args.frames,
            "samples": len(labels),
            "positive_rate": round(float(labels.mean()), 4),
            "pooled": {k: figures(v, labels) for k, v in all_.items()},
            "per_seed": per_seed,
        },
        "pets": pets(segmenter, Path(args.pets)),
        "seconds": round(time.time() - t0, 1),
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["synthetic"]["pooled"], indent=1))
    print(json.dumps(result["pets"], indent=1))


if __name__ == "__main__":
    main()
