"""``toolkit demo`` end to end on tiny untrained full-int8 models converted by ``toolkit.convert`` (TF in the
fixture only): recordings play with the right frame count, events validate, SIGTERM stops cleanly, the live view
serves, the real clip runs, bad sources exit 2 / 3 with one line, and the pipelined and serial paths agree."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REPO, assert_one_line_error, require_tf

from toolkit.pipeline.config import PipelineConfig
from toolkit.pipeline.demo import run_demo
from toolkit.pipeline.events import read_events

pytestmark = [pytest.mark.tf, pytest.mark.slow]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    """A folder with tiny untrained detector, segmenter and behaviour models (full int8) and their manifests.

    The detector's heatmap bias is set high (``heatmap_prior``) so that the untrained model reports confident
    boxes: the tracker confirms tracks and the behaviour model runs on them. Those tracks follow whatever the
    random weights respond to, not people; test_demo_zoo.py checks real tracks with the trained zoo."""
    require_tf()
    from toolkit.convert.config import ConvertConfig
    from toolkit.convert.converter import convert
    from toolkit.models import build_model

    root = tmp_path_factory.mktemp("demo_models")
    rng = np.random.default_rng(0)
    specs = [
        ("detector", {"width": 0.25, "input_shape": (96, 128, 3), "heatmap_prior": 0.9}, (96, 128, 3)),
        ("segmenter", {"width": 0.25, "input_shape": (48, 64, 3)}, (48, 64, 3)),
        ("behaviour", {"d_model": 16, "ffn_dim": 32, "head_dim": 16}, (8, 2)),
    ]
    for kind, overrides, shape in specs:
        build_model(kind, overrides).save(root / f"{kind}.keras")
        if kind == "behaviour":
            walk = np.cumsum(rng.normal(0, 0.3, (24, 8, 2)), axis=1)
            calib = (walk - walk[:, -1:]).astype(np.float32)
        else:
            calib = rng.random((24, *shape), dtype=np.float32)
        np.save(root / f"{kind}_calib.npy", calib)
        config = ConvertConfig(calib=str(root / f"{kind}_calib.npy"), calib_samples=16, parity_samples=2)
        convert(root / f"{kind}.keras", root / "zoo" / kind / f"{kind}_int8.tflite", config)
    return root / "zoo"


def _frame_count(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), path
    count = 0
    while cap.read()[0]:
        count += 1
    cap.release()
    return count


def _popen(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "toolkit", "demo", *map(str, args)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_headless_run_records_a_playable_video_and_valid_events(cli, models, tmp_path):
    out, events = tmp_path / "out.mp4", tmp_path / "ev.jsonl"
    result = cli(
        "demo",
        "--models",
        models,
        "--headless",
        "--max-frames",
        60,
        "--record",
        out,
        "--events",
        events,
        "--json",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["frames"] == 60 and summary["stopped"] == "max_frames" and summary["record_frames"] == 60
    assert _frame_count(out) == 60
    lines = read_events(events)  # validates every line against the schema
    assert len(lines) == 60
    assert [e["frame"] for e in lines] == sorted(e["frame"] for e in lines)
    assert all(e["ground_units"] == "m" for e in lines)  # the synthetic scene's own homography
    assert sum("segment" in e["latency_ms"] for e in lines) == 20  # every 3rd frame
    assert {"pre", "detect", "post", "track", "behaviour", "draw"} <= set(lines[0]["latency_ms"])
    predicted = [t for e in lines for t in e["tracks"] if t["predictor"] == "model"]
    assert predicted and all(len(t["path_ground"]) == 12 and 0 <= t["crossing"] <= 1 for t in predicted)
    stages = summary["stages"]
    assert stages["detect"]["count"] == 60 and stages["segment"]["count"] == 20
    assert summary["model_bound_fps"] > 0 and summary["efficiency"] > 0


def test_plain_summary_is_one_line(cli, models, tmp_path):
    result = cli(
        "demo",
        "--models",
        models,
        "--headless",
        "--max-frames",
        5,
        "--every-n-seg",
        0,
        "--behaviour",
        "constant-velocity",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("demo: 5 frames")


def test_sigterm_mid_run_leaves_a_playable_recording_and_whole_event_lines(models, tmp_path):
    out, events = tmp_path / "out.mp4", tmp_path / "ev.jsonl"
    proc = _popen("--models", models, "--headless", "--record", out, "--events", events, "--json")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if events.exists() and events.read_bytes().count(b"\n") >= 8:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()[1]
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
        stopped_in = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert stopped_in < 2.0, f"took {stopped_in:.2f} s to stop"
    summary = json.loads(stdout)
    assert summary["stopped"] == "SIGTERM"
    lines = read_events(events)
    assert len(lines) == summary["frames"] == summary["record_frames"] >= 8
    assert _frame_count(out) == len(lines)
    assert not list(tmp_path.glob(".*partial*"))


def test_live_view_status_shows_frames_increasing(models, tmp_path):
    proc = _popen("--models", models, "--headless", "--serve", "127.0.0.1:0")
    try:
        url = None
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            match = re.search(r"live view at (http://\S+)", line)
            url = match.group(1) if match else None
            assert line or proc.poll() is None, proc.communicate()[1]
        assert url, "no live-view URL printed"

        def frames() -> int:
            with urllib.request.urlopen(url + "status.json", timeout=10) as response:
                return int(json.load(response)["pipeline"].get("frames", 0))

        first = 0
        while first == 0 and time.monotonic() < deadline:
            first = frames()
            time.sleep(0.2)
        time.sleep(1.0)
        second = frames()
        assert second > first > 0
        with urllib.request.urlopen(url + "snapshot.jpg", timeout=10) as response:
            assert response.read(3) == b"\xff\xd8\xff"
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0


@pytest.mark.shared
def test_real_clip_runs_to_the_end_of_the_requested_frames(shared, models, tmp_path):
    clip = shared / "data" / "pedestrian_video" / "pedestrians.avi"
    events = tmp_path / "clip.jsonl"
    summary = run_demo(
        PipelineConfig(
            source=str(clip),
            models=str(models),
            realtime=False,
            max_frames=120,
            events=str(events),
            validate_events=True,
        )
    )
    assert summary.frames == 120 and summary.dropped == 0
    lines = read_events(events)
    assert [e["frame"] for e in lines] == list(range(120))
    assert lines[0]["source"] == {
        "name": str(clip),
        "width": 480,
        "height": 360,
        "fps": lines[0]["source"]["fps"],
    }
    assert lines[-1]["timestamp"] > lines[0]["timestamp"]
    assert lines[0]["ground_units"] is None  # no homography for a file: paths in image units
    assert summary.tracks >= 1 and summary.behaviour_calls_per_frame > 0
    assert any(t["predictor"] == "model" and t["path_ground"] is None for e in lines for t in e["tracks"])


def test_pipelined_and_serial_runs_agree(models, tmp_path):
    clip = tmp_path / "clip.avi"
    from toolkit.data.synthetic import SceneConfig, write_video

    write_video(SceneConfig(seed=2), clip, 40)
    results = {}
    for pipelined in (True, False):
        events = tmp_path / f"{pipelined}.jsonl"
        run_demo(
            PipelineConfig(
                source=str(clip),
                models=str(models),
                realtime=False,
                pipelined=pipelined,
                events=str(events),
                validate_events=True,
            )
        )
        results[pipelined] = [{k: v for k, v in e.items() if k != "latency_ms"} for e in read_events(events)]
    assert len(results[True]) == 40
    assert any(
        t["predictor"] == "model" for e in results[True] for t in e["tracks"]
    )  # not a trivial comparison
    assert results[True] == results[False]


def test_loop_restarts_a_file_with_a_monotonic_clock(models, tmp_path):
    clip = tmp_path / "short.avi"
    from toolkit.data.synthetic import SceneConfig, write_video

    write_video(SceneConfig(seed=4), clip, 10)
    events = tmp_path / "loop.jsonl"
    summary = run_demo(
        PipelineConfig(
            source=str(clip), models=str(models), realtime=False, loop=True, max_frames=25, events=str(events)
        )
    )
    assert summary.frames == 25 and summary.source["loops"] >= 2
    stamps = [e["timestamp"] for e in read_events(events)]
    assert all(b > a for a, b in zip(stamps, stamps[1:], strict=False))


def test_corrupt_video_is_exit_2(cli, models, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    assert_one_line_error(
        cli("demo", "--models", models, "--headless", "--source", bad, "--record", tmp_path / "o.mp4"),
        2,
        "cannot decode",
    )
    assert not list(tmp_path.glob("*o.mp4*"))


def test_missing_camera_is_exit_3(cli, models):
    assert_one_line_error(
        cli("demo", "--models", models, "--headless", "--source", "/dev/video99"), 3, "cannot open camera"
    )


def test_camera_lost_mid_run_saves_the_outputs_then_raises_device_unavailable(models, tmp_path, monkeypatch):
    from toolkit.errors import DeviceUnavailable
    from toolkit.pipeline import sources
    from toolkit.pipeline.sources import Source, SourceConfig

    class DyingCamera:
        """Delivers 12 frames, then the device 'disappears' (reads fail, reopening fails)."""

        opened = 0

        def __init__(self) -> None:
            DyingCamera.opened += 1
            if DyingCamera.opened > 1:
                raise OSError("no such device")
            self.left = 12

        def read(self):
            time.sleep(0.05)  # a 20 FPS camera
            self.left -= 1
            return (True, np.full((120, 160, 3), 90, np.uint8)) if self.left >= 0 else (False, None)

        def release(self) -> None:
            pass

    def fake_open(spec, config=None, **overrides):
        cfg = SourceConfig(max_retries=1, backoff_initial_s=0.01, backoff_jitter=0.0)
        return Source(DyingCamera, name="camera 0", kind="camera", live=True, config=cfg).start()

    monkeypatch.setattr(sources, "open_source", fake_open)
    out, events = tmp_path / "cam.avi", tmp_path / "cam.jsonl"
    with pytest.raises(DeviceUnavailable, match="outputs were saved"):
        run_demo(PipelineConfig(source="0", models=str(models), record=str(out), events=str(events)))
    frames = len(read_events(events))
    assert 1 <= frames <= 12
    assert _frame_count(out) == frames
