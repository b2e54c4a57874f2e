"""Measure one configuration (model x threads x delegate): load, first invoke, warm-up, timed steady state.

The timed loop is the bare minimum around ``interpreter.invoke``: two ``perf_counter_ns`` reads and a list store
per run, with the garbage collector paused, inputs set once beforehand (as TFLite's benchmark_model does).
scripts/bench_overhead.py measures that this costs < 3% against a bare ``invoke()`` loop on a ~1 ms model.

Each configuration runs by default in a child process (``python -m toolkit.bench.measure``, a JSON spec on stdin,
one JSON result on stdout) so that peak RSS belongs to that model alone and a native crash cannot take the
caller down. The child dies with its parent (toolkit.runtime.lifeline): a SIGKILLed ``toolkit bench`` does not
leave a measurement running. Device-path code: numpy, ai-edge-litert and OpenCV only.
"""

from __future__ import annotations

import base64
import gc
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import DeviceUnavailable, ToolkitError, UsageError, one_line
from toolkit.paths import PACKAGE_DIR


@dataclass(frozen=True)
class MeasureSpec:
    """One measurement to run: a model at one thread count with one delegate (also the spec sent to the child
    process when configurations are isolated)."""

    model: str  # path to the .tflite file
    threads: int  # interpreter threads
    delegate: str  # xnnpack | none | edgetpu | path to a .so
    fallback: str | None  # "cpu": run on the CPU when the delegate cannot be loaded
    warmup: int  # untimed invokes after the first
    runs: int  # timed invokes (when seconds is None)
    seconds: float | None  # time budget for the timed loop instead of a run count
    seed: int  # seed for random inputs
    max_samples: int  # latencies kept for storage


def time_invokes(invoke: Callable[[], Any], runs: int = 100, seconds: float | None = None) -> np.ndarray:
    """Call ``invoke`` ``runs`` times (or until ``seconds`` have passed); per-call latencies in milliseconds."""
    clock = time.perf_counter_ns
    gc_enabled = gc.isenabled()
    gc.disable()  # a collection inside the loop would be charged to one unlucky invoke
    try:
        if seconds is None:
            ticks = [0] * runs
            for i in range(runs):
                t0 = clock()
                invoke()
                ticks[i] = clock() - t0
        else:
            ticks = []
            append = ticks.append
            deadline = clock() + int(seconds * 1e9)
            while True:
                t0 = clock()
                invoke()
                t1 = clock()
                append(t1 - t0)
                if t1 >= deadline:
                    break
    finally:
        if gc_enabled:
            gc.enable()
    return np.asarray(ticks, dtype=np.float64) / 1e6


def current_rss_mb() -> float | None:
    """This process's resident memory now in MiB, from /proc/self/statm; None where that cannot be read."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """This process's peak resident memory. Linux: VmHWM (ru_maxrss of a child started from a big parent
    reports the parent's peak); elsewhere ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _throttle_now() -> tuple[dict[str, Any] | None, float | None]:
    from toolkit.bench.host import read_temperature_c, read_throttled

    state, _ = read_throttled()
    return (state.as_dict() if state else None), read_temperature_c()


