"""Crossing grounded in the scene: the probability that a track's predicted paths enter the road region.

>>> road = RoadCrossing(CrossingConfig(), polygons=None, segmenting=True)
>>> predictions, crossings = road(predictions, labels, frame_size=(480, 360))   # {id: Prediction}, {id: Crossing}

**The number.** The road-grounded part is the sum of the probabilities of a track's predicted paths that
*enter* the road: a path enters when one of its future foot points (steps 1..H, 0.4 s apart) lies inside the road
region. The paths are the behaviour stage's modes where it gives several (``modes_image`` (K, H, 2) with
``mode_probs`` (K,)), else its single ``path_image`` with probability 1 (:func:`path_modes`), so with today's
one-path model it is 0 or 1 and says which path did it (:class:`Crossing`: the first step on the road and where).
Where the scene has road, the learned crossing head stays as a prior: crossing = (1 - w) x paths-enter-road +
w x learned head, w = ``prior_weight`` (0.5 by default; ``--crossing road-only`` sets 0). With w <= 0.5 a label
reaches 50 % (red "CROSS") only when a path enters the road (or the head says exactly 1); the head orders the
rest (on the synthetic street it lifts AUROC from 0.76 to 0.87, docs/pipeline/crossing.md). Where there is no road
at all the number is 0, whatever the head says.

**Conventions.**

* A person already on the road whose path stays on it counts as crossing (the synthetic labels do the same: the
  person is "crossing" at some frame of the horizon); the current position itself (step 0) is not tested, so a
  person stepping off the road with a path that leaves it at once does not count.
* A NaN point (beyond a homography's horizon) or a point outside the frame is "not on the road": what cannot be
  seen is not claimed.
* Tolerance: the region is eroded by ``erode`` x the frame height (1.5 %, 5 px at 360 lines) before the test, so a
  path that runs along the kerb does not flicker in and out of the road with a few pixels of jitter.

**The road region**, in this order:

1. Polygons the user gives (``--road-region``; :func:`load_road_region`): they *override* the segmenter -- the
   region is exactly what was drawn, so the number is explainable from the drawing alone and a segmenter's mistakes
   cannot add road to it.
2. Else the segmenter's mask, remembered over time (:class:`RoadMap`): every segmentation votes road / not road
   for each pixel it sees, with an exponential memory (``memory``: weight of the newest vote); pixels labelled as
   a person or vehicle do not vote (they stand on the road and would cut holes in it). A pixel is road once its
   vote passes ``vote``, i.e. after about 3 consecutive segmentations that say road (~0.4 s at every_n_seg=3 and
   25 fps). After erosion, each connected piece of road smaller than ``min_share`` (2 %) of the frame is
   dropped: a road a person can cross is one large band, not scattered patches on a lawn or a path. The votes
   live on a grid of every s-th label pixel (~120 rows, :attr:`RoadMap.GRID_ROWS`) and the finished region is
   resized back to the frame: ~0.4 ms per new mask at 480x360 instead of ~11 ms at full resolution.
3. Neither (no segmenter, no polygons): the behaviour model's learned crossing head, marked ``source="model"``;
   before the segmenter's first mask arrives: no number (``source=None``).

The learned head's value is kept beside the grounded one as ``prior`` (for events and evaluation); docs/pipeline/
crossing.md measures learned vs grounded vs combined on the synthetic street.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from toolkit.errors import UsageError
from toolkit.pipeline.segment import CLASSES

ROAD = "road"  # crossing_source: the road region decided it
MODEL = "model"  # crossing_source: the behaviour model's learned head (no road knowledge available)
SOURCES = (ROAD, MODEL, None)


@dataclass(frozen=True)
class CrossingConfig:
    """How a road region is formed from segmentations and how far inside a path point must be."""

    road_classes: tuple[str, ...] = (
        "road",
    )  # segmenter classes that are road (CLASSES has no crosswalk class)
    occluders: tuple[str, ...] = ("person", "vehicle")  # classes that hide the road: they cast no vote
    memory: float = 0.3  # weight of the newest segmentation in the per-pixel road vote (exponential memory)
    vote: float = (
        0.6  # a pixel is road once its vote reaches this (0.3 memory: 3 road segmentations in a row)
    )
    erode: float = 0.015  # the region shrinks by this share of the frame height before paths are tested
    min_share: float = 0.02  # a connected piece of road smaller than this share of the frame is dropped
    prior_weight: float = 0.5  # where there is road: crossing = (1 - w) * paths-enter-road + w * learned head

    def __post_init__(self) -> None:
        unknown = [c for c in (*self.road_classes, *self.occluders) if c not in CLASSES]
        if unknown:
            raise UsageError(f"crossing: unknown class {unknown[0]!r}; classes are {', '.join(CLASSES)}")
        for name, value in (("memory", self.memory), ("vote", self.vote)):
            if not 0.0 < value <= 1.0:
                raise UsageError(f"crossing: {name} must be in (0, 1], got {value}")
        if not 0.0 <= self.erode < 0.5 or not 0.0 <= self.min_share < 1.0:
            raise UsageError("crossing: erode must be in [0, 0.5) and min_share in [0, 1)")
        if not 0.0 <= self.prior_weight <= 0.5:
            # at most 0.5: the learned head alone never passes 50 %, so CROSS (red) means a path enters the road
            raise UsageError(f"crossing: prior_weight must be in [0, 0.5], got {self.prior_weight}")


@dataclass(frozen=True)
class Crossing:
    """One track's crossing, with its explanation."""

    probability: (
        float | None
    )  # the number shown: chance of being on the road within the horizon; None: unknown
    source: str | None  # "road" (the road region), "model" (the learned head: no road knowledge) or None
    prior: float | None = None  # the behaviour model's learned crossing head, where it gave one
    road: float | None = None  # the summed probability of the paths entering the road (source "road")
    step: int | None = None  # first future step (1 = 0.4 s ahead) on the road, of the likeliest entering path
    point: tuple[float, float] | None = None  # where (pixels) that path first reaches the road


