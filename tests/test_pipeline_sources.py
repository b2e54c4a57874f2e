"""Capture sources: spec parsing, the 1-slot mailbox, the watchdog, reconnect backoff, files, faults.

Faults are injected with scripted capture objects (``opener=``), so every path runs without a camera.
"""

from __future__ import annotations

import threading
import time
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest

from toolkit.errors import DeviceUnavailable, UsageError
from toolkit.pipeline.sources import (
    EndOfStream,
    Source,
    SourceConfig,
    backoff_delay,
    open_source,
    parse_spec,
)

FAST = dict(stale_after_s=0.3, open_timeout_s=1.0, backoff_initial_s=0.05, backoff_jitter=0.0)


def tagged(tag: int, n: int, shape=(24, 32)) -> np.ndarray:
    """A non-blank frame that says which capture (tag) and which of its frames (n) it is."""
    image = np.full((*shape, 3), 50, np.uint8)
    image[0, 0] = (tag, n % 256, n // 256)
    return image


def tag_of(image: np.ndarray) -> tuple[int, int]:
    b, g, r = (int(v) for v in image[0, 0])
    return b, g + 256 * r


class FakeCapture:
    """A scripted camera: ``frames`` good frames (None = endless), then fail / block / end."""

    def __init__(
        self, tag: int, frames: int | None = None, then: str = "fail", period: float = 0.0, shape=(24, 32)
    ) -> None:
        self.tag, self.frames, self.then, self.period, self.shape = tag, frames, then, period, shape
        self.n = 0
        self.released = threading.Event()
        self.unblock = threading.Event()

    def read(self):
        if self.frames is not None and self.n >= self.frames:
            if self.then == "block":  # a driver read that never returns (RTSP drop) until the test lets go
                self.unblock.wait()
                self.frames = None
            elif self.then == "raise":
                raise RuntimeError("driver exploded")
            else:
                return False, None
        if self.period:
            time.sleep(self.period)
        self.n += 1
        return True, tagged(self.tag, self.n - 1, self.shape)

    def release(self):
        self.released.set()


class Script:
    """An opener that returns the next scripted capture (or raises) and records when it was called."""

    def __init__(self, *steps) -> None:
        self.steps = list(steps)
        self.calls: list[float] = []

    def __call__(self):
        self.calls.append(time.monotonic())
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Exception):
            raise step
        return step


def live_source(script, **cfg) -> Source:
    return Source(script, name="fake", kind="camera", live=True, config=SourceConfig(**{**FAST, **cfg}))


def assert_fresh_sequence(frames) -> None:
    """Never blank, never None, never a repeated (stale) frame, indices strictly increasing."""
    assert all(f is not None and f.image is not None and f.image.any() for f in frames)
    indices = [f.index for f in frames]
    assert indices == sorted(set(indices))
    tags = [tag_of(f.image) for f in frames]
    assert len(tags) == len(set(tags))


# -- spec parsing ---------------------------------------------------------------------------------------
def test_parse_spec_kinds(tmp_path: Path) -> None:
    video = tmp_path / "clip.avi"
    video.write_bytes(b"x")
    assert parse_spec(None) == ("synthetic", None, {})
    assert parse_spec("synthetic:seed=3, fps=5") == ("synthetic", None, {"seed": "3", "fps": "5"})
    assert parse_spec("0") == ("camera", 0, {})
    assert parse_spec("/dev/video2") == ("camera", "/dev/video2", {})
    assert parse_spec("rtsp://cam.local:554/live")[0] == "url"
    assert parse_spec("http://127.0.0.1:8080/stream.mjpg")[0] == "url"
    assert parse_spec("picamera2") == ("picamera2", None, {})
    assert parse_spec(str(video)) == ("file", video, {})


