"""The synthetic scene's pinhole camera: world metres <-> image pixels, and the homography file format.

World frame: x runs along the street, y across it (0 = road centre line), z up; the ground is z = 0.
The camera stands above the ground looking down at a target point with a pitch (below horizontal) and a yaw
(0 = looking straight across the street towards +y, 90 = looking along the street towards +x). Image axes: u to
the right, v down, origin at the top-left pixel corner (OpenCV convention); no roll, no lens distortion.

Homography JSON (``write_homography``), the file the camera pipeline loads
(:func:`toolkit.pipeline.geometry.load_homography` reads and validates it)::

    {"homography": [[...], [...], [...]],   # 3x3, maps image pixels (u, v, 1) -> ground metres (x, y, w)
     "direction": "image_to_ground", "units": "m", "image_size": [width, height],
     "ground_to_image": [[...], ...], "camera": {...}}
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from toolkit.fileio import write_json_atomic


@dataclass(frozen=True)
class Camera:
    """A pinhole camera above the street (all lengths in metres, angles in degrees)."""

    width: int  # image width in pixels
    height: int  # image height in pixels
    height_m: float  # camera height above the ground
    pitch_deg: float  # downward tilt below the horizontal, 0 < pitch < 90
    yaw_deg: float  # 0 = looking across the street (+y), 90 = looking along it (+x)
    focal_px: float  # focal length in pixels (same for u and v)
    target_x_m: float = 0.0  # ground point on the optical axis: along-street coordinate
    target_y_m: float = 0.0  # ground point on the optical axis: across-street coordinate

    # Derived matrices are cached on the (frozen) instance: the renderer asks for them many times per frame.
    @cached_property
    def forward(self) -> np.ndarray:
        """Unit viewing direction in world coordinates."""
        p, y = math.radians(self.pitch_deg), math.radians(self.yaw_deg)
        return _frozen(np.array([math.cos(p) * math.sin(y), math.cos(p) * math.cos(y), -math.sin(p)]))

    @cached_property
    def position(self) -> np.ndarray:
        """Camera centre in world coordinates: back along the optical axis from the target, at height_m."""
        dist = self.height_m / math.tan(math.radians(self.pitch_deg))
        f = self.forward
        horiz = f[:2] / np.linalg.norm(f[:2])
        return _frozen(
            np.array([self.target_x_m - dist * horiz[0], self.target_y_m - dist * horiz[1], self.height_m])
        )

    def rotation(self) -> np.ndarray:
        """3x3 world->camera rotation; rows are the camera's right, down and forward axes."""
        f = self.forward
        right = np.cross(f, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        down = np.cross(f, right)
        return np.stack([right, down, f])

    def intrinsics(self) -> np.ndarray:
        return np.array(
            [[self.focal_px, 0.0, self.width / 2.0], [0.0, self.focal_px, self.height / 2.0], [0.0, 0.0, 1.0]]
        )

    @cached_property
    def _projection(self) -> np.ndarray:
        rot = self.rotation()
        return _frozen(self.intrinsics() @ np.hstack([rot, -(rot @ self.position)[:, None]]))

    def projection(self) -> np.ndarray:
        """3x4 matrix P with (u, v, 1) ~ P @ (x, y, z, 1)."""
        return self._projection.copy()

    def homography(self) -> np.ndarray:
        """3x3 ground->image homography (ground metres (x, y, 1) -> pixels), scaled so H[2, 2] = 1."""
        proj = self.projection()
        hom = proj[:, [0, 1, 3]]
        return hom / hom[2, 2]

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points (..., 3) -> (pixels (..., 2), camera depth (...)). Depth <= 0 means behind the camera."""
        pts = np.asarray(points, dtype=np.float64)
        proj = self._projection
        hom = pts @ proj[:, :3].T + proj[:, 3]
        depth = hom[..., 2]
        safe = np.where(np.abs(depth) < 1e-9, 1e-9, depth)
        return hom[..., :2] / safe[..., None], depth

    def depth_of(self, ground_xy: np.ndarray) -> np.ndarray:
        """Camera depth (distance along the optical axis) of ground points (..., 2)."""
        pts = np.asarray(ground_xy, dtype=np.float64)
        delta = np.concatenate([pts, np.zeros(pts.shape[:-1] + (1,))], axis=-1) - self.position
        return delta @ self.forward

    def pixels_to_ground(self, image_uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where pixel rays (..., 2) meet the ground: (ground points (..., 2), True where the ray goes down)."""
        uv = np.asarray(image_uv, dtype=np.float64)
        rays = (
            np.concatenate([uv, np.ones(uv.shape[:-1] + (1,))], -1)
            @ (self.rotation().T @ np.linalg.inv(self.intrinsics())).T
        )
        down = rays[..., 2] < -1e-9
        t = np.where(down, -self.height_m / np.where(down, rays[..., 2], -1.0), 0.0)
        return self.position[:2] + rays[..., :2] * t[..., None], down


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def ground_to_image(homography: np.ndarray, ground_xy: np.ndarray) -> np.ndarray:
    """Map ground points (N, 2) in metres to pixels (N, 2) with a ground->image homography."""
    return _apply(homography, ground_xy)


def image_to_ground(homography: np.ndarray, image_uv: np.ndarray) -> np.ndarray:
    """Map pixels (N, 2) to ground metres (N, 2) with the inverse of a ground->image homography."""
    return _apply(np.linalg.inv(homography), image_uv)


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    hom = np.hstack([pts, np.ones((len(pts), 1))]) @ np.asarray(matrix, dtype=np.float64).T
    return hom[:, :2] / hom[:, 2:3]


def write_homography(camera: Camera, path: str | Path) -> Path:
    """Write the camera's image->ground homography JSON (format in the module docstring); returns the path."""
    g2i = camera.homography()
    i2g = np.linalg.inv(g2i)
    i2g /= i2g[2, 2]
    write_json_atomic(
        path,
        {
            "homography": i2g.tolist(),
            "direction": "image_to_ground",
            "units": "m",
            "image_size": [camera.width, camera.height],
            "ground_to_image": g2i.tolist(),
            "camera": asdict(camera),
            "source": "toolkit.data.synthetic",
        },
    )
    return Path(path)
