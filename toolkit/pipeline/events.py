"""Per-frame event log: one JSON object per line (JSONL), one line per processed frame.

Schema ``edge-toolkit/pipeline-frame/1`` (also :data:`FRAME_SCHEMA`, checked by :func:`validate_event`)::

    {
      "schema": "edge-toolkit/pipeline-frame/1",
      "timestamp": 1767225600.125,        # capture time, seconds (Unix time recommended; the tracker's clock)
      "frame": 42,                        # index of this frame in the source, from 0
      "source": {"name": "pedestrians.avi", "width": 480, "height": 360, "fps": 7.0},  # fps null if unknown
      "dropped_frames": 3,                # frames captured but not processed so far (cumulative)
      "latency_ms": {"capture": 0.4, "detect": 11.8, "track": 0.5, "behaviour": 1.9, "draw": 1.2},
      "ground_units": "m",                # "m" with a homography (path_ground in metres), else null
      "tracks": [
        {
          "id": 7, "label": "person",
          "box": [x1, y1, x2, y2],        # frame pixels (Kalman-filtered)
          "score": 0.91,                  # score of the last matched detection
          "age": 35,                      # frames since the track started
          "foot": [x, y],                 # bottom-centre of the box, pixels
          "predictor": "model",           # "model", "constant_velocity", or null (too short to predict)
          "crossing": 0.83,               # chance of being on the road within the horizon; null = unknown
          "crossing_source": "road",      # "road": from the road region (toolkit.pipeline.crossing; 0 with no
                                          # road), "model": the learned head (no road known), null: no number
          "crossing_prior": 0.41,         # the behaviour model's learned crossing head; null without one
          "crossing_road": 1.0,           # chance the predicted paths enter the road (source "road"), else null;
                                          # crossing = (crossing_road + crossing_prior) / 2 unless --crossing
                                          # road-only (or no prior, or no road in the scene: then crossing_road)
          "crossing_enters": {"step": 3, "seconds": 1.2, "point": [x, y]},  # where the likeliest entering
                                          # path first reaches the road; null when none does
          "path_image": [[x, y], ...],    # 12 future foot points (0.4 s apart) in pixels; null = beyond horizon
          "path_ground": [[X, Y], ...]    # the same in metres on the ground; null without a homography
        }
      ]
    }

Numbers are plain JSON numbers (no NaN / Infinity). :class:`EventWriter` buffers nothing: each event goes to the
file as ONE ``write`` system call on an append-mode descriptor, so a process stopped by SIGTERM (or SIGKILL)
between frames leaves a file whose every line is a complete event. A write that fails (a full disk) is cut back to
the last complete line and raised: the file never ends in half an event.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import ToolkitError, UsageError
from toolkit.pipeline.behaviour import Prediction
from toolkit.pipeline.geometry import foot_points
from toolkit.pipeline.tracker import STEP_SECONDS, Track

SCHEMA_ID = "edge-toolkit/pipeline-frame/1"

_NUMBER = {"type": "number"}
_POINT = {"type": "array", "items": _NUMBER, "minItems": 2, "maxItems": 2}
_PATH = {
    "type": "array",
    "items": {"type": ["array", "null"], "items": _NUMBER, "minItems": 2, "maxItems": 2},
}

# A JSON-Schema-like description (the subset :func:`validate_event` understands: type, properties, required,
# items, minItems, maxItems, enum, additionalProperties as a schema for map values).
TRACK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "id",
        "label",
        "box",
        "score",
        "age",
        "foot",
        "predictor",
        "crossing",
        "path_image",
        "path_ground",
    ],
    "properties": {
        "id": {"type": "integer"},
        "label": {"type": "string"},
        "box": {"type": "array", "items": _NUMBER, "minItems": 4, "maxItems": 4},
        "score": _NUMBER,
        "age": {"type": "integer"},
        "foot": _POINT,
        "predictor": {"type": ["string", "null"], "enum": ["model", "constant_velocity", None]},
        "crossing": {"type": ["number", "null"]},
        "crossing_source": {"type": ["string", "null"], "enum": ["road", "model", None]},
        "crossing_prior": {"type": ["number", "null"]},
        "crossing_road": {"type": ["number", "null"]},
        "crossing_enters": {
            "type": ["object", "null"],
            "required": ["step", "seconds", "point"],
            "properties": {"step": {"type": "integer"}, "seconds": _NUMBER, "point": _POINT},
        },
        "path_image": {"type": ["array", "null"], "items": _PATH["items"]},
        "path_ground": {"type": ["array", "null"], "items": _PATH["items"]},
    },
}
FRAME_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "schema",
        "timestamp",
        "frame",
        "source",
        "dropped_frames",
        "latency_ms",
        "ground_units",
        "tracks",
    ],
    "properties": {
        "schema": {"type": "string", "enum": [SCHEMA_ID]},
        "timestamp": _NUMBER,
        "frame": {"type": "integer"},
        "source": {
            "type": "object",
            "required": ["name", "width", "height", "fps"],
            "properties": {
                "name": {"type": "string"},
                "width": {"type": "integer"},
                "height": {"type": "integer"},
                "fps": {"type": ["number", "null"]},
            },
        },
        "dropped_frames": {"type": "integer"},
        "latency_ms": {"type": "object", "additionalProperties": _NUMBER},
        "ground_units": {"type": ["string", "null"], "enum": ["m", None]},
        "tracks": {"type": "array", "items": TRACK_SCHEMA},
    },
}

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "null": (type(None),),
    "boolean": (bool,),
}


def validate_event(value: Any, schema: Mapping[str, Any] = FRAME_SCHEMA, where: str = "event") -> None:
    """Raise ValueError naming the first field of ``value`` that does not match ``schema``."""
    types = schema.get("type")
    if types is not None:
        allowed = [types] if isinstance(types, str) else list(types)
        ok = any(
            isinstance(value, _TYPES[t]) and not (isinstance(value, bool) and t in ("integer", "number"))
            for t in allowed
        )
        if not ok:
            raise ValueError(f"{where}: expected {' or '.join(allowed)}, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}: {value} is not a finite number")
    if "enum" in schema and value not in schema["enum"]:
        raise ValueError(f"{where}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, dict):
        for key in schema.get("required", ()):
            if key not in value:
                raise ValueError(f"{where}: missing '{key}'")
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in props:
                validate_event(item, props[key], f"{where}.{key}")
            elif extra is not None:
                validate_event(item, extra, f"{where}.{key}")
            elif props:
                raise ValueError(f"{where}: unexpected key '{key}'")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", len(value)):
            raise ValueError(f"{where}: wrong length {len(value)}")
        if "items" in schema:
            for i, item in enumerate(value):
                validate_event(item, schema["items"], f"{where}[{i}]")


def _points(array: np.ndarray | None) -> list[list[float] | None] | None:
    """(n, 2) float array -> JSON list; rows with NaN (beyond the horizon) become null."""
    if array is None:
        return None
    return [
        [round(float(x), 3), round(float(y), 3)] if math.isfinite(x) and math.isfinite(y) else None
        for x, y in np.asarray(array, dtype=np.float64).reshape(-1, 2)
    ]


def _enters(crossing: Any) -> dict[str, Any] | None:
    """A :class:`toolkit.pipeline.crossing.Crossing`'s first road step -> the ``crossing_enters`` object."""
    if crossing is None or crossing.step is None or crossing.point is None:
        return None
    seconds = round(crossing.step * STEP_SECONDS, 3)
    return {"step": int(crossing.step), "seconds": seconds, "point": [float(v) for v in crossing.point]}


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def track_record(track: Track, prediction: Prediction | None, crossing: Any = None) -> dict[str, Any]:
    """One confirmed track (+ its prediction and :class:`~toolkit.pipeline.crossing.Crossing`, if any) -> the
    ``tracks[]`` entry of the schema. Without a Crossing the source is "model" where the prediction has a
    probability (the learned head), else null."""
    box = np.asarray(track.box, np.float64)
    learned = prediction.crossing if prediction is not None else None
    if crossing is None:
        source, prior = ("model" if learned is not None else None), learned
    else:
        source, prior = crossing.source, crossing.prior
    return {
        "id": int(track.id) if track.id is not None else -1,
        "label": str(track.label),
        "box": [round(float(v), 2) for v in box],
        "score": round(float(track.score), 4),
        "age": int(track.age),
        "foot": [round(float(v), 2) for v in foot_points(box)],
        "predictor": prediction.predictor if prediction else None,
        "crossing": _round(learned),
        "crossing_source": source,
        "crossing_prior": _round(prior),
        "crossing_road": _round(crossing.road) if crossing is not None else None,
        "crossing_enters": _enters(crossing),
        "path_image": _points(prediction.path_image) if prediction else None,
        "path_ground": _points(prediction.path_ground) if prediction else None,
    }


