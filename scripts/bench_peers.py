"""One model, several runtimes, one run: LiteRT (fp32, int8), ONNX Runtime (via tf2onnx) and OpenCV DNN's TFLite
importer (fp32, int8), interleaved round by round so machine noise hits every runtime alike.

Reports p50/p90 latency of a full call (set input, run, fetch output), the p50 ratio against LiteRT fp32, and output
agreement (max abs difference against the Keras model on real COCO128 images). A runtime that cannot load the
model is listed with its one-line error instead of silently dropped. Writes JSON (default build/bench/bench_peers.json).

    python scripts/bench_peers.py [--keras model.keras] [--threads 1] [--rounds 30] [--per-round 10]

Without --keras it builds a small MobileNet-like Keras CNN (96x96x3). Needs the train and peers extras.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from toolkit.errors import UsageError, one_line, run_script
from toolkit.fileio import write_json_atomic
from toolkit.paths import shared_path
from toolkit.runtime import Runner


def build_cnn(keras, size: int = 96):
    """A MobileNet-like CNN that outputs logits. He-initialised so activations keep their scale through the
    untrained layers: a softmax over near-zero logits would be ~0.1 everywhere and make agreement meaningless."""
    keras.utils.set_random_seed(0)
    init = {"kernel_initializer": "he_normal"}
    inp = keras.Input((size, size, 3), batch_size=1, name="image")
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu6", **init)(inp)
    for filters, stride in ((64, 2), (64, 1), (128, 2), (128, 1), (256, 2)):
        # he_normal counts all channels as fan-in for a depthwise kernel; each output sees only 3x3 inputs.
        x = keras.layers.DepthwiseConv2D(
            3,
            strides=stride,
            padding="same",
            activation="relu6",
            depthwise_initializer=keras.initializers.RandomNormal(stddev=(2 / 9) ** 0.5),
        )(x)
        x = keras.layers.Conv2D(filters, 1, activation="relu6", **init)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(10, name="logits", **init)(x))


def coco_images(height: int, width: int, count: int) -> np.ndarray:
    """``count`` real COCO128 images, RGB float32 in [0, 1], resized to (height, width)."""
    import cv2

    files = sorted(shared_path("data", "coco128", "images", "train2017").glob("*.jpg"))[:count]
    out = [
        cv2.cvtColor(
            cv2.resize(cv2.imread(str(f)), (width, height), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB
        )
        for f in files
    ]
    return np.stack(out).astype(np.float32) / 255.0


def convert(tf, model, path: Path, calib: np.ndarray | None) -> None:
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if calib is not None:  # full int8 with int8 I/O, calibrated on real images
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([img[None]] for img in calib)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    path.write_bytes(conv.convert())


def litert(path: Path, threads: int) -> tuple[Callable, Callable]:
    runner = Runner(path, num_threads=threads)
    ((name, spec),) = runner.inputs.items()
    out_name = next(iter(runner.outputs))

    def predict(x: np.ndarray) -> np.ndarray:
        return runner.run(**{name: x[None]})[out_name]

    def timed(x: np.ndarray) -> Callable[[], object]:
        feeds = {name: spec.quantize(x[None])}
        return lambda: runner.run_raw(feeds)

    return predict, timed


def onnxruntime_peer(tf, model, threads: int) -> tuple[Callable, Callable]:
    import onnxruntime as ort
    import tf2onnx

    signature = (tf.TensorSpec((1, *model.input_shape[1:]), tf.float32, name="image"),)
    onnx_model, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=17)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        onnx_model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name

    def predict(x: np.ndarray) -> np.ndarray:
        return session.run(None, {name: x[None]})[0]

    def timed(x: np.ndarray) -> Callable[[], object]:
        feed = {name: np.ascontiguousarray(x[None])}
        return lambda: session.run(None, feed)

    return predict, timed


def opencv_peer(path: Path, threads: int, probe: np.ndarray) -> tuple[Callable, Callable]:
    import cv2

    cv2.setNumThreads(threads)
    net = cv2.dnn.readNetFromTFLite(str(path))
    layouts = [lambda x: np.ascontiguousarray(x[None].transpose(0, 3, 1, 2)), lambda x: x[None]]  # NCHW, NHWC
    errors = []
    for layout in layouts:  # OpenCV's importer expects NCHW blobs for NHWC TFLite models; try both
        try:
            net.setInput(layout(probe))
            net.forward()
        except cv2.error as exc:
            errors.append(one_line(str(exc), 160))
            continue

        def predict(x: np.ndarray, layout=layout) -> np.ndarray:
            net.setInput(layout(x))
            return net.forward()

        def timed(x: np.ndarray, layout=layout) -> Callable[[], object]:
            blob = layout(x)

            def call() -> object:
                net.setInput(blob)
                return net.forward()

            return call

        return predict, timed
    raise RuntimeError(errors[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--keras",
        type=Path,
        help="a .keras model with one image input and one output, e.g. the zoo segmenter (default: build a CNN)",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds")
    parser.add_argument("--per-round", type=int, default=10, help="timed calls per runtime per round")
    parser.add_argument("--out", type=Path, default=Path("build/bench/bench_peers.json"))
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    model = keras.saving.load_model(args.keras, compile=False) if args.keras else build_cnn(keras)
    if len(model.outputs) != 1:
        raise UsageError(f"{args.keras} has {len(model.outputs)} outputs; give a one-output model")
    model = keras.Model(
        model.inputs, model.outputs[0]
    )  # named (dict) outputs -> one plain tensor for every peer
    _, height, width, _ = model.input_shape
    calib = coco_images(height, width, 100)
    evaluation = calib[:16]
    reference = np.concatenate([np.asarray(model(img[None])) for img in evaluation])

    tmp = Path(tempfile.mkdtemp(prefix="bench_peers_"))
    fp32, int8 = tmp / "model_fp32.tflite", tmp / "model_int8.tflite"
    convert(tf, model, fp32, None)
    convert(tf, model, int8, calib)
    peers: dict[str, Callable[[], tuple[Callable, Callable]]] = {
        "litert_fp32": lambda: litert(fp32, args.threads),
        "litert_int8": lambda: litert(int8, args.threads),
        "onnxruntime_fp32": lambda: onnxruntime_peer(tf, model, args.threads),
        "opencv_dnn_fp32": lambda: opencv_peer(fp32, args.threads, evaluation[0]),
        "opencv_dnn_int8": lambda: opencv_peer(int8, args.threads, evaluation[0]),
    }
    loaded, table = {}, {}
    for name, make in peers.items():
        try:
            predict, timed = make()
            outputs = np.concatenate([np.asarray(predict(img)).reshape(1, -1) for img in evaluation])
            diff = float(np.abs(outputs - reference.reshape(len(evaluation), -1)).max())
            loaded[name] = timed(evaluation[0])
            table[name] = {
                "loaded": True,
                "max_abs_diff_vs_keras": diff,
                "max_abs_diff_relative": diff / float(np.abs(reference).max()),
                "samples_ms": [],
            }
        except Exception as exc:  # a peer that cannot load this model is a result, not a crash
            table[name] = {"loaded": False, "error": f"{type(exc).__name__}: {one_line(str(exc), 200)}"}

    names = list(loaded)
    for call in loaded.values():  # warm-up
        for _ in range(20):
            call()
    clock = time.perf_counter_ns
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:  # rotate who goes first
            call, samples = loaded[name], table[name]["samples_ms"]
            for _ in range(args.per_round):
                t0 = clock()
                call()
                samples.append((clock() - t0) / 1e6)

    base = np.median(table["litert_fp32"]["samples_ms"]) if "litert_fp32" in loaded else None
    for name in names:
        samples = np.asarray(table[name].pop("samples_ms"))
        p50, p90 = np.percentile(samples, [50, 90])
        table[name].update(
            {
                "p50_ms": float(p50),
                "p90_ms": float(p90),
                "mean_ms": float(samples.mean()),
                "count": int(samples.size),
                "p50_ratio_vs_litert_fp32": float(p50 / base) if base else None,
            }
        )
    result = {
        "model": str(args.keras) if args.keras else "built MobileNet-like Keras CNN 96x96x3",
        "threads": args.threads,
        "rounds": args.rounds,
        "per_round": args.per_round,
        "sizes_bytes": {"tflite_fp32": fp32.stat().st_size, "tflite_int8": int8.stat().st_size},
        "agreement": "max abs difference of the model outputs vs Keras on 16 COCO128 images (relative: divided by "
        "the largest |Keras output|)",
        "keras_output_abs_max": float(np.abs(reference).max()),
        "versions": {
            p: version(p)
            for p in ("ai-edge-litert", "onnxruntime", "tf2onnx", "opencv-python-headless", "tensorflow")
        },
        "host": {"machine": platform.machine(), "python": platform.python_version(), "cores": os.cpu_count()},
        "runtimes": table,
    }
    write_json_atomic(args.out, result)
    print(
        f"{'runtime':18} {'p50 ms':>8} {'p90 ms':>8} {'vs litert fp32':>15} {'max|diff| vs keras':>19} "
        f"{'relative':>9}"
    )
    for name, row in table.items():
        if row["loaded"]:
            ratio = row["p50_ratio_vs_litert_fp32"]
            print(
                f"{name:18} {row['p50_ms']:8.3f} {row['p90_ms']:8.3f} {ratio:14.2f}x "
                f"{row['max_abs_diff_vs_keras']:19.2e} {row['max_abs_diff_relative']:9.2e}"
            )
        else:
            print(f"{name:18} did not load: {row['error']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main, "bench_peers.py"))
