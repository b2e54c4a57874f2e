"""``evaluate()`` on real models: a tiny briefly-trained detector as .keras and as its full-int8 .tflite."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import require_tf

from toolkit.data.detection_samples import load_samples
from toolkit.data.model_inputs import detector_inputs
from toolkit.data.spec import parse_spec
from toolkit.eval import evaluate as evaluate_path
from toolkit.eval.config import EvalConfig
from toolkit.eval.detector import evaluate, predict_samples
from toolkit.eval.predictor import load_predictor

pytestmark = [pytest.mark.tf, pytest.mark.slow]
SHAPE = (96, 128, 3)
SCORE = parse_spec("synthetic:split=val,scenes=1,frames=6,every=3")  # 2 frames with people


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    require_tf()
    pytest.importorskip("pycocotools")
    from toolkit.convert import ConvertConfig, convert
    from toolkit.models import build_model, config_for
    from toolkit.train.config import TrainConfig
    from toolkit.train.task_detector import TASK, DetectorTaskOptions

    root = tmp_path_factory.mktemp("detector_models")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TOOLKIT_HOME", str(tmp_path_factory.getbasetemp() / "toolkit_home"))
        calib_spec = parse_spec("synthetic:split=train,scenes=1,frames=60,every=3")
        data = TASK.datasets(
            calib_spec,
            SCORE,
            TrainConfig(batch_size=4, seed=0),
            DetectorTaskOptions(),
            config_for("detector", {"input_shape": SHAPE, "width": 0.25}),
        )
        model = build_model("detector", {"input_shape": SHAPE, "width": 0.25})
        TASK.compile(model, TrainConfig(learning_rate=3e-3), DetectorTaskOptions(), steps_per_epoch=5)
        model.fit(data.train.take(5), epochs=1, verbose=0)  # a few steps: weights move off their init
        keras_path = root / "tiny_detector.keras"
        model.save(keras_path)
        calib = root / "calib.npz"
        np.savez(calib, **detector_inputs(calib_spec, {"image": SHAPE}))
        tflite_path = root / "tiny_detector_int8.tflite"
        convert(keras_path, tflite_path, ConvertConfig(calib=str(calib), threads=1))
    return keras_path, tflite_path


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLKIT_HOME", str(tmp_path_factory.getbasetemp() / "toolkit_home"))


def _strip(report: dict) -> dict:
    return {k: v for k, v in report.items() if k != "seconds"}


def test_keras_evaluation_is_identical_twice(models: tuple[Path, Path]) -> None:
    with load_predictor(models[0]) as predictor:
        first = evaluate(predictor, SCORE, EvalConfig(baselines=False)).to_dict()
        second = evaluate(predictor, SCORE, EvalConfig(baselines=False)).to_dict()
    assert _strip(first) == _strip(second)
    assert first["kind"] == "detector" and first["primary"] == "ap50" and first["samples"] == 2
    assert (
        0.0 <= first["metrics"]["ap50"] <= 1.0
        and 0.0 <= first["metrics"]["ap50_95"] <= first["metrics"]["ap50"]
    )
    assert "baselines" not in first["tables"]


def test_tflite_is_scored_by_the_same_code_with_the_hog_row(models: tuple[Path, Path]) -> None:
    report = evaluate_path(models[1], str(SCORE), EvalConfig(threads=1))
    assert report.model_format == "tflite" and report.kind == "detector" and report.samples == 2
    assert 0.0 <= report.metrics["ap50"] <= 1.0
    (hog,) = report.tables["baselines"]
    assert hog["baseline"] == "hog" and 0.0 <= hog["ap50"] <= 1.0
    again = evaluate_path(models[1], str(SCORE), EvalConfig(threads=1))
    assert _strip(again.to_dict()) == _strip(report.to_dict())


def test_int8_detections_follow_the_float_model(models: tuple[Path, Path]) -> None:
    samples = load_samples(SCORE)
    with load_predictor(models[0]) as keras_model, load_predictor(models[1], threads=1) as int8_model:
        assert keras_model.input_shapes == int8_model.input_shapes == {"image": SHAPE}
        x = detector_inputs(SCORE, {"image": SHAPE})
        a, b = keras_model.predict(x), int8_model.predict(x)
        assert np.abs(a["heatmap"] - b["heatmap"]).max() < 0.1  # int8 steps of a sigmoid in [0, 1]
        float_boxes = predict_samples(keras_model, samples)
        int8_boxes = predict_samples(int8_model, samples)
    for (fb, fs), (ib, is_) in zip(float_boxes, int8_boxes, strict=True):
        assert fb.shape[1] == ib.shape[1] == 4 and len(fs) and len(is_)
        assert fb.max() <= 480 and ib.max() <= 480  # mapped back to the 480x360 frame, not the 128x96 input
