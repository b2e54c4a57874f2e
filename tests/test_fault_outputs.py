"""Faults in the demo's outputs (issue 15, findings 2 and 4): a full disk while recording or logging events, and
frame rates a video writer cannot take.

A full disk is simulated without root or mounts: the demo runs in a child process whose file size limit
(RLIMIT_FSIZE) is small, with SIGXFSZ ignored, so that its writes fail with EFBIG as they would with ENOSPC. The
shipped zoo's detector runs with the constant-velocity behaviour and no segmenter (no TensorFlow needed).
"""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REPO, CliResult, assert_one_line_error

from toolkit.errors import ToolkitError, UsageError
from toolkit.pipeline import events
from toolkit.pipeline.config import PipelineConfig
from toolkit.pipeline.outputs import Recorder

DEMO = ("demo", "--headless", "--no-pacing", "--every-n-seg", "0", "--behaviour", "constant-velocity")
SOURCE = {"name": "synthetic", "width": 64, "height": 48, "fps": 10.0}


def _size_limited(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, not a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def _run(args: list, limit: int | None = None, cwd: Path | None = None) -> CliResult:
    """``python -m toolkit ARGS`` in a child process, its file size limited to ``limit`` bytes (pipes for output:
    the limit applies to regular files only)."""
    proc = subprocess.run(
        [sys.executable, "-m", "toolkit", *map(str, args)],
        cwd=cwd or REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_size_limited(limit) if limit is not None else None,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def _frame_count(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    count = 0
    while cap.read()[0]:
        count += 1
    cap.release()
    return count


def _frames(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (120, 160, 3), dtype=np.uint8) for _ in range(n)]


# -- finding 2: a full disk while recording ----------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".webm", ".mp4", ".avi"])
def test_full_disk_while_recording_is_exit_2_and_keeps_the_previous_file(tmp_path, suffix):
    out = tmp_path / f"out{suffix}"
    previous = _run([*DEMO, "--max-frames", 12, "--record", out])
    assert previous.returncode == 0, previous.stderr
    before = out.read_bytes()
    result = _run([*DEMO, "--max-frames", 200, "--record", out], limit=300_000)
    assert_one_line_error(result, 2, "no space left on device")
    assert "recording failed" in result.stderr and "recorded" not in result.stdout
    assert out.read_bytes() == before  # the previous recording, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no temporary file left beside it


def test_full_disk_new_recording_leaves_nothing(tmp_path):
    result = _run([*DEMO, "--max-frames", 200, "--record", tmp_path / "new.mp4"], limit=300_000)
    assert_one_line_error(result, 2, "no space left on device writing")
    assert list(tmp_path.iterdir()) == []


_VERIFY_SCRIPT = """
import sys
import time
import numpy as np
from toolkit.pipeline.outputs import Recorder
Recorder._check_room = lambda self: None  # only the read-back on close is left to notice the lost frames
recorder = Recorder(sys.argv[1], fps=10)
rng = np.random.default_rng(0)
for _ in range(60):
    recorder.write(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))
try:
    recorder.close()
except Exception as exc:
    print(type(exc).__name__, exc)
else:
    print("kept")
"""


@pytest.mark.parametrize("suffix", [".webm", ".mp4", ".avi"])
def test_close_reads_the_file_back_and_refuses_a_truncated_one(tmp_path, suffix):
    """cv2.VideoWriter drops failed writes silently; the read-back on close catches what the room check misses."""
    out = tmp_path / f"rec{suffix}"
    proc = subprocess.run(
        [sys.executable, "-c", _VERIFY_SCRIPT, str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
        preexec_fn=_size_limited(200_000),
    )
    assert proc.stdout.startswith("UsageError recording failed: no space left on device"), (
        proc.stdout + proc.stderr
    )
    assert list(tmp_path.iterdir()) == []


def test_recorder_keeps_a_whole_file_and_counts_its_frames(tmp_path):
    with Recorder(tmp_path / "ok.avi", fps=7) as recorder:
        for frame in _frames(9):
            recorder.write(frame)
    assert _frame_count(tmp_path / "ok.avi") == 9


# -- finding 2: a full disk while logging events -----------------------------------------------------------------


def test_full_disk_while_logging_events_cuts_back_to_the_last_whole_line(tmp_path):
    out = tmp_path / "events.jsonl"
    result = _run([*DEMO, "--max-frames", 300, "--events", out], limit=40_000)
    assert_one_line_error(result, 2, "no space left on device writing")
    text = out.read_text()
    assert text.endswith("\n") and len(text) <= 40_000
    lines = events.read_events(out)  # every line parses and validates
    assert len(lines) >= 3 and [e["frame"] for e in lines] == list(range(len(lines)))
    assert f"after {len(lines)} complete lines" in result.stderr


def _failing_write(fd_to_fail: int, after_bytes: int):
    """os.write that writes part of a line to ``fd_to_fail`` once ``after_bytes`` are in, then raises ENOSPC."""
    real_write = os.write
    state = {"written": 0}

    def write(fd: int, data: bytes) -> int:
        if fd != fd_to_fail:
            return real_write(fd, data)
        room = after_bytes - state["written"]
        if room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = real_write(fd, data[:room])
        state["written"] += n
        return n

    return write


def test_event_writer_truncates_a_partial_line_and_says_disk_full(tmp_path, monkeypatch):
    path = tmp_path / "e.jsonl"
    writer = events.EventWriter(path)
    event = events.frame_event(0, 0.0, SOURCE, [])
    line = len(json.dumps(event, separators=(",", ":"))) + 1
    monkeypatch.setattr(events.os, "write", _failing_write(writer._fd, 2 * line + line // 2))
    writer.write(event)
    writer.write(events.frame_event(1, 0.1, SOURCE, []))
    with pytest.raises(UsageError, match="after 2 complete lines: no space left on device writing"):
        writer.write(events.frame_event(2, 0.2, SOURCE, []))  # half of it reached the file
    writer.close()
    assert [e["frame"] for e in events.read_events(path)] == [0, 1]
    assert path.read_text().endswith("\n") and path.stat().st_size == 2 * line


def test_event_writer_failing_on_its_first_line_leaves_no_empty_file(tmp_path, monkeypatch):
    path = tmp_path / "e.jsonl"
    writer = events.EventWriter(path)
    monkeypatch.setattr(events.os, "write", _failing_write(writer._fd, 10))
    with pytest.raises(UsageError, match="no space left"):
        writer.write(events.frame_event(0, 0.0, SOURCE, []))
    writer.close()
    assert not path.exists()


def test_event_writer_other_write_errors_name_the_file(tmp_path, monkeypatch):
    path = tmp_path / "e.jsonl"
    writer = events.EventWriter(path)
    real_write = os.write

    def broken(fd: int, data: bytes) -> int:
        if fd == writer._fd:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real_write(fd, data)

    monkeypatch.setattr(events.os, "write", broken)
    with pytest.raises(ToolkitError, match=r"cannot write events to .*e\.jsonl: Input/output error"):
        writer.write(events.frame_event(0, 0.0, SOURCE, []))
    writer.close()


# -- finding 4: frame rates a recording cannot have ---------------------------------------------------------------


@pytest.mark.parametrize("value", ["inf", "nan", "1e400", "1000", "0.001"])
def test_record_fps_flag_out_of_range_is_exit_2(tmp_path, value):
    result = _run([*DEMO, "--max-frames", 3, "--record", tmp_path / "x.mp4", "--record-fps", value])
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "name, text",
    [
        ("c.toml", "record_fps = inf\n"),
        ("c.toml", "record_fps = 241\n"),
        ("c.json", '{"record_fps": 1e400}'),
        ("c.json", '{"record_fps": NaN}'),
    ],
)
def test_record_fps_config_key_out_of_range_is_exit_2_with_the_range(tmp_path, name, text):
    config = tmp_path / name
    config.write_text(text)
    result = _run([*DEMO, "--max-frames", 3, "--record", tmp_path / "x.mp4", "--config", config])
    assert_one_line_error(result, 2, "record_fps must be a number in 0.01..240")
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_record_fps_range_in_the_config_class():
    for bad in (float("inf"), float("nan"), 0.0, -1.0, 240.5):
        with pytest.raises(UsageError, match=r"0\.01\.\.240"):
            PipelineConfig(record_fps=bad)
    assert PipelineConfig(record_fps=240.0).record_fps == 240.0
    assert PipelineConfig(record_fps=0.5).record_fps == 0.5


def test_source_frame_rate_out_of_range_asks_for_record_fps(tmp_path):
    clip = tmp_path / "fast.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 500.0, (160, 120))
    for frame in _frames(6):
        writer.write(frame)
    writer.release()
    result = _run([*DEMO, "--source", clip, "--record", tmp_path / "x.mp4"])
    assert_one_line_error(result, 2, "the frame rate of")
    assert "pass --record-fps" in result.stderr and not (tmp_path / "x.mp4").exists()
    ok = _run([*DEMO, "--source", clip, "--record", tmp_path / "x.mp4", "--record-fps", "25"])
    assert ok.returncode == 0, ok.stderr
    assert _frame_count(tmp_path / "x.mp4") == 6


def test_recorder_refuses_an_infinite_rate(tmp_path):
    with pytest.raises(UsageError, match=r"0\.01\.\.240"):
        Recorder(tmp_path / "x.mp4", fps=float("inf"))
    recorder = Recorder(tmp_path / "y.mp4")
    recorder.fps = float("inf")  # e.g. from a source that reports nonsense
    with pytest.raises(UsageError, match=r"0\.01\.\.240"):
        recorder.write(_frames(1)[0])
    assert recorder.close() is False
    assert list(tmp_path.iterdir()) == []


def test_sigkill_during_demo_keeps_the_previous_recording_and_whole_event_lines(tmp_path):
    """kill -9 while recording: the previous recording at the target path is byte-identical, the half-written one
    is a hidden pid-named file beside it (nothing partial at the target), every event line written so far is a
    whole JSON line, and the next run sweeps the dead run's leftover."""
    from conftest import run_cli

    video, log = tmp_path / "out.avi", tmp_path / "events.jsonl"
    first = run_cli(*DEMO, "--max-frames", "3", "--record", video)
    assert first.returncode == 0, first.stderr[-2000:]
    previous = video.read_bytes()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "toolkit",
            *DEMO[:2],
            "--every-n-seg",
            "0",
            "--behaviour",
            "constant-velocity",
            "--loop",
            "--record",
            str(video),
            "--events",
            str(log),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not log.exists() or log.read_text().count("\n") < 5):
            time.sleep(0.1)
        assert log.exists() and log.read_text().count("\n") >= 5, "the demo wrote no events"
    finally:
        demo.kill()
        demo.wait(timeout=30)
    assert demo.returncode == -signal.SIGKILL
    assert video.read_bytes() == previous
    leftovers = [p.name for p in tmp_path.iterdir() if ".partial-" in p.name]
    assert leftovers and all(name.startswith(f".out.avi.partial-{demo.pid}-") for name in leftovers), (
        leftovers
    )
    lines = log.read_text().splitlines()
    assert lines and all(json.loads(line)["frame"] >= 0 for line in lines)
    again = run_cli(*DEMO, "--max-frames", "2", "--record", video)
    assert again.returncode == 0, again.stderr[-2000:]
    assert not [p.name for p in tmp_path.iterdir() if ".partial-" in p.name]
    assert video.read_bytes() != previous
