"""The demo's typed summary (its JSON unchanged), the model-bound explanation, and progress lines where the live
status line cannot show (issue 16). No models: the summary is built from hand-made counters."""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
from pathlib import Path

import pytest

from toolkit.pipeline.config import PipelineConfig
from toolkit.pipeline.demo_summary import (
    BOUND_NOTE,
    DemoProgress,
    DemoSummary,
    ProgressLog,
    format_summary,
    progress_line,
    run_figures,
)
from toolkit.pipeline.timing import StageTimes

# The keys run_demo's dict had, in its order: the JSON output must keep them.
LEGACY_KEYS = [
    "frames",
    "seconds",
    "fps",
    "model_ms_p50",
    "model_ms_per_frame",
    "model_bound_fps",
    "efficiency",
    "dropped",
    "stopped",
    "tracks",
    "stages",
    "source",
    "threads",
    "pipelined",
    "every_n_seg",
    "realtime",
    "behaviour",
    "models",
    "events",
    "cpu_ms_per_frame",
    "behaviour_calls_per_frame",
    "thread_cpu_ms_per_frame",
    "cpu_bound_fps_2_cores",
    "ground_units",
    "record",
    "record_frames",
    "delegate",
    "fallback",
    "model_checks",
    "ground_plane",
]


def _summary_dict(realtime: bool = False) -> dict:
    times = StageTimes(64)
    for _ in range(10):
        times.add({"detect": 10.0, "behaviour_model": 2.0, "segment_model": 24.0, "draw": 1.0})
    figures = run_figures(
        PipelineConfig(realtime=realtime),
        11,
        0.5,
        times,
        {"frames_dropped": 0},
        4,
        {"detector": Path("d.tflite")},
        1,
        "max_frames",
    )
    return {
        **figures,
        "cpu_ms_per_frame": 20.0,
        "behaviour_calls_per_frame": 1.5,
        "thread_cpu_ms_per_frame": {"detect": 9.0, "other": 1.0},
        "cpu_bound_fps_2_cores": 60.0,
        "ground_units": None,
        "record": None,
        "record_frames": 0,
        "delegate": "xnnpack",
        "fallback": None,
        "model_checks": {"detector": "convert manifest"},
        "ground_plane": None,
    }


def test_the_typed_summary_keeps_the_json_keys_order_and_values():
    legacy = _summary_dict()
    summary = DemoSummary(**legacy)
    assert list(summary.to_dict()) == LEGACY_KEYS == [f.name for f in dataclasses.fields(DemoSummary)]
    assert json.dumps(summary.to_dict()) == json.dumps(legacy)
    assert (
        summary.fps == 20.0 and summary.model_bound_fps == 50.0 and summary.efficiency == 0.4
    )  # 1000/(10+2+24/3)
    assert summary["fps"] == summary.fps  # read access for code written against the dict
    with pytest.raises(KeyError):
        summary["fsp"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        summary.fps = 1.0  # type: ignore[misc]
    assert dataclasses.replace(summary, stopped="SIGINT").stopped == "SIGINT"


def test_model_bound_and_efficiency_are_explained_where_printed():
    summary = DemoSummary(**_summary_dict())
    plain = format_summary(summary)
    assert "\n" not in plain and "model-bound 50.0, efficiency 0.40" in plain
    explained = format_summary(summary, explain=True).splitlines()
    assert explained == [plain, BOUND_NOTE]
    assert "models alone" in BOUND_NOTE and "achieved FPS / model-bound" in BOUND_NOTE
    paced = format_summary(DemoSummary(**_summary_dict(realtime=True)), explain=True)
    assert "\n" not in paced and "paced by the source" in paced  # no efficiency figure: nothing to explain


def test_progress_log_writes_a_line_every_interval_from_the_first_frame():
    now = [100.0]
    stream = io.StringIO()
    log = ProgressLog(stream, every_s=10.0, clock=lambda: now[0])
    for t, frames in [(103.0, 1), (108.0, 120), (113.5, 250), (115.0, 290), (124.0, 500)]:
        now[0] = t
        log(DemoProgress(frames, 24.75, 3, 2))
    lines = stream.getvalue().splitlines()
    assert lines == [
        "demo: 250 frames, 10 s, 24.8 FPS, 3 tracks in view, 2 dropped",
        "demo: 500 frames, 21 s, 24.8 FPS, 3 tracks in view, 2 dropped",
    ]
    assert (
        progress_line(DemoProgress(1, None, 0, 0), 0.2)
        == "demo: 1 frames, 0 s, n/a FPS, 0 tracks in view, 0 dropped"
    )


def _fake_run_demo(calls: list):
    def run_demo(config, stop=None, on_frame=None, on_start=None, on_progress=None):
        calls.append(on_progress)
        if on_progress is not None:
            on_progress.every_s = 0.0  # every frame, for the test
            for n in (1, 2, 3):
                on_progress(DemoProgress(n, 30.0, 2, 0))
        return DemoSummary(**_summary_dict())

    return run_demo


@pytest.mark.parametrize("tty", [False, True])
def test_cli_prints_progress_lines_only_where_stderr_is_not_a_terminal(monkeypatch, capsys, tty):
    import toolkit.cli.demo_cmd as demo_cmd
    import toolkit.pipeline.demo as demo

    calls: list = []
    monkeypatch.setattr(demo, "run_demo", _fake_run_demo(calls))
    if tty:
        monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    parser = argparse.ArgumentParser()
    demo_cmd.add_arguments(parser)
    assert demo_cmd.run(parser.parse_args(["--headless", "--json"])) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == _summary_dict()  # the JSON is the typed summary's dict
    if tty:
        assert calls == [None] and "tracks in view" not in err
    else:
        assert isinstance(calls[0], ProgressLog)
        assert [line for line in err.splitlines() if "tracks in view" in line] == [
            f"demo: {n} frames, 0 s, 30.0 FPS, 2 tracks in view, 0 dropped" for n in (1, 2, 3)
        ]
