"""Quantization-aware training for ``toolkit convert --qat EPOCHS --train-data DATA``.

The architecture is rebuilt in tf_keras by the toolkit's own builder from the model's training manifest
(``MODEL.train.json`` beside it, written by ``toolkit train``), the trained weights are carried over, and tfmot
fine-tunes it in a separate process (:mod:`toolkit.convert.qat_worker`; tfmot switches Keras globally). The
result is converted to full int8 there and comes back as a flatbuffer; parity, manifest and atomic writes are
the converter's as for any conversion.

Supported kinds: classifier (labelled images), autoencoder (images) and segmenter (letterboxed frames and masks
of a segmentation SPEC, per-pixel cross-entropy with ignore pixels weighted 0; at most 300 frames). The behaviour Transformer was tried
(2026-12-05: trajectory windows, the task's loss, Dense-only annotation): its QAT model trains but does not
convert (TFLite's FULLY_CONNECTED prepare check ``scale_diff / output_scale <= 0.02`` fails on an annotated Dense
over a sequence), so it is refused rather than half-supported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import ToolkitError, UsageError, one_line

QAT_KINDS = ("classifier", "autoencoder", "segmenter")
SEGMENTER_LIMIT = 300  # full-size frames held in memory for segmenter QAT (384x480x3 float32: 2.2 MB each)
WHY_NOT = {  # kinds --qat refuses, and why
    "behaviour": "its QAT model trains but fails TFLite's FULLY_CONNECTED scale check at conversion",
    "detector": "its QAT training data (boxes -> heatmap targets) is not wired yet",
}
TIMEOUT_S = 3600


@dataclass(frozen=True)
class QatConfig:
    epochs: int
    train_data: str
    learning_rate: float = 1e-4  # fine-tuning a trained model: small steps
    batch_size: int = 64
    limit: int | None = 5000  # training samples drawn from the SPEC (seeded)


def task_options(model_path: Path) -> dict[str, Any]:
    """The training task's options recorded in ``MODEL.train.json`` (e.g. a segmenter's class weights)."""
    manifest = model_path.with_suffix(".train.json")
    return dict(json.loads(manifest.read_text()).get("task_options") or {}) if manifest.is_file() else {}


def builder_config(model_path: Path) -> tuple[str, dict[str, Any]]:
    """(kind, builder config) from ``MODEL.train.json``; UsageError saying what QAT needs when it is missing."""
    manifest = model_path.with_suffix(".train.json")
    if not manifest.is_file():
        raise UsageError(f"--qat rebuilds {model_path.name} in tf_keras from its training manifest "
                         f"({manifest.name}, written by toolkit train) and it is not there; QAT of models trained "
                         "elsewhere is not supported yet")
    data = json.loads(manifest.read_text())
    return str(data["kind"]), dict(data["model"]["config"])


def _training_arrays(kind: str, qat: QatConfig, input_shape: tuple[int, ...], seed: int,
                     options: dict[str, Any]) -> dict[str, np.ndarray]:
    """``x`` and ``y`` (and per-pixel weights ``sw`` for segmenters: the training run's class weights, ignore
    pixels 0) for the worker, from the training SPEC."""
    if kind == "segmenter":
        from toolkit.data.spec import parse_spec
        from toolkit.eval.segmenter_data import IGNORE, load_samples, model_input

        samples = load_samples(parse_spec(qat.train_data))
        count = min(len(samples), qat.limit or len(samples), SEGMENTER_LIMIT)
        index = np.sort(np.random.default_rng(seed).choice(len(samples), count, replace=False))
        h, w = input_shape[:2]
        x = np.empty((count, h, w, 3), np.float32)
        y = np.zeros((count, h, w), np.uint8)
        sw = np.zeros((count, h, w), np.float32)
        class_weights = np.asarray(options.get("class_weights") or [1.0] * 256, np.float32)
        for i, j in enumerate(index):
            image, mask = samples.load(int(j))
            boxed, boxed_mask, _ = model_input(image, mask, (h, w))
            x[i] = boxed.astype(np.float32) / 255.0
            valid = boxed_mask != IGNORE
            y[i] = np.where(valid, boxed_mask, 0)
            sw[i] = np.where(valid, class_weights[np.minimum(y[i], len(class_weights) - 1)], 0.0)
        return {"x": x, "y": y, "sw": sw}
    from toolkit.eval.classifier import load_labelled_images

    data = load_labelled_images(qat.train_data, input_shape, "train", limit=qat.limit)
    return {"x": data.images, "y": data.labels if kind == "classifier" else data.images}


def qat_flatbuffer(model_path: Path, model: Any, calib: Any, io: str, qat: QatConfig, seed: int,
                   say: Any = lambda _: None) -> tuple[bytes, dict[str, Any]]:
    """Run the worker; returns the full-int8 flatbuffer and what the fine-tuning did."""
    kind, config = builder_config(model_path)
    if kind not in QAT_KINDS:
        raise UsageError(f"--qat supports {', '.join(QAT_KINDS)} models, not {kind}: "
                         f"{WHY_NOT.get(kind, 'not wired')}")
    if calib is None:
        raise UsageError("--qat needs --calib DATA for the int8 conversion after training")
    name, samples = next(iter(calib.calibrate.items()))
    arrays = _training_arrays(kind, qat, tuple(samples.shape[1:]), seed, task_options(model_path))
    weights = model.get_weights()
    with tempfile.TemporaryDirectory(prefix="toolkit-qat-") as tmp:
        folder = Path(tmp)
        np.savez(folder / "arrays.npz", calib=calib.calibrate[name], **arrays,
                 **{f"w{i}": w for i, w in enumerate(weights)})
        spec = {"kind": kind, "config": config, "arrays": str(folder / "arrays.npz"), "weights": len(weights),
                "epochs": qat.epochs, "learning_rate": qat.learning_rate, "batch_size": qat.batch_size,
                "seed": seed, "io": io, "output": str(folder / "qat.tflite"), "input": name,
                # a backbone the training run kept frozen stays frozen (its ranges are still observed)
                "freeze_prefix": "mnv2_" if task_options(model_path).get("freeze_backbone") else None}
        (folder / "spec.json").write_text(json.dumps(spec))
        env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
        say(f"quantization-aware training: {qat.epochs} epoch(s) on {len(arrays['x'])} samples (tf_keras + tfmot)")
        try:
            proc = subprocess.run([sys.executable, "-m", "toolkit.convert.qat_worker", str(folder / "spec.json")],
                                  capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
        except subprocess.TimeoutExpired:
            raise ToolkitError(f"quantization-aware training did not finish in {TIMEOUT_S} s") from None
        if proc.returncode != 0:
            lines = [line for line in proc.stderr.splitlines() if line.strip()]
            raise ToolkitError(f"quantization-aware training failed: {one_line(lines[-1] if lines else 'no output')}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        flatbuffer = (folder / "qat.tflite").read_bytes()
    return flatbuffer, {"kind": kind, "train_data": qat.train_data, "learning_rate": qat.learning_rate,
                        "batch_size": qat.batch_size, **result}
