"""Realistic model inputs from a data SPEC, per model kind: what int8 calibration (``toolkit convert --calib
SPEC``), ``quant-report``, QAT and benchmarks feed a model.

Each kind's inputs are made by the same loaders and pre-processing as its training and evaluation
(:mod:`toolkit.adapters`): letterboxed RGB in [0, 1] for detectors and segmenters, resized labelled images for
classifiers and autoencoders, heading-frame tracks for the behaviour model, images or latent codes for a VAE.

>>> model_inputs("detector", parse_spec("coco128"), {"image": (192, 256, 3)}, limit=200, seed=0)["image"].shape
(200, 192, 256, 3)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from toolkit.adapters.behaviour import model_track, neighbour_input
from toolkit.adapters.image import letterbox, unit_float
from toolkit.capabilities import unknown_kind_error
from toolkit.data.behaviour_windows import load_windows
from toolkit.data.labelled_images import load_labelled_images, subset
from toolkit.data.spec import DataSpec, parse_spec
from toolkit.errors import UsageError

PRIOR_CALIB = 400  # prior samples vae_inputs returns for a decoder when no limit is given

InputMaker = Callable[..., dict[str, np.ndarray]]  # (spec, input_shapes, limit, seed) -> {input name: array}


def model_inputs(
    kind: str | None,
    spec: str | DataSpec,
    input_shapes: dict[str, tuple[int, ...]],
    limit: int | None = None,
    seed: int = 0,
    where: str = "model",
) -> dict[str, np.ndarray]:
    """``{input name: float32 array}`` for a ``kind`` model (see :data:`KINDS`) from ``spec``: ``limit`` samples
    at most, drawn with ``seed`` and kept in order (the same call gives the same arrays). ``where`` names the
    model in the error for an unknown kind."""
    if kind is None or kind not in KINDS:
        raise UsageError(unknown_kind_error(where, list(KINDS)))
    return KINDS[kind](parse_spec(spec), input_shapes, limit, seed)


ImageSource = tuple[Callable[[int], np.ndarray], int]  # (i -> original uint8 RGB image, number of images)


def letterboxed_inputs(
    spec: DataSpec,
    input_shapes: dict[str, tuple[int, ...]],
    kind: str,
    from_samples: Callable[[DataSpec], ImageSource],
    limit: int | None = None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Realistic ``image`` inputs: letterboxed RGB in [0, 1], float32 (N, H, W, 3).

    The images come from an ``images:path=...`` folder of frames, or else from ``from_samples(spec)`` (the
    kind's own samples); ``limit`` images at most, drawn without replacement with ``seed`` and kept in order.
    """
    shape = input_shapes.get("image")
    if shape is None or len(shape) != 3:
        raise UsageError(f"a {kind} takes one 'image' input (H, W, 3), got inputs {dict(input_shapes)}")
    input_hw = (int(shape[0]), int(shape[1]))
    if spec.name == "images":
        from toolkit.data.image_folder import list_images, read_rgb

        files = list_images(spec.get("path"))
        if not files:
            raise UsageError(f"data '{spec}': no images found")
        load, n = (lambda i: read_rgb(files[i])), len(files)
    else:
        load, n = from_samples(spec)
    pick = np.arange(n)
    if limit is not None and limit < n:
        pick = np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))
    return {"image": unit_float(np.stack([letterbox(load(int(i)), input_hw)[0] for i in pick]))}


def classifier_inputs(
    spec: str | DataSpec, input_shapes: dict[str, tuple[int, ...]], limit: int | None = None, seed: int = 0
) -> dict[str, np.ndarray]:
    """``{"image": float32 (N, H, W, C)}`` from a labelled-image SPEC (default split: train), preprocessed as in
    training and evaluation; ``limit`` takes a random subset seeded by ``seed``."""
    if "image" not in input_shapes:
        raise UsageError(f"model inputs {list(input_shapes)} have no 'image' input; not a classifier")
    data = load_labelled_images(spec, tuple(input_shapes["image"]), "train")
    return {"image": data.images[subset(len(data.images), limit, seed)]}


