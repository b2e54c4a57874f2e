"""A tiny behaviour model trained briefly with the toolkit trainer, converted to full int8 (calibrated on a .npy of
realistic tracks), scored float and int8 by the same evaluation code."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require_tf

from toolkit.data.spec import parse_spec
from toolkit.eval.config import EvalConfig

pytestmark = [pytest.mark.tf, pytest.mark.slow]
SYNTH = "synthetic:split=val,frames=400"
TINY = {"d_model": 16, "num_heads": 2, "num_blocks": 1, "ffn_dim": 32, "head_dim": 16, "dropout": 0.0}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    require_tf()
    from toolkit.convert import ConvertConfig, convert
    from toolkit.data.model_inputs import behaviour_inputs
    from toolkit.train.config import TrainConfig
    from toolkit.train.trainer import train

    tmp = tmp_path_factory.mktemp("behaviour")
    keras_path = tmp / "tiny.keras"
    config = TrainConfig(
        data=SYNTH,
        val_data=SYNTH,
        epochs=2,
        batch_size=32,
        learning_rate=3e-3,
        patience=0,
        verbose=0,
        run_dir=str(tmp / "run"),
    )
    result = train("behaviour", keras_path, config, TINY, {"extra_data": "", "extra_val_data": ""})
    calib = tmp / "tracks.npy"
    np.save(calib, behaviour_inputs(SYNTH, {"track": (8, 2)}, limit=120, seed=0)["track"])
    tflite = convert(keras_path, tmp / "tiny_int8.tflite", ConvertConfig(calib=str(calib), calib_samples=100))
    return keras_path, tflite.tflite_path, result.manifest


def test_trainer_manifest_describes_the_behaviour_data(models):
    _, _, manifest = models
    assert manifest["kind"] == "behaviour" and manifest["epochs_run"] == 2
    train = manifest["data"]["train"][0]
    assert train["crossing_labelled"] == train["windows"] == manifest["data"]["train_size"]
    assert "heading" in manifest["data"]["frame"]


def test_float_and_int8_scored_by_the_same_code(models):
    from toolkit.eval import evaluate

    keras_path, tflite_path, _ = models
    spec = parse_spec(SYNTH)
    f = evaluate(keras_path, spec, EvalConfig())
    q = evaluate(tflite_path, spec, EvalConfig(threads=1))
    again = evaluate(tflite_path, spec, EvalConfig(threads=1))
    assert (f.model_format, q.model_format) == ("keras", "tflite") and f.kind == q.kind == "behaviour"
    assert f.samples == q.samples > 100
    assert q.metrics == again.metrics and q.tables == again.tables  # deterministic
    assert f.tables["baselines"] == q.tables["baselines"]  # the CV row: same windows, same code
    assert abs(f.metrics["ade"] - q.metrics["ade"]) < 0.05 and abs(f.metrics["fde"] - q.metrics["fde"]) < 0.1
    for report in (f, q):
        assert 0 <= report.metrics["crossing_accuracy"] <= 1 and 0 <= report.metrics["crossing_auroc"] <= 1
        assert report.metrics["crossing_windows"] == report.samples


@pytest.mark.shared
def test_int8_model_on_an_eth_ucy_scene(models, shared):
    from toolkit.data.trajectories import ade, constant_velocity, load_split
    from toolkit.eval import evaluate

    _, tflite_path, _ = models
    root = shared / "data" / "eth_ucy"
    report = evaluate(tflite_path, f"eth_ucy:root={root},scene=hotel,split=test", EvalConfig(threads=1))
    raw = load_split(root, "hotel", "test")
    assert report.samples == len(raw) and report.metrics["cv_ade"] == pytest.approx(
        ade(constant_velocity(raw.obs), raw.fut), abs=1e-5
    )
    assert np.isfinite(report.metrics["ade"]) and "crossing_auroc" not in report.metrics
