"""The MNIST evaluators on real int8 conversions of tiny, briefly trained models: the same code scores the .keras
model and its .tflite, repeatably; the VAE runs as an int8 encoder + decoder pair (``companion``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import require_tf

from toolkit.data.model_inputs import classifier_inputs, vae_inputs
from toolkit.eval import EvalConfig, evaluate
from toolkit.eval.predictor import load_predictor

pytestmark = [pytest.mark.tf, pytest.mark.shared, pytest.mark.slow]

TINY = {
    "classifier": {"width": 0.25, "filters": [16, 32], "strides": [2, 2]},
    "autoencoder": {"filters": [4, 8], "latent_dim": 4},
    "vae": {"filters": [4, 8], "hidden": 8, "latent_dim": 2},
}


@pytest.fixture(scope="module")
def mnist(shared) -> str:
    require_tf()
    return f"mnist:root={shared / 'data' / 'mnist'}"


def train_tiny(kind: str, mnist: str, folder: Path, train: str = "split=train,limit=256") -> Path:
    """A few optimizer steps on a small subset: enough to give the int8 ranges something real to calibrate."""
    import importlib

    import keras

    from toolkit.data.spec import parse_spec
    from toolkit.models import builder, config_for
    from toolkit.train.config import TrainConfig

    task = importlib.import_module(f"toolkit.train.task_{kind}").TASK
    config = TrainConfig(epochs=1, batch_size=32, learning_rate=3e-3, seed=0)
    model_config = config_for(kind, TINY[kind])
    data = task.datasets(parse_spec(f"{mnist},{train}"), None, config, task.options_type(), model_config)
    keras.utils.set_random_seed(0)
    model = builder(kind).build(model_config)
    task.compile(model, config, task.options_type(), steps_per_epoch=8)
    model.jit_compile = False
    model.fit(data.train, epochs=1, verbose=0)
    path = folder / f"{kind}.keras"
    model.save(path)
    return path


def to_int8(keras_path: Path, calib: np.ndarray, part: str | None = None) -> Path:
    from toolkit.convert import ConvertConfig, convert

    stem = keras_path.stem + (f"_{part}" if part else "")
    npy = keras_path.with_name(f"{stem}_calib.npy")
    np.save(npy, calib)
    out = keras_path.with_name(f"{stem}_int8.tflite")
    convert(
        keras_path,
        out,
        ConvertConfig(quantize="int8", calib=str(npy), calib_samples=64, parity_samples=4, part=part),
    )
    return out


def same(a, b) -> bool:
    return a.metrics == b.metrics and a.tables == b.tables and a.samples == b.samples


@pytest.fixture(scope="module")
def classifier(mnist, tmp_path_factory) -> tuple[Path, Path]:

    keras_path = train_tiny("classifier", mnist, tmp_path_factory.mktemp("classifier"))
    calib = classifier_inputs(mnist, {"image": (28, 28, 1)}, limit=80)["image"]
    return keras_path, to_int8(keras_path, calib)


def test_classifier_int8_scored_by_the_same_code(mnist, classifier):
    keras_path, tflite_path = classifier
    spec = f"{mnist},split=test,limit=120"
    config = EvalConfig(limit=120, threads=1, baselines=False)
    int8 = evaluate(tflite_path, spec, config)
    assert int8.kind == "classifier" and int8.model_format == "tflite" and int8.samples == 120
    assert same(int8, evaluate(tflite_path, spec, config))
    float_report = evaluate(keras_path, spec, config)
    assert float_report.model_format == "keras" and set(float_report.metrics) == set(int8.metrics)
    assert abs(float_report.metrics["top1"] - int8.metrics["top1"]) <= 0.05


@pytest.fixture(scope="module")
def autoencoder(mnist, tmp_path_factory) -> tuple[Path, Path]:

    keras_path = train_tiny(
        "autoencoder", mnist, tmp_path_factory.mktemp("autoencoder"), "split=train,exclude=9,limit=256"
    )
    calib = classifier_inputs(f"{mnist},exclude=9", {"image": (28, 28, 1)}, limit=80)["image"]
    return keras_path, to_int8(keras_path, calib)


def test_autoencoder_int8_anomaly_auroc(mnist, autoencoder):
    keras_path, tflite_path = autoencoder
    spec = f"{mnist},split=test,anomaly=9"
    config = EvalConfig(limit=150, threads=1, baselines=False)
    int8 = evaluate(tflite_path, spec, config)
    assert int8.kind == "autoencoder" and int8.primary == "auroc" and 0.0 <= int8.metrics["auroc"] <= 1.0
    assert same(int8, evaluate(tflite_path, spec, config))
    float_report = evaluate(keras_path, spec, config)
    assert abs(float_report.metrics["recon_mse"] - int8.metrics["recon_mse"]) < 0.01


@pytest.fixture(scope="module")
def vae(mnist, tmp_path_factory) -> tuple[Path, Path, Path]:

    keras_path = train_tiny("vae", mnist, tmp_path_factory.mktemp("vae"))
    images = vae_inputs(mnist, {"image": (28, 28, 1)}, limit=80)["image"]
    with load_predictor(keras_path, part="encoder") as encoder:
        codes = vae_inputs(mnist, {"z": (2,)}, limit=80, encoder=encoder)["z"]
    return keras_path, to_int8(keras_path, images, "encoder"), to_int8(keras_path, codes, "decoder")


def test_vae_int8_encoder_decoder_chain(mnist, vae, tmp_path):
    keras_path, encoder_path, decoder_path = vae
    spec = f"{mnist},split=test"
    config = EvalConfig(
        limit=60, threads=1, companion=str(decoder_path), out_dir=str(tmp_path), baselines=False
    )
    int8 = evaluate(encoder_path, spec, config)
    assert int8.kind == "vae" and int8.model_format == "tflite"
    assert int8.metrics["neg_elbo"] == pytest.approx(int8.metrics["recon_nll"] + int8.metrics["kl"])
    assert Path(int8.artifacts["samples"]).parent == tmp_path and Path(int8.artifacts["samples"]).is_file()
    assert same(int8, evaluate(encoder_path, spec, config))
    # the float model: the full .keras decodes with its own nested decoder
    float_report = evaluate(keras_path, spec, EvalConfig(limit=60, out_dir=str(tmp_path), baselines=False))
    assert float_report.model_format == "keras"
    assert abs(float_report.metrics["recon_mse"] - int8.metrics["recon_mse"]) < 0.02


def test_tflite_evaluation_never_imports_tensorflow(mnist, classifier, vae, tmp_path):
    """The device path: scoring .tflite models (classifier; VAE encoder + decoder) through the CLI's code path
    must not import TensorFlow or Keras."""
    import subprocess
    import sys

    from conftest import REPO

    _, tflite_path = classifier
    _, encoder_path, decoder_path = vae
    code = f"""
import sys
from toolkit.eval import EvalConfig, evaluate
c = evaluate({str(tflite_path)!r}, "{mnist},split=test", EvalConfig(limit=20, threads=1))
v = evaluate({str(encoder_path)!r}, "{mnist},split=test",
             EvalConfig(limit=20, threads=1, companion={str(decoder_path)!r}, out_dir={str(tmp_path)!r}))
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras"))
print(c.metrics["top1"], v.metrics["neg_elbo"], heavy)
assert not heavy, heavy
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
