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


def test_static_ids_are_long_tracks_that_do_not_move() -> None:
    track_table = _module().track_table
    post = [100.0, 50.0, 110.0, 90.0]  # a lamp post: the same box for 15 s
    events = []
    for frame in range(150):
        walker = [10.0 + 2 * frame, 200.0, 25.0 + 2 * frame, 240.0]  # walks 300 px to the right
        jitter = 3.0 * (frame % 2)  # the post's box wobbles a little, as detections do
        short = [(4, [300.0, 20.0, 310.0, 60.0])] if frame < 50 else []  # static, but only 5 s
        events.append(_event(frame, [(1, [post[0] + jitter, post[1], post[2] + jitter, post[3]]), (2, walker), *short]))
    table = track_table(events, (480, 360), 12.0, 10.0, static_s=10.0, static_px=20.0)
    assert table["static_ids"]["count"] == 1 and table["static_ids"]["ids"] == [1]
    assert table["tracks"]["1"]["centre_range"] == [3.0, 0.0]
    assert table["tracks"]["2"]["centre_range"] == [298.0, 0.0]
    assert track_table(events, (480, 360), 12.0, 10.0, static_s=4.0)["static_ids"]["ids"] == [1, 4]
