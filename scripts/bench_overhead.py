"""How much does the `toolkit bench` timing loop add to a bare `interpreter.invoke()` loop? (target: < 3%)

Builds a small Keras CNN that runs in about 1 ms (or takes --model), converts it to fp32 TFLite with
tf.lite.TFLiteConverter, loads it once with toolkit.runtime.Runner and alternates, round by round, a bare loop

    for _ in range(n): invoke()

with the harness loop toolkit.bench.measure.time_invokes(invoke, n) (per-invoke clock reads, list stores, GC
paused). Rounds are short (50 invokes) and many, alternating which loop goes first; the figures are medians over
rounds, so a neighbour's burst of load spoils a few rounds of both loops instead of biasing one. On a loaded machine that figure is noisy, so the script also times both loops
around a no-op callable: the harness's own added nanoseconds per invoke, as a fraction of the model's latency. Prints a summary and writes JSON (default build/bench/bench_overhead.json).

    python scripts/bench_overhead.py [--model m.tflite] [--rounds 201] [--runs 50] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from toolkit.bench.measure import time_invokes
from toolkit.fileio import write_json_atomic
from toolkit.runtime import Runner


def build_model(path: Path, width: int, args_size: int) -> None:
    """A MobileNet-like CNN; ``width`` (channels) and ``args_size`` (input side) set its latency."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    inp = keras.Input((args_size, args_size, 3), batch_size=1, name="image")
    x = keras.layers.Conv2D(width, 3, strides=2, padding="same", activation="relu6")(inp)
    for filters, stride in ((2 * width, 2), (2 * width, 1), (4 * width, 2), (4 * width, 1)):
        x = keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", activation="relu6")(x)
        x = keras.layers.Conv2D(filters, 1, activation="relu6")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(10, activation="softmax", name="probs")(x))
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())


def bare_loop(invoke, n: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(n):
        invoke()
    return (time.perf_counter_ns() - start) / n / 1e6


def harness_loop(invoke, n: int) -> tuple[float, float]:
    start = time.perf_counter_ns()
    samples = time_invokes(invoke, n)
    return (time.perf_counter_ns() - start) / n / 1e6, float(np.median(samples))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a .tflite model (default: build a ~1 ms Keras CNN)")
    parser.add_argument("--width", type=int, default=48, help="channels of the built CNN (sets its latency)")
    parser.add_argument(
        "--size", type=int, default=128, help="input side of the built CNN (sets its latency)"
    )
    parser.add_argument("--rounds", type=int, default=201)
    parser.add_argument("--runs", type=int, default=50, help="invokes per loop per round")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("build/bench/bench_overhead.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or Path(tmp) / "overhead_cnn_fp32.tflite"
        if args.model is None:
            build_model(model, args.width, args.size)
        with Runner(model, num_threads=args.threads) as runner:
            rng = np.random.default_rng(0)
            runner.set_inputs(
                {n: rng.random(s.shape, dtype=np.float32).astype(s.dtype) for n, s in runner.inputs.items()}
            )
            invoke = runner.interpreter.invoke
            bare_loop(invoke, 200)  # warm-up
            bare, harness, ratios, medians = [], [], [], []
            for r in range(args.rounds):
                # Alternate which loop goes first so drift and neighbours' load hit both equally.
                if r % 2 == 0:
                    b = bare_loop(invoke, args.runs)
                    h, med = harness_loop(invoke, args.runs)
                else:
                    h, med = harness_loop(invoke, args.runs)
                    b = bare_loop(invoke, args.runs)
                bare.append(b)
                harness.append(h)
                medians.append(med)
                ratios.append(h / b - 1.0)
            size = model.stat().st_size

    # The harness's own cost per invoke, free of model noise: both loops around a no-op callable.
    def noop() -> None:
        return None

    loop_ns = [((harness_loop(noop, 100_000)[0] - bare_loop(noop, 100_000)) * 1e6) for _ in range(5)]
    added_ns = statistics.median(loop_ns)
    overhead = statistics.median(ratios)
    result = {
        "model": str(args.model)
        if args.model
        else f"built Keras CNN {args.size}x{args.size}x3 width {args.width} (fp32)",
        "model_bytes": size,
        "threads": args.threads,
        "rounds": args.rounds,
        "runs_per_round": args.runs,
        "bare_ms_per_invoke_median": statistics.median(bare),
        "harness_ms_per_invoke_median": statistics.median(harness),
        "harness_reported_p50_ms_median": statistics.median(medians),
        "overhead_fraction_median": overhead,
        "overhead_fraction_of_medians": statistics.median(harness) / statistics.median(bare) - 1.0,
        "overhead_fraction_per_round": ratios,
        "harness_added_ns_per_invoke_noop": added_ns,
        "harness_added_fraction_noop": added_ns / 1e6 / statistics.median(bare),
        "within_3_percent": abs(overhead) < 0.03,
        "host": {
            "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "cores": os.cpu_count(),
        },
    }
    write_json_atomic(args.out, result)
    print(
        f"bare invoke loop   : {result['bare_ms_per_invoke_median']:.4f} ms per invoke (median of {args.rounds} "
        f"rounds x {args.runs})"
    )
    print(
        f"bench harness loop : {result['harness_ms_per_invoke_median']:.4f} ms per invoke (reported p50 "
        f"{result['harness_reported_p50_ms_median']:.4f} ms)"
    )
    print(
        f"harness overhead   : {overhead * 100:+.2f}% (median of per-round paired ratios; target within 3%)"
    )
    print(f"ratio of medians   : {result['overhead_fraction_of_medians'] * 100:+.2f}%")
    print(
        f"harness cost alone : {added_ns:.0f} ns per invoke around a no-op = "
        f"{result['harness_added_fraction_noop'] * 100:.3f}% of this model's bare latency"
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
