"""A fixed camera's image->ground homography from the people it sees, or from four points the user gives.

>>> obs = PersonObservations.from_tracks(track_ids, boxes, frame_size=(480, 360))
>>> estimate = estimate_ground_plane(obs)              # GroundEstimate; UsageError when the data cannot tell
>>> estimate.homography.to_ground(points_px)           # metres; estimate.uncertainty says how sure it is

**From people** (single-view metrology): people are vertical sticks of ``person_height_m`` (1.7 m) standing on a
flat ground plane. The camera is a pinhole with square pixels, its principal point at the frame centre, no roll
and no lens distortion, at height ``Hc`` above the ground, tilted down by ``pitch``, with focal length ``f``. A
person whose feet are at row ``v_f`` then shows a predictable box height: to first order it is
``(v_f - v_horizon) * person_height / Hc`` (heights shrink linearly to zero at the horizon), with the tilt's
perspective on top. A robust linear fit of box height on foot row gives the horizon and the scale; a
Levenberg-Marquardt fit of the exact pinhole model to the log box heights (a weak prior on ``f``, which the
heights barely determine) refines them, with outliers (children, partial or occluded boxes, sitting people)
dropped at 3 robust standard deviations. The focal length changes distances along the viewing direction only
at steep tilts; its spread is part of the reported uncertainty.

Uncertainty: a bootstrap over tracks (samples of one person are not independent) refits the model; reported as
the spread of the horizon row, camera height and focal length, and ``distance_rel_std``: the median over pairs of
observed foot points of the relative spread of their ground distance. ``distance_rel_focal`` is how much distances
change when the focal length is held 1.42x larger or smaller (the data rarely pin it down);
``distance_rel_total`` combines both (root sum of squares) and is the figure to quote. The assumed mean height is a further,
systematic scale error: every metre scales with it (people 1.65 m on average instead of 1.7: distances 3 % long).

**From four points** (:func:`toolkit.pipeline.ground_points.homography_from_points`): four pixels and their ground coordinates in metres (or
the corners of a rectangle of known sides) give the homography exactly; the uncertainty reported is what a
``click_error_px`` error of each click does to ground distances (Monte Carlo).

The result is the homography JSON of :mod:`toolkit.pipeline.geometry` with a ``provenance`` record (method,
source, samples, uncertainty, date) and, for the people fit, the ``camera`` it implies.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from toolkit.errors import UsageError
from toolkit.pipeline.geometry import Homography

FOCAL_SHIFT = 0.35  # log focal change for the focal-length sensitivity (x1.42 / x0.70)


@dataclass(frozen=True)
class GroundConfig:
    """Settings of the people-based ground-plane fit."""

    person_height_m: float = 1.7  # mean standing height of the people seen (scales every distance)
    min_samples: int = 40  # inlier person boxes needed
    min_tracks: int = 4  # distinct people (tracks) needed
    min_depth_span: float = 0.12  # foot rows must span this share of the frame height (10-90 percentile)
    edge_margin_px: float = 2.0  # boxes this close to the frame's top or bottom edge are cut off: not used
    min_box_px: float = 12.0  # boxes shorter than this are too noisy to use
    focal_prior: float = 1.0  # prior focal length in frame widths (about 53 degrees across) ...
    focal_prior_log_sigma: float = 0.5  # ... and its spread (log); the data overrule it where they can
    outlier_sigmas: float = 3.0  # residuals beyond this many robust standard deviations are outliers
    bootstrap: int = 60  # bootstrap refits over tracks for the uncertainty (0 = none)
    max_samples: int = 6000  # subsample (per track evenly) above this many boxes, to bound the fit time
    seed: int = 0  # bootstrap and subsampling seed


@dataclass(frozen=True)
class PersonObservations:
    """Person boxes seen by a fixed camera: foot points, box-top rows and which track each belongs to."""

    feet: np.ndarray  # (N, 2) bottom-centre pixels
    top: np.ndarray  # (N,) box top rows (the head)
    track: np.ndarray  # (N,) int64 track id per box
    frame_size: tuple[int, int]  # (width, height) of the frames

    @classmethod
    def from_tracks(
        cls, track_ids: Sequence[int] | np.ndarray, boxes: np.ndarray, frame_size: tuple[int, int]
    ) -> PersonObservations:
        """From (N,) track ids and (N, 4) xyxy boxes (any order, several frames)."""
        b = np.asarray(boxes, np.float64).reshape(-1, 4)
        ids = np.asarray(track_ids, np.int64).reshape(-1)
        if len(ids) != len(b):
            raise UsageError(f"{len(ids)} track ids for {len(b)} boxes")
        feet = np.stack([(b[:, 0] + b[:, 2]) / 2, b[:, 3]], axis=-1)
        return cls(feet, b[:, 1].copy(), ids, (int(frame_size[0]), int(frame_size[1])))

    def __len__(self) -> int:
        return len(self.track)


@dataclass(frozen=True)
class GroundEstimate:
    """A fitted ground plane: the homography, the camera it implies, and how sure the fit is."""

    homography: Homography  # image -> ground metres (x right, y away from the camera, origin below it)
    camera_height_m: float
    pitch_deg: float  # tilt below the horizontal
    focal_px: float
    horizon_row: float  # image row of the horizon (may lie above the frame)
    samples: int  # person boxes offered
    inliers: int  # boxes the final fit used
    tracks: int  # distinct people among the inliers
    uncertainty: dict[str, float] = field(
        default_factory=dict
    )  # bootstrap spreads (see the module docstring)
    method: str = "people"

    def to_dict(self, provenance: dict[str, Any] | None = None) -> dict[str, Any]:
        """The homography JSON (geometry's format) with ``camera`` and ``provenance``."""
        data = self.homography.to_dict()
        if self.method == "people":
            data["camera"] = {
                "height_m": self.camera_height_m,
                "pitch_deg": self.pitch_deg,
                "focal_px": self.focal_px,
                "horizon_row": self.horizon_row,
                "roll_deg": 0.0,
            }
        data["provenance"] = {
            "method": self.method,
            "samples": self.samples,
            "inliers": self.inliers,
            "tracks": self.tracks,
            "uncertainty": self.uncertainty,
            **(provenance or {}),
        }
        return data


def pinhole_homography(
    height_m: float, pitch_rad: float, focal_px: float, frame_size: tuple[int, int]
) -> np.ndarray:
    """Image -> ground (x right, y forward, metres) of a level pinhole camera; principal point at the centre."""
    cx, cy = frame_size[0] / 2.0, frame_size[1] / 2.0
    s, c, f, h = math.sin(pitch_rad), math.cos(pitch_rad), focal_px, height_m
    return np.array(
        [
            [h / f, 0.0, -h * cx / f],
            [0.0, -h * s / f, h * (c + s * cy / f)],
            [0.0, c / f, s - c * cy / f],
        ]
    )


def _head_rows(
    params: np.ndarray, feet: np.ndarray, frame_size: tuple[int, int], person: float
) -> np.ndarray:
    """Predicted head rows of ``person``-tall sticks standing at the foot pixels; params (horizon, log f, log Hc)."""
    horizon, f, hc = params[0], math.exp(params[1]), math.exp(params[2])
    cy = frame_size[1] / 2.0
    pitch = math.atan2(cy - horizon, f)
    s, c = math.sin(pitch), math.cos(pitch)
    yn = (feet[:, 1] - cy) / f
    denom = s + c * yn  # > 0 below the horizon
    ground_y = hc * (c - s * yn) / np.where(denom > 1e-9, denom, 1e-9)
    dz = person - hc
    return cy + f * (-s * ground_y - c * dz) / np.maximum(c * ground_y - s * dz, 1e-9)


def _residuals(params, feet, top, frame_size, person, prior) -> np.ndarray:
    head = _head_rows(params, feet, frame_size, person)
    predicted = np.maximum(feet[:, 1] - head, 1e-3)
    observed = feet[:, 1] - top
    valid = feet[:, 1] > params[0] + 1.0  # feet below the horizon
    r = np.where(valid, np.log(observed) - np.log(predicted), 1.0)
    return np.append(r, (params[1] - prior[0]) / prior[1])


def _levenberg_marquardt(params, feet, top, frame_size, person, prior, iterations: int = 40) -> np.ndarray:
    p = np.asarray(params, np.float64).copy()
    lam = 1e-3
    r = _residuals(p, feet, top, frame_size, person, prior)
    cost = float(r @ r)
    steps = np.array([0.5, 1e-4, 1e-4])
    for _ in range(iterations):
        jac = np.empty((len(r), 3))
        for k in range(3):
            dp = np.zeros(3)
            dp[k] = steps[k]
            jac[:, k] = (_residuals(p + dp, feet, top, frame_size, person, prior) - r) / steps[k]
        jtj, jtr = jac.T @ jac, jac.T @ r
        improved = False
        for _ in range(10):
            delta = np.linalg.solve(jtj + lam * np.diag(np.diag(jtj) + 1e-9), -jtr)
            candidate = p + delta
            rc = _residuals(candidate, feet, top, frame_size, person, prior)
            cc = float(rc @ rc)
            if cc < cost:
                p, r, cost, lam, improved = candidate, rc, cc, max(lam / 3, 1e-9), True
                break
            lam *= 4
        if not improved or np.max(np.abs(delta)) < 1e-7:
            break
    return p


def _robust_line(x: np.ndarray, y: np.ndarray, sigmas: float) -> tuple[float, float, np.ndarray]:
    """y ~ a x + b with iterative outlier trimming (relative residuals); returns (a, b, inlier mask)."""
    keep = np.ones(len(x), bool)
    a = b = 0.0
    for _ in range(6):
        a, b = np.polyfit(x[keep], y[keep], 1)
        rel = (y - (a * x + b)) / np.maximum(np.abs(y), 1e-6)
        scale = 1.4826 * np.median(np.abs(rel[keep] - np.median(rel[keep])))
        new = np.abs(rel) < max(sigmas * scale, 0.03)
        if new.sum() < 3 or (new == keep).all():
            break
        keep = new
    return float(a), float(b), keep


def _usable(obs: PersonObservations, cfg: GroundConfig) -> np.ndarray:
    height = obs.feet[:, 1] - obs.top
    _, frame_h = obs.frame_size
    return (
        np.isfinite(obs.feet).all(axis=1)
        & np.isfinite(obs.top)
        & (height >= cfg.min_box_px)
        & (obs.top > cfg.edge_margin_px)
        & (obs.feet[:, 1] < frame_h - cfg.edge_margin_px)
    )


def _subsample(obs: PersonObservations, keep: np.ndarray, cfg: GroundConfig) -> np.ndarray:
    index = np.flatnonzero(keep)
    if len(index) <= cfg.max_samples:
        return index
    rng = np.random.default_rng(cfg.seed)
    return np.sort(rng.choice(index, cfg.max_samples, replace=False))


def _initial_guesses(feet, top, frame_size, cfg: GroundConfig, prior) -> list[np.ndarray]:
    """Starting points: the linear fit's horizon and a sweep of pitches, each with its best camera height."""
    height = feet[:, 1] - top
    a, b, _ = _robust_line(feet[:, 1], height, cfg.outlier_sigmas)
    cy, f0 = frame_size[1] / 2.0, math.exp(prior[0])
    horizons = [cy - f0 * math.tan(math.radians(deg)) for deg in range(-10, 85, 5)]
    if a > 1e-4:
        horizons.append(-b / a)
    scored = []
    for horizon in horizons:
        below = feet[:, 1] > horizon + 1.0
        if below.sum() < 3:
            continue
        hc = cfg.person_height_m * np.median((feet[below, 1] - horizon) / height[below])
        p = np.array([horizon, prior[0], math.log(max(hc, 1e-3))])
        r = _residuals(p, feet, top, frame_size, cfg.person_height_m, prior)[:-1]
        # the height scale is roughly a shift of the log residuals: take it out before scoring
        p[2] -= float(np.median(r))
        r = _residuals(p, feet, top, frame_size, cfg.person_height_m, prior)[:-1]
        scored.append((float(np.median(np.abs(r))), p))
    scored.sort(key=lambda item: item[0])
    return [p for _, p in scored[:3]]


def _refine(params, feet, top, frame_size, cfg: GroundConfig, prior) -> tuple[np.ndarray, np.ndarray, float]:
    """Levenberg-Marquardt with outlier trimming from ``params``: (params, inlier mask, median |residual|)."""
    r = _residuals(params, feet, top, frame_size, cfg.person_height_m, prior)[:-1]
    keep = np.abs(r - np.median(r)) < max(
        cfg.outlier_sigmas * 1.4826 * np.median(np.abs(r - np.median(r))), 0.03
    )
    for _ in range(5):
        params = _levenberg_marquardt(params, feet[keep], top[keep], frame_size, cfg.person_height_m, prior)
        r = _residuals(params, feet, top, frame_size, cfg.person_height_m, prior)[:-1]
        scale = 1.4826 * np.median(np.abs(r[keep] - np.median(r[keep])))
        new = np.abs(r) < max(cfg.outlier_sigmas * scale, 0.03)
        if (new == keep).all() or new.sum() < 3:
            break
        keep = new
    return params, keep, float(np.median(np.abs(r[keep]))) if keep.any() else math.inf


def _fit(
    feet, top, frame_size, cfg: GroundConfig, init: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(params (horizon, log f, log Hc), inlier mask) for one set of boxes; UsageError when degenerate."""
    height = feet[:, 1] - top
    a, _, _ = _robust_line(feet[:, 1], height, cfg.outlier_sigmas)
    if not a > 1e-4:
        raise UsageError(
            "people's boxes do not get smaller towards the top of the frame (box height vs foot row slope "
            f"{a:.3g}); the camera must look down on a flat ground with people at different distances"
        )
    prior = (math.log(cfg.focal_prior * frame_size[0]), cfg.focal_prior_log_sigma)
    starts = [init] if init is not None else _initial_guesses(feet, top, frame_size, cfg, prior)
    fits = [_refine(p, feet, top, frame_size, cfg, prior) for p in starts]
    # most inliers first, then the smaller residual
    params, keep, _ = max(fits, key=lambda fit: (fit[1].sum(), -fit[2]))
    if not (keep.any() and params[0] < np.percentile(feet[keep, 1], 1)):
        raise UsageError("the fitted horizon lies below people's feet: the boxes do not fit a ground plane")
    return params, keep


def _check_data(feet: np.ndarray, track: np.ndarray, frame_h: int, cfg: GroundConfig, what: str) -> None:
    people = len(np.unique(track))
    if len(feet) < cfg.min_samples or people < cfg.min_tracks:
        raise UsageError(
            f"too few people to fit the ground plane: {len(feet)} usable boxes of {people} people {what}; "
            f"need >= {cfg.min_samples} boxes of >= {cfg.min_tracks} people (whole, standing, not cut by the "
            "frame edge): record longer or give four ground points (toolkit ground points)"
        )
    lo, hi = np.percentile(feet[:, 1], [10, 90])
    if (hi - lo) < cfg.min_depth_span * frame_h:
        raise UsageError(
            f"people's feet span only {100 * (hi - lo) / frame_h:.0f}% of the frame height {what}; need >= "
            f"{100 * cfg.min_depth_span:.0f}% (people both near and far from the camera) to tell the "
            "horizon and scale: record longer or give four ground points (toolkit ground points)"
        )


def estimate_ground_plane(obs: PersonObservations, config: GroundConfig = GroundConfig()) -> GroundEstimate:
    """Fit the ground plane to person boxes (module docstring); UsageError names what is missing."""
    if not config.person_height_m > 0:
        raise UsageError(f"person height must be > 0 metres, got {config.person_height_m}")
    index = _subsample(obs, _usable(obs, config), config)
    feet, top, track = obs.feet[index], obs.top[index], obs.track[index]
    _check_data(feet, track, obs.frame_size[1], config, "(after dropping partial and tiny boxes)")
    params, keep = _fit(feet, top, obs.frame_size, config)
    _check_data(feet[keep], track[keep], obs.frame_size[1], config, "fit the model (after outliers)")
    uncertainty = _bootstrap(params, feet, top, track, obs.frame_size, config)
    return _estimate(params, obs.frame_size, config, len(obs), int(keep.sum()), track[keep], uncertainty)


def _estimate(params, frame_size, cfg, samples, inliers, tracks, uncertainty) -> GroundEstimate:
    horizon, f, hc = float(params[0]), math.exp(params[1]), math.exp(params[2])
    pitch = math.atan2(frame_size[1] / 2.0 - horizon, f)
    matrix = pinhole_homography(hc, pitch, f, frame_size)
    return GroundEstimate(
        homography=Homography(matrix / matrix[2, 2], frame_size, "estimated from people"),
        camera_height_m=hc,
        pitch_deg=math.degrees(pitch),
        focal_px=f,
        horizon_row=horizon,
        samples=samples,
        inliers=inliers,
        tracks=len(np.unique(tracks)),
        uncertainty=uncertainty,
    )


def pair_distances(matrix: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Ground distances (N,) between pixel points a (N, 2) and b (N, 2) under an image->ground matrix."""
    h = Homography(matrix, (1, 1))
    return np.linalg.norm(h.to_ground(a) - h.to_ground(b), axis=-1)


def _bootstrap(params, feet, top, track, frame_size, cfg: GroundConfig) -> dict[str, float]:
    if cfg.bootstrap <= 0:
        return {}
    rng = np.random.default_rng(cfg.seed)
    people = np.unique(track)
    members = {p: np.flatnonzero(track == p) for p in people}
    pairs = rng.integers(0, len(feet), size=(400, 2))
    pairs = pairs[
        np.abs(feet[pairs[:, 0], 1] - feet[pairs[:, 1], 1])
        + np.abs(feet[pairs[:, 0], 0] - feet[pairs[:, 1], 0])
        > 5
    ]
    a, b = feet[pairs[:, 0]], feet[pairs[:, 1]]

    def matrix(p: np.ndarray) -> np.ndarray:
        pitch = math.atan2(frame_size[1] / 2.0 - p[0], math.exp(p[1]))
        return pinhole_homography(math.exp(p[2]), pitch, math.exp(p[1]), frame_size)

    reference = pair_distances(matrix(params), a, b)
    fits, ratios = [], []
    for _ in range(cfg.bootstrap):
        chosen = np.concatenate([members[p] for p in rng.choice(people, len(people), replace=True)])
        try:
            p, _ = _fit(feet[chosen], top[chosen], frame_size, cfg, init=params)
        except UsageError:
            continue
        fits.append(p)
        ratios.append(pair_distances(matrix(p), a, b) / reference)
    if len(fits) < max(5, cfg.bootstrap // 4):
        return {"bootstrap_fits": float(len(fits))}
    fp = np.array(fits)
    rel = float(np.nanmedian(np.nanstd(np.log(np.array(ratios)), axis=0)))
    # The heights pin the focal length down only weakly (and lens distortion or loose boxes pull it): refit with
    # the focal length held FOCAL_SHIFT (log) either side of the fit and take the larger change of distances.
    shifts = []
    for sign in (-1.0, 1.0):
        focal = math.exp(params[1] + sign * FOCAL_SHIFT)
        held = dataclasses.replace(cfg, focal_prior=focal / frame_size[0], focal_prior_log_sigma=0.01)
        start = np.array([params[0], math.log(focal), params[2]])
        try:
            p, _ = _fit(feet, top, frame_size, held, init=start)
        except UsageError:
            continue
        shifts.append(abs(float(np.nanmedian(np.log(pair_distances(matrix(p), a, b) / reference)))))
    focal = max(shifts) if shifts else float("nan")
    return {
        "distance_rel_total": float(math.hypot(rel, focal)),
        "distance_rel_std": rel,
        "distance_rel_focal": focal,
        "camera_height_rel_std": float(np.std(fp[:, 2])),
        "horizon_row_std_px": float(np.std(fp[:, 0])),
        "focal_rel_std": float(np.std(fp[:, 1])),
        "bootstrap_fits": float(len(fits)),
    }