def frame_event(
    frame: int,
    timestamp: float,
    source: Mapping[str, Any],
    tracks: Sequence[Track],
    predictions: Mapping[int, Prediction] | None = None,
    latency_ms: Mapping[str, float] | None = None,
    dropped_frames: int = 0,
    ground_units: str | None = None,
    crossings: Mapping[int, Any] | None = None,
) -> dict[str, Any]:
    """Build one frame's event (schema in the module docstring). ``source`` has name, width, height, fps;
    ``crossings`` the per-track :class:`~toolkit.pipeline.crossing.Crossing` (their source and explanation)."""
    predictions = predictions or {}
    crossings = crossings or {}
    return {
        "schema": SCHEMA_ID,
        "timestamp": round(float(timestamp), 6),
        "frame": int(frame),
        "source": {
            "name": str(source["name"]),
            "width": int(source["width"]),
            "height": int(source["height"]),
            "fps": None if source.get("fps") is None else float(source["fps"]),
        },
        "dropped_frames": int(dropped_frames),
        "latency_ms": {str(k): round(float(v), 3) for k, v in (latency_ms or {}).items()},
        "ground_units": ground_units,
        "tracks": [
            track_record(t, predictions.get(t.id), crossings.get(t.id)) for t in tracks if t.id is not None
        ],
    }


