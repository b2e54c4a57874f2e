"""The static part of a synthetic street scene, drawn once per scene: style, ground, buildings, furniture.

The ground (road with lane markings and a zebra crosswalk, kerbs, sidewalks, grass or gravel beyond) is painted
on a top-down map in metres and warped into the image through the camera homography, so textures, stripes and
paving joints foreshorten correctly. Buildings along the far side and street furniture (lamp posts, sign poles,
trees, bins, bollards, cones) are drawn as projected 3D boxes; furniture is also kept as sprites so the per-frame
renderer can paint it over pedestrians that walk behind it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from toolkit.data.synthetic.camera import Camera
from toolkit.data.synthetic.sim import Layout

ROAD, SIDEWALK = 1, 2
MAX_GROUND_M = (
    75.0  # ground fades into haze by this distance from the camera (or 2.5x the distance to the target)
)


def far_limit(camera: Camera) -> float:
    """Distance (m) at which the ground has faded into haze: the painted ground map ends there."""
    return max(
        MAX_GROUND_M, 2.5 * float(np.hypot(*(camera.position[:2] - [camera.target_x_m, camera.target_y_m])))
    )


@dataclass(frozen=True)
class Style:
    """Per-seed look of a scene."""

    light: tuple[float, float, float]  # BGR gains: overall brightness and colour temperature
    saturation: float  # colourfulness: 1 as painted, < 1 washed out like many real cameras
    shadow_dir: tuple[float, float]  # unit ground direction in which shadows fall
    shadow_len: float  # shadow length per metre of object height (1 / tan(sun elevation))
    shadow_strength: float  # how much a shadow darkens the ground (0 = overcast)
    noise_sigma: float  # sensor noise, grey levels
    blur_sigma: float  # optical blur, pixels (0 = none)


@dataclass
class Sprite:
    """A piece of street furniture: its pixels in the background and its depth, for occluding agents."""

    x0: int
    y0: int
    image: np.ndarray  # (h, w, 3) uint8, crop of the final background
    mask: np.ndarray  # (h, w) bool, the object's pixels
    depth: float  # camera depth of its ground contact point


@dataclass
class Background:
    image: np.ndarray  # (H, W, 3) uint8 BGR
    shadowed: np.ndarray  # (H, W, 3) uint8, the same under shadow (agents' shadows copy from it)
    mask: np.ndarray  # (H, W) uint8 semantic classes of the static scene
    sprites: list[Sprite]
    style: Style


def make_style(rng: np.random.Generator, noise: float) -> Style:
    bright = rng.uniform(0.62, 1.2)
    warm = rng.uniform(-0.08, 0.08)
    sun = rng.uniform(0, 2 * math.pi)
    overcast = rng.random() < 0.3
    return Style(
        light=(bright * (1 - warm), bright, bright * (1 + warm)),
        saturation=rng.uniform(0.55, 1.1),
        shadow_dir=(math.cos(sun), math.sin(sun)),
        shadow_len=1.0 / math.tan(math.radians(rng.uniform(25, 65))),
        shadow_strength=0.0 if overcast else rng.uniform(0.3, 0.55),
        noise_sigma=noise * rng.uniform(1.5, 5.0),
        blur_sigma=noise * rng.uniform(0.0, 1.1),
    )


def grade(colours: np.ndarray, style: Style) -> np.ndarray:
    """Apply the scene's light and saturation to BGR colours (..., 3) float -> float32."""
    lit = np.asarray(colours, np.float32) * np.array(style.light, np.float32)
    grey = lit.mean(axis=-1, keepdims=True)
    return grey + np.float32(style.saturation) * (lit - grey)


