"""``toolkit eval --data mot:...``: the pipeline's tracks on a MOTChallenge sequence (the shared PETS09-S2L1)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, run_cli

from toolkit.data.mot import mot_sequence_from_spec
from toolkit.data.spec import parse_spec
from toolkit.eval.config import EvalConfig
from toolkit.eval.tracking import evaluate_sequence, track_sequence
from toolkit.pipeline.offline import OfflineTracker, detector_path

pytestmark = pytest.mark.shared


def test_tracks_of_the_zoo_on_pets_are_scored_with_the_published_metrics(shared: Path) -> None:
    report = evaluate_sequence(None, parse_spec("mot:limit=60"), EvalConfig(threads=1, baselines=False))
    m = report.metrics
    assert report.kind == "tracking" and report.primary == "mota" and report.samples == 60
    assert m["gt_boxes"] > 200 and m["gt_ids"] >= 4
    # Counts tie together as the definitions say.
    assert m["mota"] == pytest.approx(1 - (m["fn"] + m["fp"] + m["idsw"]) / m["gt_boxes"], abs=1e-5)
    assert 0 < m["recall"] <= 1 and 0 < m["precision"] <= 1 and 0 < m["hota"] <= 1
    assert 0 <= m["ap50_tracks"] <= 1 and 0 <= m["ap50_detections"] <= 1
    assert "7 fps" in report.notes[0] and "x0.625" in report.notes[0]


def test_the_same_sequence_scores_the_same_twice(shared: Path) -> None:
    config = EvalConfig(threads=1, baselines=False)
    first = evaluate_sequence(None, parse_spec("mot:limit=30"), config).metrics
    second = evaluate_sequence(None, parse_spec("mot:limit=30"), config).metrics
    first.pop("seconds_per_frame"), second.pop("seconds_per_frame")
    assert first == second


def test_offline_runner_uses_the_sequence_clock_and_reports_every_frame(shared: Path) -> None:
    sequence = mot_sequence_from_spec("mot:limit=20")
    with OfflineTracker.open(None, threads=1) as run:
        tracks, scores, detections, _ = track_sequence(sequence, run)
        assert run.path == detector_path(None)
    assert sorted(tracks) == list(range(20))
    for frame in range(20):
        ids, boxes = tracks[frame]
        assert len(ids) == len(boxes) == len(scores[frame]) and len(np.unique(ids)) == len(ids)
        assert detections[frame][0].shape[1] == 4


def test_cli_prints_tracking_metrics_and_json(shared: Path) -> None:
    result = run_cli("eval", "--data", "mot:limit=25", "--no-baselines", "--threads", "1", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["kind"] == "tracking" and {"mota", "idf1", "hota", "idsw"} <= set(report["metrics"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "mot:seq=/nonexistent/seq"], "/nonexistent/seq"),
        (["--data", "mot:limit=zero"], "limit=zero"),
        (["models/README.md", "--data", "mot:limit=5"], ".tflite"),
        (["--data", "mnist:split=test"], "give the model"),
    ],
)
def test_bad_tracking_input_is_one_line_and_exit_2(shared: Path, args: list[str], message: str) -> None:
    assert_one_line_error(run_cli("eval", *args), contains=message)


def test_without_pycocotools_the_tracking_metrics_are_still_reported(shared: Path, monkeypatch) -> None:
    import toolkit.eval.tracking as tracking

    monkeypatch.setattr(tracking, "has_coco_ap", lambda: False)
    report = evaluate_sequence(None, parse_spec("mot:limit=10"), EvalConfig(threads=1, baselines=False))
    assert "mota" in report.metrics and "ap50_tracks" not in report.metrics
    assert any("pycocotools" in note for note in report.notes)