def path_modes(prediction: Any) -> tuple[np.ndarray, np.ndarray]:
    """A prediction's paths in pixels (K, H, 2) and their probabilities (K,), summing to 1: the behaviour stage's
    ``modes_image`` / ``mode_probs`` where present, else its single ``path_image`` with probability 1."""
    modes = getattr(prediction, "modes_image", None)
    probs = getattr(prediction, "mode_probs", None)
    if modes is not None and probs is not None:
        m = np.asarray(modes, np.float64).reshape(-1, *np.shape(prediction.path_image))
        p = np.clip(np.asarray(probs, np.float64).reshape(-1), 0.0, None)
        if len(p) == len(m) and p.sum() > 0:
            return m, p / p.sum()
    path = np.asarray(prediction.path_image, np.float64)
    return path[None], np.ones(1)


def points_in_region(points: np.ndarray, region: np.ndarray) -> np.ndarray:
    """(..., 2) pixel points + (H, W) bool region -> (...) bool: the pixel under each point is in the region;
    NaN and off-frame points are False."""
    p = np.asarray(points, np.float64)
    finite = np.isfinite(p).all(axis=-1)
    xy = np.where(finite[..., None], np.floor(p), -1.0)
    h, w = region.shape
    inside = finite & (xy[..., 0] >= 0) & (xy[..., 0] < w) & (xy[..., 1] >= 0) & (xy[..., 1] < h)
    x = np.where(inside, xy[..., 0], 0).astype(np.intp)
    y = np.where(inside, xy[..., 1], 0).astype(np.intp)
    return inside & region[y, x]


def enter_steps(paths: np.ndarray, region: np.ndarray) -> np.ndarray:
    """(N, H, 2) paths + (H, W) bool region -> (N,) int: the first step (1-based) whose point is in the region,
    0 for a path that never enters it."""
    hit = points_in_region(paths, region)
    if hit.shape[-1] == 0:
        return np.zeros(hit.shape[:-1], np.int64)
    return np.where(hit.any(axis=-1), hit.argmax(axis=-1) + 1, 0)


def crossing_probabilities(
    modes: Sequence[np.ndarray], probs: Sequence[np.ndarray], region: np.ndarray | None
) -> list[Crossing]:
    """Per track: paths (K, H, 2) + probabilities (K,) -> :class:`Crossing` with ``source="road"``: the summed
    probability of the paths entering ``region`` (bool (H, W); None or empty: no road, probability 0), and the
    first step and point of the likeliest entering path. All tracks' paths are tested in one vectorised pass."""
    if not modes:
        return []
    if region is None or not region.any():
        return [Crossing(0.0, ROAD, road=0.0) for _ in modes]
    counts = [len(m) for m in modes]
    owner = np.repeat(np.arange(len(modes)), counts)
    paths = np.concatenate([np.asarray(m, np.float64) for m in modes])  # (sum K, H, 2)
    weights = np.concatenate([np.asarray(p, np.float64) for p in probs])
    steps = enter_steps(paths, region)
    entered = steps > 0
    total = np.bincount(owner, weights=weights * entered, minlength=len(modes))
    out: list[Crossing] = []
    start = 0
    for i, k in enumerate(counts):
        step, point = None, None
        sel = slice(start, start + k)
        if entered[sel].any():
            best = start + int(np.argmax(np.where(entered[sel], weights[sel], -1.0)))
            step = int(steps[best])
            point = (round(float(paths[best, step - 1, 0]), 1), round(float(paths[best, step - 1, 1]), 1))
        p = float(min(total[i], 1.0))
        out.append(Crossing(p, ROAD, road=p, step=step, point=point))
        start += k
    return out


