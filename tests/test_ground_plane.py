"""Ground plane from people and from four points (toolkit.pipeline.ground_plane, ``toolkit ground``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import assert_one_line_error
from toolkit.data.synthetic.person_boxes import true_person_boxes
from toolkit.errors import UsageError
from toolkit.pipeline.geometry import Homography, load_homography
from toolkit.pipeline.ground_plane import GroundConfig, PersonObservations, estimate_ground_plane
from toolkit.pipeline.ground_points import homography_from_points, rectangle_corners

FAST = GroundConfig(bootstrap=8)


def scene_people(seed: int, seconds: float = 120.0, every: int = 4):
    """(ids, true boxes, truth Homography): feet and head tops of the simulated people, projected by the camera."""
    ids, boxes, scene = true_person_boxes(seed, seconds, every)
    truth = np.linalg.inv(scene.homography())
    return ids, boxes, Homography(truth / truth[2, 2], (scene.camera.width, scene.camera.height))


def distance_ratios(est: Homography, ref: Homography, feet: np.ndarray) -> np.ndarray:
    """d_est / d_ref over random pairs of foot points at least 1 m apart."""
    p = np.random.default_rng(1).integers(0, len(feet), (3000, 2))
    a, b = feet[p[:, 0]], feet[p[:, 1]]
    d_ref = np.linalg.norm(ref.to_ground(a) - ref.to_ground(b), axis=1)
    d_est = np.linalg.norm(est.to_ground(a) - est.to_ground(b), axis=1)
    return d_est[d_ref > 1] / d_ref[d_ref > 1]


@pytest.fixture(scope="module")
def people():
    return scene_people(21)


def test_true_person_boxes_give_ground_distances_within_5_percent(people):
    ids, boxes, truth = people
    obs = PersonObservations.from_tracks(ids, boxes, truth.image_size)
    est = estimate_ground_plane(obs, FAST)
    ratios = distance_ratios(est.homography, truth, obs.feet)
    assert np.median(np.abs(ratios - 1)) < 0.05
    assert est.tracks >= 10 and est.inliers > 0.8 * len(obs)
    assert 0 < est.uncertainty["distance_rel_total"] < 0.2


def test_noisy_and_partial_boxes_are_outliers_not_bias(people):
    ids, boxes, truth = people
    rng = np.random.default_rng(0)
    spoilt = boxes.copy()
    spoilt[:, [1, 3]] += rng.normal(0, 3.0, (len(boxes), 2))
    height = spoilt[:, 3] - spoilt[:, 1]
    legs = rng.random(len(boxes)) < 0.15  # hidden legs: the box ends above the feet
    spoilt[legs, 3] -= height[legs] * rng.uniform(0.2, 0.5, legs.sum())
    obs = PersonObservations.from_tracks(ids, spoilt, truth.image_size)
    est = estimate_ground_plane(obs, FAST)
    assert np.median(np.abs(distance_ratios(est.homography, truth, obs.feet) - 1)) < 0.08
    assert est.inliers < 0.95 * len(obs)  # most cut boxes were dropped (15% were cut)


def test_person_height_scales_every_distance(people):
    ids, boxes, truth = people
    obs = PersonObservations.from_tracks(ids, boxes, truth.image_size)
    base = estimate_ground_plane(obs, GroundConfig(bootstrap=0))
    taller = estimate_ground_plane(obs, GroundConfig(bootstrap=0, person_height_m=1.87))
    ratio = distance_ratios(taller.homography, base.homography, obs.feet)
    assert np.allclose(ratio, 1.1, rtol=1e-3)


def test_people_at_one_distance_cannot_fix_the_scale():
    rng = np.random.default_rng(0)
    n = 200
    u = rng.uniform(20, 460, n)
    v = 250 + rng.normal(0, 2, n)  # everyone on one image row
    boxes = np.stack([u - 10, v - 60, u + 10, v], 1)
    obs = PersonObservations.from_tracks(rng.integers(0, 10, n), boxes, (480, 360))
    with pytest.raises(UsageError, match="span only"):
        estimate_ground_plane(obs)


def test_too_few_people_is_a_usage_error(people):
    ids, boxes, truth = people
    keep = np.isin(ids, np.unique(ids)[:2])
    with pytest.raises(UsageError, match="too few people"):
        estimate_ground_plane(PersonObservations.from_tracks(ids[keep], boxes[keep], truth.image_size))


def test_four_points_round_trip_the_scene_camera(people):
    _, _, truth = people
    ground = np.array([[-2.0, 3.0], [4.0, 3.0], [4.0, -3.0], [-2.0, -3.0]])
    pixels = truth.to_image(ground)
    est = homography_from_points(pixels, ground, truth.image_size)
    probe = np.array([[100.0, 300.0], [240.0, 200.0], [400.0, 340.0]])
    assert np.allclose(est.homography.to_ground(probe), truth.to_ground(probe), atol=1e-3)
    assert 0 < est.uncertainty["distance_rel_std"] < 0.2


def test_rectangle_corners_in_click_order():
    assert rectangle_corners(3.5, 8).tolist() == [[0, 0], [3.5, 0], [3.5, 8], [0, 8]]
    with pytest.raises(UsageError):
        rectangle_corners(0, 8)


def test_cli_points_writes_a_homography_the_demo_loads(cli, tmp_path):
    out = tmp_path / "cam.json"
    result = cli(
        "ground", "points", "--size", "480x360", "--pixels", "100,300;380,300;330,200;150,200",
        "--rect", "3.5,8", "-o", out, "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert data["provenance"]["method"] == "four_points" and "date" in data["provenance"]
    h = load_homography(out)
    assert np.allclose(h.to_ground(np.array([[100.0, 300.0], [330.0, 200.0]])), [[0, 0], [3.5, 8]], atol=1e-4)
    assert json.loads(result.stdout)["units"] == "m"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "480x360", "--pixels", "1,2;3,4", "--rect", "3,8"], "four 'x,y' pairs"),
        (["--size", "480", "--pixels", "100,300;380,300;330,200;150,200", "--rect", "3,8"], "WIDTHxHEIGHT"),
        (["--size", "480x360", "--pixels", "100,300;380,300;330,200;150,200", "--rect", "3"], "W,L"),
        (
            [
                "--size",
                "480x360",
                "--pixels",
                "100,300;380,300;330,200;150,200",
                "--ground",
                "0,0;1,1;2,2;3,3",
            ],
            "line",
        ),
        (["--size", "480x360", "--pixels", "100,300;380,300;150,200;330,200", "--rect", "3,8"], "convex"),
        (["--size", "480x360", "--pixels", "100,300;980,300;330,200;150,200", "--rect", "3,8"], "inside"),
    ],
)
def test_cli_points_bad_input_is_one_line_exit_2(cli, tmp_path, args, message):
    result = cli("ground", "points", *args, "-o", tmp_path / "x.json")
    assert_one_line_error(result, 2, message)
    assert not (tmp_path / "x.json").exists()


def test_cli_estimate_missing_source_is_one_line_exit_2(cli, tmp_path):
    result = cli("ground", "estimate", tmp_path / "nope.avi", "-o", tmp_path / "x.json")
    assert_one_line_error(result, 2, "not found")


@pytest.mark.shared
def test_pets_estimate_from_gt_boxes_against_the_published_ground_coordinates(shared):
    """PETS09-S2L1's gt.txt carries every box's ground position in metres (PETS calibration): the reference."""
    import cv2

    root = shared / "data" / "pedestrian_video" / "PETS09-S2L1"
    raw = np.loadtxt(root / "gt.txt", delimiter=",")
    raw = raw[raw[:, 6] != 0]
    frames, ids = raw[:, 0].astype(int), raw[:, 1].astype(int)
    b = raw[:, 2:6] * 0.625  # 768x576 annotations -> the 480x360 clip (SOURCE.md)
    boxes = np.stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]], 1)
    obs = PersonObservations.from_tracks(ids, boxes, (480, 360))
    matrix, _ = cv2.findHomography(obs.feet, raw[:, 7:9], cv2.RANSAC, 0.5)
    reference = Homography(matrix / matrix[2, 2], (480, 360))
    est = estimate_ground_plane(obs, GroundConfig(bootstrap=20))
    error = abs(np.log(np.median(distance_ratios(est.homography, reference, obs.feet))))
    assert error < 2 * est.uncertainty["distance_rel_total"]  # within two stated standard deviations
    # walking speed of the gt tracks (1-s steps at 7 fps): the estimate within 20% of the calibrated 1.0 m/s
    speeds = {}
    for name, ground in (("reference", raw[:, 7:9]), ("estimate", est.homography.to_ground(obs.feet))):
        per_track = []
        for k in np.unique(ids):
            m = ids == k
            at = {int(t): j for j, t in enumerate(frames[m])}
            steps = [
                np.linalg.norm(ground[m][at[t + 7]] - ground[m][j]) for t, j in at.items() if t + 7 in at
            ]
            if len(steps) >= 7:
                per_track.append(np.median(steps))
        speeds[name] = float(np.median(per_track))
    assert 0.95 < speeds["reference"] < 1.1
    assert 0.8 < speeds["estimate"] < 1.25


def test_auto_reuses_the_saved_estimate_of_the_same_source(cli, tmp_path, monkeypatch):
    from toolkit.paths import HOME_ENV
    from toolkit.pipeline.ground_source import auto_homography, saved_estimate_path

    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    clip = tmp_path / "clip.avi"
    clip.write_bytes(b"")
    other = tmp_path / "other.avi"
    other.write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    path = saved_estimate_path(str(clip))
    assert path == saved_estimate_path("clip.avi") != saved_estimate_path(str(other))
    assert path.parent == tmp_path / "home" / "ground" and path.name.startswith("clip.avi-")
    assert saved_estimate_path("rtsp://user:secret@cam/1").name.startswith("url-")
    path.parent.mkdir(parents=True)
    made = cli(
        "ground", "points", "--size", "480x360", "--pixels", "100,300;380,300;330,200;150,200",
        "--rect", "3.5,8", "-o", path,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    lines: list[str] = []
    homography = auto_homography(str(clip), log=lines.append)  # no detector run: the saved file is used
    assert np.allclose(homography.to_ground(np.array([[380.0, 300.0]])), [[3.5, 0.0]], atol=1e-4)
    assert len(lines) == 1 and "four_points" in lines[0] and str(path) in lines[0]


def _post(url: str, body: bytes) -> tuple[int, dict]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_web_view_four_clicks_save_the_camera_homography(tmp_path):
    import urllib.request

    from toolkit.pipeline.server import LiveServer

    target = tmp_path / "ground" / "cam.json"
    with LiveServer("127.0.0.1", 0) as server:
        url = server.url
        assert _post(url + "ground", b"{}")[0] == 404  # off until the demo names the file
        server.ground_path = target
        server.publish(np.zeros((360, 480, 3), np.uint8))
        with urllib.request.urlopen(url + "ground.html", timeout=5) as page:
            assert b"four points" in page.read()
        click = {"size": [480, 360], "pixels": [[100, 300], [380, 300], [330, 200], [150, 200]]}
        code, reply = _post(url + "ground", json.dumps({**click, "rect": "3.5,8"}).encode())
        assert code == 200 and reply["path"] == str(target) and 0 < reply["distance_rel_std"] < 0.2
        homography = load_homography(target)
        assert np.allclose(homography.to_ground(np.array([[330.0, 200.0]])), [[3.5, 8.0]], atol=1e-4)
        assert json.loads(target.read_text())["provenance"]["source"] == "web view"
        code, reply = _post(url + "ground", json.dumps({**click, "ground": "0,0;1,1;2,2;3,3"}).encode())
        assert code == 400 and "line" in reply["error"]
        code, reply = _post(url + "ground", json.dumps({"size": [480, 360], "pixels": [[1, 2]]}).encode())
        assert code == 400 and "four points" in reply["error"]
        assert _post(url + "ground", b"x" * 5000)[0] == 400


@pytest.mark.browser
def test_ground_page_in_chromium_saves_four_clicks(tmp_path):
    from pathlib import Path

    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.skip("needs Debian chromium at /usr/bin/chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    from toolkit.pipeline.server import LiveServer

    target = tmp_path / "cam.json"
    with LiveServer("127.0.0.1", 0) as server, sync_playwright() as pw:
        server.ground_path = target
        server.publish(np.full((360, 480, 3), 90, np.uint8))
        browser = pw.chromium.launch(
            executable_path=str(chromium), args=["--headless", "--no-sandbox", "--disable-gpu"], headless=True
        )
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.goto(server.url + "ground.html")
            page.wait_for_function("document.getElementById('frame').naturalWidth > 0")
            box = page.locator("#frame").bounding_box()
            scale = box["width"] / 480
            for u, v in [(100, 300), (380, 300), (330, 200), (150, 200)]:
                page.mouse.click(box["x"] + u * scale, box["y"] + v * scale)
            assert page.locator("#marks circle").count() == 4
            page.fill("#rect", "3.5,8")
            page.click("#save")
            page.wait_for_function("document.getElementById('result').textContent.startsWith('saved')")
        finally:
            browser.close()
    homography = load_homography(target)
    assert np.allclose(
        homography.to_ground(np.array([[380.0, 300.0], [150.0, 200.0]])), [[3.5, 0], [0, 8]], atol=0.05
    )


def test_demo_summary_names_the_homography_and_its_uncertainty(cli, tmp_path):
    from toolkit.pipeline.ground_source import homography_info

    out = tmp_path / "cam.json"
    made = cli(
        "ground", "points", "--size", "480x360", "--pixels", "100,300;380,300;330,200;150,200",
        "--rect", "3.5,8", "-o", out,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    info = homography_info(load_homography(out))
    assert (
        info["file"] == str(out) and info["method"] == "four_points" and 0 < info["distance_rel_total"] < 0.2
    )
    assert homography_info(None) is None
    bare = homography_info(Homography(np.eye(3), (480, 360), "synthetic scene camera"))
    assert bare == {"file": "synthetic scene camera", "method": None, "distance_rel_total": None}
