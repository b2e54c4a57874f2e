"""Box and ground-plane geometry shared by the pipeline stages: IoU, box formats, foot points, homographies.

Boxes are float arrays ``(..., 4)`` of ``(x1, y1, x2, y2)`` in pixels, x to the right, y down.

Homography file (JSON), the format :func:`toolkit.data.synthetic.camera.write_homography` writes:

.. code-block:: json

    {
      "homography": [[h11, h12, h13], [h21, h22, h23], [h31, h32, h33]],
      "direction": "image_to_ground",
      "units": "m",
      "image_size": [480, 360]
    }

* ``homography``: 3x3 matrix H. With ``direction`` ``image_to_ground``, ``[X, Y, W]^T = H [u, v, 1]^T`` and the
  ground point is ``(X / W, Y / W)``; ``(u, v)`` are pixel coordinates (origin top-left, v down) of a frame of
  size ``image_size``. ETH's ``H.txt`` files are this kind of matrix (pixel -> metres). ``ground_to_image`` means
  the matrix maps ground to pixels; it is inverted on load.
* ``units``: the ground unit of the matrix: ``m``, ``cm``, ``mm`` or ``ft``, converted to metres on load; every
  ground coordinate the pipeline reports is in metres.
* ``image_size``: ``[width, height]`` of the frames the matrix was calibrated on. Frames of another size with the
  same aspect ratio are rescaled to it (:meth:`Homography.for_frame`); another aspect ratio is an error.
* Optional, informational: ``ground_to_image`` (the inverse matrix; checked against ``homography`` when present),
  ``camera``, ``source``, ``comment``, ``provenance`` (how it was made: ``toolkit ground``). Any other key is an
  error.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.config import suggest
from toolkit.errors import UsageError

UNITS_TO_METRES: dict[str, float] = {"m": 1.0, "cm": 0.01, "mm": 0.001, "ft": 0.3048}


def foot_points(boxes: np.ndarray) -> np.ndarray:
    """(..., 4) xyxy -> (..., 2) bottom-centre points: where a standing person touches the ground."""
    b = np.asarray(boxes, dtype=np.float64)
    return np.stack([(b[..., 0] + b[..., 2]) / 2, b[..., 3]], axis=-1)


def apply_homography(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (..., 2) points through a 3x3 homography; points that land on or behind the horizon become NaN."""
    p = np.asarray(points, dtype=np.float64)
    h = np.asarray(matrix, dtype=np.float64)
    x = p[..., 0] * h[0, 0] + p[..., 1] * h[0, 1] + h[0, 2]
    y = p[..., 0] * h[1, 0] + p[..., 1] * h[1, 1] + h[1, 2]
    w = p[..., 0] * h[2, 0] + p[..., 1] * h[2, 1] + h[2, 2]
    # The sign of w is constant over the visible ground; a flipped or ~0 w means "beyond the horizon".
    ok = np.abs(w) > 1e-12
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.stack([x / w, y / w], axis=-1)
    out[~ok] = np.nan
    return out


@dataclass(frozen=True)
class Homography:
    """Image pixels <-> ground-plane metres for frames of ``image_size`` (width, height)."""

    image_to_ground: np.ndarray  # (3, 3), output in metres
    image_size: tuple[int, int]  # (width, height) the matrix is calibrated for
    source: str = ""  # the file it came from, for messages and provenance

    @property
    def ground_to_image(self) -> np.ndarray:
        """The inverse (3, 3) matrix: ground-plane metres -> image pixels."""
        return np.linalg.inv(self.image_to_ground)

    def to_ground(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) pixels -> (..., 2) metres."""
        return apply_homography(self.image_to_ground, points)

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) metres -> (..., 2) pixels (NaN where the ground point is not in front of the camera)."""
        return apply_homography(self.ground_to_image, points)

    def for_frame(self, width: int, height: int) -> Homography:
        """The same calibration for frames of ``width`` x ``height`` (same aspect ratio, any resolution)."""
        cal_w, cal_h = self.image_size
        if (width, height) == (cal_w, cal_h):
            return self
        if abs(width / height - cal_w / cal_h) > 0.01 * cal_w / cal_h:
            raise UsageError(
                f"homography {self.source or ''} is calibrated for {cal_w}x{cal_h} frames, the source "
                f"gives {width}x{height} (another aspect ratio); calibrate for this camera mode"
            )
        scale = np.diag([cal_w / width, cal_h / height, 1.0])  # frame pixels -> calibration pixels
        return Homography(self.image_to_ground @ scale, (int(width), int(height)), self.source)

    def to_dict(self) -> dict[str, Any]:
        """The file format of :func:`load_homography` (metres)."""
        return {
            "homography": self.image_to_ground.tolist(),
            "direction": "image_to_ground",
            "units": "m",
            "image_size": list(self.image_size),
        }


