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

LOSSES = {"classifier": ("probs", "sparse_categorical_crossentropy"), "autoencoder": ("reconstruction", "mse"),
          "segmenter": ("mask", "sparse_categorical_crossentropy")}  # segmenter: per-pixel, ignore pixels weigh 0


def run(spec: dict[str, Any]) -> dict[str, Any]:
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
        raise ValueError(f"the tf_keras build of {spec['kind']} has weights {theirs[:4]}..., the model has "
                         f"{[w.shape for w in weights][:4]}...: the config does not describe this model")
    model.set_weights(weights)
    qat = tfmot.quantization.keras.quantize_model(model)
    prefix = spec.get("freeze_prefix")
    if prefix:
        for layer in qat.layers:
            if layer.name.removeprefix("quant_").startswith(prefix):
                layer.trainable = False
    output, loss = LOSSES[spec["kind"]]
    qat.compile(tf_keras.optimizers.Adam(spec["learning_rate"]), {output: loss})
    x, y = arrays["x"], arrays["y"]
    weights = {output: arrays["sw"]} if "sw" in arrays.files else None
    tf_keras.utils.set_random_seed(spec["seed"])
    history = qat.fit(x, {output: y}, sample_weight=weights, epochs=spec["epochs"], batch_size=spec["batch_size"],
                      verbose=0, shuffle=True)
    calib = arrays["calib"]
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
    converter.representative_dataset = lambda: ([calib[i:i + 1]] for i in range(len(calib)))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    dtype = {"int8": tf.int8, "uint8": tf.uint8}[spec["io"]]
    converter.inference_input_type = dtype
    converter.inference_output_type = dtype
    Path(spec["output"]).write_bytes(bytes(converter.convert()))
    return {"loss": [float(v) for v in history.history["loss"]], "epochs": spec["epochs"], "samples": int(len(x))}


def main() -> int:
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
