"""A thin, stateful adapter around the TFLite interpreter: load, name the tensors, (de)quantize, invoke.

>>> with Runner("models/detector/detector_int8.tflite") as runner:
...     outputs = runner.run(image=frame_float01[None])      # float in, float out, by signature name
...     outputs["heatmap"].shape

Inputs and outputs are addressed by signature name (conversion does not keep output order stable). int8 / uint8
tensors are quantized and dequantized automatically with their (scale, zero point); ``run_raw`` skips that for
benchmarks and for callers that prepare quantized tensors themselves.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.capabilities import DELEGATES
from toolkit.errors import DeviceUnavailable, ToolkitError, UsageError, one_line
from toolkit.fileio import captured_fd2, sha256_bytes
from toolkit.runtime import edgetpu
from toolkit.runtime.backends import Backend, select_backend
from toolkit.runtime.edgetpu import cpu_original, is_compiled
from toolkit.runtime.probe import check_loadable
from toolkit.runtime.tflite_file import ModelFile, read_model_bytes


def default_threads() -> int:
    """LiteRT defaults to ONE thread; we default to every core the process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output: its signature name, interpreter index, shape, dtype and quantization."""

    name: str
    index: int
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float  # 0.0 when not quantized
    zero_point: int

    @property
    def quantized(self) -> bool:
        """True for an integer tensor with a scale: values are ``(q - zero_point) * scale``."""
        return self.scale != 0.0 and np.issubdtype(self.dtype, np.integer)

    def quantize(self, values: np.ndarray) -> np.ndarray:
        """Real values -> this tensor's dtype (rounding and saturating for int8/uint8)."""
        if self.quantized:
            info = np.iinfo(self.dtype)
            q = np.round(np.asarray(values, np.float32) / self.scale) + self.zero_point
            return np.clip(q, info.min, info.max).astype(self.dtype)
        return np.asarray(values, dtype=self.dtype)

    def dequantize(self, raw: np.ndarray) -> np.ndarray:
        """This tensor's raw values -> real values, always float32: ``(q - zero_point) * scale`` when quantized,
        else a cast (float16/64, and integer or bool tensors without quantization parameters such as an ARG_MAX's
        indices, exact below 2**24). Read integers as they are with ``run_raw`` / ``get_output(raw=True)``."""
        if self.quantized:
            return (raw.astype(np.float32) - self.zero_point) * np.float32(self.scale)
        return np.asarray(raw, dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        """``{name, shape, dtype, scale, zero_point}`` as plain JSON values."""
        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype.name,
            "scale": self.scale,
            "zero_point": self.zero_point,
        }


def _pass_through(log: list[str]) -> None:
    """Re-emit captured native log lines except the routine INFO ones."""
    lines = [line for text in log for line in text.splitlines() if line and not line.startswith("INFO: ")]
    if lines:
        sys.stderr.write("\n".join(lines) + "\n")


def check_model(
    path: str | os.PathLike[str], delegate: str | None = None, backend: str | None = None, force: bool = False
) -> str:
    """Verify ``path`` and probe it (when due; always with ``force``) as :class:`Runner` would, without loading
    it here; return which check vouched for it. Lets a caller (bench) run the probe before it starts a clock
    (Runner then finds the probe's result cached), or ask whether a worker that died was killed by its model."""
    model, sha256 = _verified(Path(path))
    return check_loadable(Path(path), sha256, model, select_backend(backend), delegate or "xnnpack", force)


def _verified(path: Path) -> tuple[ModelFile, str]:
    """The file's verified parse and the sha256 of the bytes that were verified."""
    data, model = read_model_bytes(path)
    return model, sha256_bytes(data)


def _spec(name: str, detail: Mapping[str, Any]) -> TensorSpec:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return TensorSpec(
        name,
        int(detail["index"]),
        tuple(int(d) for d in detail["shape"]),
        np.dtype(detail["dtype"]),
        float(scale),
        int(zero_point),
    )


