"""MNIST SPEC loading and the classifier / autoencoder / VAE evaluators, driven by small numpy models on the
shared MNIST data (no TensorFlow: these evaluators must run on a device install)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from toolkit.data.model_inputs import PRIOR_CALIB, classifier_inputs, vae_inputs
from toolkit.errors import UsageError
from toolkit.eval import autoencoder as ae_eval
from toolkit.eval import classifier as cls_eval
from toolkit.eval import metrics
from toolkit.eval import vae as vae_eval
from toolkit.eval.config import EvalConfig
from toolkit.eval.predictor import Predictor

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def mnist(shared) -> str:
    return f"mnist:root={shared / 'data' / 'mnist'}"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("numpy_models")


@pytest.fixture(scope="module")
def centroid(mnist, model_dir):
    return centroid_classifier(mnist, model_dir)


@pytest.fixture(scope="module")
def pca_ae(mnist, model_dir):
    return pca_autoencoder(mnist, model_dir)


@pytest.fixture(scope="module")
def vae_parts(mnist, model_dir):
    return pca_vae(mnist, model_dir)


class NumpyPredictor(Predictor):
    """A deterministic numpy model behind the Predictor interface."""

    format = "numpy"

    def __init__(self, path: Path, kind: str, inputs: dict, outputs: list[str], fn) -> None:
        self.path, self.kind, self.input_shapes, self.output_names, self.fn = path, kind, inputs, outputs, fn

    def predict(self, feeds, batch_size=64):
        return self.fn(feeds)


def centroid_classifier(mnist: str, tmp: Path) -> NumpyPredictor:
    train = cls_eval.load_labelled_images(f"{mnist},split=train", (28, 28, 1))
    centroids = np.stack([train.images[train.labels == c].mean(axis=0).ravel() for c in range(10)])

    def fn(feeds):
        x = feeds["image"].reshape(len(feeds["image"]), -1)
        logits = -((x[:, None, :] - centroids[None]) ** 2).sum(-1)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return {"probs": (e / e.sum(axis=1, keepdims=True)).astype(np.float32)}

    return NumpyPredictor(tmp / "centroid.keras", "classifier", {"image": (28, 28, 1)}, ["probs"], fn)


def pca_autoencoder(mnist: str, tmp: Path, k: int = ae_eval.PCA_COMPONENTS) -> NumpyPredictor:
    train = cls_eval.load_labelled_images(f"{mnist},split=train,exclude=9", (28, 28, 1))
    mean, basis = ae_eval.pca_fit(train.images, k)

    def fn(feeds):
        x = feeds["image"].reshape(len(feeds["image"]), -1) - mean
        return {
            "reconstruction": ((x @ basis.T) @ basis + mean).reshape(feeds["image"].shape).astype(np.float32)
        }

    return NumpyPredictor(tmp / "pca_ae.keras", "autoencoder", {"image": (28, 28, 1)}, ["reconstruction"], fn)


def pca_vae(mnist: str, tmp: Path, latent: int = 4) -> tuple[NumpyPredictor, NumpyPredictor]:
    train = cls_eval.load_labelled_images(f"{mnist},split=train,limit=2000", (28, 28, 1))
    mean, basis = ae_eval.pca_fit(train.images, latent)
    scale = (train.images.reshape(len(train.images), -1) - mean) @ basis.T
    scale = scale.std(axis=0)

    def encode(feeds):
        z = (feeds["image"].reshape(len(feeds["image"]), -1) - mean) @ basis.T / scale
        return {"z_mean": z.astype(np.float32), "z_log_var": np.full_like(z, -2.0, dtype=np.float32)}

    def decode(feeds):
        x = (feeds["z"] * scale) @ basis + mean
        return {"image": np.clip(x, 0.0, 1.0).reshape(-1, 28, 28, 1).astype(np.float32)}

    encoder = NumpyPredictor(
        tmp / "enc.tflite", "vae", {"image": (28, 28, 1)}, ["z_mean", "z_log_var"], encode
    )
    decoder = NumpyPredictor(tmp / "dec.tflite", "vae_decoder", {"z": (latent,)}, ["image"], decode)
    return encoder, decoder


# -- the SPEC loader ---------------------------------------------------------------------------------------------


def test_documented_split_sizes_and_digit_filters(mnist):
    sizes = {
        s: len(cls_eval.load_labelled_images(f"{mnist},split={s}").labels) for s in ("train", "val", "test")
    }
    assert sizes == {"train": 7000, "val": 1000, "test": 2000}
    test = cls_eval.load_labelled_images(f"{mnist},split=test")
    assert test.images.dtype == np.float32 and test.images.shape == (2000, 28, 28, 1)
    assert 0.0 <= test.images.min() and test.images.max() <= 1.0
    assert np.bincount(test.labels).min() >= 170  # stratified: every digit present in proportion
    no9 = cls_eval.load_labelled_images(f"{mnist},split=train,exclude=9")
    assert 9 not in no9.labels and len(no9.labels) == 7000 - np.sum(
        cls_eval.load_labelled_images(f"{mnist},split=train").labels == 9
    )
    only = cls_eval.load_labelled_images(f"{mnist},split=test,only=89")
    assert set(np.unique(only.labels)) == {8, 9}
    assert "without digits 9" in no9.describe


def test_limit_is_a_seeded_random_subset(mnist):
    full = cls_eval.load_labelled_images(f"{mnist},split=train")
    a = cls_eval.load_labelled_images(f"{mnist},split=train,limit=300")
    b = cls_eval.load_labelled_images(f"{mnist},split=train", limit=300)
    np.testing.assert_array_equal(a.images, b.images)
    assert len(a.labels) == 300 and len(np.unique(a.labels)) == 10
    assert not np.array_equal(a.images, full.images[:300])  # not the file's first 300
    assert len(cls_eval.load_labelled_images(f"{mnist},split=test,limit=50", limit=20).labels) == 20


@pytest.mark.parametrize(
    "spec, message",
    [
        (",split=dev", "split=dev"),
        (",exclude=nine", "digits 0-9"),
        (",exclude=9,only=9", "not both"),
        (",split=test,only=9,exclude=", "expected key=value"),
    ],
)
def test_bad_mnist_specs_are_one_line_usage_errors(mnist, spec, message):
    with pytest.raises(UsageError, match=message) as info:
        cls_eval.load_labelled_images(mnist + spec)
    assert "\n" not in str(info.value)


def test_mnist_needs_a_28x28x1_input(mnist):
    with pytest.raises(UsageError, match="28x28x1 but the model input is 96x96x3"):
        cls_eval.load_labelled_images(mnist, (96, 96, 3))


def test_image_folder_spec_is_split_and_resized(tmp_path):
    cv2 = pytest.importorskip("cv2")
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(10):
            cv2.imwrite(str(tmp_path / cls / f"{i}.png"), np.full((20, 30, 3), 25 * i, np.uint8))
    data = cls_eval.load_labelled_images(f"images:path={tmp_path},split=train", (8, 8, 3))
    assert data.images.shape == (14, 8, 8, 3) and data.class_names == ("cat", "dog")
    assert np.bincount(data.labels).tolist() == [7, 7]


# -- classifier ---------------------------------------------------------------------------------------------------


def test_classifier_report_matches_direct_computation_and_repeats(mnist, centroid):
    predictor = centroid
    config = EvalConfig(limit=400)
    report = cls_eval.evaluate(predictor, f"{mnist},split=test", config)
    data = cls_eval.load_labelled_images(f"{mnist},split=test", limit=400)
    predicted = predictor.predict({"image": data.images})["probs"].argmax(axis=1)
    assert report.samples == 400 and report.primary == "top1"
    assert report.metrics["top1"] == metrics.accuracy(data.labels, predicted)
    assert 0.7 < report.metrics["top1"] < 0.9  # nearest centroid on MNIST: ~82%
    assert report.metrics["errors"] == int((predicted != data.labels).sum())
    assert sum(row["support"] for row in report.tables["per_class"]) == 400
    assert sum(v for row in report.tables["confusion"] for k, v in row.items() if k != "true") == 400
    knn = report.tables["baselines"][1]
    assert knn["method"].startswith("3-NN") and knn["top1"] > 0.9
    assert cls_eval.evaluate(predictor, f"{mnist},split=test", config).to_dict() | {
        "seconds": 0
    } == report.to_dict() | {"seconds": 0}


def test_classifier_baseline_skipped_on_training_data(mnist, centroid):
    report = cls_eval.evaluate(centroid, f"{mnist},split=train", EvalConfig(limit=50))
    assert "baselines" not in report.tables and any("baseline skipped" in n for n in report.notes)


def test_classifier_model_inputs_default_to_the_training_split(mnist):
    inputs = classifier_inputs(mnist, {"image": (28, 28, 1)}, limit=64, seed=1)
    assert inputs["image"].shape == (64, 28, 28, 1) and inputs["image"].dtype == np.float32
    again = classifier_inputs(mnist, {"image": (28, 28, 1)}, limit=64, seed=1)
    np.testing.assert_array_equal(inputs["image"], again["image"])
    with pytest.raises(UsageError, match="no 'image' input"):
        classifier_inputs(mnist, {"track": (8, 2)})


# -- autoencoder --------------------------------------------------------------------------------------------------


def test_autoencoder_auroc_with_digit_9_anomalous(mnist, pca_ae):
    predictor = pca_ae
    report = ae_eval.evaluate(predictor, f"{mnist},split=test,anomaly=9", EvalConfig(limit=600))
    assert report.primary == "auroc" and report.higher_is_better
    data = cls_eval.load_labelled_images(f"{mnist},split=test", limit=600)
    scores = ae_eval.reconstruction_mse(
        data.images, predictor.predict({"image": data.images})["reconstruction"]
    )
    assert report.metrics["auroc"] == pytest.approx(metrics.auroc(scores, data.labels == 9))
    assert report.metrics["recon_mse_anomalous"] == pytest.approx(scores[data.labels == 9].mean())
    assert report.metrics["fpr_at_95tpr"] == pytest.approx(metrics.fpr_at_tpr(scores, data.labels == 9))
    # the PCA baseline is fitted exactly as this predictor was: same scores, same AUROC
    model_row, pca_row = report.tables["baselines"]
    assert pca_row["auroc"] == pytest.approx(model_row["auroc"], abs=1e-6)
    assert [row["anomalous"] for row in report.tables["per_class"]] == [False] * 9 + [True]
    again = ae_eval.evaluate(predictor, f"{mnist},split=test,anomaly=9", EvalConfig(limit=600))
    assert again.metrics == report.metrics and again.tables == report.tables


def test_autoencoder_without_anomaly_digits_reports_reconstruction_only(mnist, pca_ae):
    report = ae_eval.evaluate(pca_ae, f"{mnist},split=test", EvalConfig(limit=100))
    assert report.primary == "recon_mse" and not report.higher_is_better and "auroc" not in report.metrics
    assert any("anomaly=9" in note for note in report.notes)
    with pytest.raises(UsageError, match="both normal and anomalous"):
        ae_eval.evaluate(pca_ae, f"{mnist},split=test,only=9,anomaly=9")


# -- VAE ----------------------------------------------------------------------------------------------------------


def test_vae_metrics_grid_and_repeatability(mnist, vae_parts, tmp_path):
    cv2 = pytest.importorskip("cv2")
    encoder, decoder = vae_parts
    config = EvalConfig(limit=200, out_dir=str(tmp_path / "out"))
    report = vae_eval.evaluate(encoder, f"{mnist},split=test", config, decoder=decoder)
    m = report.metrics
    assert report.primary == "neg_elbo" and not report.higher_is_better
    assert m["neg_elbo"] == pytest.approx(m["recon_nll"] + m["kl"])
    assert m["kl"] == pytest.approx(
        vae_eval.kl_per_image(
            *[
                encoder.predict(
                    {"image": cls_eval.load_labelled_images(f"{mnist},split=test", limit=200).images}
                )[k]
                for k in ("z_mean", "z_log_var")
            ]
        ).mean()
    )
    assert 0 < m["recon_mse"] < 0.1 and 0 < m["recon_bce"] < 1
    grid = cv2.imread(report.artifacts["samples"], cv2.IMREAD_GRAYSCALE)
    assert grid.shape == (2 * (8 * 30 + 2), 2 * (8 * 30 + 2))
    assert Path(report.artifacts["reconstructions"]).is_file()
    again = vae_eval.evaluate(
        encoder, f"{mnist},split=test", replace(config, baselines=False), decoder=decoder
    )
    assert again.metrics == m
    assert report.tables["baselines"][1]["method"].startswith("PCA-4")


def test_vae_needs_a_decoder(mnist, vae_parts):
    encoder, decoder = vae_parts
    with pytest.raises(UsageError, match="--companion"):
        vae_eval.evaluate(encoder, f"{mnist},split=test", EvalConfig(limit=10))
    with pytest.raises(UsageError, match="is a VAE decoder"):
        vae_eval.evaluate(decoder, f"{mnist},split=test", EvalConfig(limit=10))


def test_bce_and_kl_hand_checked():
    x = np.array([[1.0, 0.0, 0.5]])
    p = np.array([[0.5, 0.5, 0.5]])
    assert vae_eval.bce_per_image(x, p)[0] == pytest.approx(3 * np.log(2))
    assert vae_eval.kl_per_image(np.zeros((1, 3)), np.zeros((1, 3)))[0] == 0.0
    assert vae_eval.kl_per_image(np.array([[2.0]]), np.array([[0.0]]))[0] == pytest.approx(2.0)


def test_vae_decoder_model_inputs(mnist, vae_parts):
    prior = vae_inputs(mnist, {"z": (4,)}, seed=3)
    assert prior["z"].shape == (PRIOR_CALIB, 4) and abs(prior["z"].std() - 1) < 0.1
    encoder, _ = vae_parts
    mixed = vae_inputs(f"{mnist},split=train", {"z": (4,)}, limit=100, seed=3, encoder=encoder)
    assert mixed["z"].shape == (100, 4) and mixed["z"].dtype == np.float32
    images = vae_inputs(mnist, {"image": (28, 28, 1)}, limit=10)
    assert images["image"].shape == (10, 28, 28, 1)
