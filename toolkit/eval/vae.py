"""VAE evaluation: reconstruction error and negative ELBO through the encoder -> decoder chain, plus a PNG grid
of decoded prior samples. The same code scores the float ``.keras`` VAE and its two int8 ``.tflite`` parts.

Models it accepts: the full VAE ``.keras`` (its nested ``decoder`` is used unless ``companion`` names another),
or an encoder (``.tflite`` or ``--part encoder``) with ``companion`` = the decoder.

Definitions (per image x with pixels x_i in [0, 1], decoder output p = D(z), latent size d):

* ``recon_bce`` / ``recon_mse``: per-pixel mean binary cross-entropy (nats) / squared error of D(z_mean);
* ``recon_nll``: E_{z ~ q(z|x)} [ sum_i BCE(x_i, p_i) ] in nats per image, Monte Carlo with ``ELBO_SAMPLES``
  seeded draws z = z_mean + exp(z_log_var / 2) * eps -- the Bernoulli log-likelihood term of the training loss;
  with grey-level targets it is a cross-entropy, not a normalised log-density, so compare it only between models
  scored the same way;
* ``kl``: KL(q(z|x) || N(0, I)) = 0.5 * sum_j (z_mean_j^2 + exp(z_log_var_j) - 1 - z_log_var_j), nats per image;
* ``neg_elbo`` = recon_nll + kl (primary, lower is better), the quantity the training loss estimates (x 784).

Probabilities are clipped to [1e-7, 1 - 1e-7] as Keras' binary cross-entropy does.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.data.labelled_images import load_labelled_images
from toolkit.data.spec import DataSpec, parse_spec
from toolkit.errors import UsageError
from toolkit.eval.autoencoder import pca_fit, pca_scores
from toolkit.eval.classifier import reference_split
from toolkit.eval.config import EvalConfig
from toolkit.eval.report import EvalReport

ELBO_SAMPLES = 4  # Monte Carlo draws of z per image for the reconstruction term of the ELBO
GRID = 8  # the sample grid shows GRID x GRID decoded prior samples
CLIP = 1e-7  # probability clipping of the cross-entropy (Keras' epsilon)


def bce_per_image(images: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Summed binary cross-entropy over each image's pixels, nats: float64 (N,)."""
    x = images.reshape(len(images), -1).astype(np.float64)
    p = np.clip(probs.reshape(len(probs), -1).astype(np.float64), CLIP, 1.0 - CLIP)
    return -(x * np.log(p) + (1.0 - x) * np.log1p(-p)).sum(axis=1)


def kl_per_image(z_mean: np.ndarray, z_log_var: np.ndarray) -> np.ndarray:
    """KL(N(z_mean, exp(z_log_var)) || N(0, I)) per image in nats: float64 (N,)."""
    mu, lv = z_mean.astype(np.float64), z_log_var.astype(np.float64)
    return 0.5 * (mu * mu + np.exp(lv) - 1.0 - lv).sum(axis=1)


def _parts(predictor: Any, config: EvalConfig, stack: contextlib.ExitStack, decoder: Any) -> tuple[Any, Any]:
    """(encoder, decoder) predictors for ``predictor`` plus ``config.companion``; extra ones close with ``stack``."""
    from toolkit.eval.predictor import load_predictor

    if predictor.kind == "vae_decoder":
        raise UsageError(
            f"{predictor.path} is a VAE decoder; evaluate the encoder and pass this file as "
            "--companion (or evaluate the full .keras VAE)"
        )
    if not {"z_mean", "z_log_var"} <= set(predictor.output_names) or "image" not in predictor.input_shapes:
        raise UsageError(f"{predictor.path}: not a VAE encoder (outputs {predictor.output_names})")
    if decoder is not None:
        pass
    elif config.companion:
        decoder = stack.enter_context(
            load_predictor(config.companion, threads=config.threads, trust=config.trust_model)
        )
    elif predictor.format == "keras" and "reconstruction" in predictor.output_names:
        decoder = stack.enter_context(
            load_predictor(predictor.path, part="decoder", trust=config.trust_model)
        )
    else:
        raise UsageError(
            f"{predictor.path} is a VAE encoder: pass its decoder with --companion decoder.tflite"
        )
    if decoder.kind != "vae_decoder":
        raise UsageError(f"companion {decoder.path} is not a VAE decoder (input z -> output image)")
    return predictor, decoder


