"""The accuracy gate of ``toolkit convert --eval DATA``: score the float and the converted model on the same
samples with ``toolkit eval``'s code and fail (exit 4, output kept and marked failed) when the drop in the
kind's headline metric exceeds the limit.

Default limits per kind, in the units of the headline metric (``--max-drop`` overrides):

=============  ================  ==========================================================
kind           metric            default largest drop
=============  ================  ==========================================================
classifier     top1              0.01 (one percentage point of top-1)
detector       ap50              0.02
segmenter      person_iou        0.02
autoencoder    auroc             0.01
behaviour      ade (metres)      0.02 (lower is better: the drop is int8 - float)
vae            neg_elbo (nats)   2.0 (lower is better)
=============  ================  ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.errors import UsageError

DEFAULT_MAX_DROP: dict[str, float] = {
    "classifier": 0.01,
    "detector": 0.02,
    "segmenter": 0.02,
    "autoencoder": 0.01,
    "behaviour": 0.02,
    "vae": 2.0,
    "vae_encoder": 2.0,
    "vae_decoder": 2.0,
}


@dataclass(frozen=True)
class GateResult:
    data: str
    metric: str
    higher_is_better: bool
    float_value: float
    converted_value: float
    drop: float  # > 0: the converted model is worse
    max_drop: float
    samples: int

    @property
    def passed(self) -> bool:
        return self.drop <= self.max_drop

    def as_dict(self) -> dict[str, Any]:
        return {
            "data": self.data,
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "float": self.float_value,
            "converted": self.converted_value,
            "drop": self.drop,
            "max_drop": self.max_drop,
            "samples": self.samples,
            "passed": self.passed,
        }

    def line(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return (
            f"accuracy gate {verdict}: {self.metric} {self.float_value:.4f} float -> {self.converted_value:.4f} "
            f"converted on {self.samples} samples of {self.data} (drop {self.drop:+.4f}, limit {self.max_drop:g})"
        )


def check_gate(float_model: str | Path, data: str, task: str | None = None) -> None:
    """UsageError before any conversion when the gate could not score ``float_model`` on ``data``: a bad SPEC,
    or a model of no toolkit kind without ``--task``."""
    from toolkit.data.spec import parse_spec
    from toolkit.eval import evaluator_for
    from toolkit.eval.predictor import as_task, load_predictor

    parse_spec(data)
    with as_task(load_predictor(float_model), task) as predictor:
        evaluator_for(predictor.kind, float_model)


def accuracy_gate(
    float_model: str | Path,
    converted: str | Path,
    data: str,
    max_drop: float | None = None,
    limit: int | None = None,
    threads: int | None = None,
    task: str | None = None,
) -> GateResult:
    """Score both models on ``data`` (the same samples) and compare their headline metric."""
    from toolkit.eval import evaluate
    from toolkit.eval.config import EvalConfig

    config = EvalConfig(limit=limit, threads=threads, baselines=False, task=task)
    before = evaluate(float_model, data, config)
    after = evaluate(converted, data, config)
    if before.primary != after.primary or before.samples != after.samples:
        raise UsageError(
            f"--eval {data}: the float and converted models were scored differently "
            f"({before.primary} on {before.samples} vs {after.primary} on {after.samples})"
        )
    kind = before.kind
    allowed = DEFAULT_MAX_DROP.get(kind, 0.01) if max_drop is None else max_drop
    if allowed < 0:
        raise UsageError(f"--max-drop must be >= 0, got {allowed}")
    a, b = before.metrics[before.primary], after.metrics[after.primary]
    drop = (a - b) if before.higher_is_better else (b - a)
    return GateResult(
        str(data),
        before.primary,
        before.higher_is_better,
        float(a),
        float(b),
        float(drop),
        float(allowed),
        int(before.samples),
    )
