"""Person boxes for the ground-plane fit from a running source: the demo's detector and tracker over N seconds.

>>> obs, info = observe_people("clip.avi", seconds=120)        # PersonObservations, {"frames", "seconds", ...}
>>> estimate_ground_plane(obs)

Frames are read as fast as they decode (files and the synthetic scene are not paced; a live camera delivers its
own rate) and run through :func:`toolkit.pipeline.offline.track_frames` with the source's clock. Only confirmed
tracks' boxes are kept: a confirmed track is a person seen over several frames, and the fit bootstraps over
tracks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import UsageError
from toolkit.pipeline.ground_plane import PersonObservations


def observe_people(
    spec: str | None,
    seconds: float = 120.0,
    models: str | Path | None = None,
    threads: int | None = None,
) -> tuple[PersonObservations, dict[str, Any]]:
    """Track people in the first ``seconds`` of ``spec`` (source spec as ``toolkit demo --source``).

    Returns the observations and ``{"frames", "seconds", "fps", "frame_size", "source"}``; UsageError when the
    source gives no frames.
    """
    from toolkit.pipeline.offline import OfflineTracker
    from toolkit.pipeline.sources import EndOfStream, open_source

    if not seconds > 0:
        raise UsageError(f"--seconds must be > 0, got {seconds}")
    ids: list[np.ndarray] = []
    boxes: list[np.ndarray] = []
    frames = 0
    fps = 0.0
    with OfflineTracker.open(models, threads=threads, every_n_seg=0) as run:
        source = open_source(spec, realtime=False)
        try:
            fps = float(source.fps or 10.0)

            def read():
                first_ts = None
                while True:
                    try:
                        frame = source.read(timeout=5.0)
                    except EndOfStream:
                        return
                    if frame is None:
                        return
                    first_ts = frame.source_ts if first_ts is None else first_ts
                    if frame.source_ts - first_ts >= seconds:
                        return
                    sizes.add((int(frame.image.shape[1]), int(frame.image.shape[0])))
                    yield frame.index, frame.image

            sizes: set[tuple[int, int]] = set()
            for result in run.frames(read(), fps=fps):
                frames += 1
                ids.append(result.ids)
                boxes.append(result.boxes)
        finally:
            source.close()
    if not frames:
        raise UsageError(f"source {spec or 'synthetic'} gave no frames")
    if len(sizes) != 1:
        raise UsageError(f"source {spec}: the frame size changed during the run ({sorted(sizes)})")
    size = sizes.pop()
    obs = PersonObservations.from_tracks(np.concatenate(ids), np.concatenate(boxes), size)
    return obs, {
        "frames": frames,
        "seconds": frames / fps,
        "fps": fps,
        "frame_size": list(size),
        "source": spec,
    }


AUTO = "auto"  # --homography auto: the camera's saved estimate, made on first use
AUTO_SECONDS = 120.0  # seconds of the source the first --homography auto run watches


def saved_estimate_path(spec: str | None) -> Path:
    """Where ``--homography auto`` keeps the estimate of source ``spec``: the state dir, keyed by the source
    (a file by its absolute path, a camera or URL by its spec; the key is hashed, so no password lands in a name)."""
    import hashlib
    import re

    from toolkit.paths import state_dir
    from toolkit.pipeline.sources import parse_spec

    kind, target, _ = parse_spec(spec)
    key = str(Path(target).resolve()) if kind == "file" else (spec or "synthetic").strip()
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(str(target)).name if kind == "file" else kind)[:40]
    return state_dir() / "ground" / f"{name}-{digest}.json"


def auto_homography(
    spec: str | None,
    models: str | Path | None = None,
    threads: int | None = None,
    seconds: float = AUTO_SECONDS,
    log: Any = None,
) -> Any:
    """The saved ground-plane estimate of ``spec`` (:func:`saved_estimate_path`), made and saved first when there
    is none: people are tracked over the first ``seconds`` of the source. ``log(text)`` gets one line saying which
    (with the uncertainty). Returns the :class:`~toolkit.pipeline.geometry.Homography`."""
    import datetime

    from toolkit.fileio import write_json_atomic
    from toolkit.pipeline.geometry import homography_from_dict, load_homography
    from toolkit.pipeline.ground_plane import estimate_ground_plane

    path = saved_estimate_path(spec)
    say = log or (lambda text: None)
    if path.is_file():
        homography = load_homography(path)
        say(f"ground plane: {describe(path)} (saved {path})")
        return homography
    say(f"ground plane: estimating from the people in the first {seconds:g} s of the source ...")
    obs, info = observe_people(spec, seconds, models, threads)
    estimate = estimate_ground_plane(obs)
    data = estimate.to_dict(
        {
            "source": spec or "synthetic",
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            **{k: info[k] for k in ("frames", "seconds", "fps")},
        }
    )
    homography = homography_from_dict(data, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, data)
    say(f"ground plane: {describe(path)} (saved {path}; delete it to estimate again)")
    return homography


def describe(path: str | Path) -> str:
    """One line about a homography file made by ``toolkit ground``: method, camera, uncertainty."""
    import json

    data = json.loads(Path(path).read_text())
    prov = data.get("provenance", {})
    unc = prov.get("uncertainty", {})
    rel = unc.get("distance_rel_total", unc.get("distance_rel_std"))
    text = f"{prov.get('method', 'given')}"
    if "camera" in data and "height_m" in data["camera"]:
        cam = data["camera"]
        text += f", camera {cam['height_m']:.1f} m high, pitch {cam['pitch_deg']:.0f} deg"
    if rel is not None:
        text += f", distances +-{100 * rel:.0f}% (1 sigma)"
    return text


def save_clicked_homography(body: bytes, path: str | Path) -> dict[str, Any]:
    """The web view's four-point calibration: JSON ``{"size": [w, h], "pixels": [[u, v] x4], "rect": "W,L"}`` or
    ``"ground": "x,y;..."`` (or a list of pairs) -> homography JSON written to ``path``; returns
    ``{"path", "distance_rel_std"}``. Bad input: UsageError (the server answers 400 with its text)."""
    import datetime
    import json

    from toolkit.fileio import write_json_atomic
    from toolkit.pipeline.ground_points import homography_from_points, parse_points, rectangle_corners

    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UsageError("expected a JSON object {size, pixels, rect or ground}") from None
    if not isinstance(data, dict):
        raise UsageError("expected a JSON object {size, pixels, rect or ground}")
    size, pixels = data.get("size"), data.get("pixels")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise UsageError("size must be [width, height] of the frame in pixels")
    try:
        pixels = np.asarray(pixels, np.float64)
    except (TypeError, ValueError):
        pixels = np.zeros(0)
    if pixels.shape != (4, 2):
        raise UsageError("click four points on the ground first")
    if data.get("rect"):
        try:
            width, length = (float(v) for v in str(data["rect"]).split(","))
        except ValueError:
            raise UsageError("rectangle: expected W,L in metres, e.g. 3.5,8") from None
        ground = rectangle_corners(width, length)
    elif isinstance(data.get("ground"), str):
        ground = parse_points(data["ground"], "ground points")
    else:
        raise UsageError("give the rectangle's sides W,L or the four ground points x,y;... in metres")
    estimate = homography_from_points(pixels, ground, (size[0], size[1]))
    date = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    record = estimate.to_dict(
        {"source": "web view", "date": date, "pixels": pixels.tolist(), "ground": ground.tolist()}
    )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, record)
    return {"path": str(path), "distance_rel_std": estimate.uncertainty["distance_rel_std"]}


def homography_info(homography: Any) -> dict[str, Any] | None:
    """For the demo summary: ``{"file", "method", "distance_rel_total"}`` of the homography in use (method and
    uncertainty from the file's ``toolkit ground`` provenance, None where it has none); None without one."""
    import json

    if homography is None:
        return None
    info: dict[str, Any] = {"file": homography.source, "method": None, "distance_rel_total": None}
    path = Path(homography.source)
    if path.suffix == ".json" and path.is_file():
        prov = json.loads(path.read_text()).get("provenance", {})
        unc = prov.get("uncertainty", {})
        info["method"] = prov.get("method")
        info["distance_rel_total"] = unc.get("distance_rel_total", unc.get("distance_rel_std"))
    return info