def _smooth_noise(shape: tuple[int, int], cell: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth value noise in about [-1, 1] with features ``cell`` pixels wide."""
    small = rng.standard_normal((max(2, int(shape[0] / cell) + 2), max(2, int(shape[1] / cell) + 2)))
    return cv2.resize(small.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC) * 0.6


def _paint_ground(
    layout: Layout, bounds: tuple[float, float, float, float], ppm: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Top-down colour map (float32 BGR) and class map; pixel (c, r) is ground (x0 + c/ppm, y0 + r/ppm)."""
    x0, y0, x1, y1 = bounds
    w, h = int((x1 - x0) * ppm) + 1, int((y1 - y0) * ppm) + 1
    ys = y0 + np.arange(h) / ppm
    xs = x0 + np.arange(w) / ppm
    grain = rng.standard_normal((h, w)).astype(np.float32)
    blotch = _smooth_noise((h, w), 3.0 * ppm, rng)
    colour = np.zeros((h, w, 3), np.float32)
    classes = np.zeros((h, w), np.uint8)
    r_half, side_w = layout.road_half_m, layout.sidewalk_m

    def band(lo: float, hi: float) -> slice:
        return slice(int(np.searchsorted(ys, lo)), int(np.searchsorted(ys, hi)))

    def fill(rows: slice, base: np.ndarray, grain_amp: float, blotch_amp: float) -> None:
        colour[rows] = base + (grain[rows] * grain_amp + blotch[rows] * blotch_amp)[..., None]

    # Beyond the sidewalks: grass, gravel or dirt on each side.
    for rows in (band(y0, -r_half - side_w), band(r_half + side_w, y1)):
        kind = rng.choice(["grass", "grass", "gravel", "dirt"])
        base = {
            "grass": [rng.uniform(40, 70), rng.uniform(110, 150), rng.uniform(70, 105)],
            "gravel": [rng.uniform(120, 150)] * 3,
            "dirt": [70, rng.uniform(95, 115), rng.uniform(120, 140)],
        }[kind]
        fill(rows, np.array(base, np.float32), 14.0, 22.0)
    # Sidewalks: concrete or paving slabs, with joints; a lighter kerb strip next to the road.
    slab = rng.uniform(0.5, 1.6)
    side_base = np.array(
        rng.choice([[175, 180, 182], [150, 160, 170], [120, 135, 160], [165, 172, 170]]), np.float32
    ) * rng.uniform(0.8, 1.05)
    joints = (np.abs((xs / slab) % 1.0 - 0.5) > 0.47)[None, :] | (np.abs((ys / slab) % 1.0 - 0.5) > 0.47)[
        :, None
    ]
    for lo, hi in ((-r_half - side_w, -r_half), (r_half, r_half + side_w)):
        rows = band(lo, hi)
        fill(rows, side_base, 7.0, 12.0)
        colour[rows][joints[rows]] *= 0.82
        classes[rows] = SIDEWALK
    for lo, hi in ((-r_half - 0.18, -r_half), (r_half, r_half + 0.18)):
        colour[band(lo, hi)] = side_base * 1.12 + grain[band(lo, hi)][..., None] * 5
    # Asphalt with patches and a few cracks.
    rows = band(-r_half, r_half)
    asphalt = np.array([rng.uniform(65, 130)] * 3, np.float32) * [1.0, 1.0, rng.uniform(0.95, 1.05)]
    fill(rows, asphalt, 9.0, 14.0)
    classes[rows] = ROAD
    px = lambda x, y: (int((x - x0) * ppm), int((y - y0) * ppm))  # noqa: E731
    for _ in range(int(rng.integers(0, 6))):
        cx, cy = rng.uniform(x0, x1), rng.uniform(-r_half, r_half)
        cv2.ellipse(
            colour,
            px(cx, cy),
            (int(rng.uniform(0.5, 3) * ppm), int(rng.uniform(0.3, 1.5) * ppm)),
            rng.uniform(0, 180),
            0,
            360,
            (asphalt * rng.uniform(0.75, 1.2)).tolist(),
            -1,
        )
    for _ in range(int(rng.integers(0, 8))):
        pts = np.cumsum(rng.normal(0, 0.6, (6, 2)), axis=0) + [
            rng.uniform(x0, x1),
            rng.uniform(-r_half, r_half),
        ]
        cv2.polylines(
            colour,
            [np.array([px(*p) for p in pts], np.int32)],
            False,
            (asphalt * 0.65).tolist(),
            1,
            cv2.LINE_AA,
        )
    # Markings: dashed or double centre line, edge lines, zebra crosswalk, stop lines. Worn a little.
    paint = np.zeros((h, w), np.float32)
    line_w = 0.12
    dash = (xs % 6.0) < 3.0
    centre = band(-line_w / 2, line_w / 2)
    if rng.random() < 0.6:
        paint[centre] = dash[None, :]
    else:
        paint[band(-0.2, -0.08)] = 1.0
        paint[band(0.08, 0.2)] = 1.0
    if rng.random() < 0.7:
        paint[band(-r_half + 0.2, -r_half + 0.32)] = 1.0
        paint[band(r_half - 0.32, r_half - 0.2)] = 1.0
    cx0, cx1 = layout.crosswalk_x_m - layout.crosswalk_half_m, layout.crosswalk_x_m + layout.crosswalk_half_m
    cols = slice(int(np.searchsorted(xs, cx0)), int(np.searchsorted(xs, cx1)))
    stripe = rng.uniform(0.4, 0.6)
    zebra = ((ys - (-r_half)) % (2 * stripe)) < stripe
    zebra_rows = band(-r_half + 0.3, r_half - 0.3)
    paint[zebra_rows, cols] = zebra[zebra_rows][:, None]
    for direction in (1, -1):  # stop line before the crosswalk, across the approaching lane
        x_stop = layout.crosswalk_x_m - direction * (layout.crosswalk_half_m + 1.5)
        lane = layout.lane_y(direction)
        c = slice(int(np.searchsorted(xs, x_stop - 0.2)), int(np.searchsorted(xs, x_stop + 0.2)))
        paint[band(lane - r_half / 2 + 0.1, lane + r_half / 2 - 0.1), c] = 1.0
    paint *= np.clip(0.85 + _smooth_noise((h, w), 0.7 * ppm, rng) * 0.5, 0.3, 1.0)
    centre_yellow = rng.random() < 0.3
    ink = np.array([225, 228, 230], np.float32)
    colour += paint[..., None] * (ink - colour)
    if centre_yellow:
        colour[centre] = colour[centre] * [0.35, 0.85, 1.0]
    return np.clip(colour, 0, 255), classes


# Box corners: index bits are (forward +, lateral +, top); faces list corner indices around each face.
_SIGNS = np.array(
    [[(1 if i & 1 else -1), (1 if i & 2 else -1), (1 if i & 4 else 0)] for i in range(8)], float
)
_BOX_FACES = (
    ("front", (1, 3, 7, 5)),
    ("back", (0, 4, 6, 2)),
    ("side", (2, 6, 7, 3)),
    ("side", (0, 1, 5, 4)),
    ("top", (4, 5, 7, 6)),
)


def box_faces(
    camera: Camera,
    centre: tuple[float, float],
    heading: float,
    length: float,
    width: float,
    z0: float,
    z1: float,
    taper: float = 1.0,
) -> list[tuple[np.ndarray, str]]:
    """Visible faces of an oriented 3D box as (image polygon (k, 2) float, 'top'|'side'|'front'|'back').

    ``taper`` < 1 shortens the top face along the heading (a car cabin with sloped windscreens).
    """
    c, s = math.cos(heading), math.sin(heading)
    axes = np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])
    signs = _SIGNS.copy()
    signs[4:, 0] *= taper
    corners = np.array([centre[0], centre[1], z0]) + (signs * [length / 2, width / 2, z1 - z0]) @ axes
    middle = corners.mean(axis=0)
    depth = (corners - camera.position) @ camera.forward
    uv = camera.project(corners)[0] if np.all(depth >= 0.3) else None
    faces = []
    for name, idx in _BOX_FACES:
        quad = corners[list(idx)]
        normal = np.cross(quad[1] - quad[0], quad[3] - quad[0])
        face_mid = quad.mean(axis=0)
        if np.dot(normal, face_mid - middle) < 0:
            normal = -normal  # point it out of the box
        if np.dot(camera.position - face_mid, normal) <= 0:
            continue  # facing away from the camera
        poly = uv[list(idx)] if uv is not None else clip_project(camera, quad)
        if poly is not None:
            faces.append((poly, name))
    return faces


