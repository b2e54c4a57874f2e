"""Third-party models in the demo: small stateless adapters from an interpreter's outputs to our typed results.

pycoral's style: a model that is not ours (no ``image`` -> ``heatmap``/``box`` or ``mask`` signature) is read
through a declared adapter, and its labels are mapped onto our classes by a config file, not code::

    # coral_deeplab_cityscapes.toml  (deploy/adapters/ holds ready ones)
    kind = "segmenter"
    output = "argmax"        # integer class ids (h, w); "scores": per-class scores on the last axis
    input = "raw"            # uint8 pixels as they are; "unit": [0, 1]; "symmetric": [-1, 1]
    labels = ["background", "road", "sidewalk", ...]     # or a label file, one name per line
    [classes]                # their label -> ours; unmapped labels are background / ignored
    road = "road"
    person = "person"
    car = "vehicle"

Segmenters: ``argmax`` models (Coral's DeepLab exports end in ARG_MAX) or ``scores`` models. Detectors: ``ssd``,
the standard four-tensor detection output (TFLite_Detection_PostProcess): boxes (1, N, 4) as ymin, xmin, ymax,
xmax in [0, 1] of the model input, classes (1, N), scores (1, N), count (1,). Frames are letterboxed into the
model input as for our models, and results are mapped back through the same transform.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from toolkit.adapters.image import Letterbox
from toolkit.errors import UsageError

InputRange = Literal["raw", "unit", "symmetric"]
KINDS = {"segmenter": ("argmax", "scores"), "detector": ("ssd",)}
INPUT_RANGES = ("raw", "unit", "symmetric")
KEYS = {"kind", "output", "input", "labels", "classes", "score_threshold"}


@dataclass(frozen=True)
class AdapterConfig:
    """How to read one third-party model (see the module docstring for the file format)."""

    kind: Literal["segmenter", "detector"]
    output: str  # segmenter: argmax | scores; detector: ssd
    labels: tuple[str, ...]  # the model's class names, index = class id
    classes: dict[str, str] = field(default_factory=dict)  # their label -> our class
    input: InputRange = "unit"
    score_threshold: float = 0.3  # detector: keep boxes above this score
    source: str = ""  # the config file, for messages

    def lookup(self, ours: tuple[str, ...], unmapped: int = 0) -> np.ndarray:
        """Their class id -> our class index (``unmapped`` for labels the config does not map)."""
        table = np.full(max(len(self.labels), 1), unmapped, dtype=np.int32)
        for i, name in enumerate(self.labels):
            if name in self.classes:
                table[i] = ours.index(self.classes[name])
        return table


def load_adapter(path: str | Path, ours: tuple[str, ...]) -> AdapterConfig:
    """Read and check an adapter config; UsageError (exit 2) naming the key that is wrong."""
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"adapter config not found: {file}")
    try:
        data: dict[str, Any] = tomllib.loads(file.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{file}: not valid TOML ({exc})") from None
    where = f"adapter {file.name}"
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise UsageError(f"{where}: unknown key '{unknown[0]}' (keys: {', '.join(sorted(KEYS))})")
    kind = data.get("kind")
    if kind not in KINDS:
        raise UsageError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    output = data.get("output")
    if output not in KINDS[kind]:
        raise UsageError(
            f"{where}: output of a {kind} must be one of {', '.join(KINDS[kind])}, got {output!r}"
        )
    value_range = data.get("input", "unit")
    if value_range not in INPUT_RANGES:
        raise UsageError(f"{where}: input must be one of {', '.join(INPUT_RANGES)}, got {value_range!r}")
    labels = _labels(data.get("labels"), file, where)
    classes = data.get("classes", {})
    if not isinstance(classes, dict) or not classes:
        raise UsageError(
            f"{where}: [classes] must map at least one of the model's labels to ours ({', '.join(ours)})"
        )
    for theirs, mine in classes.items():
        if theirs not in labels:
            raise UsageError(f"{where}: [classes] names '{theirs}', which is not one of the model's labels")
        if mine not in ours:
            raise UsageError(f"{where}: [classes] maps '{theirs}' to '{mine}'; ours are {', '.join(ours)}")
    threshold = data.get("score_threshold", 0.3)
    if not isinstance(threshold, int | float) or not 0.0 <= float(threshold) < 1.0:
        raise UsageError(f"{where}: score_threshold must be a number in [0, 1), got {threshold!r}")
    return AdapterConfig(kind, output, labels, dict(classes), value_range, float(threshold), str(file))


def _labels(value: Any, file: Path, where: str) -> tuple[str, ...]:
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    if isinstance(value, str):
        label_file = Path(value).expanduser()
        label_file = label_file if label_file.is_absolute() else file.parent / label_file
        if not label_file.is_file():
            raise UsageError(f"{where}: label file not found: {label_file}")
        return tuple(line.strip() for line in label_file.read_text().splitlines() if line.strip())
    raise UsageError(f"{where}: labels must be a list of names or a label file (one name per line)")


def pixel_levels(value_range: InputRange) -> tuple[float, float] | None:
    """The real values pixels 0 and 255 stand for; None for ``raw`` (the uint8 pixel is written as it is)."""
    return {"raw": None, "unit": (0.0, 1.0), "symmetric": (-1.0, 1.0)}[value_range]


def labels_from_ids(
    ids: np.ndarray, lookup: np.ndarray, transform: Letterbox, frame_hw: tuple[int, int]
) -> np.ndarray:
    """(h, w) class ids on the letterboxed input -> (H, W) uint8 labels of ours on the frame (nearest)."""
    frame_h, frame_w = (int(v) for v in frame_hw)
    inner_h = min(ids.shape[0] - transform.pad_y, max(1, round(frame_h * transform.scale)))
    inner_w = min(ids.shape[1] - transform.pad_x, max(1, round(frame_w * transform.scale)))
    inner = ids[transform.pad_y : transform.pad_y + inner_h, transform.pad_x : transform.pad_x + inner_w]
    ours = lookup[np.clip(inner.astype(np.int64), 0, len(lookup) - 1)].astype(np.uint8)
    return cv2.resize(ours, (frame_w, frame_h), interpolation=cv2.INTER_NEAREST)


@dataclass(frozen=True)
class SsdOutputs:
    """Which output of a four-tensor detector is which (by name where the names say, else the standard order)."""

    boxes: str
    classes: str
    scores: str
    count: str


def ssd_outputs(names: list[str], shapes: dict[str, tuple[int, ...]], model: str) -> SsdOutputs:
    """Identify boxes / classes / scores / count among a model's outputs; UsageError when they are not those."""
    if len(names) != 4:
        raise UsageError(
            f"{model}: an 'ssd' detector has 4 outputs (boxes, classes, scores, count), it has {len(names)}"
        )
    by_word = {}
    for role, words in (
        ("boxes", ("box",)),
        ("classes", ("class",)),
        ("scores", ("score",)),
        ("count", ("count", "num")),
    ):
        hits = [n for n in names if any(w in n.lower() for w in words)]
        if len(hits) == 1:
            by_word[role] = hits[0]
    roles = SsdOutputs(**by_word) if len(set(by_word.values())) == 4 else SsdOutputs(*names)
    boxes = shapes[roles.boxes]
    if len(boxes) != 3 or boxes[-1] != 4 or int(np.prod(shapes[roles.count])) != 1:
        raise UsageError(
            f"{model}: outputs {names} are not boxes (1, N, 4), classes, scores, count (1,) "
            "(the TFLite_Detection_PostProcess layout)"
        )
    return roles


def detections_from_ssd(
    boxes: np.ndarray,
    classes: np.ndarray,
    scores: np.ndarray,
    count: np.ndarray,
    keep_class: np.ndarray,
    threshold: float,
    transform: Letterbox,
    input_hw: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The four outputs of one image -> (xyxy frame boxes, scores, our class index) of the kept detections.

    ``keep_class[their id]`` is our class index, or -1 for classes the config does not map.
    """
    n = int(np.clip(np.asarray(count).reshape(-1)[0], 0, len(scores)))
    ids = np.clip(np.asarray(classes[:n]).round().astype(np.int64), 0, len(keep_class) - 1)
    ours = keep_class[ids]
    ok = (np.asarray(scores[:n]) >= threshold) & (ours >= 0)
    h, w = input_hw
    yx = np.asarray(boxes[:n][ok], dtype=np.float64)
    xyxy = (
        np.stack([yx[:, 1] * w, yx[:, 0] * h, yx[:, 3] * w, yx[:, 2] * h], axis=1)
        if len(yx)
        else np.zeros((0, 4))
    )
    return transform.to_image(xyxy), np.asarray(scores[:n][ok], dtype=np.float64), ours[ok]