def behaviour_inputs(
    spec: str | DataSpec, input_shapes: dict[str, tuple[int, ...]], limit: int | None = None, seed: int = 0
) -> dict[str, np.ndarray]:
    """Realistic ``track`` (and ``neighbours``, when the model has that input) inputs in the heading frame from a
    SPEC, for int8 calibration and benchmarks.

    ``limit`` samples drawn at random with ``seed`` (all windows when None).
    """
    shape = tuple(input_shapes.get("track", ()))
    if len(shape) != 2 or shape[1] != 2:
        raise UsageError(f"behaviour inputs: expected an input 'track' of shape (T, 2), got {input_shapes}")
    neighbours = tuple(input_shapes.get("neighbours", (0, 5)))
    if len(neighbours) != 2 or neighbours[1] != 5:
        raise UsageError(f"behaviour inputs: expected 'neighbours' of shape (M, 5), got {input_shapes}")
    windows = load_windows(spec, observed=shape[0], neighbours=neighbours[0])
    index = np.arange(len(windows))
    if limit is not None and limit < len(windows):
        index = np.sort(np.random.default_rng(seed).choice(len(windows), limit, replace=False))
    track, rotation = model_track(windows.obs[index])
    if "neighbours" not in input_shapes:
        return {"track": track}
    return {"track": track, "neighbours": neighbour_input(windows.neighbours[index], rotation)}


def vae_inputs(
    spec: str | DataSpec,
    input_shapes: dict[str, tuple[int, ...]],
    limit: int | None = None,
    seed: int = 0,
    encoder: Any = None,
) -> dict[str, np.ndarray]:
    """Realistic inputs for a VAE part: ``{"image": ...}`` images from the SPEC (default split: train) for the
    encoder; ``{"z": ...}`` latent codes for the decoder.

    Decoder codes: with an ``encoder`` predictor, half are posterior draws z ~ q(z|x) of the SPEC's images and
    half prior draws N(0, I) (the decoder decodes both in use: reconstructions and generation); without one,
    all are prior draws (the SPEC is then only validated). ``limit`` caps the count (default: the SPEC's images,
    or 400 prior draws); everything is seeded by ``seed``.
    """
    spec = parse_spec(spec)
    if "image" in input_shapes:
        data = load_labelled_images(spec, tuple(input_shapes["image"]), "train")
        return {"image": data.images[subset(len(data.images), limit, seed)]}
    if "z" not in input_shapes:
        raise UsageError(f"model inputs {list(input_shapes)} are not a VAE encoder (image) or decoder (z)")
    latent = int(input_shapes["z"][0])
    rng = np.random.default_rng([seed, 2])
    if encoder is None:
        return {"z": rng.standard_normal((limit or PRIOR_CALIB, latent)).astype(np.float32)}
    data = load_labelled_images(spec, tuple(encoder.input_shapes["image"]), "train")
    total = limit or 2 * len(data.images)
    images = data.images[subset(len(data.images), total - total // 2, seed)]
    codes = encoder.predict({"image": images})
    posterior = codes["z_mean"] + np.exp(0.5 * codes["z_log_var"]) * rng.standard_normal(
        codes["z_mean"].shape
    )
    prior = rng.standard_normal((total // 2, latent))
    if posterior.shape[1] != latent:
        raise UsageError(f"encoder codes have {posterior.shape[1]} dimensions but the decoder takes {latent}")
    return {"z": np.concatenate([posterior, prior]).astype(np.float32)}


def detector_inputs(
    spec: str | DataSpec, input_shapes: dict[str, tuple[int, ...]], limit: int | None = None, seed: int = 0
) -> dict[str, np.ndarray]:
    """Realistic detector inputs: letterboxed RGB in [0, 1], float32 (N, H, W, 3), from a detection SPEC
    or an ``images:path=...`` folder of frames. ``limit`` images at most, drawn with ``seed``."""
    from toolkit.data.detection_samples import load_samples

    def frames(spec: DataSpec) -> ImageSource:
        samples = load_samples(spec)
        return samples.load, len(samples)

    return letterboxed_inputs(parse_spec(spec), input_shapes, "detector", frames, limit, seed)


def segmenter_inputs(
    spec: str | DataSpec, input_shapes: dict[str, tuple[int, ...]], limit: int | None = None, seed: int = 0
) -> dict[str, np.ndarray]:
    """Realistic segmenter inputs: letterboxed RGB in [0, 1], float32 (N, H, W, 3), from a segmentation SPEC
    or an ``images:path=...`` folder of frames. ``limit`` images at most, drawn with ``seed``."""
    from toolkit.data.segmentation_samples import load_samples

    def frames(spec: DataSpec) -> ImageSource:
        samples = load_samples(spec)
        return (lambda i: samples.load(i)[0]), len(samples)

    return letterboxed_inputs(parse_spec(spec), input_shapes, "segmenter", frames, limit, seed)


KINDS: dict[str, InputMaker] = {  # model kind -> its input maker
    "classifier": classifier_inputs,
    "autoencoder": classifier_inputs,  # an autoencoder takes the classifier's images
    "detector": detector_inputs,
    "segmenter": segmenter_inputs,
    "behaviour": behaviour_inputs,
    "vae": vae_inputs,
    "vae_encoder": vae_inputs,
    "vae_decoder": vae_inputs,
}
