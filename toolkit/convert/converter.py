"""``toolkit convert``: a Keras model -> a verified ``.tflite`` plus its JSON manifest, written atomically.

Steps: load (safe mode) -> fixed-batch SavedModel (batch 1, or ``--batch N``) -> TFLite converter in the requested mode -> verify the flatbuffer
-> run it through the device runtime against the Keras model on held-back samples (parity) -> write
``OUT.tflite`` and ``OUT.json`` (provenance, quantization parameters, op histogram, parity), model first and
manifest last. Temporary files carry the pid in their names and go on every exit path (SIGTERM included); those of
a SIGKILLed run are removed by the next one (:mod:`toolkit.fileio`).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from toolkit import __version__
from toolkit.capabilities import QUANT_MODES, kind_for_io
from toolkit.convert.calibration import CalibrationSet, load_calibration
from toolkit.convert.config import ConvertConfig
from toolkit.errors import UsageError
from toolkit.fileio import (
    AtomicFiles,
    exit_on_sigterm,
    is_disk_full,
    json_text,
    library_versions,
    no_space_error,
    sha256_bytes,
    sha256_file,
    temp_folder,
)

MANIFEST_SCHEMA = "edge-toolkit/convert-manifest@1"


@dataclass(frozen=True)
class ConvertResult:
    """What :func:`convert` wrote: the ``.tflite`` path, its JSON manifest path and the manifest as a dict."""

    tflite_path: Path
    manifest_path: Path
    manifest: dict[str, Any]


def manifest_path_for(tflite_path: Path) -> Path:
    """The manifest that sits next to a model: ``m.tflite`` -> ``m.json``."""
    return tflite_path.with_suffix(".json")


def validate(config: ConvertConfig) -> None:
    """Check that the options of ``config`` fit together (e.g. int8 has ``calib``, ``--target edgetpu`` is full
    int8); raise UsageError naming the conflict and how to fix it."""
    if config.quantize not in QUANT_MODES:
        raise UsageError(f"unknown --quantize '{config.quantize}'; choose from {', '.join(QUANT_MODES)}")
    if QUANT_MODES[config.quantize].needs_calibration and not config.calib:
        raise UsageError(
            "int8 needs calibration data that looks like the real inputs: pass --calib DIR_OF_IMAGES "
            "or --calib SAMPLES.npy (100-500 samples), or choose --quantize fp32/fp16/dynamic"
        )
    if config.quantize != "int8" and config.io != "int8" and config.io != "float32":
        raise UsageError(f"--io {config.io} only applies to --quantize int8")
    if config.calib_samples < 1 or config.parity_samples < 0:
        raise UsageError("--calib-samples must be >= 1 and --parity-samples >= 0")
    if config.backend not in ("tflite", "aeq"):
        raise UsageError(f"unknown --backend '{config.backend}'; choose tflite or aeq")
    if config.backend == "aeq" and (
        config.quantize != "int8" or config.io != "int8" or config.keep_float or config.target == "edgetpu"
    ):
        raise UsageError(
            "--backend aeq makes static int8 with int8 I/O; other --io types, --keep-float and "
            "--target edgetpu (whose compiler expects the classic converter's model) need the default "
            "backend"
        )
    if config.keep_float and config.quantize != "int8":
        raise UsageError("--keep-float applies to --quantize int8 (the other modes keep everything float)")
    if config.target not in ("cpu", "edgetpu"):
        raise UsageError(f"unknown --target '{config.target}'; choose cpu or edgetpu")
    if config.target == "edgetpu" and (config.quantize != "int8" or config.io == "float32"):
        raise UsageError(
            "--target edgetpu needs --quantize int8 with --io int8 or uint8: the Edge TPU runs "
            "full-integer models only"
        )
    if config.target == "edgetpu" and config.batch != 1:
        raise UsageError(
            f"--target edgetpu takes batch 1 only (edgetpu_compiler maps no batch dimension > 1), "
            f"got --batch {config.batch}; drop --batch or convert for --target cpu"
        )


def convert(
    model_path: str | Path,
    out_path: str | Path,
    config: ConvertConfig = ConvertConfig(),
    progress: Callable[[str], None] | None = None,
    qat: Any = None,
) -> ConvertResult:
    """Convert ``model_path`` to ``out_path`` (+ ``.json`` manifest). Nothing is written unless all steps pass."""
    from toolkit.convert import keras_export as kx

    say = progress or (lambda _msg: None)
    validate(config)
    if qat is not None and config.batch != 1:
        raise UsageError(
            "--qat exports its fine-tuned model with batch 1; drop --batch (or convert the float model "
            "without --qat)"
        )
    src = Path(model_path)
    out = Path(out_path)
    if out.suffix != ".tflite":
        raise UsageError(f"output {out} must end in .tflite")
    if not src.exists():
        raise UsageError(f"model not found: {src}")
    if config.calib and not Path(config.calib).exists():
        from toolkit.convert.calibration import is_data_spec

        if not is_data_spec(config.calib):
            raise UsageError(
                f"calibration data not found: {config.calib} (pass a folder of images, a .npy/.npz "
                "file or a data SPEC such as mnist:split=train)"
            )
    started = time.perf_counter()
    say(f"loading {src}")
    model = kx.load_keras_model(src, config.part, config.trust_model)
    inputs = kx.input_specs(model)
    outputs = kx.output_names(model)
    calib: CalibrationSet | None = None
    if config.calib:
        say(f"reading calibration data {config.calib}")
        calib = load_calibration(
            config.calib,
            inputs,
            config.calib_samples,
            config.parity_samples,
            config.calib_resize,
            config.seed,
            kind=kind_for_io(list(inputs), outputs) or config.task,
        )
    with exit_on_sigterm():  # SIGTERM, like Ctrl-C, removes the temporary files on its way out
        try:
            with temp_folder("toolkit-convert") as tmp:
                say(f"exporting a batch-{config.batch} SavedModel")
                saved = Path(tmp) / "saved_model"
                kx.write_batch1_savedmodel(model, inputs, saved, config.batch)
                say(f"converting ({config.quantize})")
                kept: list[str] = []
                qat_record = None
                if qat is not None:
                    from toolkit.convert.qat import qat_flatbuffer

                    if config.quantize != "int8" or config.keep_float or config.backend != "tflite":
                        raise UsageError(
                            "--qat trains for full int8 with the default backend (no --keep-float)"
                        )
                    flatbuffer, qat_record = qat_flatbuffer(
                        src, model, calib, config.io, qat, config.seed, say
                    )
                elif config.keep_float and calib is not None:
                    from toolkit.convert.quant_report import layer_names
                    from toolkit.convert.selective import selective_int8

                    say(f"converting (int8, keeping float: {', '.join(config.keep_float)})")
                    batches = _representative(calib, config.batch)
                    assert batches is not None
                    flatbuffer, kept = selective_int8(
                        saved,
                        config.io,
                        batches,
                        tuple(config.keep_float),
                        layer_names(model),
                    )
                elif config.backend == "aeq" and calib is not None:
                    say("converting (fp32), then quantizing with ai-edge-quantizer (static int8)")
                    flatbuffer = kx.quantize_with_aeq(
                        kx.convert_savedmodel(saved, "fp32", "float32", None),
                        _representative(calib, config.batch),
                    )
                else:
                    flatbuffer = kx.convert_savedmodel(
                        saved, config.quantize, config.io, _representative(calib, config.batch)
                    )
        except Exception as exc:
            if is_disk_full(
                exc
            ):  # TensorFlow says "No space left on device" / "File too large" in its own errors
                raise no_space_error(
                    f"{tempfile.gettempdir()} (the temporary folder)",
                    "converting failed: ",
                    "free some space there or set TMPDIR to a folder on a disk with room",
                ) from None
            raise
        return _write_outputs(
            out, src, flatbuffer, model, inputs, outputs, calib, config, kept, qat_record, started, say
        )


def _write_outputs(
    out: Path,
    src: Path,
    flatbuffer: bytes,
    model: Any,
    inputs: dict[str, tuple[int, ...]],
    outputs: list[str],
    calib: CalibrationSet | None,
    config: ConvertConfig,
    kept: list[str],
    qat_record: Any,
    started: float,
    say: Callable[[str], None],
) -> ConvertResult:
    """Verify the flatbuffer, check parity from a temporary file beside ``out``, then put the files in place model
    first and manifest last (:class:`~toolkit.fileio.AtomicFiles`): a manifest on disk always describes the model
    beside it, and a failure (a full disk, a signal) leaves the previous files as they were and nothing partial."""
    from toolkit.runtime.tflite_file import parse_model_bytes

    parsed = parse_model_bytes(flatbuffer, out)  # verify what the converter wrote before anyone loads it
    with AtomicFiles(manifest=manifest_path_for(out)) as files:
        tmp_tflite = files.add(out)
        tmp_tflite.write_bytes(flatbuffer)
        say("checking parity against the Keras model")
        parity = _parity(model, tmp_tflite, inputs, calib, config)
        manifest = _manifest(
            src,
            out,
            flatbuffer,
            parsed,
            config,
            calib,
            parity,
            inputs,
            outputs,
            time.perf_counter() - started,
        )
        if config.keep_float:
            manifest["kept_float"] = kept
        if qat_record is not None:
            manifest["qat"] = qat_record
        if config.target == "edgetpu":
            manifest["edgetpu"]["compiler"] = _edgetpu_compile(tmp_tflite, out, files, say)
        files.manifest_tmp.write_text(json_text(manifest))
    return ConvertResult(out, manifest_path_for(out), manifest)


def _edgetpu_compile(
    model: Path, out: Path, files: AtomicFiles, say: Callable[[str], None]
) -> dict[str, Any]:
    """Run edgetpu_compiler on ``model`` (the temporary copy of ``out``) when it is on PATH; the compiled file and
    its log are added to ``files``, to land beside ``out`` with it."""
    from toolkit.convert.edgetpu_compiler import INSTALL, compile_model, find_compiler
    from toolkit.inspect.edgetpu import compiled_summary
    from toolkit.runtime.tflite_file import read_model_file

    compiler = find_compiler()
    if compiler is None:
        return {"found": False, "install": INSTALL}
    say(f"compiling for the Edge TPU ({compiler})")
    with temp_folder("toolkit-edgetpu") as tmp:
        work = tmp / out.name
        shutil.copyfile(model, work)
        report = compile_model(work, tmp, compiler)
        compiled = Path(report.output or "")
        summary = compiled_summary(read_model_file(compiled))  # verify it before it lands beside the model
        final = out.with_name(compiled.name)
        shutil.copyfile(compiled, files.add(final))
        report.output = str(final)
        if report.log:
            log = out.with_name(Path(report.log).name)
            shutil.copyfile(report.log, files.add(log))
            report.log = str(log)
    return {
        "found": True,
        "path": compiler,
        **report.as_dict(),
        "compiled": summary.as_dict() if summary else None,
        "note": None if summary else "the compiled file holds no edgetpu-custom-op: nothing was mapped",
    }


def batch_rows(count: int, batch: int) -> list[np.ndarray]:
    """Row indices of ``count`` samples in batches of exactly ``batch``: every sample once, in order, and the last
    batch filled up with the first samples again (real samples, not zeros: a zero row would widen the int8
    ranges of a fixed-batch model with values the data never has, and min/max over repeated samples is unchanged).
    """
    if count < 1 or batch < 1:
        raise ValueError(f"count and batch must be >= 1, got {count} and {batch}")
    starts = range(0, count, batch)
    return [np.arange(start, start + batch) % count for start in starts]


def _representative(calib: CalibrationSet | None, batch: int = 1) -> Callable[[], Any] | None:
    """The converter's representative dataset: every calibration sample once, in batches of the model's batch."""
    if calib is None:
        return None

    def gen() -> Any:
        for rows in batch_rows(calib.count, batch):
            yield {name: values[rows] for name, values in calib.calibrate.items()}

    return gen


def _parity(
    model: Any,
    tflite: Path,
    inputs: dict[str, tuple[int, ...]],
    calib: CalibrationSet | None,
    config: ConvertConfig,
) -> dict[str, Any]:
    """Max / mean absolute error of the TFLite model's (dequantized) outputs against the Keras model."""
    from toolkit.convert.keras_export import keras_predict
    from toolkit.runtime.runner import Runner

    if calib is not None and len(next(iter(calib.parity.values()))):
        feeds, source = calib.parity, "held-back calibration samples (not used for calibration)"
    else:
        rng = np.random.default_rng(config.seed)
        n = max(1, config.parity_samples)
        feeds = {k: rng.random((n, *s), dtype=np.float32) for k, s in inputs.items()}
        source = f"seeded uniform [0, 1) inputs (seed {config.seed}); no calibration data given"
    expected = keras_predict(model, feeds)  # the float model one sample at a time, whatever the batch
    n = len(next(iter(feeds.values())))
    errors: dict[str, list[np.ndarray]] = {k: [] for k in expected}
    with Runner(tflite, num_threads=config.threads or None) as runner:
        backend = f"{runner.backend.name} {runner.backend.version}"
        for rows in batch_rows(n, config.batch):  # N-row batches, the last filled with the first samples
            got = runner.run(**{k: v[rows] for k, v in feeds.items()})
            real = rows[: min(config.batch, n - int(rows[0]))]  # the filled-up rows are not scored twice
            for name in expected:
                want = expected[name][real]
                errors[name].append(np.abs(got[name][: len(real)].reshape(want.shape) - want))
    per_output = {}
    for name, errs in errors.items():
        err = np.concatenate(errs)
        ref = expected[name]
        per_output[name] = {
            "max_abs_error": float(err.max()),
            "mean_abs_error": float(err.mean()),
            "keras_output_range": [float(ref.min()), float(ref.max())],
        }
    return {
        "samples": n,
        "batch": config.batch,
        "inputs": source,
        "runtime": backend,
        "outputs": per_output,
    }