def clip_project(camera: Camera, poly3d: np.ndarray, near: float = 0.3) -> np.ndarray | None:
    """Project a planar 3D polygon, clipped to the part in front of the camera; None when nothing is left."""
    depth = (poly3d - camera.position) @ camera.forward
    if np.all(depth >= near):
        return camera.project(poly3d)[0]
    kept = []
    for i in range(len(poly3d)):
        p, q, dp, dq = poly3d[i], poly3d[(i + 1) % len(poly3d)], depth[i], depth[(i + 1) % len(poly3d)]
        if dp >= near:
            kept.append(p)
        if (dp >= near) != (dq >= near):
            kept.append(p + (q - p) * (near - dp) / (dq - dp))
    return camera.project(np.array(kept))[0] if len(kept) >= 3 else None


def fill_poly(img: np.ndarray, poly: np.ndarray, colour, aa: bool = True) -> None:
    pts = np.round(np.clip(poly, -1e4, 1e4) * 4).astype(np.int32)  # 2 fractional bits for smooth edges
    cv2.fillPoly(img, [pts], colour, cv2.LINE_AA if aa else cv2.LINE_8, shift=2)


def ground_shadow(
    shadow: np.ndarray, camera: Camera, footprint: np.ndarray, height: float, sun: np.ndarray
) -> None:
    """Fill the shadow an object with ground ``footprint`` (k, 2) and ``height`` casts along ``sun`` (m per m)."""
    pts = np.concatenate([footprint, footprint + sun * height])
    img = camera.project(np.concatenate([pts, np.zeros((len(pts), 1))], axis=1))[0]
    hull = cv2.convexHull(np.round(np.clip(img, -1e4, 1e4) * 4).astype(np.int32))
    cv2.fillConvexPoly(shadow, hull, 255, cv2.LINE_8, shift=2)


