"""Every model kind builds, honours the I/O contract, saves / safe-loads, and builds identically in tf_keras."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from toolkit.capabilities import MODEL_KINDS

pytestmark = pytest.mark.tf
keras = pytest.importorskip("keras", reason="needs the train extra: pip install '.[train]'")

from toolkit.models import build_model, register_custom_objects  # noqa: E402
from toolkit.models.detector import detector_losses  # noqa: E402
from toolkit.models.detector_targets import IGNORE, NO_BOX, box_target_for_loss, encode_targets  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
KINDS = tuple(MODEL_KINDS)
# kind -> (input name, input shape, {output name: shape}) for the default configs: the contract other code uses.
CONTRACT = {
    "classifier": ("image", (28, 28, 1), {"probs": (10,)}),
    "detector": ("image", (192, 256, 3), {"heatmap": (48, 64, 1), "box": (48, 64, 4)}),
    "segmenter": ("image", (120, 160, 3), {"mask": (120, 160, 5)}),
    "behaviour": ("track", (8, 2), {"future": (12, 2), "crossing": (1,)}),
    "autoencoder": ("image", (28, 28, 1), {"reconstruction": (28, 28, 1)}),
    "vae": ("image", (28, 28, 1), {"z_mean": (8,), "z_log_var": (8,), "reconstruction": (28, 28, 1)}),
}
SOFTMAX = {"probs", "mask"}  # sums to 1 over the last axis
SIGMOID = {"heatmap", "box", "crossing", "reconstruction"}  # in [0, 1]


@pytest.fixture(scope="module")
def models() -> dict:
    return {kind: build_model(kind) for kind in KINDS}


def _input(kind: str, batch: int = 2) -> np.ndarray:
    rng = np.random.default_rng(1)
    _, shape, _ = CONTRACT[kind]
    if kind == "behaviour":
        track = np.cumsum(rng.normal(0.4, 0.2, size=(batch, *shape)), axis=1).astype(np.float32)
        return track - track[:, -1:]  # relative to the last observed position
    return rng.random((batch, *shape), dtype=np.float32)


def _numpy(outputs: dict) -> dict[str, np.ndarray]:
    return {name: np.asarray(value) for name, value in outputs.items()}


@pytest.mark.parametrize("kind", KINDS)
def test_contract_names_shapes_ranges(models: dict, kind: str) -> None:
    model = models[kind]
    input_name, input_shape, outputs = CONTRACT[kind]
    assert [t.name for t in model.inputs] == [input_name] == list(MODEL_KINDS[kind].input_names)
    assert tuple(model.inputs[0].shape) == (None, *input_shape)  # batch stays None; conversion fixes it to 1
    assert set(MODEL_KINDS[kind].output_names) <= set(outputs)
    result = _numpy(model(_input(kind), training=False))
    assert {name: value.shape[1:] for name, value in result.items()} == outputs
    for name, value in result.items():
        assert value.dtype == np.float32 and np.isfinite(value).all()
        assert model.get_layer(name) is not None  # output layer name == output name
        if name in SOFTMAX:
            np.testing.assert_allclose(value.sum(axis=-1), 1.0, atol=1e-5)
        if name in SIGMOID:
            assert value.min() >= 0.0 and value.max() <= 1.0


def test_untrained_behaviour_model_is_the_constant_velocity_baseline(models: dict) -> None:
    track = _input("behaviour", batch=4)
    future = np.asarray(models["behaviour"](track, training=False)["future"])
    velocity = track[:, -1] - track[:, -2]
    expected = velocity[:, None, :] * np.arange(1, 13, dtype=np.float32)[None, :, None]
    np.testing.assert_allclose(future, expected, rtol=1e-6, atol=1e-6)


def test_vae_parts_sampling_and_kl_loss(models: dict) -> None:
    vae = models["vae"]
    encoder, decoder = vae.get_layer("encoder"), vae.get_layer("decoder")
    assert [t.name for t in decoder.inputs] == ["z"] and tuple(decoder.inputs[0].shape) == (None, 8)
    x = _input("vae", batch=4)
    codes = _numpy(encoder(x, training=False))
    assert set(codes) == {"z_mean", "z_log_var"}
    inference = _numpy(vae(x, training=False))
    np.testing.assert_allclose(
        inference["reconstruction"], np.asarray(decoder(codes["z_mean"])["image"]), atol=1e-6
    )  # z = z_mean
    np.testing.assert_array_equal(inference["reconstruction"], np.asarray(vae(x)["reconstruction"]))

    trained = _numpy(vae(x, training=True))  # samples z and adds the KL term
    assert np.abs(trained["reconstruction"] - inference["reconstruction"]).max() > 1e-4
    assert len(vae.losses) == 1
    mean, log_var = trained["z_mean"], trained["z_log_var"]
    kl = -0.5 * np.mean(np.sum(1 + log_var - mean**2 - np.exp(log_var), axis=-1))
    np.testing.assert_allclose(float(vae.losses[0]), kl / (28 * 28), rtol=1e-4)


@pytest.mark.slow
def test_vae_and_detector_train_one_step_with_fit() -> None:
    """The training wiring works: VAE with add_loss + a reconstruction loss, detector with detector_losses."""
    vae = build_model("vae", {"filters": [8, 8], "hidden": 16})
    vae.compile(optimizer="adam", loss={"reconstruction": "binary_crossentropy"})
    x = _input("vae", batch=4)
    history = vae.fit(x, {"reconstruction": x}, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"]).all()

    detector = build_model("detector", {"input_shape": [64, 64, 3], "width": 0.5})
    boxes = [[[8, 8, 24, 40]], [[30, 10, 50, 60], [2, 2, 10, 20]]]
    targets = [encode_targets(b, (64, 64)) for b in boxes]
    y = {
        "heatmap": np.stack([t[0] for t in targets]),
        "box": np.stack([box_target_for_loss(t[1], t[2]) for t in targets]),
    }
    detector.compile(optimizer="adam", loss=detector_losses())
    history = detector.fit(_input("detector", 2)[:, :64, :64], y, epochs=1, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_detector_losses_hand_computed() -> None:
    losses = detector_losses(box_weight=2.0)
    heat_true = np.array([1, 0, 0, 0], np.float32).reshape(1, 2, 2, 1)
    heat_pred = np.array([0.5, 0.1, 0.1, 0.1], np.float32).reshape(1, 2, 2, 1)
    # positive: -ln(0.5) * 0.5**2; each negative: -ln(0.9) * 0.1**2 * (1 - 0)**4; one centre
    expected = -np.log(0.5) * 0.25 + 3 * -np.log(0.9) * 0.01
    np.testing.assert_allclose(np.asarray(losses["heatmap"](heat_true, heat_pred)), [expected], rtol=1e-5)
    # an ignored cell (target IGNORE) costs nothing, however confident the prediction there
    heat_ignored = heat_true.copy()
    heat_ignored[0, 1, 1, 0] = IGNORE
    confident = heat_pred.copy()
    confident[0, 1, 1, 0] = 0.99
    np.testing.assert_allclose(
        np.asarray(losses["heatmap"](heat_ignored, confident)),
        [-np.log(0.5) * 0.25 + 2 * -np.log(0.9) * 0.01],
        rtol=1e-5,
    )
    box_true = np.full((1, 2, 2, 4), NO_BOX, np.float32)
    box_true[0, 0, 0] = [0.5, 0.5, 0.2, 0.3]
    box_pred = np.full((1, 2, 2, 4), 0.4, np.float32)
    # only the centre cell counts: 2.0 * (|0.4-0.5| + |0.4-0.5| + |ln 0.4 - ln 0.2| + |ln 0.4 - ln 0.3|) / 1 centre
    expected_box = 2.0 * (0.1 + 0.1 + np.log(2.0) + np.log(4 / 3))
    np.testing.assert_allclose(np.asarray(losses["box"](box_true, box_pred)), [expected_box], rtol=1e-5)
    # the size term is scale-invariant: a box twice as large, predicted 25 % too wide, costs the same
    small, large = (np.full((1, 1, 1, 4), v, np.float32) for v in (0.2, 0.4))
    for true in (small, large):
        pred = true.copy()
        pred[..., 2] *= 1.25
        np.testing.assert_allclose(np.asarray(losses["box"](true, pred)), [2.0 * np.log(1.25)], rtol=1e-5)


def _run(code: str, *args: str, timeout: float = 300) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _save_reference(models: dict, folder: Path) -> None:
    """Per kind: the .keras file, its weights in order, one input batch and the Keras 3 outputs."""
    for kind, model in models.items():
        model.save(folder / f"{kind}.keras")
        x = _input(kind)
        arrays = {f"w{i}": w for i, w in enumerate(model.get_weights())}
        arrays.update({"x": x, **{f"out_{k}": v for k, v in _numpy(model(x, training=False)).items()}})
        np.savez(folder / f"{kind}.npz", **arrays)


LOAD_SAFE = """
import json, sys, numpy as np, keras
folder, kinds = sys.argv[1], sys.argv[2].split(",")
try:  # without registration the custom layers are unknown: proves the registration is what makes it load
    keras.saving.load_model(f"{folder}/behaviour.keras", safe_mode=True)
    unregistered = "loaded"
