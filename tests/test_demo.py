"""``toolkit demo`` without models: argument checks (exit 2, one line), model lookup by kind, config, timings,
the recorder and the output worker. The end-to-end runs on converted models are in test_demo_run.py."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import assert_one_line_error

from toolkit.errors import ToolkitError, UsageError
from toolkit.pipeline.config import PipelineConfig, parse_address
from toolkit.pipeline.demo import _cpu_estimate, format_summary, required_kinds, synthetic_homography
from toolkit.pipeline.model_files import find_models
from toolkit.pipeline.outputs import FramePacket, OutputWorker, Recorder, TrackView
from toolkit.pipeline.timing import StageTimes


def test_parse_address():
    assert parse_address("0.0.0.0:8080") == ("0.0.0.0", 8080)
    assert parse_address(":0") == ("127.0.0.1", 0)
    assert parse_address("9000") == ("127.0.0.1", 9000)
    assert parse_address("[::1]:81") == ("::1", 81)
    for bad in ("host:port", "x:70000", "a:-1", ""):
        with pytest.raises(UsageError, match="HOST:PORT"):
            parse_address(bad)


def test_config_validation_and_required_kinds():
    with pytest.raises(UsageError, match="every_n_seg"):
        PipelineConfig(every_n_seg=-1)
    assert required_kinds(PipelineConfig()) == ["detector", "behaviour", "segmenter"]
    assert required_kinds(PipelineConfig(every_n_seg=0, behaviour="constant_velocity")) == ["detector"]


def _fake_model(path: Path, kind: str | None) -> Path:
    """A file named .tflite whose manifest names its kind (find_models trusts the manifest, like the zoo's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not read when the manifest names the kind")
    if kind:
        path.with_suffix(".json").write_text(json.dumps({"kind": kind}))
    return path


def test_find_models_by_manifest_kind_in_the_zoo_layout(tmp_path):
    det = _fake_model(tmp_path / "person_detector" / "person_detector_int8.tflite", "detector")
    beh = _fake_model(tmp_path / "behaviour" / "behaviour_int8.tflite", "behaviour")
    seg = _fake_model(tmp_path / "scene_segmenter" / "scene_segmenter_int8.tflite", "segmenter")
    _fake_model(tmp_path / "mnist_classifier" / "mnist_classifier_int8.tflite", "classifier")
    assert find_models(tmp_path) == {"detector": det, "behaviour": beh, "segmenter": seg}
    assert find_models(tmp_path, ["detector"]) == {"detector": det}


def test_find_models_prefers_the_single_int8_file_and_rejects_ambiguity(tmp_path):
    int8 = _fake_model(tmp_path / "det_int8.tflite", "detector")
    _fake_model(tmp_path / "det_fp32.tflite", "detector")
    assert find_models(tmp_path, ["detector"]) == {"detector": int8}
    _fake_model(tmp_path / "other_int8.tflite", "detector")
    with pytest.raises(UsageError, match="3 detector models"):
        find_models(tmp_path, ["detector"])


def test_find_models_names_what_is_missing_and_how_to_get_it(tmp_path):
    _fake_model(tmp_path / "det_int8.tflite", "detector")
    _fake_model(tmp_path / "broken.tflite", None)  # no manifest, not a flatbuffer: skipped, not fatal
    with pytest.raises(UsageError, match=r"no behaviour, segmenter model .*toolkit zoo build"):
        find_models(tmp_path)
    with pytest.raises(UsageError, match="model folder not found"):
        find_models(tmp_path / "nope")


def test_stage_times_percentiles_keep_a_fixed_window():
    times = StageTimes(window=16)
    for value in range(100):
        times.add({"detect": float(value)})
    times.add({"segment": 5.0})
    summary = times.summary()
    assert summary["detect"]["count"] == 100
    assert summary["detect"]["p50"] == pytest.approx(
        np.percentile(np.arange(84, 100), 50)
    )  # the last 16 only
    assert summary["detect"]["mean"] == pytest.approx(49.5)  # mean over the whole run
    assert summary["segment"] == {"count": 1, "p50": 5.0, "p90": 5.0, "mean": 5.0}


def _frames(n: int, size=(120, 160)) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [
        np.full((*size, 3), 40 * (i % 6), np.uint8) + rng.integers(0, 20, (*size, 3), dtype=np.uint8)
        for i in range(n)
    ]


def _count_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    count = 0
    while cap.read()[0]:
        count += 1
    cap.release()
    return count


@pytest.mark.parametrize("suffix", [".webm", ".mp4", ".avi"])
def test_recorder_writes_a_playable_file_only_on_close(tmp_path, suffix):
    out = tmp_path / f"rec{suffix}"
    recorder = Recorder(out, fps=10)
    for frame in _frames(7):
        recorder.write(frame)
    assert not out.exists()  # still a hidden temporary file
    assert recorder.close() is True
    assert _count_frames(out) == 7
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_webm_recorder_keeps_ffmpeg_tag_notes_off_stderr(tmp_path, capfd):
    # OpenCV's FFmpeg backend printf()s "tag 'VP80' is not supported ... 'webm'" for every WebM writer.
    with Recorder(tmp_path / "quiet.webm", fps=10) as recorder:
        for frame in _frames(3):
            recorder.write(frame)
    assert capfd.readouterr().err == ""
    assert _count_frames(tmp_path / "quiet.webm") == 3


def test_recorder_without_the_encoder_says_what_to_use_instead(tmp_path, monkeypatch):
    # An OpenCV whose FFmpeg lacks an encoder, played by a fourcc no container knows.
    from toolkit.pipeline import outputs

    monkeypatch.setitem(outputs.RECORD_FORMATS, ".webm", outputs.RecordFormat("QQQQ", "VP8", "test"))
    recorder = Recorder(tmp_path / "x.webm", fps=10)
    with pytest.raises(
        ToolkitError,
        match=r"cannot open a VP8 \(QQQQ\) video writer .*OpenCV said: .*QQQQ.*"
        r"record to \.mp4, \.avi instead",
    ) as error:
        recorder.write(_frames(1)[0])
    assert not isinstance(error.value, UsageError)
    assert recorder.close() is False
    assert list(tmp_path.iterdir()) == []


def test_recorder_discards_on_error_and_when_empty(tmp_path):
    with pytest.raises(RuntimeError), Recorder(tmp_path / "a.mp4", fps=5) as recorder:
        recorder.write(_frames(1)[0])
        raise RuntimeError("boom")
    assert Recorder(tmp_path / "b.mp4", fps=5).close() is False
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(UsageError, match=r"\.webm \(VP8: plays in web browsers\), \.mp4 .*\.avi"):
        Recorder(tmp_path / "c.mkv")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="cannot write the recording"):
        Recorder(tmp_path / "file" / "d.mp4")


