"""scripts/track_clip.py: the id-stability table it reads back from a demo event log."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "track_clip.py"


def _module():
    spec = importlib.util.spec_from_file_location("track_clip", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _event(frame: int, tracks: list[tuple[int, list[float]]]) -> dict:
    return {"frame": frame, "tracks": [{"id": i, "box": box} for i, box in tracks]}


def test_lifetimes_and_interior_births_and_ends() -> None:
    track_table = _module().track_table
    edge, middle = [0.0, 100.0, 20.0, 160.0], [200.0, 100.0, 230.0, 160.0]
    events = []
    for frame in range(100):  # 10 fps: id 1 lives the whole clip from the border, id 2 is born and dies mid-frame
        tracks = [(1, edge)]
        if 40 <= frame < 50:
            tracks.append((2, middle))
        events.append(_event(frame, tracks))
    table = track_table(events, (480, 360), margin=12.0, fps=10.0)
    assert table["ids"] == 2 and table["ids_living_2s_or_more"] == 1
    assert table["interior_births"] == 1 and table["interior_ends"] == 1
    assert table["tracks"]["2"]["first"] == 40 and table["tracks"]["2"]["last"] == 49
    assert table["tracks"]["2"]["frames"] == 10
    assert table["people_per_frame"] == {"median": 1.0, "max": 2}
    # a track already there in the first 2 s is not an interior birth, wherever it is
    early = [_event(f, [(3, middle)]) for f in range(100)]
    assert track_table(early, (480, 360), 12.0, 10.0)["interior_births"] == 0
