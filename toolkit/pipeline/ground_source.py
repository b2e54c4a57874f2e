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