def evaluate(
    predictor: Any, spec: DataSpec, config: EvalConfig = EvalConfig(), decoder: Any = None
) -> EvalReport:
    """Negative ELBO (primary), reconstruction BCE/MSE and KL of a VAE on an image SPEC (default split: test);
    writes ``<model>_samples.png`` (prior samples) and ``<model>_reconstructions.png`` into ``config.out_dir``
    (default: beside the model) and lists them in ``report.artifacts``.

    ``predictor`` is the full VAE or its encoder; the decoder is ``decoder`` (an open predictor) if given, else
    ``config.companion``, else the ``decoder`` part of a full ``.keras`` VAE.
    """
    spec = parse_spec(spec)
    with contextlib.ExitStack() as stack:
        encoder, decoder = _parts(predictor, config, stack, decoder)
        shape = tuple(encoder.input_shapes["image"])
        latent = int(decoder.input_shapes["z"][0])
        data = load_labelled_images(spec, shape, "test", config.limit)
        codes = encoder.predict({"image": data.images}, config.batch_size)
        z_mean, z_log_var = codes["z_mean"], codes["z_log_var"]
        if z_mean.shape[1] != latent:
            raise UsageError(
                f"encoder codes have {z_mean.shape[1]} dimensions but the decoder takes {latent}"
            )
        decode = lambda z: decoder.predict({"z": z.astype(np.float32)}, config.batch_size)["image"]  # noqa: E731
        mean_recon = decode(z_mean).reshape(data.images.shape)
        rng = np.random.default_rng([config.seed, 0])
        eps = rng.standard_normal((ELBO_SAMPLES, *z_mean.shape))
        z = (z_mean[None] + np.exp(0.5 * z_log_var[None].astype(np.float64)) * eps).reshape(-1, latent)
        sampled = decode(z).reshape(ELBO_SAMPLES, *data.images.shape)
        nll = np.mean([bce_per_image(data.images, s) for s in sampled], axis=0)
        kl = kl_per_image(z_mean, z_log_var)
        prior = np.random.default_rng([config.seed, 1]).standard_normal((GRID * GRID, latent))
        samples = decode(prior).reshape(GRID * GRID, *shape)
    pixels = int(np.prod(shape))
    mse = float(((mean_recon.astype(np.float64) - data.images) ** 2).mean())
    result = {
        "neg_elbo": float((nll + kl).mean()),
        "recon_nll": float(nll.mean()),
        "kl": float(kl.mean()),
        "recon_bce": float(bce_per_image(data.images, mean_recon).mean() / pixels),
        "recon_mse": mse,
    }
    report = EvalReport(
        kind="vae",
        model=str(predictor.path),
        model_format=predictor.format,
        data=str(spec),
        samples=len(data.images),
        primary="neg_elbo",
        higher_is_better=False,
        metrics=result,
        notes=[
            data.describe,
            f"decoder: {Path(decoder.path).name} ({decoder.format})",
            f"neg_elbo = recon_nll + kl in nats per image; recon_nll = summed pixel BCE averaged "
            f"over {ELBO_SAMPLES} seeded draws z ~ q(z|x) (seed {config.seed}); recon_bce / "
            "recon_mse per pixel at z = z_mean",
        ],
    )
    out_dir = Path(config.out_dir) if config.out_dir else Path(predictor.path).parent
    stem = Path(predictor.path).stem
    report.artifacts["samples"] = str(write_grid(out_dir / f"{stem}_samples.png", samples, GRID))
    report.artifacts["reconstructions"] = str(
        write_grid(
            out_dir / f"{stem}_reconstructions.png", _pair_rows(data.images, mean_recon, GRID, 2), GRID
        )
    )
    if config.baselines:
        _baseline(report, spec, shape, data.images, latent)
    return report


def _baseline(
    report: EvalReport, spec: DataSpec, shape: tuple[int, ...], images: np.ndarray, latent: int
) -> None:
    ref_spec = reference_split(spec)
    if ref_spec is None:
        report.notes.append(
            "baseline skipped: the scored samples are training data (score split=val or test)"
        )
        return
    reference = load_labelled_images(ref_spec, shape, "train")
    mean, basis = pca_fit(reference.images, latent)
    report.tables["baselines"] = [
        {"method": "model (decoder at z_mean)", "recon_mse": report.metrics["recon_mse"]},
        {
            "method": f"PCA-{latent} reconstruction (fit on {ref_spec})",
            "recon_mse": float(pca_scores(images, mean, basis).mean()),
        },
    ]


def _pair_rows(images: np.ndarray, recon: np.ndarray, columns: int, pairs: int) -> np.ndarray:
    """Rows of inputs each followed by a row of their reconstructions (a short last row padded with black)."""
    rows = []
    for start in range(0, min(len(images), columns * pairs), columns):
        for source in (images, recon):
            row = source[start : start + columns]
            rows.append(np.concatenate([row, np.zeros((columns - len(row), *row.shape[1:]), row.dtype)]))
    return np.concatenate(rows)


def write_grid(path: Path, images: np.ndarray, columns: int, zoom: int = 2) -> Path:
    """Tile float [0, 1] images (N, H, W, 1|3) into a PNG (2 px dark gutters, nearest ``zoom``), atomically."""
    import cv2

    from toolkit.fileio import write_bytes_atomic

    n, h, w = images.shape[:3]
    channels = images.shape[3] if images.ndim == 4 else 1
    rows = -(-n // columns)
    gap = 2
    canvas = np.full((rows * (h + gap) + gap, columns * (w + gap) + gap, channels), 40, np.uint8)
    tiles = np.clip(np.rint(images.reshape(n, h, w, channels) * 255.0), 0, 255).astype(np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        canvas[
            gap + r * (h + gap) : gap + r * (h + gap) + h, gap + c * (w + gap) : gap + c * (w + gap) + w
        ] = tile
    canvas = cv2.resize(canvas, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
    if channels == 3:
        canvas = cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", canvas)
    if not ok:  # pragma: no cover - OpenCV always encodes uint8 PNG
        raise UsageError(f"cannot encode {path}")
    write_bytes_atomic(path, encoded.tobytes())
    return path