def px_per_m(camera: Camera, xy: np.ndarray, z: float = 0.0) -> float:
    """Image length in pixels of one vertical metre standing at ground point ``xy`` (height ``z``)."""
    a, b = camera.project(np.array([[xy[0], xy[1], z], [xy[0], xy[1], z + 1.0]]))[0]
    return float(np.hypot(*(a - b)))


def shade(colour, name: str) -> tuple[float, float, float]:
    k = {"top": 1.12, "front": 0.92, "back": 0.92, "side": 0.78}[name]
    return tuple(float(min(255, v * k)) for v in colour)


def _buildings(
    img: np.ndarray, drawn: np.ndarray, camera: Camera, layout: Layout, rng: np.random.Generator
) -> None:
    """A row of buildings behind the far sidewalk, with window grids; drawn far-to-near."""
    y_front = layout.road_half_m + layout.sidewalk_m + rng.uniform(2.0, 9.0)
    x = layout.x_min - 40.0
    blocks = []
    while x < layout.x_max + 40.0:
        width = rng.uniform(8.0, 26.0)
        if rng.random() > 0.2:
            blocks.append((x, width, rng.uniform(4.0, 16.0), y_front + rng.uniform(0, 3.0)))
        x += width + rng.uniform(0.0, 4.0)
    wall_colours = [
        [70, 90, 150],
        [60, 75, 120],
        [170, 175, 180],
        [140, 160, 185],
        [110, 110, 115],
        [200, 205, 210],
    ]
    blocks.sort(key=lambda b: -float(camera.depth_of(np.array([b[0] + b[1] / 2, b[3]]))))
    for bx, width, height, by in blocks:
        wall = np.array(wall_colours[int(rng.integers(len(wall_colours)))], np.float64) * rng.uniform(
            0.8, 1.1
        )
        faces = box_faces(camera, (bx + width / 2, by + 6.0), 0.0, width, 12.0, 0.0, height)
        for poly, name in faces:
            fill_poly(img, poly, (90, 92, 95) if name == "top" else shade(wall, name))
            fill_poly(drawn, poly, 255, aa=False)
        glass = np.array([rng.uniform(50, 90), rng.uniform(40, 70), rng.uniform(30, 60)])
        for floor in np.arange(0.9, height - 1.5, 3.0):
            for wx in np.arange(bx + 1.0, bx + width - 1.5, rng.uniform(2.2, 3.2)):
                quad = np.array(
                    [
                        [wx, by, floor],
                        [wx + 1.3, by, floor],
                        [wx + 1.3, by, floor + 1.5],
                        [wx, by, floor + 1.5],
                    ]
                )
                if np.dot(camera.position - quad[0], [0, -1, 0]) > 0:
                    poly = clip_project(camera, quad)
                    if poly is not None:
                        fill_poly(img, poly, tuple(glass * rng.uniform(0.7, 1.5)))


def _sky(img: np.ndarray, valid: np.ndarray, low: np.ndarray, rng: np.random.Generator) -> None:
    top = np.array([rng.uniform(170, 230), rng.uniform(150, 200), rng.uniform(120, 170)])
    t = np.linspace(0, 1, img.shape[0])[:, None, None]
    sky = np.broadcast_to(top * (1 - t) + low * t, img.shape)
    img[~valid] = sky[~valid]


