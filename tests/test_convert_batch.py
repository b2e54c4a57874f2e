"""`toolkit convert --batch N`: a fixed batch of N on every input and output, calibrated and parity-checked with
N-row batches; the int8 model answers row by row as the batch-1 model does; consumers that take one sample per
invoke (the camera pipeline's image models, --target edgetpu, --qat) refuse it in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, require_tf, run_cli

K, HORIZON, M = 3, 12, 6  # a small social multi-modal behaviour model: track (8, 2) + neighbours (6, 5)
DYNAMIC_OPS = {"SHAPE", "PACK", "FILL", "BROADCAST_TO", "GATHER", "WHERE", "RANGE"}


def _behaviour_like(path: Path) -> None:
    """A tiny Transformer with the behaviour kind's tensor names: track and neighbour tokens through one
    MultiHeadAttention + LayerNorm block, heads future (K, 12, 2), mode_probs (K,), crossing (1,)."""
    import keras

    keras.utils.set_random_seed(0)
    track = keras.Input((8, 2), name="track")
    neighbours = keras.Input((M, 5), name="neighbours")
    tokens = keras.layers.Concatenate(axis=1)(
        [keras.layers.Dense(16)(track), keras.layers.Dense(16)(neighbours)]
    )
    h = keras.layers.MultiHeadAttention(num_heads=2, key_dim=8)(tokens, tokens)
    h = keras.layers.LayerNormalization()(keras.layers.Add()([tokens, h]))
    pooled = keras.layers.GlobalAveragePooling1D()(h)
    future = keras.layers.Reshape((K, HORIZON, 2), name="future")(keras.layers.Dense(K * HORIZON * 2)(pooled))
    probs = keras.layers.Dense(K, activation="softmax", name="mode_probs")(pooled)
    crossing = keras.layers.Dense(1, activation="sigmoid", name="crossing")(pooled)
    model = keras.Model([track, neighbours], {"future": future, "mode_probs": probs, "crossing": crossing})
    model.save(path)


def _samples(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    track = np.cumsum(rng.normal(0.0, 0.3, (n, 8, 2)), axis=1).astype(np.float32)
    track -= track[:, -1:]  # relative to the last point, as the behaviour inputs are
    neighbours = rng.normal(0.0, 1.0, (n, M, 5)).astype(np.float32)
    neighbours[..., 4] = rng.random((n, M)) < 0.6
    return {"track": track, "neighbours": neighbours}


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The same float model converted with batch 1 and batch 4 from the same 50 calibration samples."""
    require_tf()
    from toolkit.convert import ConvertConfig, convert

    folder = tmp_path_factory.mktemp("batch")
    model = folder / "behaviour.keras"
    _behaviour_like(model)
    calib = folder / "calib.npz"
    np.savez(calib, **_samples(56, seed=1))
    out = {}
    for batch in (1, 4):
        config = ConvertConfig(calib=str(calib), calib_samples=50, parity_samples=6, batch=batch)
        out[batch] = convert(model, folder / f"b{batch}_int8.tflite", config)
    return out


@pytest.mark.tf
def test_batch_sets_every_input_and_output_shape_and_the_manifest_records_it(converted):
    from toolkit.runtime import Runner

    result = converted[4]
    with Runner(result.tflite_path, num_threads=1) as runner:
        shapes = {n: s.shape for n, s in {**runner.inputs, **runner.outputs}.items()}
    assert shapes == {
        "track": (4, 8, 2),
        "neighbours": (4, M, 5),
        "future": (4, K, HORIZON, 2),
        "mode_probs": (4, K),
        "crossing": (4, 1),
    }
    manifest = result.manifest
    assert manifest["batch"] == 4 and manifest["config"]["batch"] == 4 and manifest["kind"] == "behaviour"
    # parity over all 6 held-back samples, fed as 2 batches of 4 (the second filled up with samples 0 and 1)
    assert manifest["parity"]["samples"] == 6 and manifest["parity"]["batch"] == 4
    assert manifest["parity"]["outputs"]["future"]["max_abs_error"] < 0.2
    assert converted[1].manifest["batch"] == 1


@pytest.mark.tf
def test_batched_graph_is_the_batch1_graph_all_int8_without_dynamic_shape_ops(converted):
    def ops(manifest):
        return {(e["op"], e["dtype"]): e["count"] for e in manifest["op_histogram"]}

    b1, b4 = converted[1].manifest, converted[4].manifest
    assert ops(b4) == ops(b1)
    assert not DYNAMIC_OPS & {op for op, _ in ops(b4)}
    assert b4["precision"] == "int8"
    assert all(e["documented"] for e in b4["non_int8_ops"])  # only LayerNorm's documented NEG island
    # the same calibration samples (every one once, in 4-row batches) give the same int8 ranges
    assert [t["quantization"] for t in b4["inputs"] + b4["outputs"]] == [
        t["quantization"] for t in b1["inputs"] + b1["outputs"]
    ]


@pytest.mark.tf
def test_batched_int8_outputs_match_the_batch1_model_row_by_row(converted):
    from toolkit.eval.predictor import TFLitePredictor
    from toolkit.runtime import Runner

    feeds = _samples(10, seed=7)  # 10 rows: batches of 4, 4 and 2 + 2 padding rows
    with (
        Runner(converted[1].tflite_path, num_threads=1) as one,
        TFLitePredictor(converted[4].tflite_path, threads=1) as batched,
    ):
        assert batched.batch == 4
        got = batched.predict(feeds)
        for name, spec in one.outputs.items():
            assert got[name].shape == (10, *spec.shape[1:])
            for i in range(10):
                want = one.run(**{k: v[i : i + 1] for k, v in feeds.items()})[name][0]
                # int8 tolerance: at most one output quantization step apart
                assert np.abs(got[name][i] - want).max() <= spec.scale * 1.01, (name, i)


@pytest.mark.parametrize(
    "flags, says",
    [
        (["--batch", "0"], "--batch"),
        (["--batch", "four"], "--batch"),
        (["--batch", "5000"], "batch"),
        (["--batch", "4", "--target", "edgetpu"], "edgetpu takes batch 1"),
        (["--batch", "2", "--qat", "1", "--train-data", "mnist:split=train"], "--qat"),
    ],
)
def test_bad_batch_values_exit_2_with_one_line(tmp_path, flags, says):
    model = tmp_path / "m.keras"
    model.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip: the refusals come before the model is read
    result = run_cli("convert", model, "-o", tmp_path / "m.tflite", "--calib", "mnist:split=train", *flags)
    assert_one_line_error(result, 2, says)
    assert not (tmp_path / "m.tflite").exists()


def test_camera_pipeline_image_models_refuse_a_batch_in_one_line():
    from toolkit.errors import UsageError
    from toolkit.pipeline.detect import Detector
    from toolkit.pipeline.segment import Segmenter
    from toolkit.runtime.runner import TensorSpec

    def spec(name, shape):
        return TensorSpec(name, 0, shape, np.dtype(np.int8), 0.1, 0)

    class Batched:
        path = Path("batched_int8.tflite")
        inputs = {"image": spec("image", (4, 96, 96, 3))}
        outputs = {
            "heatmap": spec("heatmap", (4, 24, 24, 1)),
            "box": spec("box", (4, 24, 24, 4)),
            "mask": spec("mask", (4, 96, 96, 4)),
        }

    for stage in (Detector, Segmenter):
        with pytest.raises(UsageError, match="fixed batch of 4 images.*convert it with --batch 1") as err:
            stage(Batched())  # type: ignore[arg-type]
        assert "\n" not in str(err.value)
