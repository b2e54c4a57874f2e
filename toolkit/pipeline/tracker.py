"""Multi-object tracking: a constant-velocity Kalman filter per box plus ByteTrack-style two-stage association.

>>> tracker = Tracker()
>>> for frame, t in frames:                      # t: capture time in seconds (camera FPS may vary)
...     visible = tracker.update(detector(frame), t)
...     for track in visible:
...         track.id, track.box, track.foot_history()   # stable id, filtered xyxy, (k, 2) points 0.4 s apart

Association per frame (Zhang et al., "ByteTrack", ECCV 2022):

1. confirmed tracks (also those that missed recent frames) <-> high-score detections, cost 1 - IoU;
2. confirmed tracks seen in the previous frame and still unmatched <-> low-score detections (occluded people
   get low scores; matching them keeps the track alive instead of starting a new id);
3. tentative tracks <-> the remaining high-score detections.

Each stage is an optimal gated assignment (:func:`toolkit.pipeline.assignment.match`). A new track is tentative
until it has been matched ``min_hits`` times in a row, and only then gets an id (ids are 1, 2, 3, ... in order of
confirmation, never reused). A tentative track dies at its first miss, a confirmed one after ``max_age``
consecutive misses. Kalman prediction uses the real time between frames, so 10 and 30 FPS sources behave alike.

Static objects (a lamp post, a bollard, a sign that the detector takes for a person frame after frame): when the
caller passes the segmenter's person mask, a confirmed track that has not moved (its centre stayed within
``static_motion`` box heights for ``static_seconds``) and that the segmenter does not call person (on average
less than ``static_person_share`` of its box) is held back: it stays alive -- so it keeps absorbing those
detections and no new track starts there -- but it is not reported. It comes back, with its id, once it moves
or the segmenter sees a person in it (a person who stood still). Without masks (no segmenter) nothing is held
back: motion alone cannot tell a person waiting at a kerb from a post.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from toolkit.adapters.boxes import iou_matrix, xyxy_to_cxcywh
from toolkit.adapters.detect import Detection
from toolkit.pipeline.assignment import match
from toolkit.pipeline.geometry import foot_points

STEP_SECONDS = 0.4  # the behaviour model's sampling period (ETH/UCY: 2.5 samples per second)
HISTORY_STEPS = 8  # samples the behaviour model observes


@dataclass(frozen=True)
class TrackerConfig:
    """Thresholds, Kalman noise and hold-back rules of the multi-stage IoU tracker."""

    high_score: float = 0.38  # detections at or above this take part in stage 1 and may start tracks (the zoo
    # detector's best-F1 threshold on held-out synthetic scenes is 0.37 float / 0.38 int8: its models/ card)
    low_score: float = 0.1  # detections below this are ignored; [low_score, high_score) only extend tracks
    match_iou: float = 0.2  # stage 1: minimum IoU between a track's predicted box and a high-score detection
    low_match_iou: float = 0.5  # stage 2: minimum IoU for a low-score detection (stricter: they are noisier)
    tentative_match_iou: float = 0.3  # stage 3: minimum IoU to continue a tentative track
    min_hits: int = 3  # consecutive matches before a track is confirmed and gets an id
    max_age: int = 30  # consecutive missed frames after which a confirmed track is deleted
    accel_std: float = 1.0  # Kalman process noise: std of acceleration, in box heights per second^2
    measurement_std: float = 0.05  # Kalman measurement noise: std of a detected centre / size, in box heights
    initial_velocity_std: float = 1.0  # uncertainty of a new track's velocity, in box heights per second
    history_seconds: float = 4.0  # foot points older than this (before the latest) are dropped
    static_seconds: float = 3.0  # held back when static this long and never person (0 = never hold back)
    static_motion: float = 0.5  # "static": box centre range (x and y) under this many mean box heights
    static_person_share: float = 0.3  # ...and the segmenter's person pixels cover less of the box, on average


class BoxKalman:
    """Constant-velocity Kalman filter on (cx, cy, w, h) in pixels; velocities in pixels per second.

    Noise scales with the box height (DeepSORT's choice): a near, large person moves more pixels per second.
    """

    def __init__(self, box_xyxy: np.ndarray, config: TrackerConfig = TrackerConfig()) -> None:
        self.config = config
        self._box: np.ndarray | None = None
        z = xyxy_to_cxcywh(box_xyxy)
        self.mean = np.concatenate([z, np.zeros(4)])  # (8,) cx cy w h vcx vcy vw vh
        h = max(float(z[3]), 1.0)
        pos_std = 2.0 * config.measurement_std * h
        vel_std = config.initial_velocity_std * h
        self.cov = np.diag([pos_std**2] * 4 + [vel_std**2] * 4)

    @property
    def box(self) -> np.ndarray:
        """The current estimate as an xyxy box (width and height kept >= 1 px); a fresh copy each call."""
        if (
            self._box is None
        ):  # computed once per state: the tracker and the stages read it many times a frame
            cx, cy, w, h = (float(v) for v in self.mean[:4])
            w, h = max(w, 1.0), max(h, 1.0)
            self._box = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        return self._box.copy()

    @property
    def mean(self) -> np.ndarray:
        """The state vector, (8,) float64: cx, cy, w, h in pixels, then their velocities in pixels per second."""
        return self._mean

    @mean.setter
    def mean(self, value: np.ndarray) -> None:
        """Replace the (8,) state vector; the cached :attr:`box` is recomputed on its next read."""
        self._mean = value
        self._box = None

    def predict(self, dt: float) -> None:
        """Advance the state by ``dt`` seconds (white-noise acceleration model)."""
        if dt <= 0:
            return
        f, q_unit = _motion_matrices(float(dt))
        sigma = self.config.accel_std * max(float(self.mean[3]), 1.0)
        self.mean = f @ self.mean
        self.cov = f @ self.cov @ f.T + q_unit * sigma**2

    def update(self, box_xyxy: np.ndarray) -> None:
        """Correct the state with a measured xyxy box."""
        z = xyxy_to_cxcywh(box_xyxy)
        r_std = self.config.measurement_std * max(float(self.mean[3]), 1.0)
        innovation_cov = self.cov[:4, :4] + np.eye(4) * r_std**2  # H P H^T + R with H = [I 0]
        gain = np.linalg.solve(innovation_cov, self.cov[:4, :]).T  # P H^T S^-1, S symmetric
        self.mean = self.mean + gain @ (z - self.mean[:4])
        self.cov = self.cov - gain @ self.cov[:4, :]
        self.cov = (self.cov + self.cov.T) / 2  # keep it symmetric against round-off

    def freeze_size(self) -> None:
        """Stop the size from drifting while the target is not seen (ByteTrack zeroes vh for lost tracks)."""
        self.mean[6:] = 0.0  # velocities only: the cached box stays valid


def _motion_matrices(dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Transition F and process noise Q for unit acceleration std over ``dt`` seconds, by index (no loops:
    this runs for every track on every frame, and a live camera's dt differs from frame to frame)."""
    i = np.arange(4)  # cx, cy, w, h; each velocity sits 4 further on
    f = np.eye(8)
    f[i, i + 4] = dt
    q = np.zeros((8, 8))
    q[i, i] = dt**4 / 4
    q[i, i + 4] = q[i + 4, i] = dt**3 / 2
    q[i + 4, i + 4] = dt**2
    return f, q


def box_sums(mask: np.ndarray) -> np.ndarray:
    """(H + 1, W + 1) integral image of a 0/1 mask: the sum over [y1:y2, x1:x2] is four lookups."""
    return cv2.integral(np.ascontiguousarray(mask, dtype=np.uint8))


def resample_history(
    times: np.ndarray, points: np.ndarray, step: float = STEP_SECONDS, count: int = HISTORY_STEPS
) -> np.ndarray:
    """Points observed at arbitrary ``times`` (seconds, increasing) -> points every ``step`` seconds.

    Samples are taken at ``t_last, t_last - step, ...`` (at most ``count``, never before the first observation),
    by linear interpolation. Returns (k, 2), oldest first, the last row equal to the last point; k = 0 for no
    observations.
    """
    t = np.asarray(times, dtype=np.float64)
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if t.size == 0:
        return np.zeros((0, 2))
    span = t[-1] - t[0]
    k = min(count, int(np.floor(span / step + 1e-6)) + 1)
    sample_t = t[-1] - step * np.arange(k - 1, -1, -1)
    sample_t[0] = max(sample_t[0], t[0])  # guard the 1e-6 tolerance above
    return np.stack([np.interp(sample_t, t, p[:, 0]), np.interp(sample_t, t, p[:, 1])], axis=1)


class Track:
    """One tracked object. ``id`` is None while tentative; read ``box``, ``score``, ``age``, ``foot_history()``."""

    def __init__(self, detection: Detection, timestamp: float, config: TrackerConfig) -> None:
        self.id: int | None = None
        self.label = detection.label
        self.score = float(detection.score)
        self.kalman = BoxKalman(np.asarray(detection.box, np.float64), config)
        self.hits = (
            1  # matches so far (consecutive while tentative: a tentative track dies at its first miss)
        )
        self.misses = 0  # consecutive frames without a match
        self.age = 1  # frames since the track started
        self.last_seen = float(timestamp)
        self._config = config
        self._times: deque[float] = deque(maxlen=512)  # bounded even at very high frame rates
        self._feet: deque[tuple[float, float]] = deque(maxlen=512)
        self.first_seen = float(timestamp)
        centre = xyxy_to_cxcywh(np.asarray(detection.box, np.float64))
        self._centre_range = np.concatenate([centre[:2], centre[:2]])  # x min, y min, x max, y max
        self._height_sum, self._height_n = float(centre[3]), 1
        self._person_sum, self._person_n = 0.0, 0  # segmenter person share of the box, summed over masks seen
        self._mask_seen: np.ndarray | None = None  # the last mask counted (each mask counts once)
        self._record(timestamp)

    @property
    def confirmed(self) -> bool:
        """True once the track has had ``min_hits`` matches and been given an id."""
        return self.id is not None

    @property
    def box(self) -> np.ndarray:
        """Filtered xyxy box in image pixels (the prediction when the last frame had no match)."""
        return self.kalman.box

    @property
    def velocity(self) -> np.ndarray:
        """Estimated centre velocity (vx, vy) in pixels per second."""
        return self.kalman.mean[4:6].copy()

    @property
    def person_share(self) -> float | None:
        """Mean share of the box the segmenter labelled person, over the masks seen while matched; None: no mask."""
        return self._person_sum / self._person_n if self._person_n else None

    def is_static(self, config: TrackerConfig) -> bool:
        """Alive for ``static_seconds`` and its centre never left a ``static_motion`` x mean-height square."""
        if config.static_seconds <= 0 or self.last_seen - self.first_seen < config.static_seconds:
            return False
        c = self._centre_range
        return max(c[2] - c[0], c[3] - c[1]) < config.static_motion * self._height_sum / self._height_n

    def held_back(self, config: TrackerConfig) -> bool:
        """Static and, on the segmenter's masks, not a person: kept alive but not reported."""
        share = self.person_share
        return share is not None and share < config.static_person_share and self.is_static(config)

    def foot_history(self, step: float = STEP_SECONDS, count: int = HISTORY_STEPS) -> np.ndarray:
        """(k, 2) foot points (box bottom-centre, pixels) every ``step`` seconds, oldest first, k <= count."""
        return resample_history(
            np.fromiter(self._times, float), np.array(self._feet).reshape(-1, 2), step, count
        )

    def _record(self, timestamp: float) -> None:
        self._times.append(float(timestamp))
        self._feet.append(tuple(foot_points(self.kalman.box)))
        horizon = float(timestamp) - self._config.history_seconds
        # Keep one point older than the horizon so interpolation at the horizon stays possible.
        while len(self._times) > 2 and self._times[1] < horizon:
            self._times.popleft()
            self._feet.popleft()

    def _hit(self, detection: Detection, timestamp: float) -> None:
        self.kalman.update(np.asarray(detection.box, np.float64))
        centre = xyxy_to_cxcywh(self.kalman.box)
        c = self._centre_range
        c[:2], c[2:] = np.minimum(c[:2], centre[:2]), np.maximum(c[2:], centre[:2])
        self._height_sum += float(centre[3])
        self._height_n += 1
        self.score = float(detection.score)
        self.hits += 1
        self.misses = 0
        self.last_seen = float(timestamp)
        self._record(timestamp)

    def __repr__(self) -> str:
        box = ", ".join(f"{v:.1f}" for v in self.box)
        return (
            f"Track(id={self.id}, box=[{box}], score={self.score:.2f}, age={self.age}, misses={self.misses})"
        )


class Tracker:
    """Stateful multi-object tracker; call :meth:`update` once per frame with that frame's detections."""

    def __init__(self, config: TrackerConfig = TrackerConfig()) -> None:
        if not 0 <= config.low_score <= config.high_score <= 1:
            raise ValueError(
                f"need 0 <= low_score <= high_score <= 1, got {config.low_score}, {config.high_score}"
            )
        if config.min_hits < 1 or config.max_age < 0:
            raise ValueError(f"need min_hits >= 1 and max_age >= 0, got {config.min_hits}, {config.max_age}")
        self.config = config
        self.tracks: list[Track] = []  # every live track, tentative and confirmed
        self.frame_index = 0
        self._next_id = 1
        self._last_time: float | None = None
        self._mask_key: tuple[np.ndarray, np.ndarray] | None = None  # (mask, its integral image)

    def update(
        self, detections: Sequence[Detection], timestamp: float, person_mask: np.ndarray | None = None
    ) -> list[Track]:
        """Advance to ``timestamp`` (seconds, non-decreasing) with this frame's detections.

        ``person_mask``: the latest segmentation's person pixels at frame size (bool / 0-1 (H, W)), or None;
        pass the same array object until a new segmentation exists (its integral image is computed once).
        Returns the confirmed tracks matched in this frame (what to draw and report), ordered by id; static
        tracks the mask says are not people are held back (see the module docstring).
        """
        cfg = self.config
        if self._last_time is not None and timestamp < self._last_time:
            raise ValueError(f"timestamps must not go back: {timestamp} after {self._last_time}")
        dt = 0.0 if self._last_time is None else timestamp - self._last_time
        self._last_time = float(timestamp)
        self.frame_index += 1
        for track in self.tracks:
            if track.misses > 0:
                track.kalman.freeze_size()
            track.kalman.predict(dt)
            track.age += 1

        dets = [d for d in detections if d.score >= cfg.low_score]
        high = [i for i, d in enumerate(dets) if d.score >= cfg.high_score]
        low = [i for i, d in enumerate(dets) if d.score < cfg.high_score]
        confirmed = [t for t in self.tracks if t.confirmed]
        tentative = [t for t in self.tracks if not t.confirmed]
        matched: set[int] = set()  # id() of tracks matched this frame

        # Stage 1: confirmed tracks <-> high-score detections.
        left_tracks, high = self._associate(confirmed, dets, high, cfg.match_iou, timestamp, matched)
        # Stage 2: tracks that were visible last frame <-> low-score detections (ByteTrack's key idea).
        recent = [t for t in left_tracks if t.misses == 0]
        self._associate(recent, dets, low, cfg.low_match_iou, timestamp, matched)
        # Stage 3: tentative tracks <-> the high-score detections nobody claimed.
        _, high = self._associate(tentative, dets, high, cfg.tentative_match_iou, timestamp, matched)

        survivors = []
        for track in self.tracks:
            if id(track) not in matched:
                track.misses += 1
                if not track.confirmed:
                    continue  # a tentative track dies at its first miss
                if track.misses > cfg.max_age:
                    continue
            elif not track.confirmed and track.hits >= cfg.min_hits:
                track.id = self._next_id
                self._next_id += 1
            survivors.append(track)
        for i in high:  # unclaimed high-score detections start tentative tracks
            survivors.append(Track(dets[i], timestamp, cfg))
        if cfg.min_hits == 1:
            for track in survivors:
                if track.id is None:
                    track.id = self._next_id
                    self._next_id += 1
        self.tracks = survivors
        reported = [t for t in self.tracks if t.confirmed and t.misses == 0]
        if person_mask is not None and cfg.static_seconds > 0:
            self._observe_person(reported, person_mask)
            reported = [t for t in reported if not t.held_back(cfg)]
        return sorted(reported, key=lambda t: t.id or 0)

    def _observe_person(self, tracks: list[Track], person_mask: np.ndarray) -> None:
        """Add each track's person share of its box on a new mask (once per mask object)."""
        if self._mask_key is None or self._mask_key[0] is not person_mask:
            self._mask_key = (person_mask, box_sums(person_mask))
        integral = self._mask_key[1]
        h, w = person_mask.shape[:2]
        for track in tracks:
            if track._mask_seen is person_mask:
                continue
            track._mask_seen = person_mask
            x1, y1, x2, y2 = np.clip(np.round(track.box).astype(int), 0, [w, h, w, h])
            if x2 <= x1 or y2 <= y1:
                continue
            inside = integral[y2, x2] - integral[y1, x2] - integral[y2, x1] + integral[y1, x1]
            track._person_sum += float(inside) / ((x2 - x1) * (y2 - y1))
            track._person_n += 1

    def _associate(
        self,
        tracks: list[Track],
        dets: list[Detection],
        candidates: list[int],
        min_iou: float,
        timestamp: float,
        matched: set[int],
    ) -> tuple[list[Track], list[int]]:
        """Match ``tracks`` to ``dets[candidates]``; update the matched tracks. Returns what is left of both."""
        if not tracks or not candidates:
            return tracks, candidates
        track_boxes = np.stack([t.box for t in tracks])
        det_boxes = np.stack([np.asarray(dets[i].box, np.float64) for i in candidates])
        cost = 1.0 - iou_matrix(track_boxes, det_boxes)
        labels_differ = np.array([[t.label != dets[i].label for i in candidates] for t in tracks])
        cost[labels_differ] = np.inf
        result = match(cost, max_cost=1.0 - min_iou)
        for row, col in result.pairs:
            tracks[row]._hit(dets[candidates[col]], timestamp)
            matched.add(id(tracks[row]))
        return [tracks[r] for r in result.unmatched_rows], [candidates[c] for c in result.unmatched_cols]

    def reset(self) -> None:
        """Forget every track (ids keep counting up, so an id is never reused)."""
        self.tracks = []
        self._last_time = None
