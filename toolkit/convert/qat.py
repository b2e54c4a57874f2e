"""Quantization-aware training for ``toolkit convert --qat EPOCHS --train-data DATA``.

The architecture is rebuilt in tf_keras by the toolkit's own builder from the model's training manifest
(``MODEL.train.json`` beside it, written by ``toolkit train``), the trained weights are carried over, and tfmot
fine-tunes it in a separate process (:mod:`toolkit.convert.qat_worker`; tfmot switches Keras globally). The
result is converted to full int8 there and comes back as a flatbuffer; parity, manifest and atomic writes are
the converter's as for any conversion.

Supported kinds: classifier (labelled images) and autoencoder (images) of the SPEC; detector and segmenter on
their own training task's items (``DetectorItems`` / ``SegmenterItems``: the recorded task options' extra data,
augmentation, heatmap/box targets or masks, and the task's loss), at the full model input, at most one epoch of
the task and ``FRAME_LIMIT`` frames. Before fine-tuning, every activation range starts at the calibration data's
(:func:`toolkit.convert.qat_worker.set_ranges`; tfmot's own start is [-6, 6]). The behaviour Transformer was tried
(2026-12-05: trajectory windows, the task's loss, Dense-only annotation): its QAT model trains but does not
convert (TFLite's FULLY_CONNECTED prepare check ``scale_diff / output_scale <= 0.02`` fails on an annotated Dense
over a sequence), so it is refused rather than half-supported.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import ToolkitError, UsageError, one_line
from toolkit.fileio import temp_folder

QAT_KINDS = ("classifier", "autoencoder", "segmenter", "detector", "behaviour")
FRAME_LIMIT = 300  # full-size training items held for detector/segmenter QAT (384x480x3 uint8: 0.55 MB each)
WHY_NOT: dict[str, str] = {}  # kinds --qat refuses, and why
TIMEOUT_S = 3600
BATCH_SIZE = {
    "classifier": 64,
    "autoencoder": 64,
    "segmenter": 8,
    "detector": 8,
    "behaviour": 64,
}  # full frames: small batches


@dataclass(frozen=True)
class QatConfig:
    """Quantization-aware fine-tuning before int8 conversion (``toolkit convert --qat EPOCHS``): how many epochs,
    on which training data SPEC, and its optimizer settings."""

    epochs: int  # fine-tuning epochs
    train_data: str  # data SPEC of the training items
    learning_rate: float = 1e-4  # fine-tuning a trained model: small steps
    batch_size: int | None = None  # None = per kind: BATCH_SIZE
    limit: int | None = 5000  # training samples drawn from the SPEC (seeded)


def task_options(model_path: Path) -> dict[str, Any]:
    """The training task's options recorded in ``MODEL.train.json`` (e.g. a segmenter's class weights)."""
    manifest = model_path.with_suffix(".train.json")
    return dict(json.loads(manifest.read_text()).get("task_options") or {}) if manifest.is_file() else {}


def recorded_options(kind: str, options: dict[str, Any]) -> Any:
    """The training task's options dataclass for a detector, segmenter or behaviour model from what ``MODEL.train.json``
    recorded (keys this version does not know are dropped, missing ones take the defaults)."""
    import dataclasses

    if kind == "detector":
        from toolkit.train.task_detector import DetectorTaskOptions as Options
    elif kind == "behaviour":
        from toolkit.train.task_behaviour import BehaviourOptions as Options
    else:
        from toolkit.train.task_segmenter import SegmenterTaskOptions as Options
    fields = {f.name for f in dataclasses.fields(Options)}
    return Options(**{k: v for k, v in options.items() if k in fields})


def builder_config(model_path: Path) -> tuple[str, dict[str, Any]]:
    """(kind, builder config) from ``MODEL.train.json``; UsageError saying what QAT needs when it is missing."""
    manifest = model_path.with_suffix(".train.json")
    if not manifest.is_file():
        raise UsageError(
            f"--qat rebuilds {model_path.name} in tf_keras from its training manifest "
            f"({manifest.name}, written by toolkit train) and it is not there; QAT of models trained "
            "elsewhere is not supported yet"
        )
    data = json.loads(manifest.read_text())
    return str(data["kind"]), dict(data["model"]["config"])


def _task_items(
    kind: str, qat: QatConfig, model_path: Path, input_hw: tuple[int, int], seed: int, count: int
) -> list[tuple[np.ndarray, Any]]:
    """The first ``count`` augmented items (at most one epoch) of the training task itself -- its extra data,
    augmentation and targets -- at the whole model input: the network fine-tunes on what it was trained on, at
    the size it is converted at."""
    import dataclasses

    from toolkit.data.spec import parse_spec
    from toolkit.models import config_for
    from toolkit.train.config import TrainConfig

    manifest = json.loads(model_path.with_suffix(".train.json").read_text())
    model_config = config_for(kind, dict(manifest["model"]["config"]))
    config = TrainConfig(seed=seed)
    options = recorded_options(kind, task_options(model_path))
    if kind == "detector":
        from toolkit.train.task_detector import DetectorItems

        options = dataclasses.replace(options, crop_height=0, crop_width=0)
        val = (manifest.get("train_config") or {}).get("val_data") or qat.train_data
        data: Any = DetectorItems(parse_spec(qat.train_data), parse_spec(val), config, options, model_config)
    else:
        from toolkit.train.task_segmenter import SegmenterItems

        data = SegmenterItems(parse_spec(qat.train_data), config, options, model_config, train_hw=input_hw)
    size = data.train_size if kind == "detector" else data.per_epoch
    items = list(itertools.islice(data.train_epoch(0), min(count, size)))
    if not items:
        raise UsageError(f"--train-data {qat.train_data}: no training items")
    return items


def _behaviour_arrays(qat: QatConfig, model_path: Path, seed: int) -> dict[str, np.ndarray]:
    """Trajectory windows of the SPEC and the task's extra data, with the task's loss weights (recording balance;
    crossing only where labelled), at most ``qat.limit`` of them (seeded)."""
    from toolkit.data.spec import parse_spec
    from toolkit.models import config_for
    from toolkit.train.task_behaviour import _windows, training_arrays

    manifest = json.loads(model_path.with_suffix(".train.json").read_text())
    model_config = config_for("behaviour", dict(manifest["model"]["config"]))
    if getattr(model_config, "modes", 1) > 1 or getattr(model_config, "neighbours", 0) > 0:
        raise UsageError(
            f"{model_path.name}: quantization-aware training supports single-path behaviour models only (this one "
            "has modes > 1 or neighbours > 0); convert it with post-training int8 (the default)"
        )
    options = recorded_options("behaviour", task_options(model_path))
    specs = [parse_spec(qat.train_data), *([parse_spec(options.extra_data)] if options.extra_data else [])]
    windows, future_w, crossing_w, _ = _windows(specs, model_config.observed, model_config.horizon, options)
    track, future, crossing = training_arrays(windows)
    count = min(len(track), qat.limit or len(track))
    pick = np.sort(np.random.default_rng(seed).choice(len(track), count, replace=False))
    return {
        "x": track[pick],
        "y:future": future[pick],
        "y:crossing": crossing[pick],
        "sw:future": future_w[pick],
        "sw:crossing": crossing_w[pick],
    }


def _training_arrays(
    kind: str, qat: QatConfig, model_path: Path, input_shape: tuple[int, ...], seed: int
) -> dict[str, np.ndarray]:
    """The worker's arrays: ``x`` (float32 [0, 1], or uint8 it scales) and ``y:NAME`` per output trained.

    Classifier and autoencoder: labelled images of the SPEC. Detector and segmenter: items of their own training
    task (:func:`_task_items`: extra data, augmentation, heatmap/box targets or masks with ignore pixels),
    at most ``FRAME_LIMIT`` full-size frames."""
    if kind in ("detector", "segmenter"):
        count = min(qat.limit or FRAME_LIMIT, FRAME_LIMIT)
        items = _task_items(kind, qat, model_path, tuple(input_shape[:2]), seed, count)
        x = np.stack([image for image, _ in items]).astype(np.uint8)
        if kind == "segmenter":
            return {"x": x, "y:mask": np.stack([mask for _, mask in items]).astype(np.int32)}
        return {"x": x, **{f"y:{name}": np.stack([t[name] for _, t in items]) for name in ("heatmap", "box")}}
    if kind == "behaviour":
        return _behaviour_arrays(qat, model_path, seed)
    from toolkit.data.labelled_images import load_labelled_images

    data = load_labelled_images(qat.train_data, input_shape, "train", limit=qat.limit)
    output = "probs" if kind == "classifier" else "reconstruction"
    return {"x": data.images, f"y:{output}": data.labels if kind == "classifier" else data.images}


def qat_flatbuffer(
    model_path: Path, model: Any, calib: Any, io: str, qat: QatConfig, seed: int, say: Any = lambda _: None
) -> tuple[bytes, dict[str, Any]]:
    """Run the worker; returns the full-int8 flatbuffer and what the fine-tuning did."""
    kind, config = builder_config(model_path)
    if kind not in QAT_KINDS:
        raise UsageError(
            f"--qat supports {', '.join(QAT_KINDS)} models, not {kind}: {WHY_NOT.get(kind, 'not wired')}"
        )
    if calib is None:
        raise UsageError("--qat needs --calib DATA for the int8 conversion after training")
    name, samples = next(iter(calib.calibrate.items()))
    arrays = _training_arrays(kind, qat, model_path, tuple(samples.shape[1:]), seed)
    weights = model.get_weights()
    batch_size = qat.batch_size or BATCH_SIZE[kind]
    with temp_folder("toolkit-qat") as tmp:
        folder = Path(tmp)
        np.savez(
            folder / "arrays.npz",
            calib=calib.calibrate[name],
            **arrays,
            **{f"w{i}": w for i, w in enumerate(weights)},
        )
        spec = {
            "kind": kind,
            "config": config,
            "arrays": str(folder / "arrays.npz"),
            "weights": len(weights),
            "epochs": qat.epochs,
            "learning_rate": qat.learning_rate,
            "batch_size": batch_size,
            "seed": seed,
            "io": io,
            "output": str(folder / "qat.tflite"),
            "input": name,
            "task_options": task_options(model_path),
            # a backbone the training run kept frozen stays frozen (its ranges are still observed)
            "freeze_prefix": "mnv2_" if task_options(model_path).get("freeze_backbone") else None,
        }
        (folder / "spec.json").write_text(json.dumps(spec))
        env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
        say(
            f"quantization-aware training: {qat.epochs} epoch(s) on {len(arrays['x'])} samples (tf_keras + tfmot)"
        )
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "toolkit.convert.qat_worker", str(folder / "spec.json")],
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
                env=env,
            )
        except subprocess.TimeoutExpired:
            raise ToolkitError(f"quantization-aware training did not finish in {TIMEOUT_S} s") from None
        if proc.returncode != 0:
            lines = [line for line in proc.stderr.splitlines() if line.strip()]
            raise ToolkitError(
                f"quantization-aware training failed: {one_line(lines[-1] if lines else 'no output')}"
            )
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        flatbuffer = (folder / "qat.tflite").read_bytes()
    return flatbuffer, {
        "kind": kind,
        "train_data": qat.train_data,
        "learning_rate": qat.learning_rate,
        "batch_size": batch_size,
        **result,
    }
