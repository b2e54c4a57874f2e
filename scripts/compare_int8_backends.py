#!/usr/bin/env python3
"""Experiment: the classic TFLite converter vs ai-edge-quantizer (--backend aeq) on one real model.

Trains a small MNIST CNN (seeded, a few seconds), converts it to full int8 with both backends from the same
calibration SPEC, and reports size, top-1 on the MNIST test split (toolkit eval's code), max |err| against Keras
and p50 latency (1 thread, alternating, one process). Writes JSON to build/bench/int8_backends.json.

    python scripts/compare_int8_backends.py
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from toolkit.convert import ConvertConfig, convert
from toolkit.eval import EvalConfig, evaluate
from toolkit.eval.auto_float import p50_ms
from toolkit.fileio import write_json_atomic

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    import keras

    from toolkit.data.labelled_images import load_labelled_images

    keras.utils.set_random_seed(0)
    data = load_labelled_images("mnist:split=train", (28, 28, 1))
    image = keras.Input((28, 28, 1), name="image")
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(image)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(32, 1, strides=2, activation="relu")(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(image, keras.layers.Dense(10, activation="softmax", name="probs")(x))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(data.images, data.labels, epochs=5, batch_size=64, verbose=0)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "cnn.keras"
        model.save(src)
        rows["float"] = {
            "top1": evaluate(src, "mnist:split=test", EvalConfig(baselines=False)).metrics["top1"]
        }
        outs = {}
        for backend in ("tflite", "aeq"):
            out = Path(tmp) / f"cnn_{backend}.tflite"
            manifest = convert(
                src, out, ConvertConfig(calib="mnist:split=train,limit=400", backend=backend)
            ).manifest
            outs[backend] = out
            rows[backend] = {
                "size_bytes": out.stat().st_size,
                "top1": evaluate(out, "mnist:split=test", EvalConfig(baselines=False)).metrics["top1"],
                "parity_max_abs_error": manifest["parity"]["outputs"]["probs"]["max_abs_error"],
            }
        for backend in ("tflite", "aeq"):
            rows[backend]["p50_ms"] = []
        for _ in range(3):  # alternate: the host is shared and noisy
            for backend in ("tflite", "aeq"):
                rows[backend]["p50_ms"].append(round(p50_ms(outs[backend], runs=300), 4))
    for backend in ("tflite", "aeq"):
        rows[backend]["p50_ms_median"] = float(np.median(rows[backend]["p50_ms"]))
    out_path = REPO / "build" / "bench" / "int8_backends.json"
    write_json_atomic(out_path, rows)
    print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
