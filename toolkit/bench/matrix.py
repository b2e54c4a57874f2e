"""``toolkit bench matrix``: one Keras model -> fp32 / fp16 / dynamic / int8 ``.tflite``, each scored on real data
and benchmarked, in ONE table beside the Keras float reference (what ``yolo benchmark`` does, with latency
percentiles and peak memory).

Cheap checks first (arguments, data SPECs, calibration path, output folder, results database, TensorFlow present),
then a worker process (``python -m toolkit.bench.matrix``) scores the Keras model -- a bad data root fails there,
before any conversion -- and converts every mode with :func:`toolkit.convert.convert`. This process never imports
TensorFlow: it times each ``.tflite`` with :func:`toolkit.bench.session.bench_models` (one child process per file,
so peak RSS is per model) and then scores it with the same evaluator through the device runtime. Results go to the
SQLite store with the accuracy attached (the results row and :meth:`BenchStore.record_accuracy`), so
``toolkit bench report`` shows them later too."""

from __future__ import annotations

import importlib.util
import shlex
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from toolkit.capabilities import QUANT_MODES
from toolkit.config import suggest
from toolkit.errors import UsageError

REFERENCE = "keras"  # the format name of the float reference row


@dataclass(frozen=True)
class MatrixConfig:
    """Settings of one ``bench matrix`` run: formats, calibration, scoring limit and timing."""

    modes: tuple[str, ...] = tuple(QUANT_MODES)  # formats to export, in capabilities order (fp32 first)
    calib: str | None = (
        None  # int8 calibration data: folder of images, .npy/.npz or a data SPEC; required for int8
    )
    calib_samples: int = 200  # samples that calibrate the int8 ranges
    limit: int | None = None  # score at most this many samples of the data SPEC (None: the whole split)
    threads: int | None = None  # interpreter threads for scoring and timing (None: every usable core)
    runs: int = 100  # timed invokes per format
    warmup: int = 10  # untimed invokes before timing
    seed: int = 0  # calibration sampling and random bench inputs
    task: str | None = None  # score a model of no toolkit kind as this kind (toolkit eval --task)
    trust_model: bool = False  # unsafe .keras deserialization (Lambda layers) for scoring and conversion


@dataclass(frozen=True)
class MatrixRow:
    """One format of the model: its file, size, headline metric against the Keras reference and latency."""

    format: str  # "keras" (the float reference) or a quantization mode
    model: str  # path of the scored file
    size_bytes: int  # file size
    metric: str  # name of the headline metric (the evaluator's primary)
    value: float  # its value on the data
    delta: float | None  # value minus the Keras reference value (None on the reference row)
    p50_ms: float | None = None  # latency percentiles over the timed runs (None: not benchmarked)
    p90_ms: float | None = None
    p99_ms: float | None = None
    peak_rss_mb: float | None = None  # peak RSS of the process that benchmarked this file
    speedup: float | None = None  # fp32 p50 / this p50 (None without an fp32 row)
    metrics: dict[str, Any] = field(default_factory=dict)  # every metric of the evaluation


@dataclass
class MatrixResult:
    """The whole matrix of one model on one data SPEC: its rows plus what was measured and how."""

    model: str  # the .keras file
    data: str  # the data SPEC scored
    kind: str  # model kind (decides the evaluator)
    samples: int  # samples scored per row
    metric: str  # headline metric name
    higher_is_better: bool  # direction of the metric
    threads: int  # interpreter threads used
    rows: list[MatrixRow]  # keras reference first, then one per mode
    bench: list[dict[str, Any]] = field(default_factory=list)  # the raw bench results (toolkit.bench.measure)