def measure(spec: MeasureSpec) -> dict[str, Any]:
    """Run ``spec`` in this process; a JSON-ready result dict (see toolkit.bench.store for the stored columns)."""
    from toolkit.bench.inputs import read_manifest
    from toolkit.bench.modelinfo import model_family, model_format
    from toolkit.bench.stats import pack_samples, summarize, thin
    from toolkit.fileio import sha256_file
    from toolkit.runtime import Runner, check_model, select_backend

    select_backend()  # import the interpreter package now so its import time is not charged to load_ms
    import cv2  # noqa: F401 - loaded for every model (real inputs need it) so peak RSS compares like with like

    baseline = current_rss_mb()
    path = Path(spec.model)
    manifest = read_manifest(path)
    throttle_before, temp_before = _throttle_now()

    check_model(
        path, spec.delegate
    )  # the model probe (if one is due) runs before the clock: load_ms is LiteRT's
    start = time.perf_counter()
    runner = Runner(path, num_threads=spec.threads, delegate=spec.delegate, fallback=spec.fallback)
    path = runner.path  # the CPU original when --fallback cpu replaced an Edge TPU model
    load_ms = (time.perf_counter() - start) * 1e3
    try:
        from toolkit.bench.inputs import make_inputs

        feeds, source = make_inputs(runner, manifest, spec.seed)
        runner.set_inputs(feeds)
        invoke = runner.interpreter.invoke
        try:
            start = time.perf_counter()
            invoke()
            first_ms = (time.perf_counter() - start) * 1e3
            time_invokes(invoke, spec.warmup)
            samples = time_invokes(invoke, spec.runs, spec.seconds)
        except RuntimeError as exc:
            raise ToolkitError(f"inference failed in {path.name}: {one_line(str(exc), 240)}") from None
        fmt, fmt_source = model_format(path, runner.model_file, manifest)
        result = {
            "model": str(path.resolve()),
            "model_name": path.name,
            "model_sha256": sha256_file(path),
            "size_bytes": path.stat().st_size,
            "kind": manifest.get("kind"),
            "format": fmt,
            "format_source": fmt_source,
            "family": model_family(path, manifest),
            "inputs": [s.describe() for s in runner.inputs.values()],
            "input_source": source,
            "threads": runner.num_threads,
            "delegate": runner.delegate,
            "backend": runner.backend.name,
            "fallback": runner.fallback_reason,
            "model_check": runner.model_check,
            "backend_version": runner.backend.version,
            "warmup": spec.warmup,
            "seconds": spec.seconds,
            "load_ms": load_ms,
            "first_ms": first_ms,
            **summarize(samples).as_dict(),
        }
    finally:
        runner.close()
    throttle_after, temp_after = _throttle_now()
    result.update(
        {
            "peak_rss_mb": peak_rss_mb(),
            "baseline_rss_mb": baseline,
            "throttle_before": throttle_before,
            "throttle_after": throttle_after,
            "temperature_c": temp_after if temp_after is not None else temp_before,
            "throttled": bool((throttle_before or {}).get("now") or (throttle_after or {}).get("now")),
            "samples_zlib_b64": base64.b64encode(pack_samples(thin(samples, spec.max_samples))).decode(
                "ascii"
            ),
            "metrics": manifest.get("metrics") if isinstance(manifest.get("metrics"), dict) else {},
        }
    )
    return result


_ERRORS: dict[str, type[ToolkitError]] = {
    "UsageError": UsageError,
    "DeviceUnavailable": DeviceUnavailable,
    "ToolkitError": ToolkitError,
}


def measure_isolated(spec: MeasureSpec, timeout_s: float | None = None) -> dict[str, Any]:
    """Run ``spec`` in a fresh child process; re-raise its error class in this process."""
    from toolkit.runtime.lifeline import child_env
    from toolkit.runtime.probe import PROBE_ENV

    env = child_env()  # the child dies with this process
    env[PROBE_ENV] = "worker"  # the child is the isolation: no second process to probe the model
    root = str(PACKAGE_DIR.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolkit.bench.measure"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        out, err = proc.communicate(json.dumps(asdict(spec)), timeout=timeout_s)
    except BaseException:  # Ctrl-C or timeout: never leave the child running
        proc.kill()
        proc.wait()
        raise
    try:
        reply = json.loads(out.strip().splitlines()[-1]) if out.strip() else None
    except json.JSONDecodeError:
        reply = None
    if proc.returncode == 0 and isinstance(reply, dict) and "error" not in reply:
        return reply
    if isinstance(reply, dict) and "error" in reply:
        raise _ERRORS.get(reply.get("type", ""), ToolkitError)(reply["error"])
    if proc.returncode in (130, -2):
        raise KeyboardInterrupt
    if (
        proc.returncode < 0
    ):  # killed by a signal: when the model itself crashes LiteRT, that is bad input (exit 2)
        from toolkit.runtime import check_model

        check_model(spec.model, spec.delegate, force=True)
    tail = err.strip().splitlines()[-1] if err.strip() else "no output"
    raise ToolkitError(
        f"benchmark worker for {Path(spec.model).name} died (exit {proc.returncode}): {one_line(tail, 200)}"
    )


def _worker() -> int:
    """Child-process entry point: JSON spec on stdin -> one JSON line on stdout."""
    from toolkit.runtime.lifeline import die_with_parent

    die_with_parent()
    try:
        spec = MeasureSpec(**json.loads(sys.stdin.read()))
        print(json.dumps(measure(spec)))
        return 0
    except KeyboardInterrupt:
        return 130
    except ToolkitError as exc:
        kind = next((name for name, cls in _ERRORS.items() if type(exc) is cls), "ToolkitError")
        print(json.dumps({"error": one_line(str(exc)), "type": kind}))
        return exc.exit_code
    except Exception as exc:  # report, one line, to the parent
        print(
            json.dumps({"error": f"{type(exc).__name__}: {one_line(str(exc), 300)}", "type": "ToolkitError"})
        )
        return 1


if __name__ == "__main__":
    sys.exit(_worker())