def _packet(seq: int, image: np.ndarray) -> FramePacket:
    stage = {"pre": 1.0, "detect": 2.0, "post": 0.5, "track": 0.1, "behaviour": 0.2}
    view = TrackView(1, np.array([10.0, 10.0, 30.0, 60.0]), "person", 0.9, 5)
    return FramePacket(seq, seq, image, seq / 10, 0.0, [view], {}, stage, seq % 3 == 0, 0)


class _FakeSegmenter:
    def __init__(self) -> None:
        self.calls = 0
        self.timings = {"infer": 1.0}

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        self.calls += 1
        return np.ones(frame.shape[:2], np.uint8)


@pytest.mark.parametrize("threaded", [True, False])
def test_output_worker_keeps_order_segments_every_n_and_draws(threaded):
    seen: list[int] = []
    originals = _frames(7)
    segmenter = _FakeSegmenter()
    worker = OutputWorker(
        segmenter, 3, [lambda image, packet, ms: seen.append(packet.seq)], StageTimes(), threaded
    )
    for i, frame in enumerate(originals):
        assert worker.submit(_packet(i, frame.copy()))
    worker.close()
    assert seen == list(range(7))
    assert segmenter.calls == 3  # frames 0, 3, 6
    assert worker.frames_done == 7 and worker.error is None
    summary = worker.times.summary()
    assert summary["segment"]["count"] == 3 and summary["draw"]["count"] == 7


def test_output_worker_reports_a_failing_sink_and_stops_accepting():
    calls = []

    def sink(image, packet, ms):
        calls.append(packet.seq)
        raise OSError("disk full")

    worker = OutputWorker(None, 0, [sink], StageTimes(), threaded=True, depth=1)
    accepted = [worker.submit(_packet(i, _frames(1)[0])) for i in range(2)]
    deadline = threading.Event()
    while worker.error is None and not deadline.wait(0.01):
        pass
    assert isinstance(worker.error, OSError)
    assert worker.submit(_packet(9, _frames(1)[0])) is False
    worker.close()
    assert calls == [0] and accepted[0] is True