class Runner:
    """Load a ``.tflite`` model and run it; use as a context manager or call :meth:`close`."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        num_threads: int | None = None,
        delegate: str | None = None,
        backend: str | None = None,
        fallback: str | None = None,
    ) -> None:
        """``fallback="cpu"``: when the delegate cannot be loaded (no library, no device), run on the CPU instead
        -- an Edge TPU-compiled model by its CPU original beside it -- and say so in :attr:`fallback_reason`."""
        if fallback not in (None, "cpu"):
            raise UsageError(f"fallback must be 'cpu' or none, got {fallback!r}")
        self.path = Path(path)
        # Verify the flatbuffer in Python first: the native loader can crash on truncated or hostile files.
        self.model_file, self._sha256 = _verified(self.path)
        self.model_check = ""  # which check vouched for the file before LiteRT loaded it (see runtime.probe)
        self.backend: Backend = select_backend(backend)
        self.num_threads = int(num_threads) if num_threads else default_threads()
        if self.num_threads < 1:
            raise UsageError(f"num_threads must be >= 1, got {num_threads}")
        self.delegate = delegate or "xnnpack"
        self.fallback_reason: str | None = None  # set when --fallback cpu replaced the requested delegate
        if is_compiled(self.model_file) and self.delegate != "edgetpu":
            original = cpu_original(self.path)
            raise UsageError(
                f"{self.path.name} is compiled for the Edge TPU (edgetpu-custom-op): run it with "
                f"--delegate edgetpu" + (f", or run its CPU original {original}" if original else "")
            )
        try:
            self._interpreter = self._make_interpreter()
        except DeviceUnavailable as exc:
            if fallback != "cpu":
                raise
            self._fall_back_to_cpu(str(exc))
        self.inputs, self.outputs = self._io_specs()
        self._closed = False

    def _fall_back_to_cpu(self, why: str) -> None:
        if is_compiled(self.model_file):
            original = cpu_original(self.path)
            if original is None:
                raise DeviceUnavailable(
                    f"{why}; --fallback cpu needs the CPU original of {self.path.name} beside "
                    f"it ({self.path.stem.removesuffix('_edgetpu')}.tflite)"
                ) from None
            self.path = original
            self.model_file, self._sha256 = _verified(original)
        why = why.replace(f"; {edgetpu.FALLBACK_HINT}", "")
        self.fallback_reason = f"{self.delegate} unavailable, running {self.path.name} on the CPU: {why}"
        self.delegate = "xnnpack"
        self._interpreter = self._make_interpreter()

    # -- construction -------------------------------------------------------------------------------------------
    def _make_interpreter(self) -> Any:
        # A file the Python checks pass may still crash LiteRT: probe it in a child unless it is known good.
        self.model_check = check_loadable(
            self.path, self._sha256, self.model_file, self.backend, self.delegate
        )
        kwargs: dict[str, Any] = {"model_path": str(self.path), "num_threads": self.num_threads}
        name = self.delegate
        if name == "none":
            resolver = self.backend.op_resolver_type
            if resolver is None:
                raise UsageError(f"backend {self.backend.name} cannot disable its default delegate")
            kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        elif name != "xnnpack":
            kwargs["experimental_delegates"] = [self._load_delegate(name)]
        try:
            # LiteRT logs "INFO: Created TensorFlow Lite XNNPACK delegate" on fd 2; keep stderr for real messages.
            with captured_fd2() as log:
                interpreter = self.backend.interpreter_cls(**kwargs)
                interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            text = one_line(str(exc), 240)
            if "delegate" in text.lower() and name not in ("none", "xnnpack"):
                raise DeviceUnavailable(f"delegate '{name}' could not run {self.path.name}: {text}") from None
            raise UsageError(
                f"{self.backend.name} {self.backend.version} cannot load {self.path}: {text}"
            ) from None
        _pass_through(log)
        return interpreter

    def _load_delegate(self, name: str) -> Any:
        known = DELEGATES.get(name)
        library = known.library if known else name
        if known is None:
            if not Path(name).is_file():
                raise UsageError(
                    f"delegate library not found: {name} (give a path to a .so, or one of "
                    f"{', '.join(DELEGATES)})"
                )
        try:
            # Open the library first: a missing one makes load_delegate fail half-built, and LiteRT's Delegate
            # then prints "Exception ignored in __del__" tracebacks when it is collected.
            ctypes.CDLL(library)
        except OSError as exc:
            if name == "edgetpu":
                raise DeviceUnavailable(edgetpu.unavailable_message(one_line(str(exc), 200))) from None
            raise DeviceUnavailable(f"delegate {library} not available: {one_line(str(exc), 200)}") from None
        try:
            return self.backend.load_delegate(library)
        except (ValueError, OSError, RuntimeError) as exc:
            if name == "edgetpu":
                raise DeviceUnavailable(edgetpu.unavailable_message(one_line(str(exc), 200))) from None
            raise DeviceUnavailable(f"delegate {library} not available: {one_line(str(exc), 200)}") from None

    def _io_specs(self) -> tuple[dict[str, TensorSpec], dict[str, TensorSpec]]:
        interp = self._interpreter
        signatures = interp.get_signature_list() if hasattr(interp, "get_signature_list") else {}
        if signatures:
            key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
            runner = interp.get_signature_runner(key)
            ins = {n: _spec(n, d) for n, d in runner.get_input_details().items()}
            outs = {n: _spec(n, d) for n, d in runner.get_output_details().items()}
            # Keep the model's input order (signature dicts are sorted by name).
            ins = dict(sorted(ins.items(), key=lambda kv: kv[1].index))
            return ins, outs
        ins = {d["name"]: _spec(d["name"], d) for d in interp.get_input_details()}
        outs = {d["name"]: _spec(d["name"], d) for d in interp.get_output_details()}
        return ins, outs

    # -- running ------------------------------------------------------------------------------------------------
    def _bind(self, args: tuple[np.ndarray, ...], named: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if args and named:
            raise UsageError("pass inputs either positionally or by name, not both")
        if args:
            if len(args) == 1 and isinstance(args[0], Mapping):
                return dict(args[0])
            if len(args) != len(self.inputs):
                raise UsageError(
                    f"{self.path.name} takes {len(self.inputs)} input(s) "
                    f"({', '.join(self.inputs)}), got {len(args)}"
                )
            return dict(zip(self.inputs, args, strict=True))
        return dict(named)

    def run(self, *args: np.ndarray, **named: np.ndarray) -> dict[str, np.ndarray]:
        """Real-valued inputs in, real-valued (dequantized, float32) outputs out, keyed by output name."""
        self._live()
        feeds = self._bind(args, named)
        raw = {}
        for name, values in feeds.items():
            spec = self._input(name)
            raw[name] = spec.quantize(values) if spec.quantized else np.asarray(values, dtype=spec.dtype)
        outputs = self.run_raw(raw)
        return {name: self.outputs[name].dequantize(value) for name, value in outputs.items()}

    def run_raw(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Tensors already in the model's dtypes in, raw output tensors out."""
        self.set_inputs(feeds)
        self.invoke()
        interpreter = self._live()
        return {name: interpreter.get_tensor(spec.index) for name, spec in self.outputs.items()}

    def set_inputs(self, feeds: Mapping[str, np.ndarray]) -> None:
        """Copy ``{input name: array}`` (in the model's dtypes; a missing batch-1 axis is added) into the model."""
        interpreter = self._live()
        for name, value in feeds.items():
            spec = self._input(name)
            array = np.asarray(value)
            if array.shape != spec.shape:
                if array.size == int(np.prod(spec.shape)) and array.shape == spec.shape[1:]:
                    array = array.reshape(spec.shape)  # allow a missing batch-1 axis
                else:
                    raise UsageError(
                        f"input '{name}' of {self.path.name} expects shape {list(spec.shape)}, "
                        f"got {list(array.shape)}"
                    )
            if array.dtype != spec.dtype:
                array = array.astype(spec.dtype)
            interpreter.set_tensor(spec.index, array)

    def invoke(self) -> None:
        """Run the model on the inputs set; a failure inside LiteRT is a one-line ToolkitError."""
        interpreter = self._live()
        try:
            interpreter.invoke()
        except RuntimeError as exc:
            raise ToolkitError(f"inference failed in {self.path.name}: {one_line(str(exc), 240)}") from None

    def get_output(self, name: str, raw: bool = False) -> np.ndarray:
        """Output ``name`` of the last invoke: float32 real values, or the tensor as stored with ``raw``."""
        spec = self.outputs[name]
        value = self._live().get_tensor(spec.index)
        return value if raw else spec.dequantize(value)

    def _input(self, name: str) -> TensorSpec:
        try:
            return self.inputs[name]
        except KeyError:
            raise UsageError(
                f"{self.path.name} has no input '{name}'; inputs: {', '.join(self.inputs)}"
            ) from None

    # -- description / lifetime ---------------------------------------------------------------------------------
    @property
    def interpreter(self) -> Any:
        """The underlying interpreter, for callers that need what this adapter does not wrap."""
        return self._live()

    def describe(self) -> dict[str, Any]:
        """Path, backend, threads, delegate, the check that vouched for the file and every input and output."""
        return {
            "path": str(self.path),
            "backend": self.backend.name,
            "backend_version": self.backend.version,
            "num_threads": self.num_threads,
            "delegate": self.delegate,
            "model_check": self.model_check,
            **({"fallback": self.fallback_reason} if self.fallback_reason else {}),
            "inputs": [s.describe() for s in self.inputs.values()],
            "outputs": [s.describe() for s in self.outputs.values()],
        }

    def _live(self) -> Any:
        """The interpreter; a ToolkitError saying so once :meth:`close` has released it."""
        if self._interpreter is None:
            raise ToolkitError(
                f"the Runner of {self.path.name} is closed: it cannot run after close() (or after "
                f"its with-block); make a new Runner({str(self.path)!r}) to run the model again"
            )
        return self._interpreter

    def close(self) -> None:
        """Release the interpreter; using the runner afterwards raises ToolkitError. Closing again does nothing."""
        if not getattr(self, "_closed", True):
            self._interpreter = None
            self._closed = True

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