# -- the road region ---------------------------------------------------------------------------------------------


class RoadMap:
    """The segmenter's road, remembered over segmentations (see the module docstring): :meth:`update` with each new
    label image, :meth:`region` for the eroded road mask (all False when there is too little road)."""

    GRID_ROWS = 120  # votes are kept on a grid of about this many rows (every s-th label pixel): 16x cheaper at 480x360

    def __init__(self, config: CrossingConfig = CrossingConfig()) -> None:
        self.config = config
        self._road = np.zeros(
            256, np.float32
        )  # label -> 1.0 for road classes (a lookup, not np.isin: ~20x faster)
        self._road[[CLASSES.index(c) for c in config.road_classes]] = 1.0
        self._seen = np.ones(256, np.uint8)  # label -> 0 for occluders (they cast no vote)
        self._seen[[CLASSES.index(c) for c in config.occluders]] = 0
        self.votes: np.ndarray | None = None  # (h, w) float32 road vote on the grid
        self.frame_hw: tuple[int, int] | None = None
        self.updates = 0
        self._region: np.ndarray | None = None

    def update(self, labels: np.ndarray) -> None:
        """Fold one segmentation ((H, W) class indices) into the votes; a new frame size starts over."""
        lab = np.asarray(labels)
        stride = max(1, lab.shape[0] // self.GRID_ROWS)
        grid = np.ascontiguousarray(lab[::stride, ::stride])
        if self.votes is None or self.frame_hw != lab.shape[:2]:
            self.votes, self.updates, self.frame_hw = np.zeros(grid.shape, np.float32), 0, lab.shape[:2]
        # votes += memory * (road - votes) where the pixel is seen (cv2 does it in one pass)
        cv2.accumulateWeighted(self._road[grid], self.votes, self.config.memory, mask=self._seen[grid])
        self.updates += 1
        self._region = None

    def region(self) -> np.ndarray | None:
        """(H, W) bool road region at frame size (eroded; pieces below ``min_share`` dropped), None before the
        first update."""
        if self.votes is None or self.frame_hw is None:
            return None
        if self._region is None:
            small = finish_region(self.votes >= self.config.vote, self.config).astype(np.uint8)
            height, width = self.frame_hw
            self._region = cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)
        return self._region


def finish_region(mask: np.ndarray, config: CrossingConfig) -> np.ndarray:
    """Erode a raw bool road mask by ``config.erode`` x its height, then drop every connected piece smaller than
    ``min_share`` of the frame (a road is one large band; scattered misclassified patches are not)."""
    radius = int(round(config.erode * mask.shape[0]))
    m = mask.astype(np.uint8)
    if radius > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        m = cv2.erode(m, kernel, borderType=cv2.BORDER_REPLICATE)
    count, components, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    keep = np.zeros(count, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= config.min_share * m.size
    return keep[components]


def parse_road_region(value: Any, where: str = "--road-region") -> list[np.ndarray]:
    """Parsed JSON -> polygons (each (n >= 3, 2) float pixels): one polygon ``[[x, y], ...]``, a list of them, or
    an object ``{"polygons": [...]}``; UsageError naming what is wrong."""
    if isinstance(value, dict):
        extra = sorted(set(value) - {"polygons", "comment"})
        if extra or "polygons" not in value:
            raise UsageError(
                f'{where}: expected {{"polygons": [[[x, y], ...], ...]}}, got keys {sorted(value)}'
            )
        value = value["polygons"]
    if not isinstance(value, list) or not value:
        raise UsageError(
            f"{where}: expected a polygon [[x, y], ...] or a list of polygons, got {value!r:.60}"
        )
    polygons = value if isinstance(value[0], list) and value[0] and isinstance(value[0][0], list) else [value]
    out = []
    for i, poly in enumerate(polygons):
        try:
            arr = np.asarray(poly, dtype=np.float64)
        except (TypeError, ValueError):
            arr = np.zeros((0,))
        if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) < 3 or not np.isfinite(arr).all():
            raise UsageError(f"{where}: polygon {i} must be at least 3 [x, y] pixel points, got {poly!r:.60}")
        out.append(arr)
    return out


