"""Seeded procedural street scenes: frames, pixel labels, behaviour labels and trajectories (numpy + OpenCV).

The camera demo's default live source and the training data for the person detector, the street segmenter and
the behaviour (crossing-intent / trajectory) model. No TensorFlow: this runs on a device install.

What it renders: a two-lane road with a zebra crosswalk, kerbs and sidewalks on both sides, grass, gravel or dirt
beyond, and a row of buildings along the far side, seen by a pinhole camera above the street (height, pitch, yaw,
focal length; the ground is mapped to the image with the camera's homography). Pedestrians walk along the
sidewalks (some in pairs, some across the open ground on the camera's side), cross at the crosswalk (often after
waiting at the kerb for a gap in traffic), jaywalk, or turn back (half of those after waiting at the kerb: waiting
does not always mean crossing); walkers sway like real ones (no perfectly straight, constant-speed paths).
Vehicles drive in both lanes, follow each other and brake for anyone crossing ahead of them; pedestrians only
step onto the road when no vehicle is on or about to reach their crossing strip, so vehicles never drive through
people. Each seed varies light, colour temperature, saturation, sun direction and shadows, road/sidewalk/ground
materials and markings, buildings, street furniture (lamp posts, sign poles, bollards, trees, bins, benches,
cones: distractors that also occlude people), clothing, bags, sensor noise and blur, and with ``camera_jitter``
> 0 the camera view. Fully visible pedestrians are 27-55 px tall (5th-95th percentile, median 40) at the default
480x360 view and 15-40 px (median 28) with ``camera_jitter=1``; a lower camera (``camera_height_m`` 2-4) gives
the large people of COCO-like photos.

World frame: metres on the ground, x along the street, y across it (road |y| <= road half width, crosswalk at
x = 0), z up. Image: pixels, origin top-left, BGR.

API
---
``SceneConfig(seed=0, width=480, height=360, fps=10.0, camera_height_m=9.0, camera_pitch_deg=32.0,
camera_yaw_deg=30.0, focal_px=None, camera_jitter=0.0, pedestrians_per_min=14.0, vehicles_per_min=8.0,
max_pedestrians=24, p_cross=0.35, p_jaywalk=0.1, p_turn=0.1, p_wait=0.5, intent_horizon_s=4.8, warmup_s=40.0,
noise=1.0)``
    Frozen; invalid values raise UsageError. The same config always gives the same frames and labels.
``StreetScene(config=None)``
    ``.step() -> Frame``; ``.frames(n)`` and ``iter(scene)`` yield frames; ``.advance() -> (SimState, intent)``
    steps without rendering. ``.camera`` (:class:`~toolkit.data.synthetic.camera.Camera`), ``.layout``.
    ``.homography()`` 3x3 ground->image; ``.ground_to_image(xy)``; ``.image_to_ground(uv)``;
    ``.write_homography(path)`` writes the image->ground JSON that ``toolkit.pipeline.geometry`` loads.
``Frame``: ``image`` (H,W,3) uint8 BGR; ``mask`` (H,W) uint8 with ``CLASS_NAMES`` =
    (background, road, sidewalk, person, vehicle) = 0..4; ``index``; ``time_s``; per visible pedestrian (N rows,
    sorted by id): ``boxes`` (N,4) float32 xyxy pixels of the whole silhouette clipped to the image,
    ``visibility`` (N,) visible fraction, ``person_ids``, ``feet`` (N,2) pixels, ``ground`` (N,2) metres,
    ``intent`` (N,) bool (will be crossing within ``intent_horizon_s``, taken from the simulated future),
    ``behaviour`` tuple of ``BEHAVIOURS`` = (walking, waiting, crossing, turning); ``vehicle_boxes`` (M,4),
    ``vehicle_ids``.
``pedestrian_tracks(config, n_frames) -> [Track]``
    Every pedestrian sampled every 0.4 s (ETH/UCY rate): ``time_s``, ``ground`` metres, ``image`` pixels,
    ``in_view``, ``intent``, ``behaviour``. Needs fps * 0.4 to be whole (fps 5, 10, 15, 20, 25, 30).
``trajectory_windows(config, n_frames, space="ground", obs_len=8, pred_len=12) -> dict``
    ``obs`` (N,8,2), ``fut`` (N,12,2) float32 in metres (``space="ground"``) or feet pixels / (width, height)
    (``"image"``), ``crossing`` (N,) bool (crossing within the 12 future steps), ``person_ids``, ``start_s``,
    ``space``, ``dt_s`` = 0.4. Only windows whose observed points are all in view.
``write_video(config, path, n_frames) -> Path``
    .mp4 (mp4v) or .avi (MJPG), written atomically.
``export_dataset(config, out_dir, n_frames, every=1, split="train", min_visibility=0.2) -> manifest dict``
    The COCO128 layout: ``images/<split>/*.jpg``, ``object_detection/labels/<split>/*.txt`` (YOLO
    ``class cx cy w h``, person 0, vehicle 2 = COCO car), ``semantic_segmentation/masks/<split>/*.png``
    (single-channel class indices), both ``config.yaml`` files and ``synthetic_<split>_s<seed>.json``.

Example::

    from toolkit.data.synthetic import SceneConfig, StreetScene
    scene = StreetScene(SceneConfig(seed=3))
    for frame in scene.frames(100):
        cv2.imshow("street", frame.image)

Rendering speed: ``scripts/bench_synthetic.py`` (median ms per 480x360 frame, JSON output).
"""

from __future__ import annotations

from toolkit.adapters.segment import CLASS_NAMES
from toolkit.data.synthetic.camera import Camera
from toolkit.data.synthetic.export import (
    Track,
    export_dataset,
    pedestrian_tracks,
    trajectory_windows,
    write_video,
    yolo_lines,
)
from toolkit.data.synthetic.scene import Frame, SceneConfig, StreetScene
from toolkit.data.synthetic.sim import BEHAVIOURS

__all__ = [
    "BEHAVIOURS",
    "CLASS_NAMES",
    "Camera",
    "Frame",
    "SceneConfig",
    "StreetScene",
    "Track",
    "export_dataset",
    "pedestrian_tracks",
    "trajectory_windows",
    "write_video",
    "yolo_lines",
]