@pytest.mark.parametrize(
    "spec, needle",
    [
        ("missing.avi", "source not found: missing.avi"),
        ("syntetic", "did you mean 'synthetic'"),
        ("ftp://host/x", "unsupported URL scheme 'ftp'"),
        ("synthetic:seed", "expected key=value"),
    ],
)
def test_bad_specs_are_one_line_usage_errors(spec: str, needle: str) -> None:
    with pytest.raises(UsageError) as err:
        open_source(spec)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_directory_and_unknown_option(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is a directory"):
        open_source(str(tmp_path))
    with pytest.raises(UsageError, match="did you mean 'stale_after_s'"):
        open_source("synthetic", stale_after=2)


def test_corrupt_video_file_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.avi"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    with pytest.raises(UsageError) as err:
        open_source(str(bad))
    assert str(err.value).startswith(f"cannot decode {bad}:") and "\n" not in str(err.value)
    assert err.value.exit_code == 2


def test_missing_camera_and_unreachable_stream_are_device_errors() -> None:
    with pytest.raises(DeviceUnavailable, match="cannot open camera 7: .*picamera2"):
        open_source("7")
    with pytest.raises(DeviceUnavailable) as err:
        open_source("rtsp://user:secret@127.0.0.1:1/live", open_timeout_s=3)
    assert "secret" not in str(err.value) and "user:***@" in str(err.value)


def test_backoff_delays_are_capped_exponential() -> None:
    cfg = SourceConfig(backoff_initial_s=0.5, backoff_factor=2.0, backoff_max_s=30.0, backoff_jitter=0.0)
    assert [backoff_delay(a, cfg) for a in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    jittery = SourceConfig(backoff_initial_s=1.0, backoff_jitter=0.2)
    import random

    rng = random.Random(1)
    values = [backoff_delay(0, jittery, rng) for _ in range(200)]
    assert 0.8 <= min(values) < 0.9 and 1.1 < max(values) <= 1.2


# -- scripted faults ------------------------------------------------------------------------------------
def test_reader_blocked_forever_is_abandoned_and_replaced() -> None:
    stuck = FakeCapture(tag=1, frames=3, then="block", period=0.01)
    healthy = FakeCapture(tag=2, period=0.01)
    script = Script(stuck, healthy)
    frames, worst_wait = [], 0.0
    with live_source(script) as source:
        deadline = time.monotonic() + 10
        while sum(tag_of(f.image)[0] == 2 for f in frames) < 5 and time.monotonic() < deadline:
            t0 = time.monotonic()
            frame = source.read(timeout=0.1)
            worst_wait = max(worst_wait, time.monotonic() - t0)
            if frame is not None:
                frames.append(frame)
        stats = source.stats()
        assert stats["stalls"] == 1 and stats["reconnects"] == 1 and stats["stuck_readers"] == 1
        assert stats["last_gap_s"] >= 0.3
        stuck.unblock.set()  # the driver finally returns: its frame must be discarded, its capture released
        assert stuck.released.wait(2.0)
        time.sleep(0.1)
        frames += [f for f in (source.read(0.2) for _ in range(3)) if f is not None]
        assert source.stats()["stuck_readers"] == 0
    assert worst_wait < 0.1 + 0.4  # the consumer is never held by the stuck driver
    assert_fresh_sequence(frames)
    tags = [tag_of(f.image) for f in frames]
    assert {t for t in tags if t[0] == 1} <= {(1, 0), (1, 1), (1, 2)}  # nothing the stuck read returned late
    first_new = next(i for i, t in enumerate(tags) if t[0] == 2)
    assert all(t[0] == 2 for t in tags[first_new:])
    assert healthy.released.is_set()


def test_failing_source_backs_off_then_recovers() -> None:
    first = FakeCapture(tag=1, frames=5, then="fail", period=0.005)
    refused = OSError("connection refused")
    recovered = FakeCapture(tag=6, period=0.005)
    script = Script(first, refused, refused, refused, refused, recovered)
    frames = []
    with live_source(
        script, backoff_initial_s=0.1, backoff_factor=2.0, backoff_max_s=0.4, stale_after_s=2.0
    ) as source:
        deadline = time.monotonic() + 10
        while sum(tag_of(f.image)[0] == 6 for f in frames) < 5 and time.monotonic() < deadline:
            frame = source.read(timeout=0.1)
            if frame is not None:
                frames.append(frame)
        stats = source.stats()
        history = list(source.backoff_history)
    assert history == [0.1, 0.2, 0.4, 0.4, 0.4]
    gaps = np.diff(script.calls[1:])  # between reconnect attempts: the scheduled delays, within tolerance
    np.testing.assert_allclose(gaps, [0.2, 0.4, 0.4, 0.4], atol=0.15)
    assert np.all(gaps >= np.array([0.2, 0.4, 0.4, 0.4]) - 0.01)  # never earlier than scheduled
    assert stats["errors"] == 5 and stats["reconnect_attempts"] == 5 and stats["reconnects"] == 1
    assert stats["last_gap_s"] == pytest.approx(1.5, abs=0.4)
    assert stats["status"] == "running" and "connection refused" in stats["last_error"]
    assert_fresh_sequence(frames)
    assert {tag_of(f.image)[0] for f in frames} == {1, 6}


def test_backoff_resets_after_a_good_frame() -> None:
    a = FakeCapture(tag=1, frames=3, then="raise")
    b = FakeCapture(tag=2, frames=3, then="raise")
    c = FakeCapture(tag=3)
    with live_source(Script(a, b, c), backoff_initial_s=0.05) as source:
        deadline = time.monotonic() + 5
        while source.stats()["reconnects"] < 2 and time.monotonic() < deadline:
            source.read(0.05)
        assert list(source.backoff_history) == [0.05, 0.05]
        assert "RuntimeError: driver exploded" in source.stats()["last_error"]


def test_gives_up_after_max_retries() -> None:
    script = Script(FakeCapture(tag=1, frames=1), OSError("gone"))
    with live_source(script, max_retries=2, backoff_initial_s=0.01) as source:
        assert source.read(1.0) is not None
        with pytest.raises(DeviceUnavailable, match="gave up after 2 reconnect attempts; last error: gone"):
            for _ in range(100):
                source.read(0.1)
        assert source.stats()["status"].startswith("failed")


def test_slow_consumer_gets_newest_frame_and_memory_stays_flat() -> None:
    producer = FakeCapture(tag=1, period=0.0005, shape=(120, 160))
    ages = []
    with live_source(Script(producer), stale_after_s=2.0) as source:
        tracemalloc.start()
        for i in range(300):
            frame = source.read(timeout=1.0)
            assert frame is not None
            ages.append(time.monotonic() - frame.t_capture)
            if i == 50:
                baseline = tracemalloc.get_traced_memory()[0]
            time.sleep(0.005)  # a consumer much slower than the camera
        growth = tracemalloc.get_traced_memory()[0] - baseline
        tracemalloc.stop()
        stats = source.stats()
    # 250 unread 57 KB frames would be 14 MB if they were queued; the mailbox holds at most one.
    assert growth < 2_000_000, growth
    assert stats["frames_dropped"] > 300
    in_slot = stats["frames_captured"] - stats["frames_delivered"] - stats["frames_dropped"]
    assert in_slot in (0, 1)
    assert np.median(ages) < 0.05  # the frame handed over is the newest one, not an old queued one


def test_open_failures_raise_the_sources_error() -> None:
    with pytest.raises(DeviceUnavailable, match="cannot open fake: no such device"):
        live_source(Script(OSError("no such device"))).start()
    silent = FakeCapture(tag=1, frames=0, then="block")
    t0 = time.monotonic()
    with pytest.raises(DeviceUnavailable, match="no frame within 0.3 s"):
        live_source(Script(silent), open_timeout_s=0.3).start()
    assert time.monotonic() - t0 < 2.0
    silent.unblock.set()
    assert silent.released.wait(2.0)


def test_close_returns_quickly_with_a_reader_stuck_in_the_driver() -> None:
    stuck = FakeCapture(tag=1, frames=1, then="block")
    source = live_source(Script(stuck), stale_after_s=30).start()
    assert source.read(1.0) is not None
    t0 = time.monotonic()
    source.close()
    assert time.monotonic() - t0 < 1.5
    with pytest.raises(EndOfStream):
        source.read(0.1)
    stuck.unblock.set()
    assert stuck.released.wait(2.0)


def test_file_like_source_waits_for_a_slow_consumer_without_tripping_the_watchdog() -> None:
    """realtime=False (benchmarks): nothing dropped, and a consumer slower than stale_after_s is not a stall."""
    slow_start = FakeCapture(tag=1, frames=4, then="end")
    original = slow_start.read

    def first_read_is_slow():
        if slow_start.n == 0:
            time.sleep(0.4)  # scene setup / file probing: longer than open_timeout_s, fine for local sources
        return original()

    slow_start.read = first_read_is_slow
    cfg = SourceConfig(**{**FAST, "realtime": False, "stale_after_s": 0.1, "open_timeout_s": 0.2})
    with Source(Script(slow_start), name="clip", kind="file", live=False, config=cfg) as source:
        frames = []
        for frame in source:
            frames.append(frame)
            time.sleep(0.3)  # a model slower than the watchdog period
        stats = source.stats()
    assert [tag_of(f.image) for f in frames] == [(1, n) for n in range(4)]
    assert stats["stalls"] == 0 and stats["frames_dropped"] == 0 and stats["status"] == "ended"


# -- files ----------------------------------------------------------------------------------------------
@pytest.fixture
def small_video(tmp_path: Path) -> Path:
    path = tmp_path / "ten.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 20.0, (64, 48))
    for n in range(10):
        writer.write(np.full((48, 64, 3), 20 + 20 * n, np.uint8))
    writer.release()
    return path


def test_file_end_without_loop(small_video: Path) -> None:
    with open_source(str(small_video), realtime=False) as source:
        frames = list(source)
        assert source.stats()["status"] == "ended"
        with pytest.raises(EndOfStream):
            source.read(0.1)
    assert [f.index for f in frames] == list(range(10))
    assert [round(f.source_ts, 3) for f in frames] == [n / 20 for n in range(10)]
    means = [float(f.image.mean()) for f in frames]
    np.testing.assert_allclose(means, [20 + 20 * n for n in range(10)], atol=3)
    assert source.stats()["frames_dropped"] == 0


def test_file_loop_keeps_counting(small_video: Path) -> None:
    with open_source(str(small_video), realtime=False, loop=True) as source:
        frames = [source.read(1.0) for _ in range(25)]
        stats = source.stats()
    assert [f.index for f in frames] == list(range(25))
    assert [round(f.source_ts, 3) for f in frames[9:12]] == [0.45, 0.0, 0.05]
    assert stats["loops"] == 2 and stats["frames_dropped"] == 0


def test_file_realtime_is_paced_at_native_fps(small_video: Path) -> None:
    t0 = time.monotonic()
    with open_source(str(small_video)) as source:  # 20 fps: 10 frames cannot arrive faster than 0.45 s
        frames = list(source)
    assert time.monotonic() - t0 >= 0.45
    assert len(frames) == 10  # a consumer that keeps up loses nothing


@pytest.mark.shared
def test_real_pedestrian_video(shared: Path) -> None:
    path = shared / "data" / "pedestrian_video" / "pedestrians.avi"
    with open_source(str(path), realtime=False) as source:
        frames = list(source)
        stats = source.stats()
    assert len(frames) == 795 and frames[-1].index == 794
    assert frames[0].image.shape == (360, 480, 3) and frames[0].image.dtype == np.uint8
    assert stats["frames_dropped"] == 0 and stats["size"] == [480, 360] and stats["status"] == "ended"
    assert frames[-1].source_ts == pytest.approx(79.4)


def test_failed_opens_print_nothing_but_the_error(tmp_path: Path) -> None:
    # OpenCV/FFmpeg would print their own warnings on stderr; the CLI contract is one line. Fresh process,
    # because FFmpeg reads its log level once per process.
    import subprocess
    import sys

    bad = tmp_path / "x.avi"
    bad.write_bytes(b"RIFF\x00\x10\x00\x00AVI LIST" + bytes(range(256)) * 20)
    code = (
        "import sys\nfrom toolkit.pipeline.sources import open_source\n"
        "for spec in sys.argv[1:]:\n"
        "    try:\n        open_source(spec, open_timeout_s=3)\n"
        "    except Exception as exc:\n        print(type(exc).__name__, exc, file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(bad), "7", "http://127.0.0.1:1/x"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[1],
    )
    lines = proc.stderr.splitlines()
    assert len(lines) == 3, proc.stderr
    assert lines[0].startswith("UsageError cannot decode") and lines[1].startswith(
        "DeviceUnavailable cannot open camera 7"
    )
    assert lines[2].startswith("DeviceUnavailable cannot open stream http://127.0.0.1:1/x")


# -- picamera2 (a stand-in module with picamera2's API; the real one exists only on Raspberry Pi OS) -----------
class FakePicamera2:
    instances: list[FakePicamera2] = []

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.n = 0
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, main=None, controls=None):
        return {"main": main, "controls": controls}

    def configure(self, config) -> None:
        self.calls.append(("configure", config))
        self.size = config["main"]["size"]

    def start(self) -> None:
        self.calls.append(("start",))

    def capture_array(self, name="main"):
        time.sleep(0.005)  # a camera delivers at its frame rate
        w, h = self.size
        self.n += 1
        image = np.zeros((h, w, 3), np.uint8)
        image[..., 0] = 200  # "RGB888" is B, G, R in memory: blue stays in channel 0
        image[0, 0, 1:] = (self.n % 256, self.n // 256)
        return image

    def stop(self) -> None:
        self.calls.append(("stop",))

    def close(self) -> None:
        self.calls.append(("close",))


@pytest.fixture
def fake_picamera2(monkeypatch):
    import importlib.machinery
    import sys
    import types

    module = types.ModuleType("picamera2")
    module.__spec__ = importlib.machinery.ModuleSpec("picamera2", None)
    module.Picamera2 = FakePicamera2
    FakePicamera2.instances = []
    monkeypatch.setitem(sys.modules, "picamera2", module)
    return FakePicamera2


def test_picamera2_source_configures_and_releases_the_camera(fake_picamera2) -> None:
    with open_source("picamera2", width=64, height=48, fps=15) as source:
        frames = [source.read(1.0) for _ in range(3)]
        assert source.kind == "picamera2" and source.live
    camera = fake_picamera2.instances[0]
    config = camera.calls[0][1]
    assert config["main"] == {"format": "RGB888", "size": (64, 48)} and config["controls"] == {
        "FrameRate": 15.0
    }
    assert [c[0] for c in camera.calls] == ["configure", "start", "stop", "close"]
    assert all(f.image.shape == (48, 64, 3) and f.image[0, 0, 0] == 200 for f in frames)
    counts = [int(f.image[0, 0, 1]) + 256 * int(f.image[0, 0, 2]) for f in frames]
    assert counts == sorted(set(counts))


def test_picamera2_missing_says_how_to_install(monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "picamera2" else real(name, *a)
    )
    with pytest.raises(DeviceUnavailable, match="picamera2 is not installed: .*python3-picamera2"):
        open_source("picamera2")


# -- the synthetic street scene (the default source) ----------------------------------------------------
def test_synthetic_is_the_default_and_carries_ground_truth() -> None:
    with open_source(None, realtime=False) as source:
        frames = [source.read(10.0) for _ in range(3)]
    assert source.kind == "synthetic"
    assert all(f.image.shape == (360, 480, 3) and f.image.dtype == np.uint8 for f in frames)
    assert [f.index for f in frames] == [0, 1, 2] and [f.truth.index for f in frames] == [0, 1, 2]
    assert [f.source_ts for f in frames] == pytest.approx([0.0, 0.1, 0.2])
    assert all(len(f.truth.boxes) == len(f.truth.person_ids) for f in frames)


def test_synthetic_options_are_validated_and_deterministic() -> None:
    with open_source("synthetic:seed=3,width=160,height=120", realtime=False) as a:
        first = a.read(10.0)
    with open_source("synthetic:seed=3", width=160, height=120, realtime=False) as b:
        again = b.read(10.0)
    assert first.image.shape == (120, 160, 3) and np.array_equal(first.image, again.image)
    with pytest.raises(UsageError, match="unknown key 'sed'; did you mean 'seed'"):
        open_source("synthetic:sed=3")
    with pytest.raises(UsageError, match="fps must be"):
        open_source("synthetic:fps=0")