def load_road_region(spec: str) -> list[np.ndarray]:
    """``--road-region`` value -> polygons: inline JSON (starts with ``[`` or ``{``) or a JSON file's path."""
    text = spec.strip()
    where = "--road-region"
    if not text.startswith(("[", "{")):
        path = Path(text).expanduser()
        if not path.is_file():
            raise UsageError(f"--road-region {spec}: no such file (give a JSON file or inline [[x, y], ...])")
        where = f"--road-region {path}"
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{where}: cannot read it: {exc}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{where}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    return parse_road_region(value, where)


def rasterise(polygons: Sequence[np.ndarray], frame_size: tuple[int, int]) -> np.ndarray:
    """Polygons (pixels) -> (H, W) bool mask of their union on a frame of ``frame_size`` = (width, height)."""
    width, height = frame_size
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [np.round(p).astype(np.int32) for p in polygons], 1)
    return mask.astype(bool)


class RoadCrossing:
    """The demo's crossing step: predictions + the latest segmentation -> predictions whose ``crossing`` is the
    road-grounded probability, and a :class:`Crossing` per track (what the events and the legend say).

    ``polygons``: the user's road region (overrides the segmenter); ``segmenting``: a segmenter runs, so a mask is
    coming (until it does, crossing is unknown rather than the learned head's guess); ``config.prior_weight``: the
    learned head's share where there is road.
    """

    def __init__(
        self,
        config: CrossingConfig = CrossingConfig(),
        polygons: Sequence[np.ndarray] | None = None,
        segmenting: bool = False,
    ) -> None:
        self.config = config
        self.polygons = list(polygons) if polygons else []
        self.segmenting = segmenting
        self.road_map = RoadMap(config)
        self._labels: np.ndarray | None = None
        self._user: tuple[tuple[int, int], np.ndarray] | None = None

    @property
    def source(self) -> str | None:
        """Where crossing numbers come from once running: "road" (polygons or a segmenter) or "model"."""
        return ROAD if self.polygons or self.segmenting else MODEL

    def region(self, labels: np.ndarray | None, frame_size: tuple[int, int]) -> np.ndarray | None:
        """The road region for this frame (bool (H, W)), or None when there is none to go by yet."""
        if self.polygons:
            if self._user is None or self._user[0] != frame_size:
                self._user = (frame_size, finish_region(rasterise(self.polygons, frame_size), self.config))
            return self._user[1]
        if labels is not None and labels is not self._labels:
            self._labels = labels
            self.road_map.update(labels)
        return self.road_map.region()

    def __call__(
        self, predictions: Mapping[int, Any], labels: np.ndarray | None, frame_size: tuple[int, int]
    ) -> tuple[dict[int, Any], dict[int, Crossing]]:
        """Re-label ``predictions`` (``crossing`` := the grounded probability, or the learned head where there is
        no road knowledge) and return them with a :class:`Crossing` per track."""
        ids = list(predictions)
        priors = {i: predictions[i].crossing for i in ids}
        if not self.polygons and not self.segmenting:
            crossings = {
                i: Crossing(priors[i], MODEL if priors[i] is not None else None, priors[i]) for i in ids
            }
            return dict(predictions), crossings
        region = self.region(labels, frame_size)
        if region is None:  # the segmenter's first mask is not there yet
            crossings = {i: Crossing(None, None, priors[i]) for i in ids}
        else:
            pairs = [path_modes(predictions[i]) for i in ids]
            grounded = crossing_probabilities([m for m, _ in pairs], [p for _, p in pairs], region)
            w = self.config.prior_weight if region.any() else 0.0  # no road at all: 0, whatever the head says
            crossings = {
                i: dataclasses.replace(
                    c,
                    prior=priors[i],
                    probability=c.probability if priors[i] is None else (1 - w) * c.road + w * priors[i],
                )
                for i, c in zip(ids, grounded, strict=True)
            }
        relabelled = {i: dataclasses.replace(predictions[i], crossing=crossings[i].probability) for i in ids}
        return relabelled, crossings
