"""What the detector and segmenter sample sets share (numpy + OpenCV only): SPEC limits, stratified
cross-validation folds, synthetic scene SPECs and the on-disk cache of rendered scenes.

* Folds: items sorted by name and split into two groups (e.g. "holds a person" or not); the i-th item of each
  group goes to fold ``i % folds`` (stratified, deterministic, no seed). ``split=val`` is fold ``fold``,
  ``split=train`` the other folds, ``split=all`` (the default when no fold is named) everything.
* Synthetic scenes: seeds ``seed .. seed+scenes-1`` (``split=val`` adds :data:`SYNTHETIC_VAL_OFFSET`); each scene
  simulates ``frames`` frames and renders every ``every``-th. A rendered scene is cached in a folder named by a
  hash of its config and of the generator's source, written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from toolkit.data.spec import DataSpec
from toolkit.errors import UsageError
from toolkit.fileio import sweep_stale

SYNTHETIC_VAL_OFFSET = 1000  # split=val scene seeds = train seeds + this, so validation scenes never train
S = TypeVar("S")  # a sample set type (detector Samples, segmenter SegSamples)


def first_items(samples: S, spec: DataSpec, limit: int | None) -> tuple[S, int | None]:
    """Cut a sample set (anything with ``subset(indices)`` and ``len``) to its first N items, N the smaller of the
    caller's ``limit`` and the SPEC's ``limit=``. Returns (samples, N or None when neither is set); a UsageError
    when N < 1 or no item is left."""
    limits = [v for v in (limit, spec.get_int("limit")) if v is not None]
    cut = min(limits) if limits else None
    if cut is not None:
        if cut < 1:
            raise UsageError(f"data '{spec}': limit must be >= 1, got {cut}")
        samples = samples.subset(range(min(cut, len(samples))))
    if not len(samples):
        raise UsageError(f"data '{spec}': no images selected")
    return samples, cut


# ---------------------------------------------------------------------------------------------- folds


@dataclass(frozen=True)
class FoldSplit:
    """Which side of which cross-validation fold a SPEC asks for."""

    split: str  # train, val or all
    fold: int  # the validation fold
    folds: int  # number of folds

    def keep(self, assigned: np.ndarray) -> np.ndarray:
        """Indices of the items on this side, given each item's fold (:func:`stratified_folds`)."""
        return np.flatnonzero(
            {"all": assigned >= 0, "val": assigned == self.fold, "train": assigned != self.fold}[self.split]
        )

    def describe(self) -> dict[str, Any]:
        return {"split": self.split, "fold": self.fold, "folds": self.folds}

    def rule_tail(self) -> str:
        """The end of a rule text: ``split=val, fold 1`` (no fold for split=all)."""
        return f"split={self.split}" + (f", fold {self.fold}" if self.split != "all" else "")


def parse_fold_split(spec: DataSpec, default_folds: int, default_fold: int = 0) -> FoldSplit:
    """``split=``, ``folds=`` and ``fold=`` of a SPEC, validated; split defaults to all unless a fold is named."""
    split = spec.get("split")
    if split is None:
        if "fold" in spec.options or "folds" in spec.options:
            raise UsageError(
                f"data '{spec}': say which side of the fold you want: add split=train or split=val"
            )
        split = "all"
    if split not in ("train", "val", "all"):
        raise UsageError(f"data '{spec}': split must be train, val or all, got '{split}'")
    folds, fold = spec.get_int("folds", default_folds), spec.get_int("fold", default_fold)
    if folds < 2 or not 0 <= fold < folds:
        raise UsageError(
            f"data '{spec}': need folds >= 2 and 0 <= fold < folds, got fold={fold}, folds={folds}"
        )
    return FoldSplit(split, fold, folds)


def stratified_folds(names: list[str], groups: list[bool], folds: int) -> np.ndarray:
    """Fold per item: sorted by ``names``, stratified by ``groups``, the i-th item of a group -> fold i % folds."""
    fold = np.zeros(len(names), np.int64)
    counters = {True: 0, False: 0}
    for i in sorted(range(len(names)), key=lambda k: names[k]):
        fold[i] = counters[groups[i]] % folds
        counters[groups[i]] += 1
    return fold


# ---------------------------------------------------------------------------------------------- synthetic


