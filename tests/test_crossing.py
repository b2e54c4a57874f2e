"""Crossing grounded in the scene (toolkit.pipeline.crossing): paths entering / not entering a road region,
probability weighting over modes, no road -> 0, NaN and off-frame points, the segmenter's road memory, the user's
--road-region, and the demo's events (crossing_source "road", 0 on the PETS clip which has no road)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
from conftest import assert_one_line_error

from toolkit.errors import UsageError
from toolkit.pipeline.behaviour import Prediction
from toolkit.pipeline.crossing import (
    CrossingConfig,
    RoadCrossing,
    RoadMap,
    crossing_probabilities,
    enter_steps,
    finish_region,
    load_road_region,
    parse_road_region,
    path_modes,
    points_in_region,
    rasterise,
)
from toolkit.pipeline.draw import CROSSING_LEGEND, legend_items
from toolkit.pipeline.events import frame_event, validate_event
from toolkit.pipeline.segment import CLASSES

ROAD, PERSON, SIDEWALK = CLASSES.index("road"), CLASSES.index("person"), CLASSES.index("sidewalk")


def _road_below(y0: int, shape: tuple[int, int] = (100, 200)) -> np.ndarray:
    region = np.zeros(shape, bool)
    region[y0:] = True
    return region


def _walk(start: tuple[float, float], step: tuple[float, float], horizon: int = 12) -> np.ndarray:
    return np.asarray(start) + np.arange(1, horizon + 1)[:, None] * np.asarray(step)


def _prediction(track_id: int, path: np.ndarray, crossing: float | None = 0.5) -> Prediction:
    return Prediction(
        track_id, path, None, crossing, "model" if crossing is not None else "constant_velocity"
    )


def test_a_path_that_reaches_the_road_enters_it_at_its_first_road_step():
    region = _road_below(60)
    paths = np.stack([_walk((50, 30), (0, 5)), _walk((50, 30), (5, 0)), _walk((50, 70), (1, 0))])
    # down from y=30 by 5 px a step: y=60 at step 6; along y=30: never; already on the road: step 1
    assert enter_steps(paths, region).tolist() == [6, 0, 1]


def test_nan_and_off_frame_points_are_not_on_the_road():
    region = np.ones((100, 200), bool)
    points = np.array([[np.nan, 50], [-1, 50], [200, 50], [10, 100], [199.9, 99.9], [0, 0]])
    assert points_in_region(points, region).tolist() == [False, False, False, False, True, True]
    path = np.full((12, 2), np.nan)
    assert enter_steps(path[None], region).tolist() == [0]


def test_probability_is_the_summed_weight_of_the_entering_modes():
    region = _road_below(60)
    modes = np.stack([_walk((50, 30), (0, 5)), _walk((50, 30), (5, 0)), _walk((50, 30), (0, 3))])
    probs = np.array([0.5, 0.3, 0.2])
    (c,) = crossing_probabilities([modes], [probs], region)
    assert c.source == "road" and c.probability == pytest.approx(0.7)
    assert c.step == 6 and c.point == (50.0, 60.0)  # the likeliest entering mode (0.5), not the 0.2 one
    (none,) = crossing_probabilities([modes[1:2]], [np.ones(1)], region)
    assert none.probability == 0.0 and none.step is None and none.point is None


def test_no_road_gives_zero_for_every_track():
    paths = [_walk((50, 30), (0, 5))[None], _walk((10, 10), (1, 1))[None]]
    for region in (None, np.zeros((100, 200), bool)):
        out = crossing_probabilities(paths, [np.ones(1)] * 2, region)
        assert [c.probability for c in out] == [0.0, 0.0] and {c.source for c in out} == {"road"}


def test_path_modes_reads_modes_when_present_and_the_single_path_otherwise():
    path = _walk((0, 0), (1, 0))
    single = _prediction(1, path)
    modes, probs = path_modes(single)
    assert modes.shape == (1, 12, 2) and probs.tolist() == [1.0]

    @dataclass(frozen=True)
    class MultiModal:
        path_image: np.ndarray
        modes_image: np.ndarray
        mode_probs: np.ndarray

    multi = MultiModal(path, np.stack([path, path + 1, path + 2]), np.array([2.0, 1.0, 1.0]))
    modes, probs = path_modes(multi)
    assert modes.shape == (3, 12, 2) and probs.tolist() == [0.5, 0.25, 0.25]


def test_road_map_needs_repeated_votes_and_ignores_occluders():
    config = CrossingConfig(erode=0.0, min_share=0.0)
    road_map = RoadMap(config)
    labels = np.full((40, 40), SIDEWALK, np.uint8)
    labels[20:] = ROAD
    road_map.update(labels)
    assert not road_map.region().any()  # one segmentation is not enough (vote 0.3 < 0.6)
    for _ in range(2):
        road_map.update(labels)
    assert road_map.region()[20:].all() and not road_map.region()[:20].any()
    occluded = labels.copy()
    occluded[25:35, 10:20] = PERSON  # a person standing on the road casts no vote
    for _ in range(5):
        road_map.update(occluded)
    assert road_map.region()[25:35, 10:20].all()


def test_road_map_drops_a_region_smaller_than_min_share_and_erodes_the_edge():
    labels = np.zeros((100, 100), np.uint8)
    labels[:3, :3] = ROAD  # 9 stray pixels
    road_map = RoadMap(CrossingConfig(memory=1.0, vote=0.5))
    road_map.update(labels)
    assert not road_map.region().any()
    region = finish_region(_road_below(50, (100, 100)), CrossingConfig(erode=0.03))
    assert not region[50:53].any() and region[53:].all()


def test_road_crossing_relabels_predictions_and_keeps_the_learned_prior():
    predictions = {
        1: _prediction(1, _walk((20, 10), (0, 3)), 0.2),
        2: _prediction(2, _walk((20, 5), (1, 0)), 0.9),
    }
    labels = np.full((40, 60), SIDEWALK, np.uint8)
    labels[25:] = ROAD
    road = RoadCrossing(CrossingConfig(memory=1.0, vote=0.5, erode=0.0, prior_weight=0.0), segmenting=True)
    before, waiting = road(predictions, None, (60, 40))
    assert all(c.probability is None and c.source is None for c in waiting.values())
    assert before[1].crossing is None
    out, crossings = road(predictions, labels, (60, 40))
    assert out[1].crossing == 1.0 and out[2].crossing == 0.0  # the learned 0.9 says nothing about the road
    assert crossings[1].prior == 0.2 and crossings[2].prior == 0.9 and crossings[1].step == 5
    blend = RoadCrossing(CrossingConfig(memory=1.0, vote=0.5, erode=0.0, prior_weight=0.5), segmenting=True)
    out, crossings = blend(predictions, labels, (60, 40))
    assert out[1].crossing == pytest.approx(0.6) and out[2].crossing == pytest.approx(0.45)
    assert crossings[1].road == 1.0 and crossings[2].road == 0.0
    no_road = RoadCrossing(CrossingConfig(), segmenting=True)  # blended by default, but 0 with no road
    out, crossings = no_road(predictions, np.full((40, 60), SIDEWALK, np.uint8), (60, 40))
    assert [out[i].crossing for i in (1, 2)] == [0.0, 0.0]
    model_only = RoadCrossing(CrossingConfig(), segmenting=False)
    out, crossings = model_only(predictions, None, (60, 40))
    assert out[2].crossing == 0.9 and crossings[2].source == "model"


def test_user_polygons_override_the_segmenter():
    predictions = {1: _prediction(1, _walk((20, 10), (0, 3)))}
    polygon = np.array([[0, 0], [60, 0], [60, 8], [0, 8]], float)  # a road above the person, not below
    road = RoadCrossing(CrossingConfig(erode=0.0), polygons=[polygon], segmenting=True)
    labels = np.full((40, 60), ROAD, np.uint8)  # the segmenter says everything is road: ignored
    out, crossings = road(predictions, labels, (60, 40))
    assert out[1].crossing == 0.25 and crossings[1].road == 0.0 and crossings[1].source == "road"
    assert rasterise([polygon], (60, 40))[:9].all()


def test_road_region_parsing(tmp_path):
    square = [[0, 0], [10, 0], [10, 10]]
    assert len(parse_road_region(square)) == 1
    assert len(parse_road_region([square, square])) == 2
    assert len(parse_road_region({"polygons": [square]})) == 1
    path = tmp_path / "road.json"
    path.write_text(json.dumps({"polygons": [square]}))
    assert load_road_region(str(path))[0].shape == (3, 2)
    assert load_road_region(json.dumps(square))[0].shape == (3, 2)
    for bad, words in [
        ("[[0, 0], [1, 1]]", "at least 3"),
        ("[[0, 0], [1, 1], [1, null]]", "at least 3"),
        ('{"road": []}', "expected"),
        ("[1, 2", "not valid JSON"),
        (str(tmp_path / "missing.json"), "no such file"),
        ("[]", "expected a polygon"),
    ]:
        with pytest.raises(UsageError, match=words):
            load_road_region(bad)


def test_events_and_legend_say_where_the_number_comes_from():
    predictions = {3: _prediction(3, _walk((20, 10), (0, 3)), 0.4)}
    labels = np.full((40, 60), ROAD, np.uint8)
    road = RoadCrossing(CrossingConfig(memory=1.0, vote=0.5, erode=0.0), segmenting=True)
    out, crossings = road(predictions, labels, (60, 40))

    from toolkit.pipeline.outputs import TrackView

    track_view = TrackView(3, np.array([15.0, 0, 25, 10]), "person", 0.9, 5)

    event = frame_event(
        0, 1.0, {"name": "x", "width": 60, "height": 40}, [track_view], out, crossings=crossings
    )
    validate_event(event)
    (track,) = event["tracks"]
    assert track["crossing"] == 0.7 and track["crossing_source"] == "road" and track["crossing_prior"] == 0.4
    assert track["crossing_road"] == 1.0
    assert track["crossing_enters"] == {"step": 1, "seconds": 0.4, "point": [20.0, 13.0]}
    legacy = frame_event(0, 1.0, {"name": "x", "width": 60, "height": 40}, [track_view], predictions)
    assert legacy["tracks"][0]["crossing_source"] == "model"  # no Crossing: the learned head
    texts = [item.text for item in legend_items(None, out, crossing_source="road")]
    assert CROSSING_LEGEND["road"] in texts


def test_bad_road_region_exits_2_with_one_line(cli, tmp_path):
    result = cli("demo", "--headless", "--max-frames", 1, "--road-region", "[[0, 0], [1, 1]]")
    assert_one_line_error(result, 2, "--road-region")
    bad = tmp_path / "road.json"
    bad.write_text("{not json")
    assert_one_line_error(cli("demo", "--headless", "--road-region", bad), 2, "not valid JSON")
    both = cli("demo", "--headless", "--crossing", "model", "--road-region", "[[0, 0], [9, 0], [9, 9]]")
    assert_one_line_error(both, 2, "road_region needs")


@pytest.fixture(scope="module")
def zoo() -> None:
    from toolkit.pipeline.config import PipelineConfig
    from toolkit.pipeline.demo import locate_models

    try:
        locate_models(PipelineConfig())
    except UsageError as exc:
        pytest.skip(f"the model zoo is not built: {exc}")


@pytest.mark.slow
def test_synthetic_street_events_carry_road_grounded_crossing(zoo, tmp_path):
    from toolkit.pipeline.config import PipelineConfig
    from toolkit.pipeline.demo import run_demo
    from toolkit.pipeline.events import read_events

    events = tmp_path / "syn.jsonl"
    run_demo(PipelineConfig(realtime=False, max_frames=60, events=str(events), validate_events=True))
    tracks = [t for e in read_events(events)[10:] for t in e["tracks"] if t["predictor"] is not None]
    assert tracks and all(t["crossing_source"] == "road" for t in tracks)
    # The summed probability of the paths that enter the road: 0 or 1 for a one-path model, any share of the
    # modes' probability for the shipped multi-modal one.
    assert all(0.0 <= t["crossing_road"] <= 1.0 + 1e-6 for t in tracks)
    entering = [t for t in tracks if t["crossing_road"] > 0.0]
    assert entering and all(t["crossing_enters"]["step"] >= 1 for t in entering)
    assert all(t["crossing_enters"] is None for t in tracks if t["crossing_road"] == 0.0)
    for t in tracks:  # half paths, half learned head; constant-velocity tracks (no head): the path alone
        prior = t["crossing_prior"]
        want = t["crossing_road"] if prior is None else (t["crossing_road"] + prior) / 2
        assert t["crossing"] == pytest.approx(want, abs=1e-3)
        if t["crossing_road"] == 0.0:  # the head alone never makes a red CROSS label
            assert t["crossing"] <= 0.5 + 1e-6


@pytest.mark.slow
@pytest.mark.shared
def test_the_pets_clip_has_no_road_so_every_crossing_is_zero(shared, zoo, tmp_path):
    from toolkit.pipeline.config import PipelineConfig
    from toolkit.pipeline.demo import run_demo
    from toolkit.pipeline.events import read_events

    clip = shared / "data" / "pedestrian_video" / "pedestrians.avi"
    events = tmp_path / "pets.jsonl"
    run_demo(PipelineConfig(source=str(clip), realtime=False, max_frames=150, events=str(events)))
    tracks = [t for e in read_events(events) for t in e["tracks"] if t["crossing"] is not None]
    assert len(tracks) > 100
    assert all(t["crossing"] == 0.0 and t["crossing_source"] == "road" for t in tracks)


@pytest.mark.slow
def test_without_a_segmenter_the_drawn_region_decides_and_without_either_the_model_does(zoo, tmp_path):
    from toolkit.pipeline.config import PipelineConfig
    from toolkit.pipeline.demo import run_demo
    from toolkit.pipeline.events import read_events

    region = tmp_path / "road.json"
    region.write_text(
        json.dumps({"polygons": [[[0, 0], [480, 0], [480, 40], [0, 40]]]})
    )  # a strip at the top
    runs = {}
    for name, extra in (("drawn", {"road_region": str(region)}), ("none", {})):
        events = tmp_path / f"{name}.jsonl"
        run_demo(PipelineConfig(realtime=False, max_frames=40, every_n_seg=0, events=str(events), **extra))
        runs[name] = [t for e in read_events(events) for t in e["tracks"] if t["predictor"] is not None]
    assert runs["drawn"] and {t["crossing_source"] for t in runs["drawn"]} == {"road"}
    assert all(t["crossing_road"] in (0.0, 1.0) for t in runs["drawn"])
    model = [t for t in runs["none"] if t["predictor"] == "model"]
    assert model and all(
        t["crossing_source"] == "model" and t["crossing"] == t["crossing_prior"] for t in model
    )
    assert all(t["crossing_source"] is None for t in runs["none"] if t["predictor"] == "constant_velocity")


def test_a_multi_modal_prediction_counts_each_mode_by_its_probability():
    stay, enter = _walk((50, 30), (5, 0)), _walk((50, 30), (0, 5))
    prediction = Prediction(
        1, stay, None, 0.1, "model", modes_image=np.stack([stay, enter]), mode_probs=np.array([0.7, 0.3])
    )
    road = RoadCrossing(
        CrossingConfig(erode=0.0, min_share=0.0, prior_weight=0.0),
        [np.array([[0, 60], [200, 60], [200, 100], [0, 100]], float)],
    )
    out, crossings = road({1: prediction}, None, (200, 100))
    assert out[1].crossing == pytest.approx(0.3) and crossings[1].step == 6
    assert np.asarray(out[1].modes_image).shape == (2, 12, 2)  # the rest of the prediction is kept
