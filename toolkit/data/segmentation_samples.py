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
* ``pseudo`` -- frames of an image folder or a video labelled by the pretrained teachers, cached on disk
  (:mod:`toolkit.data.teachers_pseudo`, :func:`toolkit.data.teachers.street_labels`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from toolkit.adapters.image import Letterbox, letterbox
from toolkit.adapters.segment import CLASS_NAMES
from toolkit.data import sample_sets
from toolkit.data.augment import IGNORE
from toolkit.data.masks import MaskMapping
from toolkit.data.spec import DataSpec
from toolkit.errors import UsageError

PERSON = CLASS_NAMES.index("person")
COCO128_FOLDS = 4  # default number of cross-validation folds

# COCO panoptic ids (COCO128 semantic masks, shared data/coco128/semantic_segmentation/config.yaml) -> our classes.
STREET_FROM_PANOPTIC = MaskMapping(
    {
        0: IGNORE,
        1: PERSON,
        149: CLASS_NAMES.index("road"),
        191: CLASS_NAMES.index("sidewalk"),
        **{cid: CLASS_NAMES.index("vehicle") for cid in (2, 3, 4, 6, 8)},
    },  # bicycle car motorcycle bus truck
    default=0,
    class_names=CLASS_NAMES,
)


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
        return SegSamples(
            [self.names[i] for i in idx], lambda j: self.load(idx[j]), {**self.describe, "images": len(idx)}
        )


def model_input(
    image_rgb: np.ndarray, mask: np.ndarray | None, input_hw: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray | None, Letterbox]:
    """Letterbox an original RGB image (grey 114) and its mask (nearest, 255 padding) to the model input size.

    Returns (uint8 (H, W, 3) image -- divide by 255 to feed --, uint8 (H, W) mask or None, the transform).
    """
    boxed, transform = letterbox(image_rgb, input_hw)
    boxed_mask = None if mask is None else letterbox(mask, input_hw, pad_value=IGNORE, nearest=True)[0]
    return boxed, boxed_mask, transform


def load_samples(spec: DataSpec, limit: int | None = None) -> SegSamples:
    """The segmentation samples of a SPEC (see the module docstring); at most ``limit`` images, in order."""
    loaders = {"synthetic": _synthetic, "coco128": _coco128, "pseudo": _pseudo}
    if spec.name not in loaders:
        raise UsageError(
            f"data '{spec}': the segmenter is trained and scored on {', '.join(loaders)} data "
            f"(images with class-index masks), not {spec.name}"
        )
    samples = loaders[spec.name](spec)
    samples, cut = sample_sets.first_items(samples, spec, limit)
    if cut is not None:
        samples.describe.pop("images_with_person", None)  # counted before the cut
        samples.describe["limit"] = cut
    samples.describe["images"] = len(samples)
    return samples


# ---------------------------------------------------------------------------------------------- COCO128


def fold_of(has_person: list[bool], names: list[str], folds: int) -> np.ndarray:
    """Fold per image: sorted by name, stratified by ``has_person``, the i-th of a group -> fold i % folds."""
    return sample_sets.stratified_folds(names, has_person, folds)


def _coco128(spec: DataSpec) -> SegSamples:
    from toolkit.data.image_folder import read_rgb
    from toolkit.data.masks import load_mask, pair_masks
    from toolkit.paths import shared_path

    split = sample_sets.parse_fold_split(spec, COCO128_FOLDS)
    root = Path(spec.get("root")) if spec.get("root") else shared_path("data", "coco128")
    pairs = pair_masks(root / "images" / "train2017", root / "semantic_segmentation" / "masks" / "train2017")
    lut = STREET_FROM_PANOPTIC.lut()
    names = [mask.name for _, mask in pairs]
    # Stratify on the raw panoptic id: reading 100 small PNGs once is cheap and needs no image decoding.
    has_person = [bool((load_mask(mask) == 1).any()) for _, mask in pairs]
    keep = split.keep(fold_of(has_person, names, split.folds))
    chosen = [pairs[int(i)] for i in keep]

    def load(i: int) -> tuple[np.ndarray, np.ndarray]:
        image_path, mask_path = chosen[i]
        image = read_rgb(image_path)
        return image, lut[load_mask(mask_path, expect_hw=image.shape[:2])]

    rule = (
        f"stratified {split.folds}-fold split of the {len(pairs)} masked images by file name (person pixels / "
        f"none, i-th image -> fold i % {split.folds}); {split.rule_tail()}"
    )
    describe = {
        "source": "coco128",
        "spec": str(spec),
        **split.describe(),
        "rule": rule,
        "images_with_person": int(sum(has_person[int(i)] for i in keep)),
        "mapping": "COCO panoptic person->person, road->road, pavement->sidewalk, "
        "car/bus/truck/motorcycle/bicycle->vehicle, unlabeled->ignore, rest->background",
    }
    return SegSamples([chosen[i][1].stem for i in range(len(chosen))], load, describe)


def _pseudo(spec: DataSpec) -> SegSamples:
    from toolkit.data.teachers_pseudo import segmentation_samples

    return segmentation_samples(spec)


# ---------------------------------------------------------------------------------------------- synthetic


def _synthetic(spec: DataSpec) -> SegSamples:
    scenes = sample_sets.parse_scene_set(spec)
    folders = [render_cached(config, scenes.frames, scenes.every) for config in scenes.configs()]
    images = [np.load(f / "frames.npy", mmap_mode="r") for f in folders]
    masks = [np.load(f / "masks.npy", mmap_mode="r") for f in folders]
    where = [(p, f) for p in range(len(folders)) for f in range(len(images[p]))]

    def load(i: int) -> tuple[np.ndarray, np.ndarray]:
        p, f = where[i]
        return cv2.cvtColor(np.ascontiguousarray(images[p][f]), cv2.COLOR_BGR2RGB), np.array(masks[p][f])

    return SegSamples(
        [f"scene{scenes.base + p}/frame{f * scenes.every:05d}" for p, f in where], load, scenes.describe(spec)
    )


def cache_root() -> Path:
    from toolkit.paths import state_dir

    return state_dir() / "cache" / "synthetic_seg"


def render_cached(config: Any, frames: int, every: int) -> Path:
    """Render (or reuse) one scene's kept frames: a folder with ``frames.npy`` (K, H, W, 3) BGR and ``masks.npy``."""
    return sample_sets.cached_scene(cache_root(), config, frames, every, "masks.npy", _write_scene)


def _write_scene(folder: Path, config: Any, frames: int, every: int) -> None:
    shape = (sample_sets.kept_count(frames, every), config.height, config.width)
    images = np.lib.format.open_memmap(folder / "frames.npy", mode="w+", dtype=np.uint8, shape=(*shape, 3))
    masks = np.lib.format.open_memmap(folder / "masks.npy", mode="w+", dtype=np.uint8, shape=shape)
    for k, frame in sample_sets.kept_frames(config, frames, every):
        images[k], masks[k] = frame.image, frame.mask
    images.flush()
    masks.flush()
    del images, masks