def test_synthetic_homography_maps_the_scene_feet_to_their_ground_positions():
    from toolkit.data.synthetic import SceneConfig, StreetScene

    homography = synthetic_homography("synthetic:seed=3")
    frame = StreetScene(SceneConfig(seed=3)).step()
    assert len(frame.feet) > 0
    np.testing.assert_allclose(homography.to_ground(frame.feet), frame.ground, atol=0.05)
    assert synthetic_homography("/dev/video0") is None


def test_format_summary_is_one_line():
    summary = {
        "frames": 10,
        "seconds": 1.0,
        "fps": 9.0,
        "model_bound_fps": 20.0,
        "efficiency": 0.45,
        "dropped": 0,
        "tracks": 2,
        "stopped": "end of stream",
        "record": "x.mp4",
        "stages": {"detect": {"p50": 3.0}, "draw": {"p50": 1.0}},
    }
    line = format_summary(summary)
    assert "\n" not in line and "9.0 FPS" in line and "efficiency 0.45" in line and "detect 3.0" in line
    paced = format_summary({**summary, "realtime": True})  # a paced source sets the FPS: no efficiency claim
    assert "efficiency" not in paced and "paced by the source" in paced and "20.0" in paced


# -- CLI: bad input is one line and exit 2, before any model is loaded -------------------------------------------


def test_cli_missing_model_folder(cli, tmp_path):
    assert_one_line_error(
        cli("demo", "--headless", "--models", tmp_path / "none"), 2, "model folder not found"
    )


def test_cli_model_folder_without_models(cli, tmp_path):
    result = cli("demo", "--headless", "--models", tmp_path)
    assert_one_line_error(result, 2, "no detector, behaviour, segmenter model")
    assert "toolkit zoo build" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--serve", "localhost:http"], "HOST:PORT"),
        (["--record", "out.mkv"], ".mp4"),
        (["--record", "{file}/out.mp4"], "is a file"),
        (["--events", "{tmp}"], "is a directory"),
        (["--source", "{tmp}/missing.avi"], "source not found"),
        (["--every-n-seg", "-1"], "expected an integer >= 0"),
        (["--threads", "0"], "positive integer"),
        (["--homography", "{tmp}/h.json"], "homography file not found"),
    ],
)
def test_cli_bad_arguments(cli, tmp_path, args, message):
    (tmp_path / "file").write_text("x")
    _fake_model(tmp_path / "m" / "d_int8.tflite", "detector")
    _fake_model(tmp_path / "m" / "b_int8.tflite", "behaviour")
    _fake_model(tmp_path / "m" / "s_int8.tflite", "segmenter")
    filled = [a.format(tmp=tmp_path, file=tmp_path / "file") for a in args]
    result = cli("demo", "--headless", "--models", tmp_path / "m", *filled)
    assert_one_line_error(result, 2, message)
    assert not list(tmp_path.glob("**/*.partial-*")) and not list(tmp_path.glob("**/.out.mp4*"))


def test_cli_config_file_unknown_key_has_a_suggestion(cli, tmp_path):
    config = tmp_path / "demo.toml"
    config.write_text("every_n_segs = 4\n")
    assert_one_line_error(cli("demo", "--config", config), 2, "did you mean 'every_n_seg'")


def test_cpu_estimate_is_bound_by_the_busiest_thread_or_the_total_over_two_cores():
    est = _cpu_estimate(8.0, 100, {"detect": 0.3, "track": 0.1, "output": 0.2}, pipelined=True)
    assert est["thread_cpu_ms_per_frame"] == {"detect": 3.0, "track": 1.0, "output": 2.0, "other": 2.0}
    assert est["cpu_bound_fps_2_cores"] == 250.0  # total 8 ms over 2 cores beats the busiest thread's 3 ms
    assert _cpu_estimate(8.0, 100, {"detect": 0.6}, pipelined=False)[
        "cpu_bound_fps_2_cores"
    ] == pytest.approx(1000 / 6.0, abs=0.1)  # serial: one thread does it all
    assert _cpu_estimate(None, 0, {}, True)["cpu_bound_fps_2_cores"] is None
