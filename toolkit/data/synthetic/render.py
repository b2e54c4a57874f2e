"""Per-frame rendering of the synthetic street: shadows, pedestrians, vehicles, occlusion, sensor noise, labels.

Agents and furniture sprites are painted far-to-near (painter's algorithm by camera depth). Every agent is also
painted with its own id into an instance map, which gives the semantic mask, each pedestrian's full (amodal)
silhouette box and the fraction of it still visible after nearer things are painted over it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from toolkit.data.synthetic.background import Background, Style, box_faces, fill_poly, grade, shade
from toolkit.data.synthetic.camera import Camera
from toolkit.data.synthetic.sim import SimState

PERSON, VEHICLE = 3, 4
_TOPS = [
    (30, 30, 32),
    (55, 55, 60),
    (80, 45, 25),
    (225, 225, 225),
    (40, 40, 180),
    (170, 95, 45),
    (60, 115, 50),
    (40, 190, 215),
    (150, 178, 200),
    (40, 70, 110),
    (170, 140, 225),
    (215, 180, 135),
    (95, 95, 100),
]
_TOP_P = np.array([8, 6, 5, 3, 2, 2, 1.5, 1, 2, 2, 1, 1.5, 4])
_BOTTOMS = [(110, 70, 40), (30, 30, 32), (60, 60, 65), (140, 170, 190), (40, 60, 90), (90, 55, 35)]
_BOTTOM_P = np.array([6, 6, 3, 1.5, 1.5, 2])
_HAIR = [(25, 25, 30), (30, 50, 80), (90, 160, 200), (150, 150, 150), (20, 35, 60)]
_CARS = [
    (235, 235, 235),
    (25, 25, 28),
    (175, 178, 180),
    (110, 110, 115),
    (40, 40, 170),
    (140, 70, 30),
    (40, 80, 40),
    (60, 160, 210),
    (120, 30, 30),
]
_CAR_P = np.array([5, 5, 5, 4, 1.5, 1.5, 0.7, 0.7, 1])


_RING = np.stack(
    [
        np.cos(np.linspace(0, 2 * np.pi, 8, endpoint=False)),
        np.sin(np.linspace(0, 2 * np.pi, 8, endpoint=False)),
    ],
    1,
)
_CORNERS = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])


@dataclass
class Rendered:
    image: np.ndarray  # (H, W, 3) uint8 BGR
    mask: np.ndarray  # (H, W) uint8 semantic classes
    ped_index: np.ndarray  # (N,) rows of the SimState pedestrian arrays that are visible
    ped_boxes: np.ndarray  # (N, 4) float32 xyxy of the full silhouette, clipped to the image
    ped_visibility: np.ndarray  # (N,) float32 visible fraction of the silhouette
    veh_index: np.ndarray  # (M,) rows of the vehicle arrays that are visible
    veh_boxes: np.ndarray  # (M, 4) float32 xyxy


def _pick(rng: np.random.Generator, table: list, weights: np.ndarray, style: Style) -> tuple:
    colour = np.array(table[int(rng.choice(len(table), p=weights / weights.sum()))], float)
    return _graded(colour * rng.uniform(0.8, 1.15), style)


def _graded(colour: np.ndarray, style: Style) -> tuple:
    return tuple(np.clip(grade(colour, style), 0, 255).tolist())


def _person_look(seed: int, style: Style) -> dict:
    rng = np.random.default_rng(seed)
    skin = np.array([150, 180, 225]) * rng.uniform(0.35, 1.05)
    return {
        "top": _pick(rng, _TOPS, _TOP_P, style),
        "bottom": _pick(rng, _BOTTOMS, _BOTTOM_P, style),
        "skin": _graded(skin, style),
        "hair": _pick(rng, _HAIR, np.ones(5), style),
        "bag": _pick(rng, _TOPS, _TOP_P, style) if rng.random() < 0.3 else None,
        "backpack": rng.random() < 0.5,  # else a hand bag
        "coat": rng.random() < 0.2,
        "girth": rng.uniform(0.9, 1.15),
    }


def _vehicle_look(seed: int, style: Style) -> dict:
    rng = np.random.default_rng(seed)
    return {"body": _pick(rng, _CARS, _CAR_P, style), "glass": _graded(np.array([70.0, 55.0, 45.0]), style)}


def _i(p: np.ndarray) -> tuple[int, int]:
    """Point to OpenCV's fixed-point coordinates (2 fractional bits, for sub-pixel smooth motion)."""
    return int(round(float(np.clip(p[0], -4e3, 4e3)) * 4)), int(round(float(np.clip(p[1], -4e3, 4e3)) * 4))


