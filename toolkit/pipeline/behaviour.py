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

The model input ``track`` (1, 8, 2) is built from the last 8 samples (0.4 s apart) relative to the last one and
put in the model's heading frame by :func:`toolkit.adapters.behaviour.normalise` -- the same function
training and evaluation use; ``future`` (1, 12, 2) comes back through
:func:`~toolkit.adapters.behaviour.denormalise`, relative to the same last point. A track with 2..7 samples gets a
constant-velocity prediction (its last 0.4 s step repeated, the project's baseline) flagged
``constant_velocity``; so does every track when no model is given. Fewer than 2 samples: no prediction.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from toolkit.adapters.behaviour import denormalise, normalise
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
    """Runs the behaviour Transformer (batch 1: one call per track) or the constant-velocity fallback.

    ``runner`` may be None: every track then gets the constant-velocity prediction (flagged as such). The
    predictor owns the runner and closes it.
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
        want = {"track": (1, cfg.observed, 2), "future": (1, cfg.horizon, 2)}
        for name, shape in want.items():
            got = tuple(names[name].shape)
            if got != shape:
                raise UsageError(
                    f"{runner.path.name}: tensor '{name}' is {list(got)}, the pipeline expects "
                    f"{list(shape)} (observed={cfg.observed}, horizon={cfg.horizon})"
                )

    def predict(self, tracks: Sequence[Track], frame_size: tuple[int, int]) -> dict[int, Prediction]:
        """Confirmed tracks and the frame (width, height) -> {track id: Prediction} for tracks with >= 2 samples."""
        cfg = self.config
        ground_space = model_space(frame_size, self.homography) if self.homography is not None else None
        start = time.perf_counter()
        model_ms = 0.0
        out: dict[int, Prediction] = {}
        for track in tracks:
            if track.id is None:
                continue
            history = track.foot_history(cfg.step_seconds, cfg.observed)
            if len(history) < cfg.min_samples:
                continue
            space = ground_space or model_space(frame_size, None, float(track.box[3] - track.box[1]))
            relative, origin = to_relative(history, space)
            crossing: float | None = None
            if self.runner is not None and len(relative) == cfg.observed and np.isfinite(relative).all():
                t0 = time.perf_counter()
                track_input, rotation = normalise(relative[None])
                result = self.runner.run(track=track_input)
                model_ms += (time.perf_counter() - t0) * 1e3
                future = denormalise(result["future"], rotation)[0].astype(np.float64)
                crossing = float(np.clip(result["crossing"].reshape(-1)[0], 0.0, 1.0))
                predictor = MODEL
            elif np.isfinite(relative).all():
                future = constant_velocity(relative, cfg.horizon)
                predictor = CONSTANT_VELOCITY
            else:
                continue  # a foot point above the homography's horizon: no ground position to work from
            path_image, absolute = from_relative(future, origin, space)
            out[track.id] = Prediction(
                track.id, path_image, absolute if space.homography is not None else None, crossing, predictor
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
