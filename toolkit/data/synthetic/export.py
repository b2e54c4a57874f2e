"""Files and label sets made from synthetic scenes: trajectories, videos, detection/segmentation datasets."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from toolkit.adapters.segment import CLASS_NAMES
from toolkit.data.synthetic.scene import SceneConfig, StreetScene
from toolkit.data.synthetic.sim import BEHAVIOURS, CROSSING
from toolkit.errors import ToolkitError, UsageError
from toolkit.fileio import atomic_path, write_bytes_atomic, write_json_atomic

SAMPLE_S = 0.4  # the ETH/UCY trajectory step
VIDEO_CODECS = {".mp4": "mp4v", ".avi": "MJPG"}  # H.264 writing fails with opencv-python wheels
COCO_CAR = 2  # vehicles in the exported YOLO labels use COCO's "car" id, so person stays 0 as in COCO128


@dataclass
class Track:
    """One pedestrian sampled every 0.4 s from spawn to exit (also while out of view)."""

    person_id: int
    time_s: np.ndarray  # (T,) seconds since frame 0, multiples of 0.4
    ground: np.ndarray  # (T, 2) float32 metres
    image: np.ndarray  # (T, 2) float32 pixels of the feet point
    in_view: np.ndarray  # (T,) bool: the feet point lies inside the image
    intent: np.ndarray  # (T,) bool: will be crossing within the config's intent_horizon_s
    behaviour: np.ndarray  # (T,) int8 index into BEHAVIOURS


def _sample_step(config: SceneConfig) -> int:
    step = config.fps * SAMPLE_S
    if abs(step - round(step)) > 1e-6 or round(step) < 1:
        raise UsageError(
            f"trajectory sampling needs fps * 0.4 to be a whole number of frames; fps {config.fps:g} "
            f"gives {step:g} (use fps 2.5, 5, 10, 15, 20, 25 or 30)"
        )
    return int(round(step))


def _run_labels(config: SceneConfig, n_frames: int) -> tuple[StreetScene, dict[int, dict[str, list]]]:
    """Simulate ``n_frames`` without rendering; per pedestrian, per-frame lists of frame/pos/behaviour/intent."""
    if n_frames < 1:
        raise UsageError(f"n_frames must be >= 1, got {n_frames}")
    scene = StreetScene(config)
    per: dict[int, dict[str, list]] = {}
    for frame in range(n_frames):
        state, intent = scene.advance()
        for row, pid in enumerate(state.ped_ids.tolist()):
            rec = per.setdefault(pid, {"frame": [], "pos": [], "beh": [], "intent": []})
            rec["frame"].append(frame)
            rec["pos"].append(state.ped_pos[row])
            rec["beh"].append(int(state.ped_behaviour[row]))
            rec["intent"].append(bool(intent[row]))
    return scene, per


def pedestrian_tracks(config: SceneConfig, n_frames: int) -> list[Track]:
    """Run a scene for ``n_frames`` (no rendering) and return every pedestrian's 0.4 s-sampled track."""
    step = _sample_step(config)
    scene, per = _run_labels(config, n_frames)
    hom = scene.homography()
    tracks = []
    for pid, rec in sorted(per.items()):
        frames = np.array(rec["frame"])
        keep = frames % step == 0
        if not keep.any():
            continue
        ground = np.array(rec["pos"])[keep]
        hom_pts = np.hstack([ground, np.ones((len(ground), 1))]) @ hom.T
        image = hom_pts[:, :2] / hom_pts[:, 2:3]
        in_view = (
            (hom_pts[:, 2] > 0)
            & (image[:, 0] >= 0)
            & (image[:, 0] < config.width)
            & (image[:, 1] >= 0)
            & (image[:, 1] < config.height)
        )
        tracks.append(
            Track(
                pid,
                frames[keep] / config.fps,
                ground.astype(np.float32),
                image.astype(np.float32),
                in_view,
                np.array(rec["intent"])[keep],
                np.array(rec["beh"], np.int8)[keep],
            )
        )
    return tracks