class EventWriter:
    """Append events to a JSONL file, one complete line per :meth:`write`; use as a context manager."""

    def __init__(self, path: str | os.PathLike[str], append: bool = False, validate: bool = True) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise UsageError(f"events path {self.path} is a directory; give a file name such as events.jsonl")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (0 if append else os.O_TRUNC)
        try:
            self._fd: int | None = os.open(self.path, flags, 0o644)
        except OSError as exc:
            raise UsageError(f"cannot write events to {self.path}: {exc.strerror}") from None
        self.validate = validate
        self.lines = 0
        self._size = os.fstat(self._fd).st_size  # the end of the last complete line
        self._empty_on_failure = self._size == 0  # a failed run leaves no empty file that it created
        self._failed = False

    def write(self, event: Mapping[str, Any]) -> None:
        """Validate (unless disabled), serialise and append one event as one line.

        A failed write (e.g. a full disk) truncates the file back to its last complete line, then raises
        :func:`toolkit.fileio.no_space_error` (exit 2) for a full disk, else a ToolkitError naming the file.
        """
        if self._fd is None:
            raise ValueError(f"event writer for {self.path} is closed")
        if self.validate:
            validate_event(event)
        data = (json.dumps(event, separators=(",", ":"), allow_nan=False) + "\n").encode()
        # One write() of the whole line: O_APPEND regular-file writes are not split by signals, so a stopped
        # process never leaves half a line (nothing is buffered in Python either).
        try:
            written = os.write(self._fd, data)
            while written < len(
                data
            ):  # only on a full disk or similar: the next write raises, or finishes it
                written += os.write(self._fd, data[written:])
        except OSError as exc:
            self._failed = True
            self._cut_back()
            raise self._write_error(exc) from None
        self._size += len(data)
        self.lines += 1

    def _cut_back(self) -> None:
        """Drop a partly written line: truncating frees space, so it works on a full disk."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)

    def _write_error(self, exc: OSError) -> Exception:
        from toolkit.fileio import is_disk_full, no_space_error

        if is_disk_full(exc):
            return no_space_error(self.path, f"events stopped after {self.lines} complete lines: ")
        return ToolkitError(
            f"cannot write events to {self.path}: {exc.strerror or exc}; the file ends at its last "
            f"complete line ({self.lines} events)"
        )

    def close(self) -> None:
        """Close the file (idempotent; later writes raise ValueError). A file that was empty when opened is
        removed when a write failed before any complete line."""
        fd = getattr(self, "_fd", None)  # absent when __init__ failed
        if fd is not None:
            self._fd = None
            os.close(fd)
            if getattr(self, "_failed", False) and self._empty_on_failure and self.lines == 0:
                self.path.unlink(missing_ok=True)

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


def read_events(path: str | os.PathLike[str], validate: bool = True) -> list[dict[str, Any]]:
    """Read a JSONL event file; a malformed line is a UsageError naming the file and line number."""
    file = Path(path)
    events = []
    with open(file, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
                if validate:
                    validate_event(event)
            except (json.JSONDecodeError, ValueError) as exc:
                raise UsageError(f"{file}:{number}: not a valid frame event ({exc})") from None
            events.append(event)
    return events