@dataclass(frozen=True)
class SceneSet:
    """The synthetic scenes a SPEC names."""

    split: str  # train or val
    base: int  # seed of the first scene (val already offset)
    scenes: int  # number of scenes
    frames: int  # frames simulated per scene
    every: int  # every every-th frame is rendered and kept
    jitter: float  # camera variation per seed (0 = the default camera)
    size: dict[str, int]  # width / height overrides of the scene config

    def configs(self) -> list[Any]:
        """One :class:`~toolkit.data.synthetic.SceneConfig` per scene."""
        from toolkit.data.synthetic import SceneConfig

        return [
            SceneConfig(seed=self.base + s, camera_jitter=self.jitter, **self.size)
            for s in range(self.scenes)
        ]

    def describe(self, spec: DataSpec) -> dict[str, Any]:
        return {
            "source": "synthetic",
            "spec": str(spec),
            "split": self.split,
            "scene_seeds": [self.base, self.base + self.scenes - 1],
            "frames_per_scene": self.frames,
            "every": self.every,
            "camera_jitter": self.jitter,
        }


def parse_scene_set(spec: DataSpec) -> SceneSet:
    """``split``, ``seed``, ``scenes``, ``frames``, ``every``, ``jitter``, ``width``, ``height`` of a synthetic SPEC."""
    split = spec.get("split", "train")
    if split not in ("train", "val"):
        raise UsageError(f"data '{spec}': synthetic split must be train or val, got '{split}'")
    seed, scenes = spec.get_int("seed", 0), spec.get_int("scenes", 1)
    frames, every = spec.get_int("frames", 400), spec.get_int("every", 2)
    jitter = spec.get_float("jitter", 1.0)
    if scenes < 1 or frames < 1 or every < 1:
        raise UsageError(f"data '{spec}': scenes, frames and every must be >= 1")
    base = seed + (SYNTHETIC_VAL_OFFSET if split == "val" else 0)
    size = {k: spec.get_int(k) for k in ("width", "height") if spec.get(k) is not None}
    return SceneSet(split, base, scenes, frames, every, jitter, size)


def kept_frames(config: Any, frames: int, every: int) -> Iterator[tuple[int, Any]]:
    """Simulate ``frames`` frames of a scene; yield (k, frame) for every ``every``-th, k = 0, 1, ..."""
    from toolkit.data.synthetic import StreetScene

    scene = StreetScene(config)
    for i in range(frames):
        if i % every:
            scene.advance()  # simulate without rendering the frames we skip
            continue
        yield i // every, scene.step()


def kept_count(frames: int, every: int) -> int:
    """How many frames :func:`kept_frames` yields."""
    return (frames + every - 1) // every


def _generator_hash() -> str:
    from toolkit.data import synthetic

    digest = hashlib.sha256()
    for file in sorted(Path(synthetic.__file__).parent.glob("synthetic*.py")):
        digest.update(file.name.encode() + file.read_bytes())
    return digest.hexdigest()


def publish_folder(folder: Path, key_src: str, done: str, fill: Callable[[Path], None]) -> None:
    """Fill an empty temporary folder beside ``folder`` with ``fill(tmp)`` and ``key.json``, then rename it to
    ``folder`` in one step, so a cache folder is complete or absent (a concurrent writer that finished first wins;
    its folder has the file ``done``)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(folder.parent, r"\..*\.partial-(\d+)-")  # folders of runs killed with SIGKILL
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-{os.getpid()}-", dir=folder.parent))
    try:
        fill(tmp)
        (tmp / "key.json").write_text(key_src + "\n")
        try:
            os.replace(tmp, folder)
        except OSError:  # another process wrote the same entry first: keep theirs
            if not (folder / done).is_file():
                raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(tmp)


def cached_scene(
    root: Path, config: Any, frames: int, every: int, done: str, write: Callable[[Path, Any, int, int], None]
) -> Path:
    """The cache folder of one rendered scene under ``root``; rendered first when its file ``done`` is missing.

    ``write(folder, config, frames, every)`` fills an empty temporary folder, which then replaces the cache
    folder in one rename (a concurrent process that rendered the same scene first wins).
    """
    key_src = json.dumps(
        {"config": asdict(config), "frames": frames, "every": every, "generator": _generator_hash()},
        sort_keys=True,
    )
    folder = root / hashlib.sha256(key_src.encode()).hexdigest()[:20]
    if (folder / done).is_file():
        return folder
    publish_folder(folder, key_src, done, lambda tmp: write(tmp, config, frames, every))
    return folder