def parse_modes(text: str) -> tuple[str, ...]:
    """'fp32,int8' -> ('fp32', 'int8') in capabilities order; a UsageError naming an unknown mode."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise UsageError(f"--modes needs at least one of {', '.join(QUANT_MODES)}")
    for name in names:
        if name not in QUANT_MODES:
            raise UsageError(
                f"unknown mode '{name}' in --modes{suggest(name, QUANT_MODES)} "
                f"(choose from {', '.join(QUANT_MODES)})"
            )
    return tuple(m for m in QUANT_MODES if m in names)


def check_request(model: str | Path, data: str, config: MatrixConfig) -> None:
    """Every check that needs no model loading: file, suffix, SPECs, modes vs calibration, TensorFlow present."""
    from toolkit.convert.calibration import is_data_spec
    from toolkit.data.spec import parse_spec

    path = Path(model)
    if not path.exists():
        raise UsageError(f"model not found: {path}")
    if path.suffix != ".keras" or not path.is_file():
        raise UsageError(
            f"{path}: expected a .keras model (bench matrix converts it to every format); to "
            "benchmark existing .tflite files use 'toolkit bench FILE...'"
        )
    if not zipfile.is_zipfile(path):
        raise UsageError(
            f"{path} is not a Keras v3 .keras archive (not a zip); save the model with model.save('m.keras')"
        )
    parse_spec(data)
    if not config.modes or any(m not in QUANT_MODES for m in config.modes):
        raise UsageError(f"modes must be some of {', '.join(QUANT_MODES)}, got {list(config.modes)}")
    if "int8" in config.modes and not config.calib:
        others = ",".join(m for m in config.modes if m != "int8") or "fp32,fp16,dynamic"
        raise UsageError(
            "int8 needs calibration data that looks like the real inputs: pass --calib DIR|FILE.npy|"
            f"SPEC (e.g. --calib mnist:split=train,limit=400), or leave int8 out: --modes {others}"
        )
    if config.calib and "int8" not in config.modes:
        raise UsageError(f"--calib is only used by int8, which is not in --modes {','.join(config.modes)}")
    if config.calib and not Path(config.calib).exists():
        if not is_data_spec(config.calib):
            raise UsageError(
                f"calibration data not found: {config.calib} (pass a folder of images, a .npy/.npz "
                "file or a data SPEC such as mnist:split=train)"
            )
        parse_spec(config.calib)
    if importlib.util.find_spec("tensorflow") is None:
        raise UsageError(
            "bench matrix converts the Keras model, which needs TensorFlow: pip install 'edge-toolkit[train]'"
        )


def run_matrix(
    model: str | Path,
    data: str,
    config: MatrixConfig,
    out_dir: Path,
    on_bench: Callable[[dict[str, Any], Any], None] | None = None,
    on_eval: Callable[[Path, Any], None] | None = None,
    say: Callable[[str], None] | None = None,
) -> MatrixResult:
    """Score ``model`` (.keras) on ``data``, convert it to every ``config.modes`` into ``out_dir``, time and score
    each ``.tflite``; returns the table.

    ``on_eval(path, report)`` is called after each evaluation and ``on_bench(result, report)`` once a timed file
    is scored too (the CLI stores them at once); ``say`` gets one progress line per step.
    """
    from toolkit.bench.config import BenchConfig
    from toolkit.bench.session import bench_models
    from toolkit.eval import EvalConfig, evaluate
    from toolkit.runtime import default_threads

    check_request(model, data, config)
    src = Path(model)
    threads = config.threads or default_threads()
    show = say or (lambda _text: None)
    steps = 1 + 3 * len(config.modes)
    eval_config = EvalConfig(
        limit=config.limit,
        threads=threads,
        baselines=False,
        seed=config.seed,
        out_dir=str(out_dir),
        task=config.task,
        trust_model=config.trust_model,
    )
    # TensorFlow (Keras scoring, conversion) runs in a child process: this process, which launches the benchmark
    # workers, stays as small as a device install, and their peak RSS is not inflated by a 0.7 GB parent.
    reference, files = _export_isolated(src, data, config, eval_config, out_dir, steps, show)
    if on_eval is not None:
        on_eval(src, reference)
    bench_config = BenchConfig(threads=(threads,), runs=config.runs, warmup=config.warmup, seed=config.seed)
    timed: dict[str, dict[str, Any]] = {}
    for i, (mode, path) in enumerate(files.items()):  # timed before scoring: the parent is at its smallest
        show(f"[{2 + len(files) + i}/{steps}] timing {path.name} ({config.runs} runs, {threads} thread(s))")
        timed[mode] = bench_models([path], bench_config, log=lambda _text: None)[0]
    reports = {}
    for i, (mode, path) in enumerate(files.items()):
        show(f"[{2 + 2 * len(files) + i}/{steps}] scoring {path.name} on {data}")
        reports[mode] = evaluate(path, data, eval_config)
        if on_eval is not None:
            on_eval(path, reports[mode])
        if on_bench is not None:
            on_bench(timed[mode], reports[mode])
    return _table(src, data, threads, reference, reports, files, timed)


def export_reference(
    model: Path,
    data: str,
    config: MatrixConfig,
    eval_config: Any,
    out_dir: Path,
    steps: int,
    say: Callable[[str], None],
) -> tuple[Any, dict[str, Path]]:
    """(EvalReport of the Keras model, {mode: converted .tflite}); imports TensorFlow. Scores first, so a bad data
    root fails before any conversion."""
    from toolkit.convert import ConvertConfig, convert
    from toolkit.eval import evaluate

    say(f"[1/{steps}] scoring {model.name} (Keras float reference) on {data}")
    reference = evaluate(model, data, eval_config)
    files: dict[str, Path] = {}
    for i, mode in enumerate(config.modes):
        text = f"[{2 + i}/{steps}] converting to {mode}"
        say(text)
        out = out_dir / f"{model.stem}_{mode}.tflite"
        convert(
            model,
            out,
            ConvertConfig(
                quantize=mode,
                calib=config.calib if mode == "int8" else None,
                calib_samples=config.calib_samples,
                seed=config.seed,
                threads=eval_config.threads or 0,
                task=config.task,
                trust_model=config.trust_model,
            ),
            progress=lambda detail, text=text: say(f"{text}: {detail}"),
        )
        files[mode] = out
    return reference, files


def _export_isolated(
    model: Path,
    data: str,
    config: MatrixConfig,
    eval_config: Any,
    out_dir: Path,
    steps: int,
    say: Callable[[str], None],
) -> tuple[Any, dict[str, Path]]:
    """:func:`export_reference` in ``python -m toolkit.bench.matrix``: JSON job on stdin; progress, then the result
    (or the error and its class) as JSON lines on stdout."""
    import json
    import os
    import subprocess
    import threading
    from collections import deque

    from toolkit.errors import DeviceUnavailable, ToolkitError, one_line
    from toolkit.eval.report import EvalReport
    from toolkit.paths import PACKAGE_DIR

    env = dict(os.environ)
    env["PYTHONPATH"] = str(PACKAGE_DIR.parent) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    job = {
        "model": str(model),
        "data": data,
        "config": asdict(config),
        "eval": asdict(eval_config),
        "out_dir": str(out_dir),
        "steps": steps,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolkit.bench.matrix"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    errors: deque[str] = deque(
        maxlen=50
    )  # TensorFlow's log lines: drained so the pipe never fills, tail kept
    drain = threading.Thread(target=lambda: errors.extend(proc.stderr), daemon=True)
    drain.start()
    reply: dict[str, Any] = {}
    try:
        proc.stdin.write(json.dumps(job))
        proc.stdin.close()
        for line in proc.stdout:
            message = json.loads(line) if line.startswith("{") else {}
            if "say" in message:
                say(message["say"])
            elif message:
                reply = message
        proc.wait()
        drain.join()
    except BaseException:  # Ctrl-C: never leave the child converting
        proc.kill()
        proc.wait()
        raise
    if "error" in reply:
        kinds = {"UsageError": UsageError, "DeviceUnavailable": DeviceUnavailable}
        raise kinds.get(reply.get("type", ""), ToolkitError)(reply["error"])
    if proc.returncode in (130, -2):
        raise KeyboardInterrupt
    if proc.returncode != 0 or "reference" not in reply:
        tail = next((e.strip() for e in reversed(errors) if e.strip()), "no output")
        raise ToolkitError(f"conversion worker died (exit {proc.returncode}): {one_line(tail, 200)}")
    return EvalReport(**reply["reference"]), {mode: Path(p) for mode, p in reply["files"].items()}


def _worker() -> int:
    """Child-process entry point of :func:`_export_isolated`."""
    import json
    import os

    from toolkit.errors import ToolkitError, one_line
    from toolkit.eval.config import EvalConfig
    from toolkit.fileio import to_jsonable

    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything else printing to stdout (Python or native) lands on stderr, not in the protocol

    def send(message: dict[str, Any]) -> None:
        channel.write(json.dumps(to_jsonable(message)) + "\n")
        channel.flush()

    try:
        job = json.loads(sys.stdin.read())
        config = job["config"]
        config = MatrixConfig(**{**config, "modes": tuple(config["modes"])})
        reference, files = export_reference(
            Path(job["model"]),
            job["data"],
            config,
            EvalConfig(**job["eval"]),
            Path(job["out_dir"]),
            job["steps"],
            lambda text: send({"say": text}),
        )
        send({"reference": reference.to_dict(), "files": {m: str(p) for m, p in files.items()}})
        return 0
    except KeyboardInterrupt:
        return 130
    except ToolkitError as exc:
        send({"error": one_line(str(exc)), "type": type(exc).__name__})
        return exc.exit_code
    except Exception as exc:  # one line to the parent, like toolkit.bench.measure's worker
        send({"error": f"{type(exc).__name__}: {one_line(str(exc), 300)}", "type": "ToolkitError"})
        return 1


def _table(
    src: Path,
    data: str,
    threads: int,
    reference: Any,
    reports: dict[str, Any],
    files: dict[str, Path],
    timed: dict[str, dict[str, Any]],
) -> MatrixResult:
    metric = reference.primary
    base = reference.metrics[metric]
    fp32 = timed.get("fp32", {}).get("p50_ms")
    rows = [
        MatrixRow(
            REFERENCE,
            str(src),
            src.stat().st_size,
            metric,
            float(base),
            None,
            metrics=dict(reference.metrics),
        )
    ]
    for mode, path in files.items():
        value = float(reports[mode].metrics[metric])
        t = timed[mode]
        rows.append(
            MatrixRow(
                mode,
                str(path),
                path.stat().st_size,
                metric,
                value,
                value - float(base),
                t["p50_ms"],
                t["p90_ms"],
                t["p99_ms"],
                t.get("peak_rss_mb"),
                fp32 / t["p50_ms"] if fp32 and t["p50_ms"] else None,
                dict(reports[mode].metrics),
            )
        )
    return MatrixResult(
        str(src),
        data,
        reference.kind,
        reference.samples,
        metric,
        reference.higher_is_better,
        threads,
        rows,
        [timed[m] for m in files],
    )


# -- rendering ------------------------------------------------------------------------------------------------
HEADER = [
    "format",
    "file",
    "size KiB",
    "{metric}",
    "vs keras",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "RSS MB",
    "vs fp32",
]


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def render(result: MatrixResult, target: str = "", host: dict[str, Any] | None = None) -> str:
    """The one matrix table, with a header line saying what was scored and where it was timed."""
    from toolkit.bench.report import describe_host, ms

    header = [h.format(metric=result.metric) for h in HEADER]
    cells = [
        [
            r.format,
            Path(r.model).name,
            f"{r.size_bytes / 1024:.1f}",
            f"{r.value:.4f}",
            "(ref)" if r.delta is None else f"{r.delta:+.4f}",
            ms(r.p50_ms),
            ms(r.p90_ms),
            ms(r.p99_ms),
            _num(r.peak_rss_mb, ".0f"),
            "-" if r.speedup is None else f"{r.speedup:.2f}x",
        ]
        for r in result.rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]

    def line(row: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )

    direction = "higher" if result.higher_is_better else "lower"
    lines = [
        f"{Path(result.model).name} ({result.kind}) on {result.data}: {result.samples} samples, {result.metric} "
        f"({direction} is better); latency over timed runs with {result.threads} thread(s)",
    ]
    if host:
        lines.append(f"target {target}: {describe_host(host)}")
    lines += [
        "",
        line(header),
        line(["-" * w for w in widths]),
        *(line(c).rstrip() for c in cells),
        "",
        "keras row: the float model scored by Keras (not timed: the device runtime runs the .tflite rows); "
        "RSS = peak of the process that timed that file",
    ]
    return "\n".join(lines)


def to_json(result: MatrixResult, **extra: Any) -> dict[str, Any]:
    """JSON-ready dict of ``result`` (bench results without their compressed sample blobs) plus ``extra`` keys."""
    out = asdict(result)
    out["bench"] = [{k: v for k, v in r.items() if k != "samples_zlib_b64"} for r in result.bench]
    out.update(extra)
    return out


# -- the CLI command --------------------------------------------------------------------------------------------
def run_command(args: Any, say: Callable[[str], None] = lambda message: None) -> str:
    """``toolkit bench matrix`` once argparse is done (see toolkit.cli.bench_cmd): runs the matrix, stores the
    results, and returns what to print (JSON with ``--json``); progress goes to ``say``."""
    import json
    import platform

    from toolkit import __version__
    from toolkit.bench.host import fingerprint, host_warnings
    from toolkit.bench.store import BenchStore
    from toolkit.runtime import select_backend

    config = MatrixConfig(
        modes=parse_modes(args.modes),
        calib=args.calib,
        limit=args.limit,
        threads=args.threads,
        runs=args.runs,
        warmup=args.warmup,
        seed=args.seed,
        task=args.task,
        trust_model=args.trust_model,
    )
    out_dir = Path(args.out_dir) if args.out_dir else None
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out-dir {out_dir} is a file; give a folder for the converted models")
    check_request(args.model, args.data, config)
    target = args.target or platform.node() or "local"
    store = None if args.no_store else BenchStore(args.db)  # a bad --db fails now, not after the conversions
    keep = args.keep or out_dir is not None
    if out_dir is None:
        out_dir = Path(tempfile.mkdtemp(prefix="toolkit-matrix-"))
    else:
        out_dir.mkdir(parents=True, exist_ok=True)
    backend = select_backend()
    host = fingerprint(backend.name, backend.version).as_dict()
    session: list[int] = []

    def keep_eval(path: Path, report: Any) -> None:
        if store is not None:
            store.record_accuracy(
                path,
                report.primary,
                report.metrics[report.primary],
                dataset=args.data,
                detail={"metrics": report.metrics, "samples": report.samples, "kind": report.kind},
            )

    def keep_bench(result: dict[str, Any], report: Any) -> None:
        result["accuracy"], result["accuracy_metric"] = report.metrics[report.primary], report.primary
        if store is None:
            return
        if not session:
            session.append(store.add_session(target, host, _command_line(), __version__))
        store.add_result(session[0], result)

    try:
        result = run_matrix(
            args.model, args.data, config, out_dir, on_bench=keep_bench, on_eval=keep_eval, say=say
        )
    finally:
        if store is not None:
            store.close()
        if not keep:
            shutil.rmtree(out_dir, ignore_errors=True)
    where = {
        "target": target,
        "host": host,
        "db": None if store is None else str(store.path),
        "out_dir": str(out_dir) if keep else None,
        "toolkit_version": __version__,
    }
    if args.json:
        return json.dumps(to_json(result, **where), indent=2)
    lines = [render(result, target, host), *(f"warning: {warning}" for warning in host_warnings(host))]
    lines.append(
        f"converted models in {out_dir}"
        if keep
        else "converted models deleted (pass --keep or --out-dir DIR to keep them)"
    )
    if store is not None:
        lines.append(
            f"stored {len(result.bench)} result(s) with accuracy in {store.path} (target '{target}'); "
            "see: toolkit bench report" + (f" --db {args.db}" if args.db else "")
        )
    return "\n".join(lines)


def _command_line() -> str:
    """The command as typed, for the session record (argv after 'bench', when called from the CLI)."""
    argv = sys.argv[1:]
    return (
        shlex.join(["toolkit", *argv[argv.index("bench") :]]) if "bench" in argv else "toolkit bench matrix"
    )


if __name__ == "__main__":
    sys.exit(_worker())