except Exception as exc:
    unregistered = type(exc).__name__
import toolkit.models
toolkit.models.register_custom_objects()
diffs = {}
for kind in kinds:
    ref = np.load(f"{folder}/{kind}.npz")
    model = keras.saving.load_model(f"{folder}/{kind}.keras", safe_mode=True)
    out = model(ref["x"], training=False)
    diffs[kind] = max(float(np.abs(np.asarray(v) - ref["out_" + k]).max()) for k, v in out.items())
print(json.dumps({"unregistered": unregistered, "diffs": diffs}))
"""


@pytest.mark.parametrize("kind", ["behaviour", "vae"])  # the kinds with custom layers
def test_save_and_safe_mode_reload(models: dict, kind: str, tmp_path: Path) -> None:
    register_custom_objects()
    models[kind].save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    x = _input(kind)
    expected, got = _numpy(models[kind](x, training=False)), _numpy(loaded(x, training=False))
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], atol=1e-6)
    if kind == "vae":
        assert loaded.get_layer("encoder").name == "encoder" and loaded.get_layer("decoder").name == "decoder"


@pytest.mark.slow
def test_save_and_safe_mode_reload_in_a_fresh_process(models: dict, tmp_path: Path) -> None:
    _save_reference(models, tmp_path)
    result = _run(LOAD_SAFE, str(tmp_path), ",".join(KINDS))
    assert result["unregistered"] != "loaded"
    assert result["diffs"] == {kind: pytest.approx(0.0, abs=1e-6) for kind in KINDS}


TF_KERAS_SAME = """
import json, sys, numpy as np, tf_keras
from toolkit.models import build_model
from toolkit.models.detector import detector_losses
folder, kinds = sys.argv[1], sys.argv[2].split(",")
result = {}
for kind in kinds:
    ref = np.load(f"{folder}/{kind}.npz")
    model = build_model(kind, keras=tf_keras)
    weights = [ref[f"w{i}"] for i in range(len([k for k in ref.files if k.startswith("w")]))]
    model.set_weights(weights)  # raises when shapes or order differ
    out = model(ref["x"], training=False)
    diff = max(float(np.abs(np.asarray(out[k]) - ref["out_" + k]).max()) for k in out)
    result[kind] = {"params": int(model.count_params()), "outputs": sorted(out), "diff": diff}
