"""A homography from four pixel <-> ground point pairs (``toolkit ground points``, the live view's ``/ground.html``).

>>> estimate = homography_from_points(pixels, rectangle_corners(3.5, 8.0), frame_size=(480, 360))
>>> estimate.homography.to_ground(points_px); estimate.uncertainty["distance_rel_std"]

Four points fix a homography exactly, so the uncertainty reported is what an error of ``click_error_px`` in each
pixel point does to ground distances inside the quad (Monte Carlo, 200 draws).
"""

from __future__ import annotations

import math

import numpy as np

from toolkit.errors import UsageError
from toolkit.pipeline.geometry import Homography
from toolkit.pipeline.ground_plane import GroundEstimate, pair_distances


def parse_points(text: str, what: str) -> np.ndarray:
    """``"x,y; x,y; x,y; x,y"`` -> (4, 2) floats; UsageError naming ``what`` otherwise."""
    rows = [r for r in text.replace("\n", ";").split(";") if r.strip()]
    try:
        points = np.array([[float(v) for v in r.split(",")] for r in rows], np.float64)
    except ValueError:
        points = np.zeros((0,))
    if points.shape != (4, 2) or not np.isfinite(points).all():
        raise UsageError(
            f"{what}: expected four 'x,y' pairs separated by ';', e.g. '10,300; 400,300; ...', got {text!r}"
        )
    return points


def rectangle_corners(width_m: float, length_m: float) -> np.ndarray:
    """Ground corners of a ``width_m`` x ``length_m`` rectangle in click order: (0,0), (w,0), (w,l), (0,l)."""
    if not (width_m > 0 and length_m > 0 and math.isfinite(width_m) and math.isfinite(length_m)):
        raise UsageError(f"rectangle sides must be positive metres, got {width_m} x {length_m}")
    return np.array([[0.0, 0.0], [width_m, 0.0], [width_m, length_m], [0.0, length_m]])


def _twice_area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _check_quad(points: np.ndarray, what: str, scale: float) -> None:
    for i in range(4):
        rest = np.delete(points, i, axis=0)
        if abs(_twice_area(rest)) < 1e-3 * scale**2:
            raise UsageError(f"{what}: three of the four points lie on one line; pick four corners of a quad")
    area = _twice_area(points)
    signs = [
        np.sign(_twice_area(points[[i, (i + 1) % 4, (i + 2) % 4]])) for i in range(4)
    ]  # a convex quad in order turns the same way at every corner
    if len(set(signs)) != 1 or abs(area) < 1e-3 * scale**2:
        raise UsageError(f"{what}: the four points must be the corners of a convex quad, in order around it")


def homography_from_points(
    pixels: np.ndarray,
    ground: np.ndarray,
    frame_size: tuple[int, int],
    click_error_px: float = 2.0,
    seed: int = 0,
) -> GroundEstimate:
    """Exact homography through four pixel -> ground (metres) pairs, with a Monte Carlo click uncertainty."""
    import cv2

    px, gd = np.asarray(pixels, np.float64), np.asarray(ground, np.float64)
    width, height = frame_size
    if px.shape != (4, 2) or gd.shape != (4, 2):
        raise UsageError("four pixel points and four ground points are needed")
    if not ((px[:, 0] >= 0) & (px[:, 0] <= width) & (px[:, 1] >= 0) & (px[:, 1] <= height)).all():
        raise UsageError(f"pixel points must lie inside the {width}x{height} frame, got {px.tolist()}")
    _check_quad(px, "pixel points", float(max(width, height)))
    _check_quad(gd, "ground points", float(np.ptp(gd, axis=0).max()) or 1.0)
    matrix = cv2.getPerspectiveTransform(px.astype(np.float32), gd.astype(np.float32)).astype(np.float64)
    matrix /= matrix[2, 2]
    rng = np.random.default_rng(seed)
    inside = np.stack(np.meshgrid(np.linspace(0.2, 0.8, 4), np.linspace(0.2, 0.8, 4)), -1).reshape(-1, 2)
    quad_pts = _bilinear(px, inside)
    a, b = quad_pts[:, None].repeat(len(quad_pts), 1).reshape(-1, 2), np.tile(quad_pts, (len(quad_pts), 1))
    sel = np.linalg.norm(a - b, axis=1) > 1
    a, b = a[sel], b[sel]
    reference = pair_distances(matrix, a, b)
    logs = []
    for _ in range(200):
        noisy = px + rng.normal(0, click_error_px, px.shape)
        m = cv2.getPerspectiveTransform(noisy.astype(np.float32), gd.astype(np.float32)).astype(np.float64)
        logs.append(np.log(pair_distances(m, a, b) / reference))
    rel = float(np.nanmedian(np.nanstd(np.array(logs), axis=0)))
    return GroundEstimate(
        homography=Homography(matrix, (int(width), int(height)), "four ground points"),
        camera_height_m=float("nan"),
        pitch_deg=float("nan"),
        focal_px=float("nan"),
        horizon_row=float("nan"),
        samples=4,
        inliers=4,
        tracks=0,
        uncertainty={"distance_rel_std": rel, "click_error_px": float(click_error_px)},
        method="four_points",
    )


def _bilinear(quad: np.ndarray, st: np.ndarray) -> np.ndarray:
    s, t = st[:, :1], st[:, 1:]
    return (1 - s) * (1 - t) * quad[0] + s * (1 - t) * quad[1] + s * t * quad[2] + (1 - s) * t * quad[3]