class Renderer:
    """Draws ``SimState`` snapshots over a pre-rendered ``Background``."""

    def __init__(self, camera: Camera, background: Background, rng: np.random.Generator) -> None:
        self.camera, self.bg, self.rng = camera, background, rng
        self.proj = camera.projection()
        self.ground_h = camera.homography()
        h, w = camera.height, camera.width
        sigma = background.style.noise_sigma
        # Sensor noise: a few precomputed fields, split into the parts to add and to subtract (saturating).
        self.noise = []
        for _ in range(4 if sigma > 0.2 else 0):
            field = rng.normal(0.0, sigma, (h, w, 3)).astype(np.float32)
            self.noise.append(
                (np.clip(field, 0, 255).astype(np.uint8), np.clip(-field, 0, 255).astype(np.uint8))
            )
        self.looks: dict[int, dict] = {}
        sun = np.array(background.style.shadow_dir) * background.style.shadow_len
        self.sun = sun if background.style.shadow_strength > 0 else None
        # Which side of a torso is away from the sun, as a sign along the image x axis (overcast: the right).
        a, b = camera.project(np.array([[0.0, 0.0, 0.0], [*background.style.shadow_dir, 0.0]]))[0]
        self.shade_sign = 1.0 if self.sun is None or b[0] >= a[0] else -1.0

    def _look(self, seed: int, vehicle: bool) -> dict:
        if seed not in self.looks:
            if len(self.looks) > 512:
                self.looks.clear()
            self.looks[seed] = (_vehicle_look if vehicle else _person_look)(int(seed), self.bg.style)
        return self.looks[seed]

    def _project(self, pts: np.ndarray) -> np.ndarray:
        hom = pts @ self.proj[:, :3].T + self.proj[:, 3]
        return hom[..., :2] / hom[..., 2:3]

    def _shadow(self, img: np.ndarray, footprint: np.ndarray, height: float) -> None:
        """Copy the pre-darkened background under an agent's contact shadow and (in sun) its cast shadow."""
        pts = footprint if self.sun is None else np.concatenate([footprint, footprint + self.sun * height])
        hom = pts @ self.ground_h[:, :2].T + self.ground_h[:, 2]
        if np.any(hom[:, 2] <= 1e-6):
            return  # part of the shadow lies behind the camera
        uv = hom[:, :2] / hom[:, 2:3]
        h, w = img.shape[:2]
        x0, y0 = np.maximum(np.floor(uv.min(0)).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(uv.max(0)).astype(int) + 1, [w, h])
        if x1 <= x0 or y1 <= y0:
            return
        roi = np.zeros((y1 - y0, x1 - x0), np.uint8)
        hull = cv2.convexHull(np.round((uv - [x0, y0]) * 4).astype(np.int32))
        cv2.fillConvexPoly(roi, hull, 1, cv2.LINE_8, shift=2)
        np.copyto(img[y0:y1, x0:x1], self.bg.shadowed[y0:y1, x0:x1], where=roi[..., None].astype(bool))

    def _person_points(self, state: SimState) -> np.ndarray:
        """(N, 10, 2) image points: feet, hip, shoulders centre, head, feet L/R, hands L/R, hip+-lateral."""
        n = len(state.ped_ids)
        c, s = np.cos(state.ped_heading), np.sin(state.ped_heading)
        fwd = np.stack([c, s, np.zeros(n)], 1)[:, None]
        lat = np.stack([-s, c, np.zeros(n)], 1)[:, None]
        h = state.ped_height[:, None, None]
        swing = (
            (np.sin(state.ped_phase) * np.clip(state.ped_speed / 1.1, 0, 1))[:, None, None] * 0.3 * h / 1.75
        )
        base = np.concatenate([state.ped_pos, np.zeros((n, 1))], 1)[:, None]
        up = np.array([0.0, 0.0, 1.0])
        rel = np.concatenate(
            [
                0 * up[None, None].repeat(n, 0),
                0.5 * h * up,
                0.82 * h * up,
                0.925 * h * up,
                fwd * swing + lat * 0.1,
                -fwd * swing - lat * 0.1,
                0.46 * h * up - fwd * swing * 0.5 + lat * 0.24,
                0.46 * h * up + fwd * swing * 0.5 - lat * 0.24,
                0.5 * h * up + lat * 0.5,
                0.5 * h * up - lat * 0.5,
            ],
            axis=1,
        )
        return self._project(base + rel)

    def _draw_person(self, img, inst, ident, pts, height, heading, look) -> tuple[int, int, int, int] | None:
        feet, hip, shoulder, head, foot_l, foot_r, hand_l, hand_r, lat_a, lat_b = pts
        scale = float(np.hypot(*(head - feet))) / (0.925 * height)
        if not np.isfinite(scale) or scale < 1.0:
            return None
        leg_t, arm_t = max(1, int(round(0.15 * scale * look["girth"]))), max(1, int(round(0.09 * scale)))
        head_r = max(1.0, 0.062 * height * scale)
        pad = (
            int(max(leg_t, arm_t, head_r) + 0.3 * scale) + 2
        )  # thick strokes and torso width around the joints
        h, w = inst.shape
        x0, y0 = np.floor(pts[:8].min(0)).astype(int) - pad
        x1, y1 = np.ceil(pts[:8].max(0)).astype(int) + pad
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 <= x0 or y1 <= y0:
            return None
        side_on = float(np.hypot(*(lat_a - lat_b))) / scale  # 1 when the shoulders face the camera
        girth = look["girth"] * (0.6 + 0.4 * min(side_on, 1.0))
        axis = shoulder - hip
        normal = np.array([-axis[1], axis[0]]) / max(float(np.hypot(*axis)), 1e-6)
        hip_w, sh_w = 0.18 * scale * girth, 0.22 * scale * girth
        low = hip + (feet - hip) * (0.45 if look["coat"] else 0.0)
        # The camera sees the back when the walker faces away from it: the bag covers the torso then.
        cam_fwd = self.camera.forward
        back_view = math.cos(heading) * cam_fwd[0] + math.sin(heading) * cam_fwd[1] > 0.2
        shade_side = normal * self.shade_sign
        fixed = np.round(
            np.clip(
                np.array(
                    [
                        hip + normal * hip_w * 0.42,
                        hip - normal * hip_w * 0.42,
                        foot_l,
                        foot_r,  # 0-3 legs
                        low - normal * hip_w * 1.05,
                        low + normal * hip_w * 1.05,
                        shoulder + normal * sh_w,
                        shoulder - normal * sh_w,  # 4-7 torso
                        shoulder + normal * sh_w * 0.92,
                        shoulder - normal * sh_w * 0.92,
                        hand_l,
                        hand_r,  # 8-11 arms
                        head,
                        head - axis * 0.03,
                        hand_r - axis * 0.3,  # 12 head, 13 hair, 14 bottom of a hand bag
                        hip + axis * 0.4 - normal * sh_w * 0.7,
                        hip + axis * 0.4 + normal * sh_w * 0.7,
                        hip + axis * 0.95 + normal * sh_w * 0.7,
                        hip + axis * 0.95 - normal * sh_w * 0.7,  # 15-18 backpack
                        low,
                        low + shade_side * hip_w * 1.05,
                        shoulder + shade_side * sh_w,
                        shoulder,  # 19-22 shaded half
                    ]
                ),
                -4e3,
                4e3,
            )
            * 4
        ).astype(np.int32)
        p = [tuple(q) for q in fixed.tolist()]
        torso, bag, shaded = fixed[4:8], fixed[15:19], fixed[19:23]
        r_head = int(head_r * 4)
        hair_angle = math.degrees(math.atan2(axis[1], axis[0])) + 90
        aa, plain = cv2.LINE_AA, cv2.LINE_8
        bottom, top, skin = look["bottom"], look["top"], look["skin"]
        dim = tuple(v * 0.8 for v in bottom)
        shoe = tuple(v * 0.35 + 10 for v in bottom)
        # The leg whose foot is higher in the image is the farther one: draw it first, a little darker.
        legs = ((0, 2), (1, 3)) if foot_l[1] <= foot_r[1] else ((1, 3), (0, 2))
        for (a, b), colour in zip(legs, (dim, bottom), strict=True):
            cv2.line(img, p[a], p[b], colour, leg_t, aa, 2)
            cv2.line(inst, p[a], p[b], ident, leg_t, plain, 2)
            if scale > 18:
                cv2.circle(img, p[b], max(4, int(0.07 * scale * 4)), shoe, -1, aa, 2)
        cv2.fillPoly(img, [torso], top, aa, 2)
        cv2.fillPoly(img, [shaded], tuple(v * 0.78 for v in top), aa, 2)
        cv2.fillPoly(inst, [torso], ident, plain, 2)
        for a, b in ((8, 10), (9, 11)):
            cv2.line(img, p[a], p[b], top, arm_t, aa, 2)
            cv2.line(inst, p[a], p[b], ident, arm_t, plain, 2)
            if scale > 22:
                cv2.circle(img, p[b], max(3, int(0.04 * scale * 4)), skin, -1, aa, 2)
        if look["bag"] is not None and not look["backpack"]:
            cv2.line(img, p[11], p[14], look["bag"], max(1, int(0.12 * scale)), aa, 2)
            cv2.line(inst, p[11], p[14], ident, max(1, int(0.12 * scale)), plain, 2)
        if look["bag"] is not None and look["backpack"] and back_view:
            cv2.fillPoly(img, [bag], look["bag"], aa, 2)
            cv2.fillPoly(inst, [bag], ident, plain, 2)
        neck = (tuple(fixed[7] // 2 + fixed[6] // 2), p[12])  # shoulder centre to head centre
        cv2.line(img, neck[0], neck[1], skin, max(1, int(0.08 * scale)), aa, 2)
        cv2.line(inst, neck[0], neck[1], ident, max(1, int(0.08 * scale)), plain, 2)
        cv2.circle(img, p[12], r_head, skin, -1, aa, 2)
        cv2.circle(inst, p[12], r_head, ident, -1, plain, 2)
        if back_view:  # hair: the whole head from behind, the crown otherwise
            cv2.circle(img, p[13], r_head, look["hair"], -1, aa, 2)
        else:
            cv2.ellipse(
                img, p[13], (r_head, int(r_head * 0.75)), hair_angle, 180, 360, look["hair"], -1, aa, 2
            )
        return x0, y0, x1, y1

    def _draw_vehicle(self, img, inst, ident, pos, direction, size, look) -> tuple[int, int, int, int] | None:
        length, width, height = size
        heading = 0.0 if direction > 0 else math.pi
        van = height > 1.8
        body_top = 0.25 + (0.55 if van else 0.45) * (height - 0.25)
        cab_len = length * (0.82 if van else 0.52)
        cab_centre = (pos[0] - direction * length * (0.06 if van else 0.08), pos[1])
        wheels = np.array(
            [
                [pos[0] + dx * length * 0.32, pos[1] + dy * width / 2, z]
                for dx in (-1, 1)
                for dy in (-1, 1)
                for z in (0.3, 0.6)
            ]
        )
        uv = self._project(wheels)
        polys = []
        if np.all(np.isfinite(uv)):
            for centre, top in zip(uv[0::2], uv[1::2], strict=True):
                radius = float(np.hypot(*(top - centre)))
                cv2.circle(img, _i(centre), int(radius * 4), (20, 20, 22), -1, cv2.LINE_AA, 2)
                cv2.circle(inst, _i(centre), int(radius * 4), ident, -1, cv2.LINE_8, 2)
                polys.append(np.array([centre - radius - 1, centre + radius + 1]))
        seen = set()
        for centre, lng, wid, z0, z1, taper, glass in (
            (tuple(pos), length, width, 0.25, body_top, 1.0, False),
            (cab_centre, cab_len, width * 0.92, body_top, height, 0.92 if van else 0.7, True),
        ):
            for poly, name in box_faces(self.camera, centre, heading, lng, wid, z0, z1, taper):
                colour = look["glass"] if glass and name != "top" else shade(look["body"], name)
                fill_poly(img, poly, colour)
                fill_poly(inst, poly, ident, aa=False)
                polys.append(poly)
                if not glass:
                    seen.add(name)
        # Head lights on the front, red lights on the back, where that end faces the camera.
        z_light = 0.25 + 0.65 * (body_top - 0.25)
        for end, colour in (("front", (215, 235, 245)), ("back", (40, 40, 190))):
            if end not in seen:
                continue
            along = direction * (length / 2 + 0.02) * (1 if end == "front" else -1)
            lights = np.array([[pos[0] + along, pos[1] + dy * (width / 2 - 0.3), z_light] for dy in (-1, 1)])
            uv_l = self._project(lights)
            radius = max(3, int(0.09 * float(np.hypot(*(uv_l[0] - uv_l[1]))) / max(width - 0.6, 0.1) * 4))
            for point in uv_l:
                cv2.circle(img, _i(point), radius, colour, -1, cv2.LINE_AA, 2)
        if not polys:
            return None
        allpts = np.concatenate(polys)
        h, w = inst.shape
        x0, y0 = np.maximum(np.floor(allpts.min(0)).astype(int) - 1, 0)
        x1, y1 = np.minimum(np.ceil(allpts.max(0)).astype(int) + 1, [w, h])
        return (int(x0), int(y0), int(x1), int(y1)) if x1 > x0 and y1 > y0 else None

    def render(self, state: SimState) -> Rendered:
        img = self.bg.image.copy()
        inst = np.zeros(img.shape[:2], np.uint8)
        n, m = len(state.ped_ids), len(state.veh_ids)
        h, w = inst.shape
        margin = 0.5 * max(w, h)  # agents farther outside the image than this cannot reach into it
        ped_depth = self.camera.depth_of(state.ped_pos) if n else np.zeros(0)
        veh_depth = self.camera.depth_of(state.veh_pos) if m else np.zeros(0)
        points = self._person_points(state) if n else np.zeros((0, 10, 2))
        ped_near = self._near_view(state.ped_pos, ped_depth, margin)
        if n:  # a person is drawn when its joints (padded by a body width) reach into the image
            lo, hi = points.min(axis=1), points.max(axis=1)
            pad = 0.4 * (hi[:, 1] - lo[:, 1])[:, None]
            ped_near &= np.all(hi + pad >= 0, axis=1) & np.all(lo - pad < [w, h], axis=1)
        veh_near = self._near_view(state.veh_pos, veh_depth, margin)
        # Shadows go on the ground before any agent is drawn.
        for k in np.flatnonzero(ped_near):
            self._shadow(img, state.ped_pos[k] + _RING * 0.22, state.ped_height[k])
        for k in np.flatnonzero(veh_near):
            length, width, height = state.veh_size[k]
            self._shadow(img, state.veh_pos[k] + _CORNERS * [length / 2, width / 2], height)
        # Painter's algorithm over pedestrians, vehicles and furniture sprites, far to near.
        order = [(ped_depth[k], 0, k) for k in np.flatnonzero(ped_near)]
        order += [(veh_depth[k], 1, k) for k in np.flatnonzero(veh_near)]
        order += [(sp.depth, 2, k) for k, sp in enumerate(self.bg.sprites)]
        order.sort(key=lambda item: -item[0])
        drawn = []  # (ident, kind, row, roi, full pixel count, box)
        lut = np.zeros(256, np.uint8)
        for _, kind, k in order:
            if kind == 2:
                sp = self.bg.sprites[k]
                sh, sw = sp.mask.shape
                # Re-paint furniture only where an agent drawn before it (farther away) overlaps it.
                if any(
                    r is not None
                    and r[0] < sp.x0 + sw
                    and sp.x0 < r[2]
                    and r[1] < sp.y0 + sh
                    and sp.y0 < r[3]
                    for _, _, _, r, _, _ in drawn
                ):
                    sl = (slice(sp.y0, sp.y0 + sh), slice(sp.x0, sp.x0 + sw))
                    np.copyto(img[sl], sp.image, where=sp.mask[..., None])
                    inst[sl][sp.mask] = 0
                continue
            ident = len(drawn) + 1
            if ident > 255:
                break  # the instance map is 8-bit; scenes are validated to stay far below this
            if kind == 0:
                roi = self._draw_person(
                    img,
                    inst,
                    ident,
                    points[k],
                    state.ped_height[k],
                    state.ped_heading[k],
                    self._look(int(state.ped_look[k]), False),
                )
            else:
                roi = self._draw_vehicle(
                    img,
                    inst,
                    ident,
                    state.veh_pos[k],
                    int(state.veh_dir[k]),
                    state.veh_size[k],
                    self._look(int(state.veh_look[k]), True),
                )
            if roi is None:
                continue
            x0, y0, x1, y1 = roi
            own = (inst[y0:y1, x0:x1] == ident).view(np.uint8)
            count = int(cv2.countNonZero(own))
            if count:
                bx, by, bw, bh = cv2.boundingRect(own)
                lut[ident] = PERSON if kind == 0 else VEHICLE
                drawn.append((ident, kind, k, roi, count, (x0 + bx, y0 + by, x0 + bx + bw, y0 + by + bh)))
            else:
                drawn.append((ident, kind, k, None, 0, None))
        mask = cv2.max(self.bg.mask, cv2.LUT(inst, lut))
        rows: tuple[list, list] = ([], [])
        boxes: tuple[list, list] = ([], [])
        vis: list[float] = []
        for ident, kind, k, roi, count, box in drawn:
            if roi is None:
                continue
            x0, y0, x1, y1 = roi
            seen = int(np.count_nonzero(inst[y0:y1, x0:x1] == ident))
            if seen:
                rows[kind].append(k)
                boxes[kind].append(box)
                if kind == 0:
                    vis.append(seen / count)
        self._sensor(img)
        po, vo = np.argsort(rows[0], kind="stable"), np.argsort(rows[1], kind="stable")
        return Rendered(
            img,
            mask,
            np.array(rows[0], np.int64)[po],
            np.array(boxes[0], np.float32).reshape(-1, 4)[po],
            np.array(vis, np.float32)[po],
            np.array(rows[1], np.int64)[vo],
            np.array(boxes[1], np.float32).reshape(-1, 4)[vo],
        )

    def _near_view(self, ground: np.ndarray, depth: np.ndarray, margin: float) -> np.ndarray:
        """Agents in front of the camera whose ground point projects within ``margin`` pixels of the image."""
        if len(ground) == 0:
            return np.zeros(0, bool)
        hom = ground @ self.ground_h[:, :2].T + self.ground_h[:, 2]
        uv = hom[:, :2] / np.where(np.abs(hom[:, 2:3]) < 1e-9, 1e-9, hom[:, 2:3])
        w, h = self.camera.width, self.camera.height
        return (
            (depth > 1.0)
            & (uv[:, 0] > -margin)
            & (uv[:, 0] < w + margin)
            & (uv[:, 1] > -margin)
            & (uv[:, 1] < h + margin * 2)
        )

    def _sensor(self, img: np.ndarray) -> None:
        """Optical blur, then sensor noise (in place)."""
        if self.bg.style.blur_sigma >= 0.3:
            cv2.GaussianBlur(img, (3, 3), self.bg.style.blur_sigma, dst=img)
        if self.noise:
            pos, neg = self.noise[int(self.rng.integers(len(self.noise)))]
            cv2.add(img, pos, dst=img)
            cv2.subtract(img, neg, dst=img)