def _manifest(
    src: Path,
    out: Path,
    flatbuffer: bytes,
    parsed: Any,
    config: ConvertConfig,
    calib: CalibrationSet | None,
    parity: dict[str, Any],
    inputs: dict[str, tuple[int, ...]],
    outputs: list[str],
    seconds: float,
) -> dict[str, Any]:
    from toolkit.inspect.analysis import analyze

    info = analyze(parsed, flatbuffer if config.target == "edgetpu" else None)
    src_hash = sha256_file(src) if src.is_file() else _dir_hash(src)
    return {
        "schema": MANIFEST_SCHEMA,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "tool": {"name": "edge-toolkit", "version": __version__, "command": " ".join(sys.argv)},
        "libraries": library_versions(),
        "kind": kind_for_io(list(inputs), outputs),
        "source": {
            "path": str(src),
            "sha256": src_hash,
            "format": "saved_model" if src.is_dir() else "keras",
            "part": config.part,
        },
        "output": {"path": str(out), "sha256": sha256_bytes(flatbuffer), "size_bytes": len(flatbuffer)},
        "mode": config.quantize,
        "io": config.io if config.quantize == "int8" else "float32",
        "batch": config.batch,  # every input's and output's first dimension: one invoke runs this many samples
        "config": asdict(config),
        "calibration": calib.describe() if calib else None,
        "inputs": info["inputs"],
        "outputs": info["outputs"],
        "precision": info["precision"],
        "op_histogram": info["op_histogram"],
        "non_int8_ops": info["non_int8_ops"],
        "parameters": info["parameters"],
        "macs_total": info["macs_total"],
        "parity": parity,
        "conversion_seconds": round(seconds, 2),
        **({"edgetpu": info["edgetpu"]} if "edgetpu" in info else {}),
    }


def _dir_hash(folder: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(folder)}\0{sha256_file(file)}\n".encode())
    return digest.hexdigest()
