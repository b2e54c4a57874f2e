"""One interface over a float Keras model and its ``.tflite`` conversion, so both are scored by the same code.

>>> p = load_predictor("models/mnist_classifier/classifier_int8.tflite")
>>> p.kind, p.input_shapes                     # ('classifier', {'image': (28, 28, 1)})
>>> out = p.predict({"image": images})         # float in, float out, batched over N
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.capabilities import kind_for_io
from toolkit.errors import UsageError


class Predictor:
    """Batched float inference; subclasses wrap Keras or the LiteRT runtime."""

    format: str = ""
    path: Path
    kind: str | None
    input_shapes: dict[str, tuple[int, ...]]  # without batch
    output_names: list[str]

    def predict(self, feeds: dict[str, np.ndarray], batch_size: int = 64) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "format": self.format,
            "kind": self.kind,
            "inputs": {k: list(v) for k, v in self.input_shapes.items()},
            "outputs": self.output_names,
        }

    def close(self) -> None:
        """Release the interpreter or model."""

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TFLitePredictor(Predictor):
    format = "tflite"

    def __init__(self, path: Path, threads: int | None = None) -> None:
        from toolkit.runtime import Runner

        self.path = path
        self.runner = Runner(path, num_threads=threads)
        self.input_shapes = {n: s.shape[1:] for n, s in self.runner.inputs.items()}
        self.output_names = list(self.runner.outputs)
        manifest = path.with_suffix(".json")
        kind = None
        if manifest.is_file():
            try:
                kind = json.loads(manifest.read_text()).get("kind")
            except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
                kind = None
        self.kind = kind or kind_for_io(list(self.input_shapes), self.output_names)
        self.backend = f"{self.runner.backend.name} {self.runner.backend.version}"
        # The converted model's fixed batch (1 unless converted with --batch N): LiteRT cannot resize it.
        self.batch = int(next(iter(self.runner.inputs.values())).shape[0])

    def predict(self, feeds: dict[str, np.ndarray], batch_size: int = 64) -> dict[str, np.ndarray]:
        """Run ``feeds`` (N samples) through the model in invokes of its fixed batch, the last one padded with
        zero rows that are dropped from the outputs; ``batch_size`` does not apply (the model decides it)."""
        n = _count(feeds)
        out: dict[str, np.ndarray] = {}
        for start in range(0, n, self.batch):
            rows = min(self.batch, n - start)
            chunk = {k: np.asarray(v[start : start + rows], np.float32) for k, v in feeds.items()}
            if rows < self.batch:
                chunk = {
                    k: np.concatenate([v, np.zeros((self.batch - rows, *v.shape[1:]), np.float32)])
                    for k, v in chunk.items()
                }
            result = self.runner.run(**chunk)
            for name, value in result.items():
                if name not in out:
                    out[name] = np.empty((n, *value.shape[1:]), np.float32)
                out[name][start : start + rows] = value[:rows]
        return out

    def close(self) -> None:
        self.runner.close()


class KerasPredictor(Predictor):
    format = "keras"

    def __init__(self, path: Path, part: str | None = None, trust: bool = False) -> None:
        from toolkit.convert.keras_export import input_specs, load_keras_model, output_names

        self.path = path
        self.model = load_keras_model(path, part, trust)
        self.input_shapes = input_specs(self.model)
        self.output_names = output_names(self.model)
        self.kind = kind_for_io(list(self.input_shapes), self.output_names)

    def predict(self, feeds: dict[str, np.ndarray], batch_size: int = 64) -> dict[str, np.ndarray]:
        n = _count(feeds)
        chunks: dict[str, list[np.ndarray]] = {}
        for start in range(0, n, batch_size):
            batch = {k: np.asarray(v[start : start + batch_size], np.float32) for k, v in feeds.items()}
            from toolkit.convert.keras_export import call_model

            result = call_model(self.model, batch, self.output_names)
            for name, value in result.items():
                chunks.setdefault(name, []).append(np.asarray(value, np.float32))
        return {k: np.concatenate(v) for k, v in chunks.items()}


class DeclaredTask(Predictor):
    """A model of no toolkit kind scored as ``task``: its inputs and outputs are matched to the kind's names by
    position (``toolkit eval --task classifier`` on a model whose tensors are ``input`` -> ``dense``)."""

    def __init__(self, inner: Predictor, task: str) -> None:
        from toolkit.capabilities import MODEL_KINDS, MODEL_PARTS

        names = (
            (MODEL_KINDS[task].input_names, MODEL_KINDS[task].output_names)
            if task in MODEL_KINDS
            else MODEL_PARTS.get(task)
        )
        if names is None:
            raise UsageError(f"--task {task}: choose one of {', '.join([*MODEL_KINDS, *MODEL_PARTS])}")
        ins, outs = names
        if len(ins) != len(inner.input_shapes) or len(outs) != len(inner.output_names):
            raise UsageError(
                f"--task {task} needs {len(ins)} input(s) and {len(outs)} output(s) ({', '.join(ins)} -> "
                f"{', '.join(outs)}); {inner.path.name} has {len(inner.input_shapes)} and "
                f"{len(inner.output_names)} ({', '.join(inner.input_shapes)} -> "
                f"{', '.join(inner.output_names)})"
            )
        self.inner, self.path, self.format, self.kind = inner, inner.path, inner.format, task
        self._in = dict(zip(ins, inner.input_shapes, strict=True))  # ours -> theirs
        self._out = dict(zip(inner.output_names, outs, strict=True))  # theirs -> ours
        self.input_shapes = {ours: inner.input_shapes[theirs] for ours, theirs in self._in.items()}
        self.output_names = list(outs)

    def predict(self, feeds: dict[str, np.ndarray], batch_size: int = 64) -> dict[str, np.ndarray]:
        out = self.inner.predict({self._in[k]: v for k, v in feeds.items()}, batch_size)
        return {self._out[k]: v for k, v in out.items()}

    def close(self) -> None:
        self.inner.close()


def as_task(predictor: Predictor, task: str | None) -> Predictor:
    """``predictor`` scored as ``task`` (see :class:`DeclaredTask`); unchanged when it already is that kind."""
    if task is None or predictor.kind == task:
        return predictor
    if predictor.kind is not None:
        raise UsageError(
            f"{predictor.path.name} is a {predictor.kind} by its names; --task {task} contradicts it"
        )
    return DeclaredTask(predictor, task)


def _count(feeds: dict[str, np.ndarray]) -> int:
    counts = {len(v) for v in feeds.values()}
    if len(counts) != 1:
        raise UsageError(f"inputs have different sample counts: {sorted(counts)}")
    return counts.pop()


def load_predictor(
    path: str | Path, part: str | None = None, threads: int | None = None, trust: bool = False
) -> Predictor:
    """A predictor for a ``.tflite`` (device runtime, no TensorFlow) or a ``.keras`` file (needs TensorFlow)."""
    file = Path(path)
    if not file.exists():
        raise UsageError(f"model not found: {file}")
    if file.suffix == ".tflite":
        if part:
            raise UsageError("--part applies to .keras models; a .tflite file holds one model")
        return TFLitePredictor(file, threads)
    if file.suffix == ".keras" or file.is_dir():
        return KerasPredictor(file, part, trust)
    raise UsageError(f"{file}: expected a .tflite or .keras model")
