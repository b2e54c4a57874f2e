"""Segmenter evaluation on a real converted model: a tiny segmenter trained briefly with the toolkit trainer,
converted to full int8 with SPEC calibration (toolkit.data.model_inputs), then scored through the device runtime.
Oracles: identical reports twice, the int8 scores close to the float model's, and the evaluator's labels equal to
the camera pipeline's segmentation stage on the same frames."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require_tf

from toolkit.data.model_inputs import segmenter_inputs
from toolkit.data.segmentation_samples import load_samples
from toolkit.data.spec import parse_spec
from toolkit.eval.config import EvalConfig
from toolkit.eval.predictor import load_predictor
from toolkit.eval.segmenter import evaluate, label_images

pytestmark = [pytest.mark.tf, pytest.mark.slow]

DATA = "synthetic:frames=24,every=3,width=160,height=120,jitter=0"  # 8 frames of scene 0
VAL = DATA + ",split=val"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    require_tf()
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TOOLKIT_HOME", str(home))  # the render cache stays in the test folder
        from toolkit.convert import ConvertConfig, convert
        from toolkit.train.config import TrainConfig
        from toolkit.train.trainer import train

        out = tmp_path_factory.mktemp("seg") / "tiny.keras"
        train(
            "segmenter",
            out,
            TrainConfig(
                data=DATA, val_data=VAL, epochs=3, batch_size=4, learning_rate=0.01, patience=0, verbose=0
            ),
            {"input_shape": (48, 64, 3), "width": 0.5},
            {},
        )
        tflite = out.with_name("tiny_int8.tflite")
        convert(out, tflite, ConvertConfig(calib=DATA, calib_samples=6, parity_samples=2))
        yield out, tflite


def test_tflite_reports_are_identical_twice_and_complete(models):
    _, tflite = models
    with load_predictor(tflite, threads=1) as predictor:
        first = evaluate(predictor, parse_spec(VAL), EvalConfig(baselines=False))
        second = evaluate(predictor, parse_spec(VAL), EvalConfig(baselines=False))
    assert first.to_dict() == second.to_dict()
    assert first.model_format == "tflite" and first.kind == "segmenter" and first.samples == 8
    assert 0.0 <= first.metrics["miou"] <= 1.0 and 0.0 < first.metrics["pixel_accuracy"] <= 1.0
    assert [row["class"] for row in first.tables["per_class"]] == [
        "background",
        "road",
        "sidewalk",
        "person",
        "vehicle",
    ]


def test_int8_scores_follow_the_float_model(models):
    keras_path, tflite = models
    x = segmenter_inputs(parse_spec(VAL), {"image": (48, 64, 3)}, limit=4)
    with load_predictor(keras_path) as float_model, load_predictor(tflite, threads=1) as int8_model:
        a, b = float_model.predict(x)["mask"], int8_model.predict(x)["mask"]
    assert a.shape == b.shape == (4, 48, 64, 5)
    assert float(np.abs(a - b).mean()) < 0.05
    assert float(np.mean(a.argmax(-1) == b.argmax(-1))) > 0.8


def test_evaluator_labels_equal_the_camera_pipelines(models):
    import cv2

    from toolkit.pipeline.segment import Segmenter
    from toolkit.runtime import Runner

    _, tflite = models
    samples = load_samples(parse_spec(VAL))
    images = [samples.load(i)[0] for i in range(3)]
    with load_predictor(tflite, threads=1) as predictor:
        ours = label_images(predictor, images)
    with Segmenter(Runner(tflite, num_threads=1)) as stage:
        for image, (_, labels) in zip(images, ours, strict=True):
            assert np.array_equal(stage(cv2.cvtColor(image, cv2.COLOR_RGB2BGR)), labels)