def trajectory_windows(
    config: SceneConfig, n_frames: int, space: str = "ground", obs_len: int = 8, pred_len: int = 12
) -> dict[str, Any]:
    """Behaviour-model windows from a scene run: ``obs_len`` observed + ``pred_len`` future points every 0.4 s.

    A window is kept when all its observed feet points are inside the image (what a camera could track).
    ``space``: "ground" (metres, the ETH/UCY units) or "image" (feet pixels divided by (width, height)).
    ``crossing`` is True when the pedestrian is crossing the road at any frame of the ``pred_len`` * 0.4 s after
    the last observed point (for the default 12 steps: within 4.8 s).
    Returns obs (N, obs_len, 2) float32, fut (N, pred_len, 2) float32, crossing (N,) bool, person_ids (N,) int64,
    start_s (N,) float64 time of the first observed point, space (str), dt_s 0.4.
    """
    if space not in ("ground", "image"):
        raise UsageError(f"space must be 'ground' or 'image', got {space!r}")
    if obs_len < 1 or pred_len < 1:
        raise UsageError("obs_len and pred_len must be >= 1")
    step = _sample_step(config)
    scene, per = _run_labels(config, n_frames)
    hom = scene.homography()
    scale = np.array([config.width, config.height], np.float64)
    obs, fut, crossing, ids, starts = [], [], [], [], []
    for pid, rec in sorted(per.items()):
        frames = np.array(rec["frame"])
        pos = np.array(rec["pos"])
        cross_frames = frames[np.array(rec["beh"]) == CROSSING]
        sampled = np.flatnonzero(frames % step == 0)
        hom_pts = np.hstack([pos[sampled], np.ones((len(sampled), 1))]) @ hom.T
        pix = hom_pts[:, :2] / hom_pts[:, 2:3]
        inside = (
            (hom_pts[:, 2] > 0)
            & (pix[:, 0] >= 0)
            & (pix[:, 0] < config.width)
            & (pix[:, 1] >= 0)
            & (pix[:, 1] < config.height)
        )
        points = pos[sampled] if space == "ground" else pix / scale
        for s in range(len(sampled) - obs_len - pred_len + 1):
            if not inside[s : s + obs_len].all():
                continue
            last = frames[sampled[s + obs_len - 1]]
            obs.append(points[s : s + obs_len])
            fut.append(points[s + obs_len : s + obs_len + pred_len])
            crossing.append(bool(np.any((cross_frames > last) & (cross_frames <= last + pred_len * step))))
            ids.append(pid)
            starts.append(frames[sampled[s]] / config.fps)
    return {
        "obs": np.array(obs, np.float32).reshape(-1, obs_len, 2),
        "fut": np.array(fut, np.float32).reshape(-1, pred_len, 2),
        "crossing": np.array(crossing, bool),
        "person_ids": np.array(ids, np.int64),
        "start_s": np.array(starts, np.float64),
        "space": space,
        "dt_s": SAMPLE_S,
    }


