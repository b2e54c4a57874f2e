"""toolkit bench matrix without TensorFlow: bad input is one line and exit 2 before any heavy work (no database
written, no conversion started), mode parsing, and the table on a hand-made result."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO, assert_one_line_error

from toolkit.bench.matrix import MatrixResult, MatrixRow, parse_modes, render, to_json
from toolkit.errors import UsageError


@pytest.fixture
def fake_keras(tmp_path: Path) -> Path:
    """A zip named .keras: passes the cheap checks, so the check under test is the one that fails."""
    path = tmp_path / "m.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{}")
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.keras", "--data", "mnist:split=test"], "model not found: missing.keras"),
        (["{tflite}", "--data", "mnist:split=test"], "expected a .keras model"),
        (["{notzip}", "--data", "mnist:split=test"], "not a Keras v3 .keras archive"),
        (["{keras}", "--data", "mnsit:split=test"], "did you mean 'mnist'"),
        (["{keras}", "--data", "mnist:splt=test"], "unknown key 'splt'"),
        (["{keras}", "--data", "mnist:split=test"], "int8 needs calibration data"),
        (["{keras}", "--data", "mnist:split=test", "--modes", "fp32,in8"], "did you mean 'int8'"),
        (
            ["{keras}", "--data", "mnist:split=test", "--modes", "fp16", "--calib", "c.npy"],
            "--calib is only used by int8",
        ),
        (
            ["{keras}", "--data", "mnist:split=test", "--calib", "nowhere.npy"],
            "calibration data not found: nowhere.npy",
        ),
    ],
)
def test_bad_input_is_one_line_before_heavy_work(
    cli, tmp_path: Path, fake_keras: Path, args: list[str], message: str
) -> None:
    notzip = tmp_path / "broken.keras"
    notzip.write_text("not a zip")
    tflite = tmp_path / "m.tflite"
    tflite.write_bytes(b"\0" * 64)
    names = {"{keras}": str(fake_keras), "{notzip}": str(notzip), "{tflite}": str(tflite)}
    db = tmp_path / "bench.sqlite"
    result = cli(
        "bench", "matrix", *(names.get(a, a) for a in args), "--db", db, "--out-dir", tmp_path / "out"
    )
    assert_one_line_error(result, 2, message)
    # Refused before the store was opened and before a folder for conversions was made.
    assert not db.exists() and not (tmp_path / "out").exists()


def test_missing_tensorflow_is_one_line(fake_keras: Path, tmp_path: Path) -> None:
    import subprocess

    # sys.modules[name] = None makes both find_spec() and import see no TensorFlow, as on a device install.
    code = (
        "import sys; sys.modules['tensorflow'] = None; from toolkit.cli import main; "
        f"sys.exit(main(['bench', 'matrix', {str(fake_keras)!r}, '--data', 'mnist:split=test', '--modes', "
        f"'fp32', '--db', {str(tmp_path / 'b.sqlite')!r}]))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "pip install 'edge-toolkit[train]'" in lines[0], proc.stderr
    assert not (tmp_path / "b.sqlite").exists()


def test_out_dir_that_is_a_file(cli, fake_keras: Path, tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_text("x")
    result = cli(
        "bench",
        "matrix",
        fake_keras,
        "--data",
        "mnist:split=test",
        "--modes",
        "fp32",
        "--out-dir",
        taken,
        "--db",
        tmp_path / "b.sqlite",
    )
    assert_one_line_error(result, 2, "is a file")


def test_parse_modes_orders_and_dedupes() -> None:
    assert parse_modes("int8, fp32,int8") == ("fp32", "int8")
    assert parse_modes("dynamic,fp16,fp32,int8") == ("fp32", "fp16", "dynamic", "int8")
    with pytest.raises(UsageError, match="at least one"):
        parse_modes(" , ")


def test_help_lists_matrix(cli) -> None:
    result = cli("bench", "matrix", "--help")
    assert result.returncode == 0
    assert "--calib" in result.stdout and "--modes" in result.stdout and "--keep" in result.stdout
    assert "bench matrix" in cli("bench", "--help").stdout


def _result() -> MatrixResult:
    rows = [
        MatrixRow("keras", "/m/net.keras", 204800, "top1", 0.99, None, metrics={"top1": 0.99}),
        MatrixRow("fp32", "/o/net_fp32.tflite", 102400, "top1", 0.99, 0.0, 2.0, 2.5, 4.0, 80.0, 1.0),
        MatrixRow("int8", "/o/net_int8.tflite", 30720, "top1", 0.985, -0.005, 0.5, 0.6, 1.0, 70.0, 4.0),
    ]
    return MatrixResult(
        "/m/net.keras",
        "mnist:split=test",
        "classifier",
        2000,
        "top1",
        True,
        2,
        rows,
        [{"p50_ms": 2.0, "samples_zlib_b64": "eJw="}],
    )


def test_render_one_row_per_format_with_deltas_and_speedups() -> None:
    text = render(_result(), "lab", {"cpu_model": "Cortex-A76", "arch": "aarch64"})
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("format"))
    assert lines[header].split() == [
        "format",
        "file",
        "size",
        "KiB",
        "top1",
        "vs",
        "keras",
        "p50",
        "ms",
        "p90",
        "ms",
        "p99",
        "ms",
        "RSS",
        "MB",
        "vs",
        "fp32",
    ]
    keras, fp32, int8 = (lines[header + 2 + i].split() for i in range(3))
    assert keras == ["keras", "net.keras", "200.0", "0.9900", "(ref)", "-", "-", "-", "-", "-"]
    assert fp32 == [
        "fp32",
        "net_fp32.tflite",
        "100.0",
        "0.9900",
        "+0.0000",
        "2.000",
        "2.500",
        "4.000",
        "80",
        "1.00x",
    ]
    assert int8 == [
        "int8",
        "net_int8.tflite",
        "30.0",
        "0.9850",
        "-0.0050",
        "0.500",
        "0.600",
        "1.000",
        "70",
        "4.00x",
    ]
    assert "2000 samples" in lines[0] and "target lab: Cortex-A76" in text


def test_json_drops_sample_blobs_and_keeps_extra_keys() -> None:
    out = to_json(_result(), target="lab")
    assert out["target"] == "lab" and out["bench"] == [{"p50_ms": 2.0}]
    assert [r["format"] for r in out["rows"]] == ["keras", "fp32", "int8"] and out["rows"][0]["delta"] is None
