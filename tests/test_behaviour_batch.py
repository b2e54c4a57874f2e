"""The shipped behaviour model has the recipe's fixed batch N (``toolkit convert --batch N``), and the pipeline's
behaviour stage runs a frame's tracks through it in ONE invoke up to N tracks, ceil(n / N) beyond; each row's
answer does not depend on the other rows or on the padding."""

from __future__ import annotations

import math
import tomllib

import numpy as np
import pytest
from conftest import REPO

from toolkit.adapters.detect import Detection
from toolkit.pipeline.behaviour import BehaviourPredictor
from toolkit.pipeline.tracker import Tracker, TrackerConfig
from toolkit.runtime import Runner

FOLDER = REPO / "models" / "behaviour"
MODEL = FOLDER / "behaviour_int8.tflite"


def _recipe_batch() -> int:
    with open(FOLDER / "recipe.toml", "rb") as handle:
        return int(tomllib.load(handle).get("convert", {}).get("batch", 1))


class CountingRunner(Runner):
    """The real LiteRT runner, counting its invokes."""

    invokes = 0

    def invoke(self) -> None:
        """Invoke the model and count it."""
        self.invokes += 1
        super().invoke()


def _walkers(count: int, seconds: float = 4.0, fps: float = 10.0) -> list:
    """``count`` confirmed tracks with full 8-sample histories: a grid of walkers, 8 per row."""
    rng = np.random.default_rng(count)
    velocity = rng.uniform(-25, 25, size=(count, 2))
    tracker = Tracker(TrackerConfig(min_hits=1))
    visible: list = []
    for step in range(int(seconds * fps)):
        t = step / fps
        dets = []
        for i in range(count):
            x, y = 60 + 120 * (i % 8) + velocity[i, 0] * t, 40 + 150 * (i // 8) + velocity[i, 1] * t
            dets.append(Detection((x, y, x + 40, y + 100), 0.9))
        visible = tracker.update(dets, t)
    assert len(visible) == count
    return visible


def test_shipped_model_has_the_recipes_batch():
    with Runner(MODEL, num_threads=1) as runner:
        batches = {spec.shape[0] for spec in {**runner.inputs, **runner.outputs}.values()}
    assert batches == {_recipe_batch()}


@pytest.mark.parametrize("extra", [-1, 0, 1, 3])
def test_stage_invokes_once_per_frame_up_to_batch_tracks_and_ceil_beyond(extra):
    batch = _recipe_batch()
    for n in sorted({1, max(1, batch + extra), 2 * batch + extra}):
        tracks = _walkers(n)
        runner = CountingRunner(MODEL, num_threads=1)
        with BehaviourPredictor(runner) as predictor:
            assert predictor.batch == batch
            predictions = predictor.predict(tracks, (1280, 720))
        assert runner.invokes == predictor.calls == math.ceil(n / batch), n
        assert len(predictions) == n and all(p.predictor == "model" for p in predictions.values())
        assert all(np.isfinite(p.path_image).all() for p in predictions.values())


def test_each_row_answers_alone_whatever_its_place_and_padding():
    rng = np.random.default_rng(3)
    with Runner(MODEL, num_threads=1) as runner:
        batch = runner.inputs["track"].shape[0]
        rows = {name: spec.shape[1:] for name, spec in runner.inputs.items()}
        feeds = {n: rng.normal(0, 0.5, (batch, *shape)).astype(np.float32) for n, shape in rows.items()}
        first = runner.run(**feeds)
        order = rng.permutation(batch)
        shuffled = runner.run(**{n: v[order] for n, v in feeds.items()})
        padded = runner.run(**{n: np.concatenate([v[:1], np.zeros_like(v[1:])]) for n, v in feeds.items()})
    for name in first:
        np.testing.assert_array_equal(shuffled[name], first[name][order])
        np.testing.assert_array_equal(padded[name][0], first[name][0])


def test_bench_feeds_the_batched_model_a_real_window_per_row(shared):
    from toolkit.bench.inputs import make_inputs, read_manifest

    with Runner(MODEL, num_threads=1) as runner:
        feeds, source = make_inputs(runner, read_manifest(MODEL))
        runner.run_raw(feeds)
    batch = _recipe_batch()
    assert {n: v.shape for n, v in feeds.items()} == {"track": (batch, 8, 2), "neighbours": (batch, 6, 5)}
    assert source.count("eth_ucy") == 2
    if batch > 1:  # different windows, not one window repeated (two standing people quantize alike)
        assert len({feeds["track"][i].tobytes() for i in range(batch)}) > batch // 2
