"""``toolkit eval``: the same metric code scores a float ``.keras`` model and its ``.tflite`` conversion.

Each model kind has a module ``toolkit/eval/<kind>.py`` with

* ``evaluate(predictor, spec, config) -> EvalReport`` -- score a :class:`~toolkit.eval.predictor.Predictor` on a
  data SPEC (metrics, per-split tables, baseline rows computed by the same code on the same samples);

Realistic inputs for calibration and benchmarks come from the same loaders, in
:func:`toolkit.data.model_inputs.model_inputs`.

Metric code is numpy (plus pycocotools for COCO AP), so ``.tflite`` evaluation runs on a device install.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from types import ModuleType

from toolkit.data.spec import DataSpec, parse_spec
from toolkit.errors import UsageError
from toolkit.eval.config import EvalConfig
from toolkit.eval.predictor import Predictor, load_predictor
from toolkit.eval.report import EvalReport

# model kind (or part) -> evaluator module under toolkit.eval
EVALUATORS: dict[str, str] = {
    "classifier": "classifier",
    "detector": "detector",
    "segmenter": "segmenter",
    "behaviour": "behaviour",
    "autoencoder": "autoencoder",
    "vae": "vae",
    "vae_encoder": "vae",
    "vae_decoder": "vae",
}


def evaluator_for(kind: str | None, path: Path | str = "") -> ModuleType:
    if kind is None or kind not in EVALUATORS:
        from toolkit.capabilities import unknown_kind_error

        raise UsageError(unknown_kind_error(str(path), list(EVALUATORS)))
    return importlib.import_module(f"toolkit.eval.{EVALUATORS[kind]}")


def evaluate(model: str | Path, data: str | DataSpec, config: EvalConfig = EvalConfig()) -> EvalReport:
    """Score ``model`` (.keras or .tflite) on ``data`` (a SPEC string) and return the report."""
    spec = parse_spec(data)
    started = time.perf_counter()
    from toolkit.eval.predictor import as_task

    with as_task(
        load_predictor(model, part=config.part, threads=config.threads, trust=config.trust_model), config.task
    ) as predictor:
        report = evaluator_for(predictor.kind, model).evaluate(predictor, spec, config)
        runner = getattr(getattr(predictor, "inner", predictor), "runner", None)
        check = getattr(runner, "model_check", "")
        if check:  # which check vouched for a .tflite file before LiteRT loaded it (toolkit.runtime.probe)
            report.notes.append(f"model file: {check}")
    report.seconds = round(time.perf_counter() - started, 2)
    return report


__all__ = [
    "EVALUATORS",
    "EvalConfig",
    "EvalReport",
    "Predictor",
    "evaluate",
    "evaluator_for",
    "load_predictor",
]
