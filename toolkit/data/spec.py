"""Data SPEC strings shared by ``toolkit train``, ``toolkit eval`` and ``toolkit bench matrix``.

    SPEC := NAME[:key=value[,key=value...]]  |  PATH

Examples::

    mnist:split=test                      the documented 2,000-image MNIST test split
    mnist:split=train,exclude=9           MNIST train split without the digit 9 (autoencoder anomaly set-up)
    mnist:split=test,anomaly=9            the test split, digit 9 scored as the anomalous class (AUROC)
    coco128:fold=0,folds=4                COCO128 person boxes, cross-validation fold 0 of 4
    eth_ucy:scene=hotel,split=test        ETH/UCY leave-one-scene-out, the held-out Hotel scene
    synthetic:seed=7,frames=600           synthetic street scenes
    images:path=/data/flowers             an image folder with one sub-folder per class
    yolo:images=/d/images,labels=/d/labels
    coco-json:json=/d/instances.json,images=/d/images

A bare PATH is a shorthand: a .json file is ``coco-json``, a folder is ``images``.
The table below drives parsing, validation ("did you mean") and ``--help`` text.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.config import SEED_RANGE, suggest
from toolkit.errors import UsageError

# Valid values of numeric SPEC keys. A value outside is a typo (``scenes=100000000000`` would build a list of
# 1e11 scene configs before the first frame); keys not listed are held to finite numbers within +-2**31 (a
# synthetic scene's width, height and jitter then meet SceneConfig.LIMITS).
SPEC_LIMITS: dict[str, tuple[float, float]] = {
    "seed": SEED_RANGE,
    "scenes": (1, 10_000),
    "frames": (1, 1_000_000),
    "every": (1, 100_000),
    "stride": (1, 100_000),
    "limit": (1, 2**31 - 1),
}
GENERIC_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class DatasetInfo:
    summary: str
    keys: Mapping[str, str]  # allowed key -> one-line help
    required: tuple[str, ...] = ()


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        "MNIST IDX files (the shared 10k test set split 7k/1k/2k, stratified, seed 0)",
        {
            "root": "folder with the IDX files (default: shared data/mnist)",
            "split": "train | val | test | all (default depends on the command)",
            "exclude": "comma-free list of digits to leave out, e.g. 9 or 89 (anomaly set-ups)",
            "only": "keep only these digits, e.g. 9 (the anomalous set)",
            "anomaly": "digits scored as anomalous by autoencoder evaluation (AUROC), e.g. 9",
            "limit": "use at most this many samples",
        },
    ),
    "images": DatasetInfo(
        "an image folder with one sub-folder per class",
        {
            "path": "the folder",
            "split": "train | val | test | all (seeded 70/10/20 split)",
            "limit": "max samples",
        },
        required=("path",),
    ),
    "coco128": DatasetInfo(
        "COCO128 (shared data/coco128): person boxes, polygons and semantic masks",
        {
            "root": "folder (default: shared data/coco128)",
            "fold": "cross-validation fold index (default 0)",
            "folds": "number of folds (default 4)",
            "split": "train | val | all (val = the held-out fold)",
            "limit": "max images",
        },
    ),
    "yolo": DatasetInfo(
        "YOLO txt labels beside an image folder",
        {
            "images": "image folder",
            "labels": "label folder",
            "split": "train | val | all",
            "limit": "max images",
        },
        required=("images", "labels"),
    ),
    "coco-json": DatasetInfo(
        "COCO JSON detection annotations",
        {
            "json": "annotation file",
            "images": "image folder (default: beside the JSON)",
            "limit": "max images",
        },
        required=("json",),
    ),
    "eth_ucy": DatasetInfo(
        "ETH/UCY trajectories, leave-one-scene-out (shared data/eth_ucy)",
        {
            "root": "folder (default: shared data/eth_ucy)",
            "scene": "eth | hotel | univ | zara1 | zara2 | all (all + split=test: each held-out scene; "
            "all + train/val: every recording's part once)",
            "split": "train | val | test",
            "stride": "window stride in steps (default 1)",
            "limit": "max windows",
        },
    ),
    "synthetic": DatasetInfo(
        "the seeded synthetic street scene (toolkit.data.synthetic)",
        {
            "seed": "scene seed (default 0)",
            "frames": "frames to render (default 400)",
            "every": "keep every n-th frame (default 2)",
            "split": "train | val (val uses seed + 1000)",
            "width": "frame width",
            "height": "frame height",
            "scenes": "number of scenes (seeds) to render",
            "jitter": "per-seed camera view change, 0-2 (default 1 = the training spread; 0 = the demo's view)",
        },
    ),
    "pseudo": DatasetInfo(
        "real frames labelled by the pretrained teachers (toolkit.data.teachers_pseudo), cached",
        {
            "path": "an image folder or a video file",
            "teacher": "pascal | cityscapes | both (default both)",
            "every": "video: keep every n-th frame (default 10)",
            "limit": "label at most this many frames",
        },
        required=("path",),
    ),
    "mot": DatasetInfo(
        "a MOTChallenge sequence (seqinfo.ini + gt.txt) for tracking metrics (toolkit.data.mot); for a "
        "behaviour model, its gt world X,Y (MOT15 columns) resampled to 0.4 s windows",
        {
            "seq": "sequence folder (default: shared data/pedestrian_video/PETS09-S2L1)",
            "video": "frames video when the folder has no image folder (default for the shared PETS folder: "
            "its pedestrians.avi beside it; behaviour windows need no frames)",
            "limit": "score only the first N frames",
            "stride": "behaviour windows: start one every N 0.4 s steps (default 1)",
        },
    ),
}


@dataclass(frozen=True)
class DataSpec:
    name: str
    options: Mapping[str, str] = field(default_factory=dict)
    text: str = ""

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.options.get(key, default)

    def get_int(self, key: str, default: int | None = None) -> int | None:
        return self._number(key, default, int, "an integer")

    def get_float(self, key: str, default: float | None = None) -> float | None:
        return self._number(key, default, float, "a number")

    def _number(self, key: str, default: Any, cast: Callable[[str], Any], what: str) -> Any:
        value = self.options.get(key)
        if value is None:
            return default
        try:
            number = cast(value)
        except ValueError:
            raise UsageError(f"data spec '{self.text}': {key}={value} is not {what}") from None
        low, high = SPEC_LIMITS.get(key, (-GENERIC_LIMIT, GENERIC_LIMIT))
        if not (math.isfinite(number) and low <= number <= high):
            raise UsageError(f"data spec '{self.text}': {key} must be {what} in {low}..{high}, got {value}")
        return number

    def with_options(self, **options: str) -> DataSpec:
        merged = {**self.options, **{k: str(v) for k, v in options.items() if v is not None}}
        body = ",".join(f"{k}={v}" for k, v in merged.items())
        return DataSpec(self.name, merged, f"{self.name}:{body}" if body else self.name)

    def __str__(self) -> str:
        return self.text or self.name


def parse_spec(text: str | DataSpec) -> DataSpec:
    """Parse and validate a SPEC string; UsageError with a hint for anything unknown."""
    if isinstance(text, DataSpec):
        return text
    raw = text.strip()
    if not raw:
        raise UsageError("empty data spec; e.g. --data mnist:split=test (see 'toolkit eval --help')")
    name, _, body = raw.partition(":")
    if name not in DATASETS:
        path = Path(raw)
        if path.suffix.lower() == ".json" and path.is_file():
            return DataSpec("coco-json", {"json": raw}, raw)
        if path.is_dir():
            return DataSpec("images", {"path": raw}, raw)
        if path.exists() or "/" in raw:
            raise UsageError(
                f"data '{raw}': not a dataset name and not a usable path (a folder of class "
                "sub-folders or a COCO .json)"
            )
        raise UsageError(
            f"unknown dataset '{name}'{suggest(name, DATASETS)} (choose from {', '.join(DATASETS)}, "
            "or give a path)"
        )
    info = DATASETS[name]
    options: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in body.split(","))):
        key, eq, value = part.partition("=")
        if not eq or not value:
            raise UsageError(f"data spec '{raw}': expected key=value, got '{part}'")
        if key not in info.keys:
            raise UsageError(
                f"data spec '{raw}': unknown key '{key}' for {name}{suggest(key, info.keys)} "
                f"(keys: {', '.join(info.keys)})"
            )
        options[key] = value
    missing = [k for k in info.required if k not in options]
    if missing:
        raise UsageError(f"data spec '{raw}': {name} needs {', '.join(f'{k}=...' for k in missing)}")
    return DataSpec(name, options, raw)


def specs_help() -> str:
    return "\n".join(
        f"  {name:<10} {info.summary}; keys: {', '.join(info.keys)}" for name, info in DATASETS.items()
    )
