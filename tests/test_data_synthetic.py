"""The synthetic street scene: determinism, labels that agree with the pixels, behaviour labels, geometry, files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from toolkit.data import synthetic
from toolkit.data.synthetic import CLASS_NAMES, SceneConfig, StreetScene
from toolkit.data.synthetic.sim import CROSSING
from toolkit.errors import UsageError

REPO = Path(__file__).resolve().parents[1]
PERSON, VEHICLE = CLASS_NAMES.index("person"), CLASS_NAMES.index("vehicle")


@pytest.fixture(scope="module")
def frames():
    """40 frames of two busy scenes (one with a jittered camera)."""
    out = []
    for seed, jitter in ((0, 0.0), (5, 1.0)):
        scene = StreetScene(
            SceneConfig(seed=seed, camera_jitter=jitter, pedestrians_per_min=25, vehicles_per_min=14)
        )
        out += list(scene.frames(20))
    return out


def test_class_names_are_the_contract():
    assert CLASS_NAMES == ("background", "road", "sidewalk", "person", "vehicle")
    assert synthetic.BEHAVIOURS == ("walking", "waiting", "crossing", "turning")


def test_same_seed_same_frames_and_labels_other_seed_differs():
    a = list(StreetScene(SceneConfig(seed=11)).frames(3))
    b = list(StreetScene(SceneConfig(seed=11)).frames(3))
    for fa, fb in zip(a, b, strict=True):
        assert np.array_equal(fa.image, fb.image) and np.array_equal(fa.mask, fb.mask)
        for key in ("boxes", "visibility", "person_ids", "feet", "ground", "intent", "vehicle_boxes"):
            assert np.array_equal(getattr(fa, key), getattr(fb, key)), key
        assert fa.behaviour == fb.behaviour
    c = StreetScene(SceneConfig(seed=12)).step()
    assert not np.array_equal(a[0].image, c.image)
    assert a[0].index == 0 and a[2].index == 2 and a[2].time_s == pytest.approx(0.2)


def test_frame_arrays_have_the_documented_shapes(frames):
    f = frames[0]
    assert f.image.shape == (360, 480, 3) and f.image.dtype == np.uint8
    assert f.mask.shape == (360, 480) and f.mask.dtype == np.uint8
    n = len(f.person_ids)
    assert f.boxes.shape == (n, 4) and f.boxes.dtype == np.float32
    assert f.visibility.shape == (n,) and f.feet.shape == (n, 2) and f.ground.shape == (n, 2)
    assert f.intent.shape == (n,) and f.intent.dtype == bool and len(f.behaviour) == n
    assert f.vehicle_boxes.shape == (len(f.vehicle_ids), 4)
    assert sum(len(fr.person_ids) for fr in frames) > 60  # busy scenes really contain people


def test_mask_ids_and_boxes_agree_with_the_pixels(frames):
    for f in frames:
        assert set(np.unique(f.mask).tolist()) <= set(range(len(CLASS_NAMES)))
        h, w = f.mask.shape
        for boxes, cls in ((f.boxes, PERSON), (f.vehicle_boxes, VEHICLE)):
            assert np.all(boxes[:, 0] >= 0) and np.all(boxes[:, 1] >= 0)
            assert np.all(boxes[:, 2] <= w) and np.all(boxes[:, 3] <= h)
            assert np.all(boxes[:, 2] > boxes[:, 0]) and np.all(boxes[:, 3] > boxes[:, 1])
            covered = np.zeros_like(f.mask, bool)
            for x1, y1, x2, y2 in boxes.astype(int):
                assert np.any(f.mask[y1:y2, x1:x2] == cls)  # every box holds pixels of its class
                covered[y1:y2, x1:x2] = True
            assert not np.any((f.mask == cls) & ~covered)  # and every pixel of the class is in a box
        assert np.all((f.visibility > 0) & (f.visibility <= 1))


def test_feet_point_sits_at_the_bottom_of_a_fully_visible_person(frames):
    checked = 0
    for f in frames:
        for (x1, y1, x2, y2), (u, v), vis in zip(f.boxes, f.feet, f.visibility, strict=True):
            if vis < 1 or y2 >= 359 or x1 <= 0 or x2 >= 479 or y1 <= 0:
                continue
            checked += 1
            assert x1 - 1 <= u <= x2 + 1
            assert y2 - 0.25 * (y2 - y1) - 2 <= v <= y2 + 1
    assert checked > 20


def test_people_have_plausible_sizes_at_the_default_view():
    f = list(StreetScene(SceneConfig(seed=2, pedestrians_per_min=25)).frames(10))[-1]
    heights = (f.boxes[:, 3] - f.boxes[:, 1])[f.visibility > 0.9]
    assert len(heights) >= 3
    assert 10 <= np.median(heights) <= 70


def test_intent_means_crossing_within_the_horizon():
    config = SceneConfig(seed=3, p_cross=0.6, vehicles_per_min=12, intent_horizon_s=2.0)
    scene = StreetScene(config)
    horizon = int(config.intent_horizon_s * config.fps)
    states = [scene.advance() for _ in range(300)]
    positives = 0
    for t in range(len(states) - horizon):
        state, intent = states[t]
        later = set()
        for future, _ in states[t + 1 : t + 1 + horizon]:
            later |= set(future.ped_ids[future.ped_behaviour == CROSSING].tolist())
        expected = np.array([pid in later for pid in state.ped_ids.tolist()], bool)
        assert np.array_equal(intent, expected), t
        positives += int(intent.sum())
        # crossing pedestrians are on (or stepping onto) the road
        road = scene.layout.road_half_m + 0.35
        assert np.all(np.abs(state.ped_pos[state.ped_behaviour == CROSSING, 1]) <= road)
    assert positives > 50


def test_vehicles_never_drive_through_pedestrians():
    scene = StreetScene(SceneConfig(seed=4, vehicles_per_min=30, p_jaywalk=0.3, p_cross=0.5, warmup_s=0))
    braked = 0
    for _ in range(1500):
        state, _ = scene.advance()
        for (x, y), (length, width, _h) in zip(state.veh_pos, state.veh_size, strict=True):
            d = np.abs(state.ped_pos - [x, y])
            assert not np.any((d[:, 0] < length / 2) & (d[:, 1] < width / 2))
        braked += sum(v.speed < 0.5 * v.v0 for v in scene._sim.vehs)
    assert braked > 0  # vehicles did have to yield


def test_homography_round_trip_and_agreement_with_the_projection(tmp_path):
    scene = StreetScene(SceneConfig(seed=1, camera_jitter=1.0))
    ground = np.array([[0.0, 0.0], [5.0, -3.0], [-4.0, 6.0], [12.0, 2.5]])
    pixels = scene.ground_to_image(ground)
    np.testing.assert_allclose(scene.image_to_ground(pixels), ground, atol=1e-6)
    projected, depth = scene.camera.project(np.hstack([ground, np.zeros((4, 1))]))
    np.testing.assert_allclose(pixels, projected, atol=1e-6)
    assert np.all(depth > 0)
    path = scene.write_homography(tmp_path / "h.json")
    data = json.loads(path.read_text())
    assert (
        data["direction"] == "image_to_ground" and data["units"] == "m" and data["image_size"] == [480, 360]
    )
    from toolkit.pipeline.geometry import load_homography  # the one reader, the camera pipeline's

    loaded = load_homography(path)
    np.testing.assert_allclose(loaded.to_ground(pixels), ground, atol=1e-6)
    assert loaded.image_size == (480, 360)
    # The camera looks at the crosswalk centre (no jitter): it is the image centre.
    centre = StreetScene(SceneConfig()).ground_to_image(np.zeros((1, 2)))
    np.testing.assert_allclose(centre, [[240.0, 180.0]], atol=1e-6)


def test_frame_ground_and_feet_agree_through_the_homography(frames):
    scene = StreetScene(SceneConfig(seed=0))
    f = frames[3]
    np.testing.assert_allclose(scene.ground_to_image(f.ground), f.feet, atol=1e-3)


def test_trajectory_windows_shapes_sampling_and_labels():
    config = SceneConfig(seed=6, p_cross=0.5)
    win = synthetic.trajectory_windows(config, 600)
    n = len(win["crossing"])
    assert n > 100 and win["obs"].shape == (n, 8, 2) and win["fut"].shape == (n, 12, 2)
    assert win["space"] == "ground" and win["dt_s"] == 0.4
    assert win["crossing"].dtype == bool and 0 < win["crossing"].mean() < 1
    steps = np.diff(np.concatenate([win["obs"], win["fut"]], 1), axis=1)
    speed = np.median(np.hypot(steps[..., 0], steps[..., 1])) / 0.4
    assert 0.9 < speed < 1.8  # walking speed in m/s: the points are 0.4 s apart
    np.testing.assert_allclose(win["start_s"] / 0.4, np.round(win["start_s"] / 0.4), atol=1e-9)
    # The same world at 20 fps is sampled every 8 frames: still walking speed per 0.4 s.
    fast = synthetic.trajectory_windows(SceneConfig(seed=6, fps=20, warmup_s=20), 400)
    fast_steps = np.diff(fast["obs"], axis=1)
    assert 0.9 < np.median(np.hypot(fast_steps[..., 0], fast_steps[..., 1])) / 0.4 < 1.8
    image = synthetic.trajectory_windows(config, 600, space="image")
    assert image["obs"].shape == win["obs"].shape and image["space"] == "image"
    assert image["obs"].min() >= 0 and image["obs"].max() < 1
    with pytest.raises(UsageError, match="fps"):
        synthetic.trajectory_windows(SceneConfig(fps=12), 100)
    with pytest.raises(UsageError, match="space"):
        synthetic.trajectory_windows(config, 100, space="pixels")


def test_tracks_are_the_world_the_frames_show():
    config = SceneConfig(seed=8)
    tracks = {t.person_id: t for t in synthetic.pedestrian_tracks(config, 12)}
    scene = StreetScene(config)
    for frame in scene.frames(12):
        if frame.index % 4:
            continue
        for pid, ground in zip(frame.person_ids, frame.ground, strict=True):
            track = tracks[int(pid)]
            row = int(np.flatnonzero(np.isclose(track.time_s, frame.time_s))[0])
            np.testing.assert_allclose(track.ground[row], ground, atol=1e-5)
            u, v = frame.feet[list(frame.person_ids).index(pid)]
            assert track.in_view[row] == (0 <= u < 480 and 0 <= v < 360)


@pytest.mark.parametrize("suffix", [".avi", ".mp4"])
def test_write_video_round_trips(tmp_path, suffix):
    path = synthetic.write_video(SceneConfig(seed=2), tmp_path / f"street{suffix}", 12)
    cap = cv2.VideoCapture(str(path))
    count = 0
    while True:
        ok, image = cap.read()
        if not ok:
            break
        assert image.shape == (360, 480, 3)
        count += 1
    cap.release()
    assert count == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"street{suffix}"]  # no temporary leftovers


def test_write_video_rejects_h264_containers(tmp_path):
    with pytest.raises(UsageError, match=".mp4"):
        synthetic.write_video(SceneConfig(), tmp_path / "street.mkv", 3)
    assert not any(tmp_path.iterdir())


def test_export_dataset_is_readable_by_the_real_data_loaders(tmp_path):
    from toolkit.data import masks, yolo

    manifest = synthetic.export_dataset(
        SceneConfig(seed=9, pedestrians_per_min=25), tmp_path, n_frames=6, every=2
    )
    assert manifest["counts"]["images"] == 3 and manifest["counts"]["person_boxes"] > 0
    images = sorted((tmp_path / "images" / "train").iterdir())
    labels = sorted((tmp_path / "object_detection" / "labels" / "train").iterdir())
    pngs = sorted((tmp_path / "semantic_segmentation" / "masks" / "train").iterdir())
    assert [p.stem for p in images] == [p.stem for p in labels] == [p.stem for p in pngs]
    assert [p.stem for p in images] == ["synth_s9_000000", "synth_s9_000002", "synth_s9_000004"]
    for label in labels:
        for line in label.read_text().splitlines():
            cls, *values = line.split()
            assert cls in ("0", "2") and len(values) == 4
            assert all(0.0 <= float(v) <= 1.0 for v in values)
    mask = cv2.imread(str(pngs[0]), cv2.IMREAD_UNCHANGED)
    assert mask.ndim == 2 and mask.dtype == np.uint8 and mask.shape == (360, 480) and mask.max() <= 4
    records = yolo.load_yolo_detection(
        tmp_path / "images" / "train", tmp_path / "object_detection" / "labels" / "train"
    )
    assert (
        len(records) == 3
        and sum(int((r.classes == 0).sum()) for r in records) == manifest["counts"]["person_boxes"]
    )
    assert yolo.read_class_names(tmp_path / "object_detection" / "config.yaml")[0] == "person"
    assert yolo.read_class_names(tmp_path / "semantic_segmentation" / "config.yaml") == dict(
        enumerate(CLASS_NAMES)
    )
    assert (
        len(
            masks.pair_masks(
                tmp_path / "images" / "train", tmp_path / "semantic_segmentation" / "masks" / "train"
            )
        )
        == 3
    )
    assert (tmp_path / "synthetic_train_s9.json").is_file()


@pytest.mark.parametrize(
    "override, message",
    [
        ({"width": 10}, "width"),
        ({"fps": 0}, "fps"),
        ({"camera_pitch_deg": 95.0}, "pitch"),
        ({"p_cross": 0.8, "p_jaywalk": 0.5}, "<= 1"),
        ({"max_pedestrians": 1000}, "max_pedestrians"),
    ],
)
def test_bad_config_is_a_one_line_usage_error(override, message):
    with pytest.raises(UsageError, match=message) as info:
        SceneConfig(**override)
    assert "\n" not in str(info.value)


def test_generator_imports_no_tensorflow():
    code = (
        "import sys; from toolkit.data import synthetic; s = synthetic.StreetScene(); s.step(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras')))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
