"""The demo with the shipped, trained zoo (models/): real people in the real clip become tracks with predicted
paths, and the synthetic scene runs in metres. Skips (with the reason) until the zoo has been built."""

from __future__ import annotations

import pytest

from toolkit.errors import UsageError
from toolkit.pipeline.config import PipelineConfig
from toolkit.pipeline.demo import locate_models, run_demo
from toolkit.pipeline.events import read_events

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def zoo() -> None:
    try:
        locate_models(PipelineConfig())
    except UsageError as exc:
        pytest.skip(f"the model zoo is not built: {exc}")


@pytest.mark.shared
def test_real_clip_people_become_tracks_with_model_predictions(shared, zoo, tmp_path):
    clip = shared / "data" / "pedestrian_video" / "pedestrians.avi"
    events = tmp_path / "clip.jsonl"
    summary = run_demo(
        PipelineConfig(
            source=str(clip), realtime=False, max_frames=200, events=str(events), validate_events=True
        )
    )
    lines = read_events(events)
    assert summary.frames == len(lines) == 200
    # PETS 2009 S2.L1 has several people walking in view from the first frame on.
    assert summary.tracks >= 3
    busy = [e for e in lines[100:] if len(e["tracks"]) >= 2]
    assert len(busy) >= 50, "fewer than 2 tracked people in most of the second half"
    assert any(t["predictor"] == "model" for e in lines for t in e["tracks"])


def test_synthetic_scene_runs_in_metres_with_the_zoo(zoo, tmp_path):
    events = tmp_path / "synthetic.jsonl"
    summary = run_demo(PipelineConfig(realtime=False, max_frames=80, events=str(events)))
    lines = read_events(events)
    assert summary.frames == 80 and all(e["ground_units"] == "m" for e in lines)
    assert summary.tracks >= 1
