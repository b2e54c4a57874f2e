"""Behaviour stage: each track's foot-point history -> 12 future positions (4.8 s) and a crossing probability.

>>> predictor = BehaviourPredictor(Runner("models/behaviour/behaviour_int8.tflite"), homography=H)
>>> predictions = predictor.predict(visible_tracks, frame_size=(480, 360))   # {track id: Prediction}

Coordinates the model sees (:class:`ModelSpace`):

* with a homography (:mod:`toolkit.pipeline.geometry`): ground-plane metres, the units of ETH/UCY training data;
* without one: approximate metres from the person's own size -- image pixels times ``PERSON_HEIGHT_M`` / the
  track's box height (x right, y down, nothing flipped). A person's box height is the one length every camera
  shows, so walking speeds land near the metres the model was trained on whatever the camera's zoom or distance;
  it ignores perspective along the path, so give a homography when one is known. Tracks without a usable box
  height fall back to pixels / frame height.

The model input ``track`` (n, 8, 2) -- every track with a full history, in one batch -- is built from the last 8
samples (0.4 s apart) relative to the last one and put in the model's heading frame by
:func:`toolkit.adapters.behaviour.normalise` -- the same function training and evaluation use; a social model also
gets ``neighbours`` (n, M, 5) from the other tracks (:func:`neighbour_states`). ``future`` ((n, 12, 2), or
(n, K, 12, 2) with ``mode_probs`` for a multi-modal model) comes back through
:func:`~toolkit.adapters.behaviour.denormalise`, relative to the same last point; ``path_*`` is the most likely
mode, ``modes_*`` / ``mode_probs`` all K. A track with 2..7 samples gets a
constant-velocity prediction (its last 0.4 s step repeated, the project's baseline) flagged
``constant_velocity``; so does every track when no model is given. Fewer than 2 samples: no prediction.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from toolkit.adapters.behaviour import denormalise, neighbour_input, normalise, split_modes
from toolkit.capabilities import MODEL_KINDS
from toolkit.data import trajectories
from toolkit.errors import UsageError
from toolkit.pipeline.geometry import Homography
from toolkit.pipeline.tracker import STEP_SECONDS, Track
from toolkit.runtime.runner import Runner

MODEL = "model"
PERSON_HEIGHT_M = 1.7  # assumed height of a person: without a homography it turns box pixels into ~metres
CONSTANT_VELOCITY = "constant_velocity"


@dataclass(frozen=True)
class BehaviourConfig:
    """Sequence lengths and sampling step of the behaviour stage (they must match the model's input and output)."""

    observed: int = 8  # samples the model observes (its input length)
    horizon: int = 12  # future samples it predicts (its output length)
    step_seconds: float = STEP_SECONDS  # time between samples, in and out
    min_samples: int = 2  # tracks with fewer resampled points get no prediction at all


@dataclass(frozen=True)
class ModelSpace:
    """The map between frame pixels and the model's coordinates (metres, or image heights without homography)."""

    image_height: float  # frame height in pixels
    homography: Homography | None = None  # already adapted to the frame size
    metres_per_pixel: float | None = None  # person-height scale of one track when there is no homography

    @property
    def units(self) -> str:
        """Units of the model coordinates: ``"m"`` (homography), ``"person_scaled_m"`` (person-height scale) or
        ``"image_height"`` (fractions of the frame height)."""
        if self.homography is not None:
            return "m"
        return "person_scaled_m" if self.metres_per_pixel else "image_height"

    def _scale(self) -> float:
        return self.metres_per_pixel if self.metres_per_pixel else 1.0 / self.image_height

    def to_model(self, points_px: np.ndarray) -> np.ndarray:
        """(..., 2) frame pixels -> (..., 2) model coordinates (absolute)."""
        p = np.asarray(points_px, dtype=np.float64)
        return self.homography.to_ground(p) if self.homography is not None else p * self._scale()

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) model coordinates -> (..., 2) frame pixels (NaN where a ground point is beyond the horizon)."""
        p = np.asarray(points, dtype=np.float64)
        return self.homography.to_image(p) if self.homography is not None else p / self._scale()


def model_space(
    frame_size: tuple[int, int], homography: Homography | None = None, person_height_px: float | None = None
) -> ModelSpace:
    """The :class:`ModelSpace` for frames of ``frame_size`` = (width, height); without a homography, a track's box
    height ``person_height_px`` (>= 4 px) sets its scale to ~metres."""
    width, height = (int(v) for v in frame_size)
    if width < 1 or height < 1:
        raise ValueError(f"frame size must be positive, got {width}x{height}")
    if homography is not None:
        return ModelSpace(float(height), homography.for_frame(width, height))
    mpp = PERSON_HEIGHT_M / person_height_px if person_height_px and person_height_px >= 4 else None
    return ModelSpace(float(height), None, mpp)


def to_relative(points_px: np.ndarray, space: ModelSpace) -> tuple[np.ndarray, np.ndarray]:
    """(k, 2) pixel history -> ((k, 2) model coordinates relative to the last point, (2,) that last point)."""
    absolute = space.to_model(points_px)
    origin = absolute[-1].copy()
    return absolute - origin, origin


def from_relative(
    relative: np.ndarray, origin: np.ndarray, space: ModelSpace
) -> tuple[np.ndarray, np.ndarray]:
    """(n, 2) relative model coordinates + origin -> ((n, 2) frame pixels, (n, 2) absolute model coordinates)."""
    absolute = np.asarray(relative, dtype=np.float64) + np.asarray(origin, dtype=np.float64)
    return space.to_image(absolute), absolute


def constant_velocity(relative: np.ndarray, horizon: int) -> np.ndarray:
    """(k >= 2, 2) observed points relative to the last -> (horizon, 2) future points, same origin.

    The project's baseline (:func:`toolkit.data.trajectories.constant_velocity`): repeat the last observed step.
    """
    r = np.asarray(relative, dtype=np.float64)
    if len(r) < 2:
        raise ValueError("constant velocity needs at least 2 observed points")
    return trajectories.constant_velocity(r[None], horizon)[0]


def neighbour_states(
    items: Sequence[tuple[int, np.ndarray, ModelSpace]], agent: int, count: int
) -> np.ndarray:
    """The ``count`` nearest other tracks of track ``items[agent]`` -> (count, 5) [dx, dy, vx, vy, present].

    ``items`` are (track id, (k >= 1, 2) pixel foot history, model space) of every track this frame. Positions
    and velocities (last 0.4 s step; 0 with a single sample) are in the AGENT's model space relative to its last
    point, as :func:`toolkit.data.trajectories.neighbour_states` builds them from ETH/UCY files; tracks farther
    than ``NEIGHBOUR_RADIUS_M`` or without a ground position are left out; missing rows are zero.
    """
    _, own, space = items[agent]
    me = space.to_model(own[-1])
    rows = []
    for j, (_, history, _) in enumerate(items):
        if j == agent:
            continue
        last = history[-2:]
        points = space.to_model(last)
        if not np.isfinite(points).all():
            continue
        rel = points[-1] - me
        distance = float(np.hypot(*rel))
        if distance <= trajectories.NEIGHBOUR_RADIUS_M:
            velocity = points[-1] - points[0] if len(points) == 2 else np.zeros(2)
            rows.append((distance, (*rel, *velocity, 1.0)))
    out = np.zeros((count, 5), np.float32)
    for k, (_, row) in enumerate(sorted(rows, key=lambda r: r[0])[:count]):
        out[k] = row
    return out


@dataclass(frozen=True)
class Prediction:
    """What the behaviour stage says about one track."""

    track_id: int
    path_image: np.ndarray  # (horizon, 2) future foot points in frame pixels; NaN rows are beyond the horizon
    path_ground: np.ndarray | None  # (horizon, 2) in metres on the ground plane; None without a homography
    crossing: float | None  # probability the person is crossing; None for constant-velocity predictions
    predictor: str  # "model" or "constant_velocity"
    # Multi-modal predictions (K paths with probabilities); path_image / path_ground are the most likely mode.
    # Single-output models and constant velocity give K = 1 with probability 1.
    modes_image: np.ndarray | None = None  # (K, horizon, 2) frame pixels of every mode
    modes_ground: np.ndarray | None = None  # (K, horizon, 2) ground metres; None without a homography
    mode_probs: np.ndarray | None = None  # (K,) probability of each mode (sums to 1)


class BehaviourPredictor:
    """Runs the behaviour model for all confirmed tracks at once, or the constant-velocity fallback.

    Every track with a full history (``observed`` samples) goes into ONE batch: the model inputs of all tracks are
    built together (a social model also gets each track's nearest other tracks, :func:`neighbour_states`) and run
    through :meth:`_run_batch` -- as one invoke of ``batch`` rows when the model was converted with a batch
    dimension > 1 (``toolkit convert --batch N``, as the shipped model is; padded with zeros), else one invoke
    per row (LiteRT cannot resize our int8 models' batch: their reshapes are fixed at conversion). ``runner`` may
    be None: every track then gets the constant-velocity prediction (flagged as such). The predictor owns the runner and closes it.
    """

    def __init__(
        self,
        runner: Runner | None,
        config: BehaviourConfig = BehaviourConfig(),
        homography: Homography | None = None,
    ) -> None:
        self.runner = runner
        self.config = config
        self.homography = homography
        self.timings: dict[str, float] = {}  # milliseconds of the last predict(): model, total
        self.calls = 0  # model invokes of the last predict()
        self.neighbours = 0  # M of a social model's input "neighbours" (0: not a social model)
        self.batch = 1  # the model's batch dimension
        if runner is not None:
            self._check_model(runner)

    @property
    def ground_units(self) -> str | None:
        """ "m" when predictions carry ground-plane paths (a homography was given), else None (for events)."""
        return "m" if self.homography is not None else None

    def _check_model(self, runner: Runner) -> None:
        kind = MODEL_KINDS["behaviour"]
        names = {**runner.inputs, **runner.outputs}
        missing = [n for n in (*kind.input_names, *kind.output_names) if n not in names]
        if missing:
            raise UsageError(
                f"{runner.path.name} is not a behaviour model: no tensor '{missing[0]}' (expected "
                f"input {', '.join(kind.input_names)}, outputs {', '.join(kind.output_names)})"
            )
        cfg = self.config
        self.batch = int(names["track"].shape[0])
        got_track, got_future = tuple(names["track"].shape), tuple(names["future"].shape)
        bad = None
        if got_track[1:] != (cfg.observed, 2):
            bad = ("track", got_track, (self.batch, cfg.observed, 2))
        elif got_future[-2:] != (cfg.horizon, 2) or got_future[0] != self.batch:
            bad = ("future", got_future, (self.batch, cfg.horizon, 2))
        if bad:
            raise UsageError(
                f"{runner.path.name}: tensor '{bad[0]}' is {list(bad[1])}, the pipeline expects "
                f"{list(bad[2])} (observed={cfg.observed}, horizon={cfg.horizon})"
            )
        if "neighbours" in runner.inputs:
            self.neighbours = int(runner.inputs["neighbours"].shape[1])

    def _run_batch(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Model inputs of n tracks -> (modes (n, K, H, 2) heading frame, probabilities (n, K), crossing (n,))."""
        assert self.runner is not None
        n = len(feeds["track"])
        parts: dict[str, list[np.ndarray]] = {}
        for start in range(0, n, self.batch):
            chunk = {k: v[start : start + self.batch] for k, v in feeds.items()}
            rows = len(chunk["track"])
            if rows < self.batch:  # pad the last chunk to the model's fixed batch
                chunk = {
                    k: np.concatenate([v, np.zeros((self.batch - rows, *v.shape[1:]), v.dtype)])
                    for k, v in chunk.items()
                }
            result = self.runner.run(**chunk)
            self.calls += 1
            for name, value in result.items():
                parts.setdefault(name, []).append(np.asarray(value)[:rows])
        out = {k: np.concatenate(v) for k, v in parts.items()}
        modes, probs = split_modes(out["future"], out.get("mode_probs"))
        return modes, probs, np.clip(out["crossing"].reshape(n), 0.0, 1.0)

    def predict(self, tracks: Sequence[Track], frame_size: tuple[int, int]) -> dict[int, Prediction]:
        """Confirmed tracks and the frame (width, height) -> {track id: Prediction} for tracks with >= 2 samples."""
        cfg = self.config
        ground_space = model_space(frame_size, self.homography) if self.homography is not None else None
        start = time.perf_counter()
        self.calls = 0
        # Every track's history, model space and relative track first (the neighbours need them all).
        items = []
        for track in tracks:
            if track.id is None:
                continue
            history = track.foot_history(cfg.step_seconds, cfg.observed)
            if len(history) < 1:
                continue
            space = ground_space or model_space(frame_size, None, float(track.box[3] - track.box[1]))
            items.append((track.id, history, space))
        # Each history in its model space, relative to its last point: projected once, used twice below.
        placed = [to_relative(history, space) for _, history, space in items]
        batch = [
            i
            for i, (_, history, _) in enumerate(items)
            if self.runner is not None and len(history) == cfg.observed and np.isfinite(placed[i][0]).all()
        ]
        model_out: dict[int, tuple[np.ndarray, np.ndarray, float]] = {}
        model_ms = 0.0
        if batch:
            t0 = time.perf_counter()
            relative = np.stack([placed[i][0] for i in batch])
            track_input, rotation = normalise(relative)
            feeds = {"track": track_input}
            if self.neighbours:
                states = np.stack([neighbour_states(items, i, self.neighbours) for i in batch])
                feeds["neighbours"] = neighbour_input(states, rotation)
            modes, probs, crossing = self._run_batch(feeds)
            n, k, h, _ = modes.shape
            modes = denormalise(modes.reshape(n, k * h, 2), rotation).reshape(n, k, h, 2)
            model_out = {
                i: (modes[j].astype(np.float64), probs[j], float(crossing[j])) for j, i in enumerate(batch)
            }
            model_ms = (time.perf_counter() - t0) * 1e3
        out: dict[int, Prediction] = {}
        for i, (track_id, history, space) in enumerate(items):
            if len(history) < cfg.min_samples:
                continue
            relative, origin = placed[i]
            crossing: float | None = None
            if i in model_out:
                modes_rel, probs, crossing = model_out[i]
                predictor = MODEL
            elif np.isfinite(relative).all():
                modes_rel, probs = constant_velocity(relative, cfg.horizon)[None], np.ones(1)
                predictor = CONSTANT_VELOCITY
            else:
                continue  # a foot point above the homography's horizon: no ground position to work from
            modes_image, modes_abs = from_relative(modes_rel.reshape(-1, 2), origin, space)
            modes_image = modes_image.reshape(modes_rel.shape)
            modes_abs = modes_abs.reshape(modes_rel.shape)
            best = int(np.argmax(probs))
            ground = space.homography is not None
            out[track_id] = Prediction(
                track_id,
                modes_image[best],
                modes_abs[best] if ground else None,
                crossing,
                predictor,
                modes_image=modes_image,
                modes_ground=modes_abs if ground else None,
                mode_probs=np.asarray(probs, np.float64),
            )
        self.timings = {"model": model_ms, "total": (time.perf_counter() - start) * 1e3}
        return out

    def close(self) -> None:
        """Close the owned runner, if any."""
        if self.runner is not None:
            self.runner.close()

    def __enter__(self) -> BehaviourPredictor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