def build_background(
    camera: Camera, layout: Layout, style: Style, rng: np.random.Generator, furniture: list
) -> Background:
    """Render the static scene: ground, sky, buildings, furniture (``furniture`` = list of (draw_fn, ground_xy))."""
    w, h = camera.width, camera.height
    # Per-pixel ground rays: where each pixel meets the ground and how far away that is.
    uu, vv = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    ground, valid = camera.pixels_to_ground(np.stack([uu, vv], -1))
    dist = np.hypot(*(ground - camera.position[:2]).transpose(2, 0, 1))
    far = far_limit(camera)
    near = valid & (dist < far)
    pts = ground[near] if near.any() else np.array([[-20.0, -10.0], [20.0, 10.0]])
    x0, y0 = np.maximum(pts.min(axis=0) - 2.0, [-400, -400])
    x1, y1 = np.minimum(pts.max(axis=0) + 2.0, [400, 400])
    ppm = min(20.0, 1100.0 / max(x1 - x0, y1 - y0))  # coarse is fine: fine grain is added in image space
    colour_map, class_map = _paint_ground(layout, (x0, y0, x1, y1), ppm, rng)
    to_ground = np.array([[1 / ppm, 0, x0], [0, 1 / ppm, y0], [0, 0, 1]])
    warp = camera.homography() @ to_ground
    img = cv2.warpPerspective(
        colour_map, warp, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    mask = cv2.warpPerspective(
        class_map, warp, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE
    )
    img += rng.standard_normal((h, w, 1)).astype(np.float32) * np.float32(rng.uniform(3.0, 7.0))
    # Aerial haze: the ground fades into the colour of the sky at the horizon, reached at the far limit.
    horizon = np.array([225, 225, 222], np.float32) * np.float32(rng.uniform(0.8, 1.0))
    haze = (np.clip((dist - 0.25 * far) / (0.75 * far), 0.0, 1.0) ** 1.5)[..., None] * valid[..., None]
    img = img * (1 - haze) + haze * horizon
    _sky(img, valid, horizon, rng)
    mask[~near] = 0
    img = img.astype(np.float32)
    buildings = np.zeros((h, w), np.uint8)
    _buildings(img, buildings, camera, layout, rng)
    mask[buildings > 0] = 0
    # Furniture: shadows first, then each object on its own canvas so it can become a sprite.
    sun = np.array(style.shadow_dir) * style.shadow_len
    canvases = []
    for draw, xy in furniture:
        base_top = np.array([[xy[0], xy[1], 0.0], [xy[0], xy[1], 8.0]])
        if np.any((base_top - camera.position) @ camera.forward < 2.0):
            continue  # beside or behind the camera: it would fill (or wrap around) the view
        canvas = np.zeros((h, w, 3), np.float32)
        drawn = np.zeros((h, w), np.uint8)
        shadow = np.zeros((h, w), np.uint8)
        draw(canvas, drawn, shadow, camera, np.asarray(xy, float), sun)
        img[shadow > 0] *= 1 - style.shadow_strength
        canvases.append((float(camera.depth_of(np.asarray(xy, float))), canvas, drawn > 0))
    canvases.sort(key=lambda c: -c[0])
    for _, canvas, drawn in canvases:
        img[drawn] = canvas[drawn]
        mask[drawn] = 0
    # Light, colour temperature and a soft vignette.
    r2 = ((uu - w / 2) / (w / 2)) ** 2 + ((vv - h / 2) / (h / 2)) ** 2
    vignette = 1.0 - rng.uniform(0.0, 0.25) * r2 / 2
    img = grade(img, style) * vignette[..., None].astype(np.float32)
    img = np.clip(img, 0, 255)
    final = img.astype(np.uint8)
    # Agents' contact shadows darken the ground even under an overcast sky.
    dark = 1 - max(style.shadow_strength, 0.35)
    shadowed = np.clip(img * dark * np.array([1.06, 1.0, 0.95], np.float32), 0, 255).astype(np.uint8)
    sprites = []
    for depth, _, drawn in canvases:
        ys, xs = np.nonzero(drawn)
        if len(xs) == 0:
            continue
        sl = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
        sprites.append(Sprite(int(xs.min()), int(ys.min()), final[sl].copy(), drawn[sl].copy(), depth))
    return Background(final, shadowed, mask, sprites, style)