def load_homography(path: str | os.PathLike[str]) -> Homography:
    """Read and validate a homography JSON file (format in the module docstring); UsageError names the problem."""
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"homography file not found: {file}")
    try:
        data = json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise UsageError(f"{file}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    except UnicodeDecodeError:
        raise UsageError(f"{file}: not a text (JSON) file") from None
    return homography_from_dict(data, str(file))


REQUIRED_KEYS = ("homography", "direction", "units", "image_size")
OPTIONAL_KEYS = ("ground_to_image", "camera", "source", "comment", "provenance")
DIRECTIONS = ("image_to_ground", "ground_to_image")


def _matrix(value: Any, where: str, key: str) -> np.ndarray:
    try:
        matrix = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        matrix = np.zeros(0)
    if matrix.shape != (3, 3) or not np.isfinite(matrix).all():
        raise UsageError(f"{where}: '{key}' must be a 3x3 list of finite numbers")
    if abs(np.linalg.det(matrix)) < 1e-12 * max(1.0, float(np.abs(matrix).max()) ** 3):
        raise UsageError(f"{where}: '{key}' is singular (not invertible)")
    return matrix


def homography_from_dict(data: Any, where: str = "homography") -> Homography:
    """Validate the homography mapping (see the module docstring) -> :class:`Homography` in metres."""
    if not isinstance(data, dict):
        raise UsageError(f"{where}: expected a JSON object with keys {', '.join(REQUIRED_KEYS)}")
    for key in data:
        if key not in REQUIRED_KEYS + OPTIONAL_KEYS:
            raise UsageError(f"{where}: unknown key '{key}'{suggest(key, REQUIRED_KEYS + OPTIONAL_KEYS)}")
    for key in REQUIRED_KEYS:
        if key not in data:
            raise UsageError(f"{where}: missing key '{key}' (required: {', '.join(REQUIRED_KEYS)})")
    matrix = _matrix(data["homography"], where, "homography")
    direction = data["direction"]
    if direction not in DIRECTIONS:
        raise UsageError(f"{where}: direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    if direction == "ground_to_image":
        matrix = np.linalg.inv(matrix)
    if "ground_to_image" in data and direction == "image_to_ground":
        inverse = _matrix(data["ground_to_image"], where, "ground_to_image")
        product = inverse @ matrix
        if not np.allclose(product / product[2, 2], np.eye(3), atol=1e-6):
            raise UsageError(
                f"{where}: 'ground_to_image' is not the inverse of 'homography'; fix or remove it"
            )
    units = data["units"]
    if units not in UNITS_TO_METRES:
        raise UsageError(f"{where}: units must be one of {', '.join(UNITS_TO_METRES)}, got {units!r}")
    size = data["image_size"]
    if (
        not isinstance(size, list)
        or len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
    ):
        raise UsageError(f"{where}: image_size must be [width, height] in pixels (positive integers)")
    to_metres = np.diag([UNITS_TO_METRES[units], UNITS_TO_METRES[units], 1.0])
    return Homography(to_metres @ matrix, (size[0], size[1]), where)
