"""Street furniture for the synthetic scene: distractors a detector must learn are not people.

Lamp posts, sign poles and bollards stand on the kerb side of the sidewalks (tall thin verticals, like people
seen far away); trees, bins, benches and traffic cones stand just beyond the sidewalks' outer edge, where no
simulated pedestrian walks. ``place_furniture`` returns (draw function, ground point) pairs that
``build_background`` draws once per scene.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import cv2
import numpy as np

from toolkit.data.synthetic.background import box_faces, fill_poly, ground_shadow, px_per_m, shade
from toolkit.data.synthetic.camera import Camera
from toolkit.data.synthetic.sim import Layout

Draw = Callable[[np.ndarray, np.ndarray, np.ndarray, Camera, np.ndarray, np.ndarray], None]


def _pt(camera: Camera, x: float, y: float, z: float) -> np.ndarray:
    return camera.project(np.array([x, y, z]))[0]


def _line(canvas, drawn, a, b, colour, thick: float) -> None:
    t = max(1, int(round(thick)))
    pa, pb = (
        tuple(np.round(np.clip(a, -1e4, 1e4)).astype(int)),
        tuple(np.round(np.clip(b, -1e4, 1e4)).astype(int)),
    )
    cv2.line(canvas, pa, pb, colour, t, cv2.LINE_AA)
    cv2.line(drawn, pa, pb, 255, t, cv2.LINE_8)


def _square(xy: np.ndarray, half: float) -> np.ndarray:
    return xy + np.array([[-half, -half], [half, -half], [half, half], [-half, half]])


def _pole(canvas, drawn, shadow, camera, xy, sun, height, colour, arm_to=0.0, sign=None) -> None:
    scale = px_per_m(camera, xy)
    ground_shadow(shadow, camera, _square(xy, 0.07), height, sun)
    _line(canvas, drawn, _pt(camera, *xy, 0), _pt(camera, *xy, height), colour, 0.13 * scale)
    if arm_to:  # lamp arm reaching over the road, with a lamp head
        end = (xy[0], xy[1] + arm_to, height)
        _line(canvas, drawn, _pt(camera, *xy, height), _pt(camera, *end), colour, 0.08 * scale)
        head = _pt(camera, *end)
        axes = (max(1, int(0.3 * scale)), max(1, int(0.12 * scale)))
        cv2.ellipse(canvas, tuple(head.astype(int)), axes, 0, 0, 360, (200, 215, 220), -1, cv2.LINE_AA)
        cv2.ellipse(drawn, tuple(head.astype(int)), axes, 0, 0, 360, 255, -1)
    if sign is not None:  # a plate facing along the street
        plate_colour, round_plate = sign
        mid = _pt(camera, *xy, height - 0.35)
        radius = max(1, int(0.3 * scale))
        if round_plate:
            cv2.circle(canvas, tuple(mid.astype(int)), radius, plate_colour, -1, cv2.LINE_AA)
            cv2.circle(drawn, tuple(mid.astype(int)), radius, 255, -1)
        else:
            for poly, name in box_faces(camera, tuple(xy), 0.0, 0.04, 0.6, height - 0.7, height):
                fill_poly(canvas, poly, shade(plate_colour, name))
                fill_poly(drawn, poly, 255, aa=False)


def _tree(canvas, drawn, shadow, camera, xy, sun, trunk_h, crown_r, greens, rng_seed) -> None:
    rng = np.random.default_rng(rng_seed)
    scale = px_per_m(camera, xy)
    crown_z = trunk_h + crown_r * 0.8
    ground_shadow(shadow, camera, _square(xy, 0.15), trunk_h, sun)
    ring = (
        np.stack([np.cos(np.linspace(0, 2 * np.pi, 16)), np.sin(np.linspace(0, 2 * np.pi, 16))], 1) * crown_r
    )
    ground_shadow(shadow, camera, xy + sun * crown_z + ring * 0.9, 0.0, sun)
    _line(canvas, drawn, _pt(camera, *xy, 0), _pt(camera, *xy, crown_z), (40, 60, 85), 0.3 * scale)
    centre = _pt(camera, *xy, crown_z)
    crown_scale = px_per_m(camera, xy, crown_z)
    for _ in range(9):  # overlapping leaf clumps, darker below and lighter on top
        off = rng.normal(0, 0.45, 2) * crown_r * crown_scale
        r = max(2, int(rng.uniform(0.45, 0.75) * crown_r * crown_scale))
        tone = np.array(greens) * rng.uniform(0.75, 1.2) * (1.15 if off[1] < 0 else 0.9)
        c = tuple(np.round(centre + off).astype(int))
        cv2.circle(canvas, c, r, tuple(float(v) for v in np.clip(tone, 0, 255)), -1, cv2.LINE_AA)
        cv2.circle(drawn, c, r, 255, -1)


def _box_item(canvas, drawn, shadow, camera, xy, sun, size, colour, heading=0.0) -> None:
    length, width, height = size
    c, s = math.cos(heading), math.sin(heading)
    corners = (
        np.array(
            [
                [dx * c - dy * s, dx * s + dy * c]
                for dx, dy in (
                    (-length / 2, -width / 2),
                    (length / 2, -width / 2),
                    (length / 2, width / 2),
                    (-length / 2, width / 2),
                )
            ]
        )
        + xy
    )
    ground_shadow(shadow, camera, corners, height, sun)
    for poly, name in box_faces(camera, tuple(xy), heading, length, width, 0.0, height):
        fill_poly(canvas, poly, shade(colour, name))
        fill_poly(drawn, poly, 255, aa=False)


def _cone(canvas, drawn, shadow, camera, xy, sun) -> None:
    scale = px_per_m(camera, xy)
    ground_shadow(shadow, camera, _square(xy, 0.18), 0.7, sun)
    base, tip = _pt(camera, *xy, 0), _pt(camera, *xy, 0.7)
    half = np.array([0.2 * scale, 0.0])
    tri = np.array([base - half, base + half, tip])
    fill_poly(canvas, tri, (30, 110, 245))
    fill_poly(drawn, tri, 255, aa=False)
    band = np.array([base - half * 0.6 + (tip - base) * 0.4, base + half * 0.6 + (tip - base) * 0.4])
    _line(canvas, drawn, band[0], band[1], (235, 235, 235), max(1.0, 0.06 * scale))


def place_furniture(layout: Layout, rng: np.random.Generator) -> list[tuple[Draw, tuple[float, float]]]:
    """Choose street furniture for a scene: a list of (draw function, ground point)."""
    items: list[tuple[Draw, tuple[float, float]]] = []
    r_half, side_w = layout.road_half_m, layout.sidewalk_m
    clear = layout.crosswalk_half_m + 2.0  # keep the crosswalk approach free

    def near_crosswalk(x: float) -> bool:
        return abs(x - layout.crosswalk_x_m) < clear

    pole_colour = tuple(rng.choice([[60, 60, 60], [50, 70, 50], [150, 150, 150], [35, 35, 35]]).tolist())
    for side in (-1, 1):
        x = layout.x_min - 10.0 + rng.uniform(0, 20)
        while x < layout.x_max + 10.0:  # lamp posts every 15-30 m at the kerb
            if not near_crosswalk(x):
                items.append(
                    (
                        partial(
                            _pole,
                            height=rng.uniform(5.0, 7.5),
                            colour=pole_colour,
                            arm_to=-side * rng.uniform(0.8, 1.6),
                        ),
                        (x, side * (r_half + 0.25)),
                    )
                )
            x += rng.uniform(15, 30)
        x = layout.x_min - 10.0 + rng.uniform(0, 15)
        while x < layout.x_max + 10.0:  # outer edge: trees, bins, benches, cones
            kind = rng.choice(["tree", "tree", "bin", "bench", "cone", "none"])
            y = side * (r_half + side_w + rng.uniform(0.6, 2.5))
            if kind == "tree":
                items.append(
                    (
                        partial(
                            _tree,
                            trunk_h=rng.uniform(1.8, 3.0),
                            crown_r=rng.uniform(1.2, 2.4),
                            greens=(rng.uniform(30, 60), rng.uniform(80, 130), rng.uniform(40, 80)),
                            rng_seed=int(rng.integers(1 << 31)),
                        ),
                        (x, y + side * 1.5),
                    )
                )
            elif kind == "bin":
                items.append(
                    (
                        partial(
                            _box_item,
                            size=(0.55, 0.55, rng.uniform(0.8, 1.1)),
                            colour=tuple(
                                rng.choice(
                                    [[40, 70, 40], [60, 60, 60], [30, 30, 140], [120, 80, 30]]
                                ).tolist()
                            ),
                        ),
                        (x, y),
                    )
                )
            elif kind == "bench":
                items.append((partial(_box_item, size=(1.7, 0.5, 0.45), colour=(40, 75, 110)), (x, y)))
            elif kind == "cone":
                for k in range(int(rng.integers(1, 4))):
                    items.append((_cone, (x + k * 1.2, y)))
            x += rng.uniform(4, 14)
        for _ in range(int(rng.integers(0, 3))):  # sign poles at the kerb
            x = rng.uniform(layout.x_min, layout.x_max)
            if not near_crosswalk(x):
                sign = (
                    tuple(rng.choice([[200, 90, 30], [30, 30, 200], [230, 230, 230]]).tolist()),
                    rng.random() < 0.5,
                )
                items.append(
                    (
                        partial(_pole, height=rng.uniform(2.4, 3.2), colour=(150, 150, 150), sign=sign),
                        (x, side * (r_half + 0.3)),
                    )
                )
    if rng.random() < 0.5:  # bollards at the crosswalk ends
        for side in (-1, 1):
            for dx in (-1, 1):
                x = layout.crosswalk_x_m + dx * (layout.crosswalk_half_m + 0.4)
                items.append((partial(_pole, height=0.9, colour=(70, 70, 70)), (x, side * (r_half + 0.25))))
    return items
