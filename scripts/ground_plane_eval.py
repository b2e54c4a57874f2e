"""Experiment: the people-based ground-plane fit (toolkit.pipeline.ground_plane) against known ground truth.

Synthetic street (held-out seeds 100-107, camera_jitter 1: height, pitch, yaw and focal change per seed):
  clean     true person boxes (feet and head top projected from the simulation; children included),
  noisy     the same with 3 px noise on box top/bottom, 15% of boxes cut from below by 20-50% (hidden legs)
            and 5% cut from above (hidden heads),
  rendered  the renderer's silhouette boxes (every 5th frame), as a detector trained on them would see them.
Metric: relative error of ground distances between pairs of foot points, estimate vs the scene camera.

PETS09-S2L1 (pedestrians.avi + MOT15 gt): gt.txt carries the ground-plane coordinates (metres) of every box,
from the published PETS calibration; a homography fitted to them is the reference. Reported: the estimate from
the gt boxes and from the shipped detector + tracker's tracks, their distance ratio to the reference, and the
median walking speed of gt and detector tracks under each.

    nice .venv/bin/python scripts/ground_plane_eval.py --out docs/pipeline/ground_plane.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from toolkit.data.mot import load_mot_sequence
from toolkit.data.synthetic import StreetScene
from toolkit.data.synthetic.person_boxes import true_person_boxes
from toolkit.data.synthetic.scene import SceneConfig
from toolkit.paths import shared_dir
from toolkit.pipeline.geometry import Homography
from toolkit.pipeline.ground_plane import PersonObservations, estimate_ground_plane

SEEDS = range(100, 108)
PETS = ("data", "pedestrian_video")


def synthetic_boxes(
    seed: int, seconds: float = 180.0, every: int = 4
) -> tuple[np.ndarray, np.ndarray, StreetScene]:
    """(ids, true boxes, scene) from the simulation (:func:`true_person_boxes`)."""
    return true_person_boxes(seed, seconds, every)


def spoil(boxes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """3 px noise, 15% of boxes cut from below by 20-50%, 5% cut from above by 10-30%."""
    out = boxes.copy()
    out[:, [1, 3]] += rng.normal(0, 3.0, (len(out), 2))
    h = out[:, 3] - out[:, 1]
    legs = rng.random(len(out)) < 0.15
    out[legs, 3] -= h[legs] * rng.uniform(0.2, 0.5, legs.sum())
    heads = (rng.random(len(out)) < 0.05) & ~legs
    out[heads, 1] += h[heads] * rng.uniform(0.1, 0.3, heads.sum())
    return out


def rendered_boxes(seed: int, seconds: float = 120.0, every: int = 5) -> tuple[np.ndarray, np.ndarray]:
    scene = StreetScene(SceneConfig(seed=seed, camera_jitter=1.0, warmup_s=20.0))
    ids, boxes = [], []
    for k in range(int(seconds * scene.config.fps)):
        if k % every:
            scene.advance()
            continue
        frame = scene.step()
        ids.append(frame.person_ids)
        boxes.append(frame.boxes.astype(np.float64))
    return np.concatenate(ids), np.concatenate(boxes)


def distance_error(est: Homography, ref: Homography, feet: np.ndarray, seed: int = 1) -> dict[str, float]:
    """Median |d_est / d_ref - 1| and median d_est / d_ref over random pairs of foot points >= 1 m apart."""
    rng = np.random.default_rng(seed)
    p = rng.integers(0, len(feet), (4000, 2))
    a, b = feet[p[:, 0]], feet[p[:, 1]]
    d_ref = np.linalg.norm(ref.to_ground(a) - ref.to_ground(b), axis=1)
    d_est = np.linalg.norm(est.to_ground(a) - est.to_ground(b), axis=1)
    ok = d_ref > 1.0
    ratio = d_est[ok] / d_ref[ok]
    return {
        "median_abs_rel_error": float(np.median(np.abs(ratio - 1))),
        "median_ratio": float(np.median(ratio)),
    }


def summary(est) -> dict[str, float]:
    return {
        "camera_height_m": round(est.camera_height_m, 3),
        "pitch_deg": round(est.pitch_deg, 2),
        "focal_px": round(est.focal_px, 1),
        "horizon_row": round(est.horizon_row, 1),
        "inliers": est.inliers,
        "samples": est.samples,
        "tracks": est.tracks,
        **{k: round(v, 4) for k, v in est.uncertainty.items()},
    }


def run_synthetic() -> list[dict]:
    rows = []
    for seed in SEEDS:
        ids, boxes, scene = synthetic_boxes(seed)
        truth = np.linalg.inv(scene.homography())
        ref = Homography(truth / truth[2, 2], (scene.camera.width, scene.camera.height))
        cam = scene.camera
        row = {
            "seed": seed,
            "camera": {"height_m": cam.height_m, "pitch_deg": cam.pitch_deg, "focal_px": cam.focal_px},
        }
        variants = {"clean": boxes, "noisy": spoil(boxes, np.random.default_rng(seed))}
        rid, rbox = rendered_boxes(seed)
        for name, (vid, vbox) in {
            **{k: (ids, v) for k, v in variants.items()},
            "rendered": (rid, rbox),
        }.items():
            obs = PersonObservations.from_tracks(vid, vbox, (cam.width, cam.height))
            t0 = time.perf_counter()
            est = estimate_ground_plane(obs)
            row[name] = {
                **summary(est),
                **distance_error(est.homography, ref, obs.feet),
                "fit_s": round(time.perf_counter() - t0, 2),
            }
        rows.append(row)
        print(
            seed,
            {
                k: (row[k]["median_abs_rel_error"], row[k]["median_ratio"], row[k]["distance_rel_total"])
                for k in ("clean", "noisy", "rendered")
            },
            flush=True,
        )
    return rows


def run_synthetic_detector(seconds: float = 60.0) -> list[dict]:
    """The product path (toolkit ground estimate): the shipped detector + tracker on the rendered scene."""
    from toolkit.pipeline.ground_source import observe_people

    rows = []
    for seed in SEEDS:
        spec = f"synthetic:seed={seed},camera_jitter=1.0"
        obs, info = observe_people(spec, seconds, threads=2)
        scene = StreetScene(SceneConfig(seed=seed, camera_jitter=1.0, warmup_s=0.0))
        truth = np.linalg.inv(scene.homography())
        ref = Homography(truth / truth[2, 2], (scene.camera.width, scene.camera.height))
        est = estimate_ground_plane(obs)
        row = {
            "seed": seed,
            "frames": info["frames"],
            **summary(est),
            **distance_error(est.homography, ref, obs.feet),
        }
        rows.append(row)
        print(seed, row["median_ratio"], row["distance_rel_total"], flush=True)
    return rows


def track_speeds(ids: np.ndarray, frames: np.ndarray, ground: np.ndarray, fps: float) -> np.ndarray:
    """Per track (>= 1 s of 1-s windows): the median of |p(t + 1 s) - p(t)| over its 1-s windows, m/s."""
    step = int(round(fps))
    out = []
    for k in np.unique(ids):
        m = ids == k
        t, p = frames[m], ground[m]
        at = {int(tt): j for j, tt in enumerate(t)}
        v = [np.linalg.norm(p[at[int(tt) + step]] - p[j]) for j, tt in enumerate(t) if int(tt) + step in at]
        if len(v) >= step:
            out.append(float(np.median(v)) * fps / step)
    return np.array(out)


def run_pets() -> dict:
    from toolkit.pipeline.offline import OfflineTracker

    root = shared_dir() / Path(*PETS)
    seq = load_mot_sequence(root / "PETS09-S2L1", video=root / "pedestrians.avi")
    raw = np.loadtxt(root / "PETS09-S2L1" / "gt.txt", delimiter=",")
    raw = raw[raw[:, 6] != 0]
    frames, ids = raw[:, 0].astype(int) - 1, raw[:, 1].astype(int)
    b = raw[:, 2:6] * seq.scale
    boxes = np.stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]], 1)
    world = raw[:, 7:9]
    feet = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 3]], 1)
    matrix, _ = cv2.findHomography(feet, world, cv2.RANSAC, 0.5)
    ref = Homography(matrix / matrix[2, 2], seq.size)
    fps = seq.frame_rate
    gt_est = estimate_ground_plane(PersonObservations.from_tracks(ids, boxes, seq.size))
    det_ids, det_boxes, det_frames = [], [], []
    with OfflineTracker.open(None, threads=2, every_n_seg=0) as run:
        for result in run.frames(seq.frames(), fps=fps):
            det_ids.append(result.ids)
            det_boxes.append(result.boxes)
            det_frames.append(np.full(len(result.ids), result.index))
    d_ids, d_boxes, d_frames = np.concatenate(det_ids), np.concatenate(det_boxes), np.concatenate(det_frames)
    det_est = estimate_ground_plane(PersonObservations.from_tracks(d_ids, d_boxes, seq.size))
    d_feet = np.stack([(d_boxes[:, 0] + d_boxes[:, 2]) / 2, d_boxes[:, 3]], 1)
    out = {
        "reference": "homography fitted to gt.txt world X, Y (PETS calibration), RANSAC 0.5 m",
        "reference_residual_m_median": float(np.median(np.linalg.norm(ref.to_ground(feet) - world, axis=1))),
    }
    for name, est in (("from_gt_boxes", gt_est), ("from_detector_tracks", det_est)):
        out[name] = {**summary(est), **distance_error(est.homography, ref, feet)}
    speeds = {
        "gt_tracks_world_coordinates": track_speeds(ids, frames, world, fps),
        "gt_tracks_reference_homography": track_speeds(ids, frames, ref.to_ground(feet), fps),
        "gt_tracks_estimate_from_gt_boxes": track_speeds(ids, frames, gt_est.homography.to_ground(feet), fps),
        "gt_tracks_estimate_from_detector": track_speeds(
            ids, frames, det_est.homography.to_ground(feet), fps
        ),
        "detector_tracks_reference_homography": track_speeds(d_ids, d_frames, ref.to_ground(d_feet), fps),
        "detector_tracks_estimate_from_detector": track_speeds(
            d_ids, d_frames, det_est.homography.to_ground(d_feet), fps
        ),
    }
    out["walking_speed_m_s"] = {
        k: {
            "median": round(float(np.median(v)), 3),
            "p25": round(float(np.percentile(v, 25)), 3),
            "p75": round(float(np.percentile(v, 75)), 3),
            "tracks": len(v),
        }
        for k, v in speeds.items()
    }
    print(json.dumps(out, indent=1), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--detector-only", action="store_true", help="add synthetic_detector to --out")
    args = parser.parse_args()
    if args.detector_only:
        result = json.loads(args.out.read_text())
        result["synthetic_detector"] = run_synthetic_detector()
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        return
    result = {"date": time.strftime("%Y-%m-%d"), "person_height_m": 1.7}
    result["pets09_s2l1"] = run_pets()
    if not args.skip_synthetic:
        result["synthetic"] = run_synthetic()
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
