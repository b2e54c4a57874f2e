"""The stages on real converted full-int8 models (untrained, tiny): I/O names, shapes and int8 (de)quantization
agree with the reference path (float pre-processing + Runner.run), and the chain runs on real video frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import require_tf

from toolkit.adapters.behaviour import denormalise, normalise
from toolkit.adapters.detect import postprocess
from toolkit.adapters.image import preprocess
from toolkit.pipeline import behaviour, draw, events, segment
from toolkit.pipeline.detect import Detector
from toolkit.pipeline.tracker import Tracker, TrackerConfig
from toolkit.runtime.runner import Runner

pytestmark = [pytest.mark.tf, pytest.mark.slow]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Tiny untrained detector, segmenter and behaviour models converted to full int8 by toolkit.convert."""
    require_tf()
    from toolkit.convert.config import ConvertConfig
    from toolkit.convert.converter import convert
    from toolkit.models import build_model

    tmp = tmp_path_factory.mktemp("stage_models")
    rng = np.random.default_rng(0)
    out = {}
    for kind, overrides, shape in [
        ("detector", {"width": 0.25}, (192, 256, 3)),
        ("segmenter", {"width": 0.25}, (120, 160, 3)),
        ("behaviour", {"d_model": 16, "ffn_dim": 32, "head_dim": 16}, (8, 2)),
    ]:
        build_model(kind, overrides).save(tmp / f"{kind}.keras")
        if kind == "behaviour":
            walk = np.cumsum(rng.normal(0, 0.3, (30, 8, 2)), axis=1)
            calib = (walk - walk[:, -1:]).astype(np.float32)
        else:
            calib = rng.random((30, *shape), dtype=np.float32)
        np.save(tmp / f"{kind}_calib.npy", calib)
        config = ConvertConfig(calib=str(tmp / f"{kind}_calib.npy"), calib_samples=24, parity_samples=4)
        out[kind] = convert(tmp / f"{kind}.keras", tmp / f"{kind}_int8.tflite", config).tflite_path
    return out


def _frame(seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frame = cv2.resize(
        rng.integers(0, 256, (45, 80, 3), dtype=np.uint8), (640, 360), interpolation=cv2.INTER_LINEAR
    )
    return frame


def test_detector_int8_input_path_matches_the_reference_quantization(models):
    frame = _frame()
    with Detector(Runner(models["detector"], num_threads=1)) as detector:
        assert detector.runner.inputs["image"].quantized  # full int8 I/O, the case the lookup table serves
        found = detector(frame)
        written = detector._writer.buffer.copy()
        image, transform = preprocess(frame, detector.input_hw)
        spec = detector.runner.inputs["image"]
        np.testing.assert_array_equal(written[0], spec.quantize(image))
        reference = detector.runner.run(image=image[None])
        expected = postprocess(
            reference["heatmap"][0], reference["box"][0], transform, detector.input_hw, detector.config
        )
    assert [(d.box, d.score) for d in found] == [(d.box, d.score) for d in expected]
    assert set(detector.timings) == {"pre", "infer", "post"}


def test_segmenter_labels_match_the_dequantized_argmax(models):
    frame = _frame(2)
    with segment.Segmenter(Runner(models["segmenter"], num_threads=1)) as segmenter:
        labels = segmenter(frame)
        image, transform = preprocess(frame, segmenter.input_hw)
        scores = segmenter.runner.run(image=image[None])["mask"][0]
    assert labels.shape == frame.shape[:2] and labels.dtype == np.uint8
    expected = segment.labels_at_frame(scores, transform, frame.shape[:2])
    np.testing.assert_array_equal(labels, expected)


def test_behaviour_model_gets_the_relative_track_and_returns_paths(models):
    tracker = Tracker(TrackerConfig(min_hits=1))
    for k in range(40):
        t = k / 10
        visible = tracker.update([_person(100 + 30 * t)], t)
    runner = Runner(models["behaviour"], num_threads=1)
    with behaviour.BehaviourPredictor(runner) as predictor:
        (pred,) = predictor.predict(visible, (480, 360)).values()
        # no homography: pixels are scaled to ~metres by the person's box height (100 px = 1.7 m) and the track
        # is turned into the heading frame the model was trained in
        space = behaviour.model_space((480, 360), None, 100.0)
        assert space.units == "person_scaled_m"
        rel, origin = behaviour.to_relative(visible[0].foot_history(), space)
        track_input, rotation = normalise(rel[None])
        direct = runner.run(track=track_input)
    assert pred.predictor == "model" and 0.0 <= pred.crossing <= 1.0
    assert pred.path_image.shape == (12, 2) and np.isfinite(pred.path_image).all()
    future = denormalise(direct["future"], rotation)[0]
    np.testing.assert_allclose(
        pred.path_image, (future + origin) * 100.0 / behaviour.PERSON_HEIGHT_M, atol=1e-3
    )
    assert pred.crossing == pytest.approx(float(direct["crossing"].reshape(-1)[0]))


def _person(cx: float):
    from toolkit.adapters.detect import Detection

    return Detection((cx - 20, 200, cx + 20, 300), 0.9)


@pytest.mark.shared
def test_stage_chain_on_real_video_frames(models, shared, tmp_path):
    capture = cv2.VideoCapture(str(shared / "data" / "pedestrian_video" / "pedestrians.avi"))
    source = {"name": "pedestrians.avi", "width": 480, "height": 360, "fps": 10.0}
    detector = Detector(Runner(models["detector"], num_threads=1))
    segmenter = segment.Segmenter(Runner(models["segmenter"], num_threads=1))
    predictor = behaviour.BehaviourPredictor(Runner(models["behaviour"], num_threads=1))
    tracker = Tracker()
    labels = None
    with detector, segmenter, predictor, events.EventWriter(tmp_path / "events.jsonl") as writer:
        for index in range(20):
            ok, frame = capture.read()
            assert ok and frame.shape == (360, 480, 3)
            visible = tracker.update(detector(frame), index / 10.0)
            predictions = predictor.predict(visible, (480, 360))
            if index % 5 == 0:
                labels = segmenter(frame)
            before = frame.copy()
            draw.draw_frame(frame, visible, predictions, labels=labels, fps=10.0, stage_ms=detector.timings)
            assert (frame != before).any()
            writer.write(
                events.frame_event(index, index / 10.0, source, visible, predictions, detector.timings)
            )
    capture.release()
    written = events.read_events(tmp_path / "events.jsonl")
    assert [e["frame"] for e in written] == list(range(20))
