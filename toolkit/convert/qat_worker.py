"""The QAT worker process: ``python -m toolkit.convert.qat_worker SPEC.json`` (started by ``toolkit.convert.qat``).

tfmot works only on tf_keras models and switches Keras globally, so quantization-aware training runs in its own
process with ``TF_USE_LEGACY_KERAS=1``: the toolkit builder of the same kind and config is built in tf_keras, the
trained Keras 3 weights are set into it (same order and shapes), tfmot wraps every layer, it fine-tunes on the
given arrays and is converted to full int8. Writes the flatbuffer and
a JSON result; a failure is one line on stderr and exit 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

RANGE_BATCHES = 8  # calibration batches that set the activation ranges before fine-tuning


def losses(kind: str, options: dict[str, Any], tf_keras: Any) -> tuple[dict[str, Any], dict[str, float]]:
    """The training task's loss and loss weight per output name, for the tf_keras QAT model."""
    if kind == "behaviour":
        from toolkit.convert.qat import recorded_options
        from toolkit.train.task_behaviour import _displacement_loss

        task = recorded_options(kind, options)
        return (
            {"future": _displacement_loss(task.fde_weight), "crossing": tf_keras.losses.BinaryCrossentropy()},
            {"future": 1.0, "crossing": task.crossing_weight},
        )
    return _single_losses(kind, options, tf_keras), {}


def _single_losses(kind: str, options: dict[str, Any], tf_keras: Any) -> dict[str, Any]:
    if kind == "classifier":
        return {"probs": "sparse_categorical_crossentropy"}
    if kind == "autoencoder":
        return {"reconstruction": "mse"}
    from toolkit.convert.qat import recorded_options

    if kind == "detector":
        from toolkit.models.detector import detector_losses

        return detector_losses(tf_keras, box_weight=recorded_options(kind, options).box_weight)
    if kind == "segmenter":
        from toolkit.adapters.segment import CLASS_NAMES
        from toolkit.train.task_segmenter import segmentation_loss

        task = recorded_options(kind, options)
        dice = tuple(CLASS_NAMES.index(c) for c in task.dice_classes)
        return {"mask": segmentation_loss(np.asarray(task.class_weights, np.float32), task.dice_weight, dice)}
    raise ValueError(f"no QAT loss for {kind}")


def set_ranges(qat: Any, calib: np.ndarray, batch_size: int) -> int:
    """Start every activation range at the calibration data's, as post-training quantization would.

    tfmot starts each range at [-6, 6] and moves it by an EMA of 0.999 per training step: a short fine-tuning
    ends with ranges still near +-6 (a [0, 1] softmax quantized in steps of 0.05). Eager forward passes in
    training mode over the calibration batches, with tfmot's decay (a constant) swapped for k / (k + 1) while
    they run, make each range the mean of the batch ranges; batch-norm statistics those passes move are put back.
    The swap ends before fine-tuning and export are traced. Returns the batches used."""
    import tensorflow as tf
    from tensorflow_model_optimization.python.core.quantization.keras import quant_ops

    original = quant_ops.MovingAvgQuantize
    moving = [w for w in qat.weights if "moving_" in w.name]
    saved = [w.numpy() for w in moving]
    batches = [calib[i : i + batch_size] for i in range(0, len(calib), batch_size)][:RANGE_BATCHES]
    try:
        for k, batch in enumerate(batches):
            decay = tf.constant(k / (k + 1), tf.float32)
            quant_ops.MovingAvgQuantize = lambda *a, ema_decay=None, _d=decay, **kw: original(
                *a, ema_decay=_d, **kw
            )
            qat(batch, training=True)
    finally:
        quant_ops.MovingAvgQuantize = original
    for w, value in zip(moving, saved, strict=True):
        w.assign(value)
    return len(batches)


def activation_ranges(qat: Any) -> dict[str, list[float]]:
    """Every activation range of a QAT model (weight ranges excluded): variable name -> [min, max]."""
    found: dict[str, list[float]] = {}
    for w in qat.weights:
        name = w.name.split(":")[0]
        if name.endswith("_min") and "kernel" not in name and "depthwise" not in name:
            top = [v for v in qat.weights if v.name.split(":")[0] == name[:-4] + "_max"]
            if top:
                found[name[:-4]] = [float(np.min(w.numpy())), float(np.max(top[0].numpy()))]
    return found


