"""Frame sources for the camera pipeline: ``open_source(spec)`` turns a user's string into a started Source.

The capture machinery (threaded reader, 1-slot mailbox, watchdog, backoff) lives in sources_capture.py and is
re-exported here. Specs: ``None`` / ``"synthetic"`` / ``"synthetic:seed=3,fps=5"`` (the synthetic street scene), ``"0"`` or
``"/dev/video0"`` (V4L2 camera), a video file path, ``rtsp://`` / ``http(s)://`` URLs, and ``"picamera2"`` (the
Raspberry Pi ribbon camera, which ``cv2.VideoCapture`` cannot open under libcamera).
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.config import apply_overrides, suggest
from toolkit.errors import DeviceUnavailable, UsageError
from toolkit.pipeline.redact import redact_url
from toolkit.pipeline.sources_capture import (
    Capture,
    CapturedFrame,
    EndOfStream,
    Source,
    SourceConfig,
    backoff_delay,
)

__all__ = [
    "CapturedFrame",
    "Capture",
    "EndOfStream",
    "Source",
    "SourceConfig",
    "backoff_delay",
    "open_source",
    "parse_spec",
    "redact_url",
]

URL_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")
NAMED = ("synthetic", "picamera2")
SPEC_HELP = (
    "a video file, a camera index such as 0, /dev/videoN, an rtsp:// or http:// URL, "
    "'picamera2' or 'synthetic'"
)


def open_source(
    spec: str | None = None,
    config: SourceConfig | None = None,
    *,
    opener: Callable[[], Capture] | None = None,
    **overrides: Any,
) -> Source:
    """Open ``spec`` (None = the synthetic scene) and wait for its first frame; return the started Source.

    ``overrides`` are SourceConfig fields (``realtime=False``, ``loop=True``, ``stale_after_s=2`` ...);
    unknown keys are a UsageError with a "did you mean". ``opener`` replaces the backend (tests).
    Raises UsageError (bad spec, missing or undecodable file) or DeviceUnavailable (camera/stream).
    """
    cfg = apply_overrides(config or SourceConfig(), overrides, where="source option")
    kind, target, options = parse_spec(spec)
    if cfg.quiet_backend and kind in ("camera", "file", "url"):
        _silence_opencv()
    name, live, fps, default_opener, error = _describe(kind, target, options, cfg)
    source = Source(
        opener or default_opener, name=name, kind=kind, live=live, config=cfg, fps=fps, open_error=error
    ).start()  # proves the source decodes: its first frame is in hand
    if kind == "file" and cfg.realtime and not (cfg.fps or fps):
        source.close()
        raise UsageError(
            f"cannot pace {target}: the file reports no frame rate; pass fps=<n> or realtime=False"
        )
    return source


def parse_spec(spec: str | None) -> tuple[str, Any, dict[str, str]]:
    """``(kind, target, options)``: kind is synthetic / camera / file / url / picamera2."""
    text = (spec or "synthetic").strip()
    head, _, tail = text.partition(":")
    if head.lower() in NAMED and "://" not in text:
        options = _parse_options(tail, text) if tail else {}
        if head.lower() == "picamera2" and options:
            raise UsageError(
                f"source {text!r}: picamera2 takes no options here; use width=/height=/fps= source options"
            )
        return head.lower(), None, options
    if re.fullmatch(r"\d+", text):
        return "camera", int(text), {}
    if re.fullmatch(r"/dev/video\d+", text):
        return "camera", text, {}
    scheme = re.match(r"([a-zA-Z][a-zA-Z0-9+.-]*)://", text)
    if scheme:
        if scheme.group(1).lower() not in URL_SCHEMES:
            raise UsageError(
                f"source {redact_url(text)!r}: unsupported URL scheme '{scheme.group(1)}' "
                f"(expected one of {', '.join(URL_SCHEMES)})"
            )
        return "url", text, {}
    path = Path(text).expanduser()
    if path.is_dir():
        raise UsageError(f"source {text} is a directory; expected {SPEC_HELP}")
    if not path.is_file():
        hint = suggest(head.lower(), NAMED) if "/" not in text and "." not in text else ""
        raise UsageError(f"source not found: {redact_url(text)}{hint} (expected {SPEC_HELP})")
    return "file", path, {}


def _parse_options(text: str, spec: str) -> dict[str, str]:
    options = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"source {spec!r}: expected key=value options separated by commas, got {item!r}")
        options[key.strip()] = value.strip()
    return options


def _literal(value: str) -> Any:
    """'3' -> 3, '0.5' -> 0.5, 'true' -> True; anything else stays a string."""
    low = value.lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _describe(kind: str, target: Any, options: dict[str, str], cfg: SourceConfig):
    """(name, live, native fps, opener, open-error factory) for a parsed spec."""
    if kind == "synthetic":
        scene_config = _scene_config(options, cfg)
        return (
            "synthetic",
            False,
            float(scene_config.fps),
            lambda: SyntheticCapture(scene_config),
            lambda reason: UsageError(f"synthetic scene failed to start: {reason}"),
        )
    if kind == "picamera2":
        if importlib.util.find_spec("picamera2") is None:
            raise DeviceUnavailable(
                "picamera2 is not installed: on Raspberry Pi OS run 'sudo apt install python3-picamera2' and "
                "create the virtualenv with --system-site-packages"
            )
        return (
            "picamera2",
            True,
            None,
            lambda: Picamera2Capture(cfg.width, cfg.height, cfg.fps),
            lambda reason: DeviceUnavailable(f"cannot open the Raspberry Pi camera (picamera2): {reason}"),
        )
    if kind == "file":
        return (
            str(target),
            False,
            cfg.fps or _file_fps(target),
            _cv2_opener(str(target), None, f"{target}", cfg),
            lambda reason: UsageError(f"cannot decode {target}: {reason}"),
        )
    if kind == "camera":
        what = f"camera {target}"
        hint = (
            "; for a Raspberry Pi ribbon camera use the source 'picamera2' (libcamera cameras do not open "
            "through V4L2 capture)"
        )
        return (
            what,
            True,
            None,
            _cv2_opener(target, "v4l2", what, cfg),
            lambda reason: DeviceUnavailable(f"cannot open {what}: {reason}{hint}"),
        )
    shown = redact_url(target)
    return (
        shown,
        True,
        None,
        _cv2_opener(target, "ffmpeg", shown, cfg),
        lambda reason: DeviceUnavailable(f"cannot open stream {shown}: {redact_url(reason)}"),
    )


def _scene_config(options: dict[str, str], cfg: SourceConfig):
    from toolkit.data.synthetic import SceneConfig

    # The requested width/height/fps of SourceConfig apply to the scene too; options in the spec win.
    values: dict[str, Any] = {
        k: v for k, v in (("width", cfg.width), ("height", cfg.height), ("fps", cfg.fps)) if v is not None
    }
    values.update({k: _literal(v) for k, v in options.items()})
    return apply_overrides(SceneConfig(), values, where="synthetic source option")


def _silence_opencv() -> None:
    # OpenCV and FFmpeg print warnings on stderr for every failed open/read; the CLI promises one line, and
    # failures reach the user through Source.stats() and the one-line errors instead. FFmpeg reads its level
    # once, at the first FFmpeg capture of the process; a user's own OPENCV_FFMPEG_LOGLEVEL wins.
    import cv2

    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def _file_api() -> int:
    # FFmpeg reads every container; OpenCV's fallback AVI parser prints to stderr on corrupt files.
    import cv2

    return cv2.CAP_FFMPEG if cv2.videoio_registry.hasBackend(cv2.CAP_FFMPEG) else cv2.CAP_ANY


def _file_fps(path: Path) -> float | None:
    import cv2

    cap = cv2.VideoCapture(str(path), _file_api())
    try:
        fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0.0
    finally:
        cap.release()
    return float(fps) if fps and np.isfinite(fps) and 0 < fps < 1000 else None


def _cv2_opener(target: Any, backend: str | None, what: str, cfg: SourceConfig) -> Callable[[], Capture]:
    def open_capture() -> Capture:
        import cv2

        if backend == "v4l2":
            cap = cv2.VideoCapture(target, cv2.CAP_V4L2)
        elif backend == "ffmpeg":
            # FFmpeg's own timeouts are the first line of defence against hung RTSP reads; the watchdog in
            # Source is the second (some hangs happen below them).
            timeout_ms = int(max(cfg.stale_after_s, 1.0) * 1000)
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                int(cfg.open_timeout_s * 1000),
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                timeout_ms,
            ]
            cap = cv2.VideoCapture(target, cv2.CAP_FFMPEG, params)
        else:
            cap = cv2.VideoCapture(target, _file_api())
        if not cap.isOpened():
            cap.release()
            raise OSError(
                "OpenCV could not open it"
                + (" (not a video file, or an unsupported codec)" if backend is None else "")
            )
        if backend == "v4l2":
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # keep the driver queue short: we want the newest frame
            if cfg.width:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, cfg.width)
            if cfg.height:
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, cfg.height)
            if cfg.fps:
                cap.set(cv2.CAP_PROP_FPS, cfg.fps)
        return cap

    return open_capture


class SyntheticCapture:
    """The synthetic street scene as a capture backend; ``last_truth`` is the scene's Frame (boxes, ids...)."""

    def __init__(self, scene_config: Any) -> None:
        from toolkit.data.synthetic import StreetScene

        self._scene = StreetScene(scene_config)
        self.last_truth: Any = None

    def read(self) -> tuple[bool, np.ndarray | None]:
        """Step the scene; return ``(True, BGR frame)`` and keep its ground truth in ``last_truth``."""
        self.last_truth = self._scene.step()
        return True, self.last_truth.image

    def release(self) -> None:
        """Drop the last ground truth; the scene holds no OS resources."""
        self.last_truth = None


class Picamera2Capture:
    """The Raspberry Pi camera through picamera2 (libcamera); frames come back as BGR like OpenCV's."""

    def __init__(self, width: int | None, height: int | None, fps: float | None) -> None:
        from picamera2 import Picamera2

        self._camera = Picamera2()
        try:
            # picamera2's "RGB888" is stored B, G, R in memory: exactly OpenCV's BGR order.
            main: dict[str, Any] = {"format": "RGB888"}
            if width and height:
                main["size"] = (int(width), int(height))
            controls = {"FrameRate": float(fps)} if fps else {}
            self._camera.configure(self._camera.create_video_configuration(main=main, controls=controls))
            self._camera.start()
        except Exception:
            self._camera.close()
            raise

    def read(self) -> tuple[bool, np.ndarray | None]:
        """Capture one frame; ``(True, BGR frame)``, or ``(False, None)`` when the camera returned nothing."""
        image = self._camera.capture_array("main")
        if image is None:
            return False, None
        return True, np.ascontiguousarray(image[..., :3])

    def release(self) -> None:
        """Stop and close the camera (close runs even when stop fails)."""
        try:
            self._camera.stop()
        finally:
            self._camera.close()
