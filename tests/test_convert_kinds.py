"""Every model kind converts in all four modes; the .tflite output agrees with Keras on fixed inputs through the
device runtime, and int8 models are fully int8 except the float ops STACK.md documents (checked via inspect)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import require_tf, run_cli

pytestmark = [pytest.mark.tf, pytest.mark.slow]

MODES = ("fp32", "fp16", "dynamic", "int8")
# (kind, part): the VAE converts as two files.
PARTS = [
    ("classifier", None),
    ("detector", None),
    ("segmenter", None),
    ("behaviour", None),
    ("autoencoder", None),
    ("vae", "encoder"),
    ("vae", "decoder"),
]
# Max |error| allowed, as a fraction of the Keras output's scale (range, or mean magnitude if larger) on the
# same inputs. fp32 is absolute (1e-4).
# fp16 weights: ~1e-3 relative. dynamic-range int8 weights: a few %. Full int8 (weights + activations, seeded
# random-init model calibrated on inputs of the same distribution): mean error within 5 % of the scale,
# worst case within 15 % -- or within one (mean) / two (max) output quantization steps when the range is
# smaller than that (a random-init classifier's softmax is nearly constant).
TOLERANCE = {"fp16": (0.01, 0.03), "dynamic": (0.03, 0.10), "int8": (0.05, 0.15)}


def _inputs(name: str, shape: tuple[int, ...], n: int, rng: np.random.Generator) -> np.ndarray:
    """Seeded inputs with the structure of real ones: blobby images, walking tracks, Gaussian latents."""
    import cv2

    if name == "track":  # walking at ~1.3 m/s sampled every 0.4 s, relative to the last point, in the
        from toolkit.adapters.behaviour import normalise  # heading frame the behaviour model is fed

        steps = rng.normal(0.5, 0.15, (n, 1, 1)) * np.stack(
            [np.cos(a := rng.uniform(0, 6.28, (n, 1))), np.sin(a)], -1
        )
        steps = steps + rng.normal(0, 0.05, (n, 8, 2))
        track = np.cumsum(steps, axis=1)
        return normalise(track - track[:, -1:])[0]
    if name == "z":
        return rng.normal(size=(n, *shape)).astype(np.float32)
    h, w, c = shape
    out = np.empty((n, h, w, c), np.float32)
    for i in range(n):
        img = np.full((h, w, 3), rng.uniform(0, 0.4), np.float32)
        for _ in range(rng.integers(2, 6)):
            center = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            axes = (int(rng.integers(2, max(3, w // 3))), int(rng.integers(2, max(3, h // 3))))
            cv2.ellipse(
                img, center, axes, float(rng.uniform(0, 180)), 0, 360, rng.uniform(0, 1, 3).tolist(), -1
            )
        img = cv2.GaussianBlur(img, (3, 3), 0)
        out[i] = img[..., :c] if c == 3 else img.mean(-1, keepdims=True)
    return out


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory) -> dict[str, Path]:
    require_tf()
    import keras

    from toolkit.models import build_model

    tmp = tmp_path_factory.mktemp("kinds")
    paths = {}
    for kind in dict.fromkeys(k for k, _ in PARTS):
        keras.utils.set_random_seed(0)
        paths[kind] = tmp / f"{kind}.keras"
        build_model(kind).save(paths[kind])
    return paths


@pytest.mark.parametrize("kind, part", PARTS, ids=[f"{k}-{p}" if p else k for k, p in PARTS])
def test_kind_converts_in_every_mode(saved_models, tmp_path: Path, kind: str, part: str | None) -> None:
    from toolkit.convert import ConvertConfig, convert
    from toolkit.convert.keras_export import input_specs, keras_predict, load_keras_model
    from toolkit.runtime import Runner

    model = load_keras_model(saved_models[kind], part, trust=False)
    specs = input_specs(model)
    rng = np.random.default_rng(0)
    calib = {name: _inputs(name, shape, 120, rng) for name, shape in specs.items()}
    calib_path = tmp_path / "calib.npz"
    np.savez(calib_path, **calib)
    fixed = {name: _inputs(name, shape, 6, np.random.default_rng(1)) for name, shape in specs.items()}
    expected = keras_predict(model, fixed)
    for mode in MODES:
        out = tmp_path / f"{kind}_{part or 'model'}_{mode}.tflite"
        convert(
            saved_models[kind],
            out,
            ConvertConfig(
                quantize=mode, part=part, threads=1, calib=str(calib_path) if mode == "int8" else None
            ),
        )
        manifest = json.loads(out.with_suffix(".json").read_text())
        assert manifest["mode"] == mode and manifest["inputs"][0]["shape"][0] == 1
        with Runner(out, num_threads=1) as runner:
            assert set(runner.outputs) == set(expected)
            for i in range(len(next(iter(fixed.values())))):
                got = runner.run(**{k: v[i : i + 1] for k, v in fixed.items()})
                for name, ref in expected.items():
                    err = np.abs(got[name].reshape(ref[i : i + 1].shape) - ref[i : i + 1])
                    # Scale of the output: its range over the fixed inputs, or its typical magnitude when a random-init
                    # model's output barely varies (a sigmoid sitting near 0.5).
                    span = max(float(ref.max() - ref.min()), float(np.abs(ref).mean())) or 1.0
                    if mode == "fp32":
                        assert err.max() < 1e-4, (name, float(err.max()))
                    else:
                        # An int8 output cannot be closer than its own quantization step: that is the floor.
                        step = runner.outputs[name].scale if runner.outputs[name].quantized else 1e-4
                        mean_tol, max_tol = TOLERANCE[mode]
                        assert err.mean() <= max(mean_tol * span, step), (mode, name, float(err.mean()), span)
                        assert err.max() <= max(max_tol * span, 2 * step), (
                            mode,
                            name,
                            float(err.max()),
                            span,
                        )
        if mode == "int8":
            info = json.loads(run_cli("inspect", out, "--json").stdout)
            assert info["precision"] == "int8", info["non_int8_ops"]
            undocumented = [e for e in info["non_int8_ops"] if not e["documented"]]
            assert not undocumented, undocumented
            assert all(t["dtype"] == "int8" for t in info["inputs"] + info["outputs"])
