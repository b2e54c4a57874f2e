"""``toolkit bench pipeline [--soak]``: the camera demo's end-to-end speed and its memory soak (a handful of frames)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, run_cli

from toolkit.bench.pipeline_bench import PipelineBenchConfig, run_row
from toolkit.bench.pipeline_soak import SoakConfig, fit_slope, theil_sen
from toolkit.errors import UsageError


def test_speed_runs_write_their_json(tmp_path: Path) -> None:
    out = tmp_path / "bench" / "pipeline.json"
    result = run_cli(
        "bench",
        "pipeline",
        "--source",
        "synthetic",
        "--frames",
        "6",
        "--isolated-runs",
        "2",
        "--out",
        out,
        "--json",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert json.loads(result.stdout) == report
    (row,) = report["runs"]
    assert row["run"].startswith("synthetic threads=") and row["run"].endswith("pipelined")
    assert row["frames"] == 6 and row["fps"] > 0 and row["stages"]["detect"]["count"] == 6
    assert set(report["isolated_invoke_ms"]) == {"detector", "behaviour", "segmenter"}
    assert row["isolated_model_bound_fps"] > 0 and report["sources"] == ["synthetic"]


def test_sweep_adds_rows_after_the_default_configuration(tmp_path: Path) -> None:
    out = tmp_path / "sweep.json"
    result = run_cli(
        "bench",
        "pipeline",
        "--source",
        "synthetic",
        "--frames",
        "3",
        "--isolated-runs",
        "0",
        "--threads",
        "1",
        "--modes",
        "serial",
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr
    runs = json.loads(out.read_text())["runs"]
    assert runs[-1]["run"] == "synthetic threads=1 serial" and not runs[-1]["pipelined"]
    assert (
        runs[0]["pipelined"] and runs[-1]["isolated_model_bound_fps"] is None
    )  # --isolated-runs 0: no bound
    assert f"wrote {out}" in result.stdout


def test_soak_writes_samples_and_a_verdict(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    result = run_cli(
        "bench",
        "pipeline",
        "--soak",
        "--frames",
        "40",
        "--every",
        "5",
        "--warmup",
        "10",
        "--threshold-mb",
        "1000000",
        "--no-record",
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr
    soak = json.loads(out.read_text())
    assert soak["frames"] == 40 and soak["passed"] and soak["config"]["record"] is False
    assert [s["frame"] for s in soak["samples"]] == list(range(0, 41, 5))
    assert "PASS" in result.stdout


def test_a_failed_soak_exits_4_with_its_output_written(tmp_path: Path, monkeypatch, capsys) -> None:
    import toolkit.bench.pipeline_soak as soak
    from toolkit.cli import main

    monkeypatch.setattr(
        soak,
        "soak_pipeline",
        lambda config, say: {
            "frames": 40,
            "fps": 50.0,
            "rss_after_warmup_mb": 100.0,
            "rss_last_mb": 140.0,
            "slope_mb_per_1000_frames": 1000.0,
            "least_squares_slope": 990.0,
            "r2": 0.99,
            "threshold_mb_per_1000_frames": config.threshold_mb,
            "passed": False,
        },
    )
    out = tmp_path / "soak.json"
    assert main(["bench", "pipeline", "--soak", "--out", str(out)]) == 4
    assert json.loads(out.read_text())["passed"] is False
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "memory grew +1000.0000 MB per 1000 frames" in err[0]


def test_slopes_on_hand_checked_samples() -> None:
    frames = np.array([0, 1000, 2000, 3000], np.float64)
    rss = np.array([100.0, 101.0, 102.0, 103.0])  # 1 MB per 1000 frames, exactly
    assert fit_slope(frames, rss) == pytest.approx((1.0, 1.0))
    assert theil_sen(frames, rss) == pytest.approx(1.0)
    # one allocator step (an arena made late in the warm-up): the median of the pairwise slopes shrugs it off,
    # the least-squares line does not
    frames = np.arange(8) * 1000.0
    stepped = np.array([100.0] + [130.0] * 7)
    assert theil_sen(frames, stepped) == 0.0 and fit_slope(frames, stepped)[0] == pytest.approx(2.5)


def test_configs_validate_at_the_boundary() -> None:
    with pytest.raises(UsageError, match="fewer than 4 samples"):
        SoakConfig(frames=1000, every=250, warmup=1000)
    with pytest.raises(UsageError, match="unknown mode 'fast'"):
        PipelineBenchConfig(modes=("fast",))
    with pytest.raises(UsageError, match="repeats"):
        PipelineBenchConfig(repeats=0)


def test_a_row_without_isolated_times_has_no_isolated_bound() -> None:
    stage = {"p50": 1.0, "p90": 2.0, "count": 3}
    summary = {
        "stages": {"detect": stage},
        "threads": 1,
        "frames": 3,
        "seconds": 0.1,
        "fps": 30.0,
        "dropped": 0,
        "tracks": 2,
        "behaviour_calls_per_frame": 1.0,
        "pipelined": True,
        "model_ms_p50": {},
        "model_ms_per_frame": 10.0,
        "model_bound_fps": 100.0,
        "efficiency": 0.3,
        "cpu_ms_per_frame": 20.0,
        "thread_cpu_ms_per_frame": {},
        "cpu_bound_fps_2_cores": 50.0,
    }
    row = run_row("x", summary, {}, 3)
    assert row["isolated_model_bound_fps"] is None and row["efficiency_vs_isolated"] is None
    assert row["cpu_efficiency_2_cores"] == 0.5
    iso = {"detector": {"threads_1": 5.0}, "segmenter": {"threads_1": 15.0}, "behaviour": {"threads_1": 1.0}}
    assert run_row("x", summary, iso, 3)["isolated_model_bound_fps"] == pytest.approx(
        1000 / (5 + 15 / 3 + 1), abs=0.01
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--every", "3"], "--every applies to --soak"),
        (["--soak", "--threads", "2"], "--threads applies to the speed runs"),
        (["--modes", "fast", "--source", "synthetic"], "unknown mode 'fast'"),
        (["--frames", "0"], "frames"),
        (["--soak", "--frames", "10"], "fewer than 4 samples"),
        (["--soak", "--source", "synthetic", "--source", "synthetic"], "one --source"),
        (["--threshold-mb", "nan", "--soak"], "threshold_mb"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    assert_one_line_error(run_cli("bench", "pipeline", *args, "--out", tmp_path / "x.json"), 2, message)


def test_out_must_be_a_file(tmp_path: Path) -> None:
    assert_one_line_error(
        run_cli("bench", "pipeline", "--source", "synthetic", "--out", tmp_path), 2, "directory"
    )


def test_help_names_both_modes() -> None:
    result = run_cli("bench", "pipeline", "--help")
    assert result.returncode == 0 and "--soak" in result.stdout and "--isolated-runs" in result.stdout
    assert "bench pipeline" in run_cli("bench", "--help").stdout