heat = detector_losses(tf_keras)["heatmap"](np.eye(2, dtype="float32").reshape(1, 2, 2, 1),
                                            np.full((1, 2, 2, 1), 0.5, "float32"))
result["focal"] = float(np.asarray(heat)[0])
vae = build_model("vae", keras=tf_keras)
x = np.load(f"{folder}/vae.npz")["x"]
sampled = np.asarray(vae(x, training=True)["reconstruction"])
result["vae_losses"] = len(vae.losses)
result["vae_sampled_diff"] = float(np.abs(sampled - np.asarray(vae(x)["reconstruction"])).max())
print(json.dumps(result))
"""


@pytest.mark.slow
def test_tf_keras_builds_the_same_architecture(models: dict, tmp_path: Path) -> None:
    """Keras 3 weights load into the tf_keras build (same shapes, same order) and give the same outputs."""
    pytest.importorskip("tf_keras", reason="needs the qat extra: pip install '.[qat]'")
    _save_reference(models, tmp_path)
    result = _run(TF_KERAS_SAME, str(tmp_path), ",".join(KINDS))
    for kind, model in models.items():
        assert result[kind]["params"] == model.count_params(), kind
        assert result[kind]["outputs"] == sorted(CONTRACT[kind][2]), kind
        assert result[kind]["diff"] < 1e-4, (kind, result[kind]["diff"])
    # tf_keras losses use TensorFlow ops: 2 centres, each -ln(0.5) * 0.25; 2 negatives -ln(0.5) * 0.25 * 1
    assert result["focal"] == pytest.approx(4 * -np.log(0.5) * 0.25 / 2, rel=1e-5)
    assert result["vae_losses"] == 1 and result["vae_sampled_diff"] > 1e-4  # tf_keras Sampling path
