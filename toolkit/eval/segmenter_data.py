"""Street-segmentation samples from a data SPEC, shared by segmenter training and evaluation (numpy + OpenCV only).

Every source becomes a :class:`SegSamples`: ``load(i)`` gives image i as uint8 RGB and its mask as uint8 class
indices into :data:`toolkit.models.segmenter.CLASS_NAMES` (background, road, sidewalk, person, vehicle = 0..4) with
255 = ignore, both at the ORIGINAL image size. :func:`model_input` letterboxes an image (grey 114) and its mask
(nearest, 255 padding) exactly as the camera pipeline letterboxes frames (:mod:`toolkit.pipeline.segment`).

Sources (SPEC keys in :mod:`toolkit.data.spec`):

* ``synthetic`` -- seeded street scenes (:mod:`toolkit.data.synthetic`), whose masks carry our five classes.
  Scene seeds ``seed .. seed+scenes-1`` (``split=val`` adds 1000, so validation scenes never appear in training);
  each scene simulates ``frames`` frames and renders every ``every``-th. ``jitter`` (default 1) varies the camera
  per seed; ``jitter=0`` is the default camera of :class:`~toolkit.data.synthetic.SceneConfig` (the demo's view).
  Rendered frames and masks are cached on disk (``$TOOLKIT_HOME/cache/synthetic_seg``), keyed by the scene
  config and a hash of the generator's source.
* ``coco128`` -- the 100 shared COCO128 images that have semantic masks (COCO panoptic ids), mapped by
  :data:`STREET_FROM_PANOPTIC`: person -> person, road -> road, pavement -> sidewalk, car / bus / truck /
  motorcycle / bicycle -> vehicle, unlabeled -> ignore, every other class -> background. Cross-validation folds:
  masks sorted by file name, split into those with and without person pixels, the i-th of each group -> fold
  ``i % folds`` (stratified, deterministic). ``split=val`` is fold ``fold``, ``split=train`` the other folds,
  ``split=all`` (the default when no fold is named) all 100.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from toolkit.data.augment import IGNORE, Letterbox, letterbox
from toolkit.data.masks import MaskMapping
from toolkit.data.spec import DataSpec
from toolkit.errors import UsageError
from toolkit.models.segmenter import CLASS_NAMES

PERSON = CLASS_NAMES.index("person")
COCO128_FOLDS = 4  # default number of cross-validation folds
SYNTHETIC_VAL_OFFSET = 1000  # split=val scene seeds = train seeds + this (as for the detector)

# COCO panoptic ids (COCO128 semantic masks, shared data/coco128/semantic_segmentation/config.yaml) -> our classes.
STREET_FROM_PANOPTIC = MaskMapping(
    {0: IGNORE, 1: PERSON, 149: CLASS_NAMES.index("road"), 191: CLASS_NAMES.index("sidewalk"),
     **{cid: CLASS_NAMES.index("vehicle") for cid in (2, 3, 4, 6, 8)}},  # bicycle car motorcycle bus truck
    default=0, class_names=CLASS_NAMES)


@dataclass
class SegSamples:
    """Images with masks; ``load(i)`` -> (uint8 RGB (H, W, 3), uint8 mask (H, W), 255 = ignore)."""

    names: list[str]  # one identifier per image (file name, or scene/frame)
    load: Callable[[int], tuple[np.ndarray, np.ndarray]]
    describe: dict[str, Any] = field(default_factory=dict)  # source, split rule, counts

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, indices: np.ndarray | list[int] | range) -> SegSamples:
        idx = [int(i) for i in indices]
        return SegSamples([self.names[i] for i in idx], lambda j: self.load(idx[j]), {**self.describe,
                                                                                     "images": len(idx)})


def model_input(image_rgb: np.ndarray, mask: np.ndarray | None, input_hw: tuple[int, int]) -> tuple[
        np.ndarray, np.ndarray | None, Letterbox]:
    """Letterbox an original RGB image (grey 114) and its mask (nearest, 255 padding) to the model input size.

    Returns (uint8 (H, W, 3) image -- divide by 255 to feed --, uint8 (H, W) mask or None, the transform).
    """
    boxed, transform = letterbox(image_rgb, input_hw)
    boxed_mask = None if mask is None else letterbox(mask, input_hw, pad_value=IGNORE, nearest=True)[0]
    return boxed, boxed_mask, transform


def load_samples(spec: DataSpec, limit: int | None = None) -> SegSamples:
    """The segmentation samples of a SPEC (see the module docstring); at most ``limit`` images, in order."""
    loaders = {"synthetic": _synthetic, "coco128": _coco128}
    if spec.name not in loaders:
        raise UsageError(f"data '{spec}': the segmenter is trained and scored on {', '.join(loaders)} data "
                         f"(images with class-index masks), not {spec.name}")
    samples = loaders[spec.name](spec)
    limits = [v for v in (limit, spec.get_int("limit")) if v is not None]
    if limits:
        if min(limits) < 1:
            raise UsageError(f"data '{spec}': limit must be >= 1, got {min(limits)}")
        samples = samples.subset(range(min(min(limits), len(samples))))
        samples.describe.pop("images_with_person", None)  # counted before the limit
        samples.describe["limit"] = min(limits)
    if not len(samples):
        raise UsageError(f"data '{spec}': no images selected")
    samples.describe["images"] = len(samples)
    return samples


# ---------------------------------------------------------------------------------------------- COCO128


def fold_of(has_person: list[bool], names: list[str], folds: int) -> np.ndarray:
    """Fold per image: sorted by name, stratified by ``has_person``, the i-th of a group -> fold i % folds."""
    fold = np.zeros(len(names), np.int64)
    counters = {True: 0, False: 0}
    for i in sorted(range(len(names)), key=lambda k: names[k]):
        fold[i] = counters[has_person[i]] % folds
        counters[has_person[i]] += 1
    return fold


def _coco128(spec: DataSpec) -> SegSamples:
    from toolkit.data.image_folder import read_rgb
    from toolkit.data.masks import load_mask, pair_masks
    from toolkit.paths import shared_path

    split = spec.get("split")
    if split is None:
        if "fold" in spec.options or "folds" in spec.options:
            raise UsageError(f"data '{spec}': say which side of the fold you want: add split=train or split=val")
        split = "all"
    if split not in ("train", "val", "all"):
        raise UsageError(f"data '{spec}': split must be train, val or all, got '{split}'")
    folds, fold = spec.get_int("folds", COCO128_FOLDS), spec.get_int("fold", 0)
    if folds < 2 or not 0 <= fold < folds:
        raise UsageError(f"data '{spec}': need folds >= 2 and 0 <= fold < folds, got fold={fold}, folds={folds}")
    root = Path(spec.get("root")) if spec.get("root") else shared_path("data", "coco128")
    pairs = pair_masks(root / "images" / "train2017", root / "semantic_segmentation" / "masks" / "train2017")
    lut = STREET_FROM_PANOPTIC.lut()
    names = [mask.name for _, mask in pairs]
    # Stratify on the raw panoptic id: reading 100 small PNGs once is cheap and needs no image decoding.
    has_person = [bool((load_mask(mask) == 1).any()) for _, mask in pairs]
    assigned = fold_of(has_person, names, folds)
    keep = np.flatnonzero({"all": assigned >= 0, "val": assigned == fold, "train": assigned != fold}[split])
    chosen = [pairs[int(i)] for i in keep]

    def load(i: int) -> tuple[np.ndarray, np.ndarray]:
        image_path, mask_path = chosen[i]
        image = read_rgb(image_path)
        return image, lut[load_mask(mask_path, expect_hw=image.shape[:2])]

    rule = (f"stratified {folds}-fold split of the {len(pairs)} masked images by file name (person pixels / none, i-th "
            f"image -> fold i % {folds}); split={split}" + (f", fold {fold}" if split != "all" else ""))
    describe = {"source": "coco128", "spec": str(spec), "split": split, "fold": fold, "folds": folds, "rule": rule,
                "images_with_person": int(sum(has_person[int(i)] for i in keep)),
                "mapping": "COCO panoptic person->person, road->road, pavement->sidewalk, "
                           "car/bus/truck/motorcycle/bicycle->vehicle, unlabeled->ignore, rest->background"}
    return SegSamples([chosen[i][1].stem for i in range(len(chosen))], load, describe)


# ---------------------------------------------------------------------------------------------- synthetic


def _float(spec: DataSpec, key: str, default: float) -> float:
    value = spec.get(key)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        raise UsageError(f"data spec '{spec}': {key}={value} is not a number") from None


def _synthetic(spec: DataSpec) -> SegSamples:
    from toolkit.data.synthetic import SceneConfig

    split = spec.get("split", "train")
    if split not in ("train", "val"):
        raise UsageError(f"data '{spec}': synthetic split must be train or val, got '{split}'")
    seed, scenes = spec.get_int("seed", 0), spec.get_int("scenes", 1)
    frames, every = spec.get_int("frames", 400), spec.get_int("every", 2)
    jitter = _float(spec, "jitter", 1.0)
    if scenes < 1 or frames < 1 or every < 1:
        raise UsageError(f"data '{spec}': scenes, frames and every must be >= 1")
    base = seed + (SYNTHETIC_VAL_OFFSET if split == "val" else 0)
    size = {k: spec.get_int(k) for k in ("width", "height") if spec.get(k) is not None}
    folders = [render_cached(SceneConfig(seed=base + s, camera_jitter=jitter, **size), frames, every)
               for s in range(scenes)]
    images = [np.load(f / "frames.npy", mmap_mode="r") for f in folders]
    masks = [np.load(f / "masks.npy", mmap_mode="r") for f in folders]
    where = [(p, f) for p in range(len(folders)) for f in range(len(images[p]))]

    def load(i: int) -> tuple[np.ndarray, np.ndarray]:
        p, f = where[i]
        return cv2.cvtColor(np.ascontiguousarray(images[p][f]), cv2.COLOR_BGR2RGB), np.array(masks[p][f])

    describe = {"source": "synthetic", "spec": str(spec), "split": split, "scene_seeds": [base, base + scenes - 1],
                "frames_per_scene": frames, "every": every, "camera_jitter": jitter}
    return SegSamples([f"scene{base + p}/frame{f * every:05d}" for p, f in where], load, describe)


def _generator_hash() -> str:
    from toolkit.data import synthetic

    digest = hashlib.sha256()
    for file in sorted(Path(synthetic.__file__).parent.glob("synthetic*.py")):
        digest.update(file.name.encode() + file.read_bytes())
    return digest.hexdigest()


def cache_root() -> Path:
    from toolkit.paths import state_dir

    return state_dir() / "cache" / "synthetic_seg"


def render_cached(config: Any, frames: int, every: int) -> Path:
    """Render (or reuse) one scene's kept frames: a folder with ``frames.npy`` (K, H, W, 3) BGR and ``masks.npy``."""
    key_src = json.dumps({"config": asdict(config), "frames": frames, "every": every,
                          "generator": _generator_hash()}, sort_keys=True)
    folder = cache_root() / hashlib.sha256(key_src.encode()).hexdigest()[:20]
    if not (folder / "masks.npy").is_file():
        _render_into(folder, config, frames, every, key_src)
    return folder


def _render_into(folder: Path, config: Any, frames: int, every: int, key_src: str) -> None:
    from toolkit.data.synthetic import StreetScene

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=folder.parent))
    try:
        scene = StreetScene(config)
        kept = (frames + every - 1) // every
        shape = (kept, config.height, config.width)
        images = np.lib.format.open_memmap(tmp / "frames.npy", mode="w+", dtype=np.uint8, shape=(*shape, 3))
        masks = np.lib.format.open_memmap(tmp / "masks.npy", mode="w+", dtype=np.uint8, shape=shape)
        for i in range(frames):
            if i % every:
                scene.advance()  # simulate without rendering the frames we skip
                continue
            frame = scene.step()
            images[i // every], masks[i // every] = frame.image, frame.mask
        images.flush()
        masks.flush()
        del images, masks
        (tmp / "key.json").write_text(key_src + "\n")
        try:
            os.replace(tmp, folder)
        except OSError:  # another process rendered the same scene first: keep theirs
            if not (folder / "masks.npy").is_file():
                raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(tmp)
