"""The synthetic street scene: its config, the Frame it yields, and the steppable ``StreetScene``.

See :mod:`toolkit.data.synthetic` for the overview and the public API.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from toolkit.config import SEED_RANGE, Limits, check_ranges
from toolkit.data.synthetic import camera as cam
from toolkit.data.synthetic.background import far_limit
from toolkit.data.synthetic.sim import BEHAVIOURS, CROSSING, Behaviour, Layout, SimState, StreetSim
from toolkit.errors import UsageError


@dataclass(frozen=True)
class SceneConfig:
    """Everything that defines a synthetic scene; the same config always yields the same frames and labels."""

    seed: int = 0  # scene seed: camera jitter, layout, look, traffic and noise all follow from it
    width: int = 480  # image width in pixels
    height: int = 360  # image height in pixels
    fps: float = 10.0  # frames per second; the simulation steps 1/fps seconds per frame
    camera_height_m: float = 9.0  # camera height above the ground
    camera_pitch_deg: float = 32.0  # camera tilt below the horizontal
    camera_yaw_deg: float = 30.0  # 0 = looking straight across the street, 90 = looking along it
    focal_px: float | None = None  # focal length in pixels; None = 0.9 * width (about 58 degrees across)
    camera_jitter: float = (
        0.0  # per-seed random change of the camera view (0 = exactly as set, 1 = training spread)
    )
    pedestrians_per_min: float = 14.0  # pedestrians arriving at the street ends per minute
    vehicles_per_min: float = 8.0  # vehicles arriving per minute, both lanes together
    max_pedestrians: int = 24  # at most this many pedestrians in the simulated street at once
    p_cross: float = 0.35  # share of pedestrians who cross at the crosswalk
    p_jaywalk: float = 0.1  # share who cross the road away from the crosswalk
    p_turn: float = 0.1  # share who stop and turn back (half of them after waiting at the crosswalk kerb)
    p_wait: float = 0.5  # chance a crosswalk user waits at the kerb for a while even when the road is clear
    intent_horizon_s: float = 4.8  # Frame.intent: the pedestrian will be crossing within this many seconds
    warmup_s: float = 40.0  # simulated before frame 0 so that the street starts populated
    noise: float = 1.0  # strength of sensor noise and blur (0 = a clean render)

    LIMITS: ClassVar[
        Limits
    ] = {  # valid values (spec options, source options, configs); pairs are checked below
        "seed": SEED_RANGE,
        "width": (64, 4096),
        "height": (64, 4096),
        "fps": (0.1, 120.0),
        "camera_height_m": (2.0, 60.0),
        "camera_pitch_deg": (10.0, 85.0),
        "camera_yaw_deg": (-85.0, 85.0),
        "focal_px": (1.0, 100_000.0),
        "camera_jitter": (0.0, 2.0),
        "pedestrians_per_min": (0.0, 600.0),
        "vehicles_per_min": (0.0, 600.0),
        "max_pedestrians": (0, 200),
        "p_cross": (0.0, 1.0),
        "p_jaywalk": (0.0, 1.0),
        "p_turn": (0.0, 1.0),
        "p_wait": (0.0, 1.0),
        "intent_horizon_s": (0.1, 60.0),
        "warmup_s": (0.0, 3600.0),
        "noise": (0.0, 10.0),
    }

    def __post_init__(self) -> None:
        check_ranges(self, "synthetic scene config")
        checks = [  # the single-key ranges are LIMITS above
            (
                self.p_cross + self.p_jaywalk + self.p_turn <= 1.0 + 1e-9,
                "p_cross + p_jaywalk + p_turn must be <= 1",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(f"synthetic scene config: {message}")


@dataclass
class Frame:
    """One rendered frame and its labels. N visible pedestrians, M visible vehicles; rows sorted by id."""

    image: np.ndarray  # (H, W, 3) uint8 BGR, as OpenCV delivers camera frames
    mask: np.ndarray  # (H, W) uint8 semantic classes, indices into CLASS_NAMES
    index: int  # frame number, 0 for the first frame
    time_s: float  # index / fps
    boxes: (
        np.ndarray
    )  # (N, 4) float32 pixel x1 y1 x2 y2: each pedestrian's whole silhouette, clipped to the image
    visibility: np.ndarray  # (N,) float32 fraction of the silhouette not hidden by nearer objects, (0, 1]
    person_ids: np.ndarray  # (N,) int64 identity, stable across frames
    feet: (
        np.ndarray
    )  # (N, 2) float32 pixel position of the point between the feet (may lie outside the image)
    ground: np.ndarray  # (N, 2) float32 ground position in metres (x along the street, y across it)
    intent: np.ndarray  # (N,) bool: will be crossing the road within intent_horizon_s (after this frame)
    behaviour: tuple[str, ...]  # (N,) current behaviour, each one of BEHAVIOURS
    vehicle_boxes: np.ndarray  # (M, 4) float32 pixel x1 y1 x2 y2, clipped to the image
    vehicle_ids: np.ndarray  # (M,) int64


def build_camera(config: SceneConfig, rng: np.random.Generator) -> cam.Camera:
    """The scene camera: the configured view, changed per seed by ``camera_jitter``."""
    j = config.camera_jitter
    u = lambda lo, hi: rng.uniform(lo, hi) * j  # noqa: E731 -- always draw, so jitter=0 keeps the stream aligned
    focal = config.focal_px if config.focal_px is not None else 0.9 * config.width
    return cam.Camera(
        width=config.width,
        height=config.height,
        height_m=float(np.clip(config.camera_height_m * math.exp(u(-0.35, 0.35)), 2.0, 60.0)),
        pitch_deg=float(np.clip(config.camera_pitch_deg + u(-9.0, 9.0), 12.0, 80.0)),
        yaw_deg=float(np.clip(config.camera_yaw_deg + u(-30.0, 30.0), -85.0, 85.0)),
        focal_px=float(focal * math.exp(u(-0.2, 0.2))),
        target_x_m=float(u(-6.0, 6.0)),
        target_y_m=float(u(-2.0, 2.0)),
    )


def build_layout(camera: cam.Camera, rng: np.random.Generator) -> Layout:
    """Street geometry, with the simulated street long enough to cover what the camera sees of it."""
    road_half = rng.uniform(3.0, 3.7)
    sidewalk = rng.uniform(2.4, 4.5)
    uu, vv = np.meshgrid(np.linspace(0, camera.width, 33), np.linspace(0, camera.height, 25))
    ground, down = camera.pixels_to_ground(np.stack([uu.ravel(), vv.ravel()], 1))
    dist = np.hypot(*(ground - camera.position[:2]).T)
    far = 0.8 * far_limit(camera)  # the street beyond is lost in haze
    on_street = down & (np.abs(ground[:, 1]) <= road_half + sidewalk + 1.0) & (dist < far)
    xs = ground[on_street, 0] if on_street.any() else np.array([-20.0, 20.0])
    x_min = float(np.clip(xs.min() - 6.0, -150.0, -12.0))
    x_max = float(np.clip(xs.max() + 6.0, 12.0, 150.0))
    return Layout(
        road_half_m=road_half,
        sidewalk_m=sidewalk,
        crosswalk_x_m=0.0,
        crosswalk_half_m=rng.uniform(1.5, 2.5),
        x_min=x_min,
        x_max=x_max,
    )


class StreetScene:
    """A deterministic street simulation you step frame by frame: ``scene.step() -> Frame``.

    The simulation runs ``intent_horizon_s`` ahead of the frame it renders, so ``Frame.intent`` is the true
    future (does this pedestrian cross in the next seconds), not a guess.
    """

    def __init__(self, config: SceneConfig | None = None) -> None:
        self.config = config = config or SceneConfig()
        streams = np.random.SeedSequence(config.seed).spawn(4)
        layout_rng, self._style_rng, sim_rng, self._render_rng = (np.random.default_rng(s) for s in streams)
        self.camera = build_camera(config, layout_rng)
        self.layout = build_layout(self.camera, layout_rng)
        behaviour = Behaviour(
            config.pedestrians_per_min,
            config.vehicles_per_min,
            config.max_pedestrians,
            config.p_cross,
            config.p_jaywalk,
            config.p_turn,
            config.p_wait,
        )
        self._sim = StreetSim(self.layout, behaviour, sim_rng, 1.0 / config.fps)
        for _ in range(int(round(config.warmup_s * config.fps))):
            self._sim.step()
        horizon = max(1, int(round(config.intent_horizon_s * config.fps)))
        self._future: deque[tuple[SimState, frozenset[int]]] = deque()
        for _ in range(horizon):
            self._push()
        self._renderer = None  # built on the first rendered frame: labels-only runs never need pixels
        self._index = 0

    def _push(self) -> None:
        state = self._sim.step()
        self._future.append((state, frozenset(state.ped_ids[state.ped_behaviour == CROSSING].tolist())))

    def advance(self) -> tuple[SimState, np.ndarray]:
        """Step the simulation without rendering: (state of every simulated pedestrian, their intent flags)."""
        state, _ = self._future.popleft()
        self._push()
        crossing = frozenset().union(*(ids for _, ids in self._future))
        intent = np.fromiter((int(i) in crossing for i in state.ped_ids), bool, len(state.ped_ids))
        self._index += 1
        return state, intent

    def step(self) -> Frame:
        """Simulate one time step and render it."""
        index = self._index
        state, intent = self.advance()
        if self._renderer is None:
            self._renderer = self._build_renderer()
        out = self._renderer.render(state)
        rows = out.ped_index
        feet = cam.ground_to_image(self.camera.homography(), state.ped_pos[rows]).astype(np.float32)
        return Frame(
            image=out.image,
            mask=out.mask,
            index=index,
            time_s=index / self.config.fps,
            boxes=out.ped_boxes,
            visibility=out.ped_visibility,
            person_ids=state.ped_ids[rows],
            feet=feet.reshape(-1, 2),
            ground=state.ped_pos[rows].astype(np.float32).reshape(-1, 2),
            intent=intent[rows],
            behaviour=tuple(BEHAVIOURS[b] for b in state.ped_behaviour[rows]),
            vehicle_boxes=out.veh_boxes,
            vehicle_ids=state.veh_ids[out.veh_index],
        )

    def _build_renderer(self):
        from toolkit.data.synthetic.background import build_background, make_style
        from toolkit.data.synthetic.furniture import place_furniture
        from toolkit.data.synthetic.render import Renderer

        rng = self._style_rng
        style = make_style(rng, self.config.noise)
        background = build_background(self.camera, self.layout, style, rng, place_furniture(self.layout, rng))
        return Renderer(self.camera, background, self._render_rng)

    def frames(self, n: int) -> Iterator[Frame]:
        """The next ``n`` frames."""
        for _ in range(n):
            yield self.step()

    def __iter__(self) -> Iterator[Frame]:
        while True:
            yield self.step()

    def homography(self) -> np.ndarray:
        """3x3 ground->image homography of the scene camera (metres -> pixels)."""
        return self.camera.homography()

    def ground_to_image(self, ground_xy: np.ndarray) -> np.ndarray:
        """Ground points (N, 2) in metres -> pixels (N, 2)."""
        return cam.ground_to_image(self.camera.homography(), ground_xy)

    def image_to_ground(self, image_uv: np.ndarray) -> np.ndarray:
        """Pixels (N, 2) -> ground points (N, 2) in metres (meaningless above the horizon)."""
        return cam.image_to_ground(self.camera.homography(), image_uv)

    def write_homography(self, path: str | Path) -> Path:
        """Write the image->ground homography JSON the camera pipeline loads; returns the path."""
        return cam.write_homography(self.camera, path)
