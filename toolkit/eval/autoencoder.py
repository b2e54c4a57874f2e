"""Autoencoder evaluation: reconstruction error, and anomaly AUROC when the SPEC names the anomalous digits.

Anomaly set-up (the shipped ``mnist_autoencoder``): train on ``mnist:split=train,exclude=9``, score
``mnist:split=test,anomaly=9``. The anomaly score of an image is its reconstruction MSE (mean over pixels);
AUROC = P(score of a random anomalous image > score of a random normal one). A PCA reconstruction baseline with
the same number of components as the default autoencoder code (16), fitted on the training split without the
anomalous digits, is scored on the same images by the same code.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from toolkit.data.labelled_images import load_labelled_images, parse_digits
from toolkit.data.model_inputs import model_inputs
from toolkit.data.spec import DataSpec, parse_spec
from toolkit.errors import UsageError
from toolkit.eval import metrics
from toolkit.eval.classifier import reference_split
from toolkit.eval.config import EvalConfig
from toolkit.eval.report import EvalReport

PCA_COMPONENTS = 16  # the default autoencoder latent_dim: the baseline gets the same code size

__all__ = ["PCA_COMPONENTS", "evaluate", "model_inputs", "pca_fit", "pca_scores", "reconstruction_mse"]


def reconstruction_mse(images: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """Per-image mean squared error over all pixels: float64 (N,)."""
    if images.shape != reconstructions.shape:
        raise UsageError(f"reconstructions {reconstructions.shape} do not match the images {images.shape}")
    diff = reconstructions.astype(np.float64) - images.astype(np.float64)
    return (diff * diff).reshape(len(images), -1).mean(axis=1)


def pca_fit(images: np.ndarray, components: int, iterations: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(mean (D,), basis (k, D)) of the top-``components`` principal directions of flattened ``images``.

    Subspace iteration on the (D, D) scatter matrix (seeded, so reproducible): a full eigendecomposition or SVD
    of a 784-pixel problem costs seconds on a small shared CPU, this costs milliseconds beyond the matrix product.
    """
    x = images.reshape(len(images), -1).astype(np.float32)
    mean = x.mean(axis=0, dtype=np.float64)
    centred = x - mean.astype(np.float32)
    scatter = (centred.T @ centred).astype(np.float64)
    k = min(components, scatter.shape[0])
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(scatter @ rng.standard_normal((scatter.shape[0], min(k + 8, scatter.shape[0]))))
    for _ in range(iterations):
        q, _ = np.linalg.qr(scatter @ q)
    values, vectors = np.linalg.eigh(q.T @ scatter @ q)
    basis = (q @ vectors[:, np.argsort(-values, kind="stable")[:k]]).T
    # An eigenvector's sign is arbitrary; fix it (largest entry positive) so the basis is reproducible.
    signs = np.sign(basis[np.arange(k), np.abs(basis).argmax(axis=1)])
    return mean, basis * signs[:, None]


def pca_scores(images: np.ndarray, mean: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Per-image reconstruction MSE after projecting onto the PCA basis: float64 (N,)."""
    x = images.reshape(len(images), -1).astype(np.float64) - mean
    residual = x - (x @ basis.T) @ basis
    return (residual * residual).mean(axis=1)


def evaluate(predictor: Any, spec: DataSpec, config: EvalConfig = EvalConfig()) -> EvalReport:
    """Reconstruction MSE (per digit) of ``predictor`` on an image SPEC (default split: test); with
    ``anomaly=D`` in the SPEC also anomaly AUROC (primary) and FPR at 95% TPR, and a PCA baseline."""
    spec = parse_spec(spec)
    shape = tuple(predictor.input_shapes["image"])
    data = load_labelled_images(spec, shape, "test", config.limit)
    recon = predictor.predict({"image": data.images}, config.batch_size)["reconstruction"]
    scores = reconstruction_mse(data.images, recon.reshape(data.images.shape))
    anomalous_digits = parse_digits(spec, "anomaly")
    anomalous = np.isin(data.labels, anomalous_digits)
    result: dict[str, float] = {"recon_mse": float(scores.mean())}
    per_class = []
    for c in np.unique(data.labels):
        member = data.labels == c
        per_class.append(
            {
                "class": data.class_names[c],
                "count": int(member.sum()),
                "recon_mse": float(scores[member].mean()),
                "anomalous": bool(c in anomalous_digits),
            }
        )
    report = EvalReport(
        kind="autoencoder",
        model=str(predictor.path),
        model_format=predictor.format,
        data=str(spec),
        samples=len(scores),
        primary="recon_mse",
        higher_is_better=False,
        metrics=result,
        tables={"per_class": per_class},
        notes=[data.describe],
    )
    if not anomalous_digits:
        report.notes.append(
            "no anomaly= digits in the data SPEC: reconstruction error only (add e.g. anomaly=9 "
            "to score anomaly AUROC)"
        )
        return report
    if anomalous.all() or not anomalous.any():
        raise UsageError(
            f"data spec '{spec}': AUROC needs both normal and anomalous images; the selection has "
            f"{int(anomalous.sum())} anomalous of {len(anomalous)}"
        )
    result.update(
        {
            "auroc": metrics.auroc(scores, anomalous),
            "fpr_at_95tpr": metrics.fpr_at_tpr(scores, anomalous, 0.95),
            "recon_mse_normal": float(scores[~anomalous].mean()),
            "recon_mse_anomalous": float(scores[anomalous].mean()),
        }
    )
    report.primary, report.higher_is_better = "auroc", True
    report.notes.append(
        f"anomaly score = per-image reconstruction MSE; anomalous = digit(s) "
        f"{''.join(map(str, anomalous_digits))} ({int(anomalous.sum())} images), normal = the other "
        f"{int((~anomalous).sum())}"
    )
    if config.baselines:
        _baseline(report, spec, shape, data.images, anomalous, anomalous_digits)
    return report


def _baseline(
    report: EvalReport,
    spec: DataSpec,
    shape: tuple[int, ...],
    images: np.ndarray,
    anomalous: np.ndarray,
    anomalous_digits: tuple[int, ...],
) -> None:
    ref_spec = reference_split(spec)
    if ref_spec is None:
        report.notes.append(
            "baseline skipped: the scored samples are training data (score split=val or test)"
        )
        return
    excluded = sorted(set(parse_digits(ref_spec, "exclude")) | set(anomalous_digits))
    options = {k: v for k, v in ref_spec.options.items() if k != "anomaly"}
    ref_spec = DataSpec(ref_spec.name, {**options, "exclude": "".join(map(str, excluded))}, "").with_options()
    reference = load_labelled_images(ref_spec, shape, "train")
    mean, basis = pca_fit(reference.images, PCA_COMPONENTS)
    scores = pca_scores(images, mean, basis)
    report.tables["baselines"] = [
        {
            "method": "model",
            "auroc": report.metrics["auroc"],
            "fpr_at_95tpr": report.metrics["fpr_at_95tpr"],
            "recon_mse": report.metrics["recon_mse"],
        },
        {
            "method": f"PCA-{PCA_COMPONENTS} reconstruction (fit on {ref_spec})",
            "auroc": metrics.auroc(scores, anomalous),
            "fpr_at_95tpr": metrics.fpr_at_tpr(scores, anomalous, 0.95),
            "recon_mse": float(scores.mean()),
        },
    ]
