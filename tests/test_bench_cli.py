"""`toolkit bench` end to end on real third-party models (mediapipe 0.10.14, no TensorFlow needed)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, assert_one_line_error

pytestmark = pytest.mark.shared
FAST = ("--runs", "20", "--warmup", "2", "--threads", "1")


@pytest.fixture(scope="module")
def face(shared: Path) -> Path:
    path = shared / "models" / "mediapipe-0.10.14" / "face_detection_short_range.tflite"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


def _rows(db: Path, sql: str = "SELECT COUNT(*) FROM results") -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_bench_two_targets_report_and_plot(cli, face: Path, tmp_path: Path) -> None:
    db = tmp_path / "bench.sqlite"
    first = cli("bench", face, *FAST, "--target", "a", "--db", db)
    assert first.returncode == 0, first.stderr
    for column in ("load ms", "first ms", "p50", "p90", "p99", "max", "inf/s", "RSS MB", "size KB"):
        assert column in first.stdout
    assert "face_detection_short_range.tflite  fp16" in first.stdout
    assert (
        "input of face_detection_short_range.tflite: input float32[1, 128, 128, 3] <- random uniform [0, 1] "
        "seed 0"
    ) in first.stdout
    assert "stored 1 result(s)" in first.stdout
    second = cli("bench", face, *FAST, "--target", "b", "--db", db)
    assert second.returncode == 0, second.stderr
    assert _rows(db) == [(2,)]

    plot = tmp_path / "p.png"
    report = cli("bench", "report", "--db", db, "--plot", plot)
    assert report.returncode == 0, report.stderr
    lines = report.stdout.splitlines()
    assert lines[0] == "== face_detection_short_range (face_detection_short_range.tflite)"
    table = lines[3 : lines.index("")]
    assert [line.split()[1] for line in table] == ["a", "b"]
    assert lines[-3] == "targets:" and lines[-2].startswith("  a: ") and lines[-1].startswith("  b: ")
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000

    only_b = json.loads(cli("bench", "report", "--db", db, "--format", "json", "--target", "b").stdout)
    assert [row["target"] for row in only_b[0]["rows"]] == ["b"]
    html = cli("bench", "report", "--db", db, "--format", "html", "--out", tmp_path / "r.html")
    assert html.returncode == 0 and (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
    missing = cli("bench", "report", "--db", db, "--target", "c")
    assert_one_line_error(missing, 2, "stored targets: a, b")


def test_json_no_store(cli, face: Path, tmp_path: Path) -> None:
    result = cli("bench", face, *FAST, "--json", "--no-store", env={"TOOLKIT_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    (row,) = data["results"]
    assert data["db"] is None and not list(tmp_path.iterdir())
    assert (
        row["count"] == 20
        and row["min_ms"] <= row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"] <= row["max_ms"]
    )
    assert row["inputs"] == [
        {"name": "input", "shape": [1, 128, 128, 3], "dtype": "float32", "scale": 0.0, "zero_point": 0}
    ]
    assert row["peak_rss_mb"] > row["baseline_rss_mb"] > 0
    assert row["backend"] == data["host"]["backend"] == "ai_edge_litert"
    for key in (
        "cpu_model",
        "cores",
        "arch",
        "os",
        "python",
        "backend_version",
        "governors",
        "temperature_c",
    ):
        assert key in data["host"]


def test_manifest_kind_gives_a_real_image(cli, shared: Path, tmp_path: Path) -> None:
    model = tmp_path / "selfie.tflite"
    shutil.copy(shared / "models" / "mediapipe-0.10.14" / "selfie_segmentation.tflite", model)
    (tmp_path / "selfie.json").write_text(json.dumps({"kind": "segmenter", "metrics": {"miou": 0.9}}))
    result = cli("bench", model, *FAST, "--json", "--db", tmp_path / "b.sqlite", "--in-process")
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)["results"][0]
    assert row["kind"] == "segmenter"
    assert row["input_source"].startswith("coco128:split=all sample"), row["input_source"]
    report = cli("bench", "report", "--db", tmp_path / "b.sqlite")
    assert "miou=0.9" in report.stdout


def test_fake_vcgencmd_throttled_result_is_flagged(cli, face: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "vcgencmd"
    script.write_text("#!/bin/sh\necho throttled=0x50005\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    db = tmp_path / "b.sqlite"
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    result = cli("bench", face, *FAST, "--db", db, env=env)
    assert result.returncode == 0, result.stderr
    assert "THROTTLED" in result.stdout and "throttling 0x50005" in result.stdout
    assert "the board is throttling now (under_voltage, throttled)" in result.stdout
    host = json.loads(_rows(db, "SELECT host_json FROM sessions")[0][0])
    assert host["throttle"] == {
        "raw": "0x50005",
        "now": ["under_voltage", "throttled"],
        "occurred": ["under_voltage", "throttled"],
    }
    assert _rows(db, "SELECT throttled FROM results") == [(1,)]
    assert "THROTTLED" in cli("bench", "report", "--db", db).stdout


@pytest.fixture(scope="module")
def populated_template(face: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import run_cli

    db = tmp_path_factory.mktemp("populated") / "bench.sqlite"
    assert run_cli("bench", face, *FAST, "--db", db).returncode == 0
    assert not db.with_name("bench.sqlite-wal").exists()  # the last connection checkpointed: one file to copy
    return db


@pytest.fixture
def populated_db(populated_template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copy(populated_template, tmp_path / "bench.sqlite"))


@pytest.mark.parametrize(
    ("make_args", "code", "message"),
    [
        (lambda d, face: [d / "not_a_model.tflite"], 2, "not a valid TFLite model"),
        (lambda d, face: [face, "--delegate", str(d / "libmissing.so")], 2, "delegate library not found"),
        (lambda d, face: [face, "--threads", "0"], 2, "threads must be integers in 1..1024, got 0"),
        (lambda d, face: [face, "--threads", "1,x"], 2, "expected comma-separated integers"),
        (lambda d, face: [face, "--runs", "0"], 2, "runs must be an integer in 1..10000000, got 0"),
        (lambda d, face: [face, "--runs", "5", "--seconds", "1"], 2, "not allowed with argument"),
        (lambda d, face: [face, "--delegate", "edgetpu"], 3, "edge tpu"),
        (lambda d, face: [d / "missing.tflite"], 2, "model file not found"),
    ],
)
def test_bad_input_one_line_and_store_unchanged(
    cli, face: Path, tmp_path: Path, populated_db: Path, make_args, code: int, message: str
) -> None:
    (tmp_path / "not_a_model.tflite").write_text("hello, I am text\n" * 10)
    before = populated_db.read_bytes()
    counts = _rows(populated_db, "SELECT (SELECT COUNT(*) FROM results), (SELECT COUNT(*) FROM sessions)")
    result = cli("bench", *make_args(tmp_path, face), "--db", populated_db)
    assert_one_line_error(result, code, message)
    assert (
        _rows(populated_db, "SELECT (SELECT COUNT(*) FROM results), (SELECT COUNT(*) FROM sessions)")
        == counts
    )
    assert populated_db.read_bytes() == before


def test_corrupt_database_exit_2_untouched(cli, face: Path, tmp_path: Path) -> None:
    db = tmp_path / "bench.sqlite"
    garbage = bytes(range(256)) * 40
    db.write_bytes(garbage)
    assert_one_line_error(cli("bench", face, *FAST, "--db", db), 2, "not an SQLite database")
    assert_one_line_error(cli("bench", "report", "--db", db), 2, "left untouched")
    assert db.read_bytes() == garbage and sorted(p.name for p in tmp_path.iterdir()) == ["bench.sqlite"]


def test_report_usage_errors(cli, tmp_path: Path) -> None:
    assert_one_line_error(
        cli("bench", "report", "--db", tmp_path / "none.sqlite"), 2, "no benchmark database"
    )
    assert_one_line_error(cli("bench", "report", "--format", "xml"), 2, "invalid choice")
    assert not (tmp_path / "none.sqlite").exists()


def test_ctrl_c_keeps_earlier_results(face: Path, tmp_path: Path) -> None:
    models = []
    for name in "abcdef":  # many models: a busy machine must not finish them all before the Ctrl-C lands
        models.append(tmp_path / f"{name}.tflite")
        shutil.copy(face, models[-1])
    db = tmp_path / "bench.sqlite"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "toolkit",
            "bench",
            *map(str, models),
            "--seconds",
            "2",
            "--threads",
            "1",
            "--db",
            str(db),
        ],
        env=env,
        cwd=REPO,
        start_new_session=True,
        # a test run started in the background (`cmd &`) inherits SIGINT ignored: undo that,
        # as a terminal would have it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists() and _count_or_zero(db) >= 1:
            break
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "toolkit bench: interrupted"
    assert "Traceback" not in err
    assert _rows(db, "PRAGMA integrity_check") == [("ok",)]
    rows = _rows(db, "SELECT model_name, count, length(samples) FROM results ORDER BY id")
    assert 1 <= len(rows) < 6 and rows[0][0] == "a.tflite" and rows[0][1] > 0 and rows[0][2] > 0


def _count_or_zero(db: Path) -> int:
    try:
        return _rows(db)[0][0]
    except sqlite3.Error:  # schema not created yet
        return 0


def test_help_stays_light(cli) -> None:
    code = (
        "import argparse, sys; import toolkit.cli.bench_cmd as b; b.add_arguments(argparse.ArgumentParser());"
        "heavy = [m for m in ('numpy', 'ai_edge_litert', 'cv2', 'matplotlib', 'sqlite3', 'tensorflow')"
        " if m in sys.modules]; print(heavy)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout.strip() == "[]", proc.stderr
    main_help = cli("bench", "--help")
    assert main_help.returncode == 0 and "toolkit bench report --help" in main_help.stdout
    report_help = cli("bench", "report", "--help")
    assert report_help.returncode == 0 and "usage: toolkit bench report" in report_help.stdout
    assert "--plot OUT.png" in report_help.stdout


def test_real_track_values(shared: Path) -> None:
    from toolkit.bench.inputs import _real_sample

    track, source = _real_sample("behaviour", "track", (1, 8, 2))
    assert track.shape == (8, 2) and track.dtype.name == "float32" and source.startswith("eth_ucy")
    assert (track[-1] == 0).all()  # relative to the last observed point (in the model's heading frame)
    assert abs(track[-2, 1]) < 1e-6 and track[-2, 0] < 0  # the last step points along +x in the heading frame
    steps = abs(track[1:] - track[:-1]).max()
    assert 0.0 < steps < 2.0, source  # metres per 0.4 s step: a walking pedestrian


def test_plot_without_matplotlib_is_a_clear_error(cli, face: Path, tmp_path: Path) -> None:
    db = tmp_path / "b.sqlite"
    assert cli("bench", face, *FAST, "--db", db).returncode == 0
    blocker = tmp_path / "blocked" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('matplotlib hidden by the test')\n")
    result = cli(
        "bench",
        "report",
        "--db",
        db,
        "--plot",
        tmp_path / "p.png",
        env={"PYTHONPATH": f"{blocker.parent}{os.pathsep}{REPO}"},
    )
    assert_one_line_error(result, 2, "pip install 'edge-toolkit[plot]'")
    assert not (tmp_path / "p.png").exists()
    assert_one_line_error(cli("bench", "report", "--db", db, "extra"), 2, "unrecognized arguments: extra")
    assert_one_line_error(cli("bench"), 2, "required: MODEL")
