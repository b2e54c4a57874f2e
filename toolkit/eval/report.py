"""The result of ``toolkit eval``: headline metrics, tables (per scene / per class / baselines), artifacts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class EvalReport:
    kind: str  # model kind evaluated
    model: str  # model path
    model_format: str  # "keras" | "tflite"
    data: str  # the data SPEC used
    samples: int  # how many samples/images/windows were scored
    primary: str  # name of the headline metric in ``metrics`` (used by bench reports and the zoo table)
    metrics: dict[str, float]  # flat name -> value, e.g. {"top1": 0.991}
    higher_is_better: bool = True  # direction of the primary metric
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # e.g. "per_scene", "baselines"
    notes: list[str] = field(default_factory=list)  # split descriptions, caveats
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> file written (e.g. a PNG grid)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