def quantize(model: Any, kind: str, tf_keras: Any, tfmot: Any) -> Any:
    """tfmot's QAT model: every layer annotated, or for the behaviour Transformer only its Dense layers (attention,
    layer norm and the toolkit's own layers have no tfmot quantize config; the converter quantizes them from the
    calibration data)."""
    if kind != "behaviour":
        return tfmot.quantization.keras.quantize_model(model)
    from toolkit.models.layers import custom_objects

    def annotate(layer: Any) -> Any:
        return (
            tfmot.quantization.keras.quantize_annotate_layer(layer)
            if isinstance(layer, tf_keras.layers.Dense)
            else layer
        )

    annotated = tf_keras.models.clone_model(model, clone_function=annotate)
    with tf_keras.utils.custom_object_scope(custom_objects(tf_keras)):
        return tfmot.quantization.keras.quantize_apply(annotated)


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Rebuild the model of ``spec`` in tf_keras with its weights, fine-tune it with tfmot and write the full-int8
    flatbuffer to ``spec["output"]``; return the loss per epoch and range counts. Raises ValueError when the
    built model's weight shapes differ from the ones given."""
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf_keras

    from toolkit.models import build_model

    tf.get_logger().setLevel("ERROR")
    arrays = np.load(spec["arrays"], allow_pickle=False)
    model = build_model(spec["kind"], spec["config"], keras=tf_keras)
    weights = [arrays[f"w{i}"] for i in range(spec["weights"])]
    theirs = [w.shape for w in model.get_weights()]
    if [w.shape for w in weights] != theirs:
        raise ValueError(
            f"the tf_keras build of {spec['kind']} has weights {theirs[:4]}..., the model has "
            f"{[w.shape for w in weights][:4]}...: the config does not describe this model"
        )
    model.set_weights(weights)
    qat = quantize(model, spec["kind"], tf_keras, tfmot)
    prefix = spec.get("freeze_prefix")
    if prefix:
        for layer in qat.layers:
            if layer.name.removeprefix("quant_").startswith(prefix):
                layer.trainable = False
    calib = arrays["calib"]
    range_batches = set_ranges(qat, calib, spec["batch_size"])
    started = activation_ranges(qat)
    loss, loss_weights = losses(spec["kind"], spec.get("task_options") or {}, tf_keras)
    x = arrays["x"]
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x
    y = {name.removeprefix("y:"): arrays[name] for name in arrays.files if name.startswith("y:")}
    sample_weight = {
        name.removeprefix("sw:"): arrays[name] for name in arrays.files if name.startswith("sw:")
    }
    qat.compile(
        tf_keras.optimizers.Adam(spec["learning_rate"]),
        {k: loss[k] for k in y},
        loss_weights={k: loss_weights[k] for k in y} if loss_weights else None,
    )
    tf_keras.utils.set_random_seed(spec["seed"])
    history = qat.fit(
        x,
        y,
        sample_weight=sample_weight or None,
        epochs=spec["epochs"],
        batch_size=spec["batch_size"],
        verbose=0,
        shuffle=True,
    )
    names = list(model.output_names)

    # Export with the model's own input and output names (tfmot renames layers "quant_*"): a batch-1 signature.
    @tf.function(input_signature=[tf.TensorSpec((1, *x.shape[1:]), tf.float32, name=spec["input"])])
    def serve(image: Any) -> dict[str, Any]:
        out = qat(image, training=False)
        if isinstance(out, dict):
            return {k.removeprefix("quant_"): v for k, v in out.items()}
        return dict(zip(names, out if isinstance(out, list | tuple) else [out], strict=True))

    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], qat)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([calib[i : i + 1]] for i in range(len(calib)))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    dtype = {"int8": tf.int8, "uint8": tf.uint8}[spec["io"]]
    converter.inference_input_type = dtype
    converter.inference_output_type = dtype
    Path(spec["output"]).write_bytes(bytes(converter.convert()))
    return {
        "loss": [float(v) for v in history.history["loss"]],
        "epochs": spec["epochs"],
        "samples": int(len(x)),
        "range_batches": range_batches,
        "ranges_from_calibration": sum(1 for lo, hi in started.values() if (lo, hi) != (-6.0, 6.0)),
        "ranges": len(started),
    }


def main() -> int:
    """Entry point: read the spec JSON named by ``argv[1]``, run it, print the result as JSON; return 0, or 1
    after one line on stderr on any failure."""
    import contextlib
    import io
    import warnings

    try:
        spec = json.loads(Path(sys.argv[1]).read_text())
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            result = run(spec)
        print(json.dumps(result))
        return 0
    except Exception as exc:  # reported to the parent as one line
        text = " ".join(str(exc).split())[:300]
        print(f"{type(exc).__name__}: {text}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