def write_video(config: SceneConfig, path: str | Path, n_frames: int) -> Path:
    """Render ``n_frames`` into ``path`` (.mp4 as mp4v, or .avi as MJPG), atomically; returns the path."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in VIDEO_CODECS:
        raise UsageError(
            f"video {target}: use a .mp4 (mp4v) or .avi (MJPG) file name (H.264 writing is not "
            "available in the OpenCV wheels)"
        )
    if n_frames < 1:
        raise UsageError(f"n_frames must be >= 1, got {n_frames}")
    scene = StreetScene(config)
    with atomic_path(target, suffix=suffix) as tmp:
        writer = cv2.VideoWriter(
            str(tmp),
            cv2.VideoWriter_fourcc(*VIDEO_CODECS[suffix]),
            float(config.fps),
            (config.width, config.height),
        )
        if not writer.isOpened():
            raise ToolkitError(f"OpenCV could not open a {VIDEO_CODECS[suffix]} video writer for {target}")
        try:
            for frame in scene.frames(n_frames):
                writer.write(frame.image)
        finally:
            writer.release()
    return target


def yolo_lines(boxes: np.ndarray, classes: list[int] | np.ndarray, width: int, height: int) -> list[str]:
    """xyxy pixel boxes -> YOLO ``class cx cy w h`` lines, normalised to the image size."""
    lines = []
    for (x1, y1, x2, y2), cls in zip(np.asarray(boxes, np.float64).reshape(-1, 4), classes, strict=True):
        cx, cy, bw, bh = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height
        lines.append(f"{int(cls)} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}")
    return lines


def export_dataset(
    config: SceneConfig,
    out_dir: str | Path,
    n_frames: int,
    every: int = 1,
    split: str = "train",
    min_visibility: float = 0.2,
) -> dict[str, Any]:
    """Render a scene and write every ``every``-th frame in the COCO128 layout the real-data loaders read.

    Writes ``images/<split>/<stem>.jpg``, ``object_detection/labels/<split>/<stem>.txt`` (YOLO ``class cx cy w h``
    normalised; person = 0, vehicle = 2 as COCO's car; pedestrians less than ``min_visibility`` visible are left
    out), ``semantic_segmentation/masks/<split>/<stem>.png`` (single-channel class indices, CLASS_NAMES), the two
    ``config.yaml`` files and a manifest ``synthetic_<split>_s<seed>.json``. Stems are ``synth_s<seed>_<index>``,
    so several seeds can share one folder. Returns the manifest dict.
    """
    if every < 1 or n_frames < 1:
        raise UsageError(f"n_frames and every must be >= 1, got {n_frames} and {every}")
    if not split or any(c in split for c in "/\\.") or split != split.strip():
        raise UsageError(f"split must be a plain folder name such as 'train', got {split!r}")
    root = Path(out_dir)
    dirs = {
        "images": root / "images" / split,
        "labels": root / "object_detection" / "labels" / split,
        "masks": root / "semantic_segmentation" / "masks" / split,
    }
    for folder in dirs.values():
        folder.mkdir(parents=True, exist_ok=True)
    _write_configs(root)
    scene = StreetScene(config)
    counts = {"images": 0, "person_boxes": 0, "vehicle_boxes": 0, "person_pixels": 0}
    for frame in scene.frames(n_frames):
        if frame.index % every:
            continue
        stem = f"synth_s{config.seed}_{frame.index:06d}"
        ok_jpg, jpg = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        ok_png, png = cv2.imencode(".png", frame.mask)
        if not (ok_jpg and ok_png):
            raise ToolkitError(f"OpenCV failed to encode frame {frame.index}")
        keep = frame.visibility >= min_visibility
        lines = yolo_lines(frame.boxes[keep], [0] * int(keep.sum()), config.width, config.height)
        lines += yolo_lines(
            frame.vehicle_boxes, [COCO_CAR] * len(frame.vehicle_boxes), config.width, config.height
        )
        write_bytes_atomic(dirs["images"] / f"{stem}.jpg", jpg.tobytes())
        write_bytes_atomic(dirs["masks"] / f"{stem}.png", png.tobytes())
        write_bytes_atomic(
            dirs["labels"] / f"{stem}.txt", ("\n".join(lines) + "\n" if lines else "").encode()
        )
        counts["images"] += 1
        counts["person_boxes"] += int(keep.sum())
        counts["vehicle_boxes"] += len(frame.vehicle_boxes)
        counts["person_pixels"] += int(np.count_nonzero(frame.mask == CLASS_NAMES.index("person")))
    manifest = {
        "generator": "toolkit.data.synthetic",
        "config": asdict(config),
        "n_frames": n_frames,
        "every": every,
        "split": split,
        "min_visibility": min_visibility,
        "counts": counts,
        "class_names": list(CLASS_NAMES),
        "yolo_classes": {"0": "person", str(COCO_CAR): "car"},
        "behaviours": list(BEHAVIOURS),
        "camera": asdict(scene.camera),
        "versions": {"numpy": np.__version__, "opencv": cv2.__version__, "python": platform.python_version()},
    }
    write_json_atomic(root / f"synthetic_{split}_s{config.seed}.json", manifest)
    return json.loads(json.dumps(manifest))


def _write_configs(root: Path) -> None:
    """The two dataset config files, listing every split exported into ``root`` so far."""
    splits = sorted(p.name for p in (root / "images").iterdir() if p.is_dir())
    names = "\n".join(f"  {i}: {n}" for i, n in ((0, "person"), (1, "bicycle"), (COCO_CAR, "car")))
    det_splits = "".join(f"{s}: images/{s}\n" for s in splits)
    det = (
        f"# Synthetic street scenes (toolkit.data.synthetic), YOLO boxes; class ids follow COCO\npath: ..\n"
        f"{det_splits}\nnames:\n{names}\n"
    )
    classes = "\n".join(f"  {i}: {n}" for i, n in enumerate(CLASS_NAMES))
    seg_splits = "".join(f"{s}:\n  images: ../images/{s}\n  masks: masks/{s}\n" for s in splits)
    seg = (
        f"# Synthetic street scenes (toolkit.data.synthetic), single-channel class-index PNG masks\n"
        f"{seg_splits}\nclasses:\n{classes}\n"
    )
    write_bytes_atomic(root / "object_detection" / "config.yaml", det.encode())
    write_bytes_atomic(root / "semantic_segmentation" / "config.yaml", seg.encode())
