"""A ``--record`` file plays in a real headless browser (Debian chromium driven by Playwright).

A short headless demo of the synthetic street is recorded to .webm (VP8) and opened from disk in a page with a
<video> element: it has the demo's size and duration, and play() runs it to its ``ended`` event. An .mp4 (mp4v,
MPEG-4 Part 2) is refused by the same browser: Chromium ships no MPEG-4 Part 2 decoder, which is why .webm exists.
CI installs the browser with ``apt-get install -y chromium``; ``playwright install`` is never used.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from test_pipeline_server_browser import ARGS, CHROMIUM, numbered_frame

from toolkit.errors import UsageError
from toolkit.pipeline.config import PipelineConfig
from toolkit.pipeline.demo import locate_models, run_demo
from toolkit.pipeline.outputs import Recorder

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]

FRAMES = 36  # the synthetic scene runs at 10 FPS: 3.6 s of video

# Load ``src`` into the page's <video>; resolve with what the element knows once it has the metadata or failed.
LOAD = """src => new Promise((resolve, reject) => {
    const v = document.getElementById('v');
    setTimeout(() => reject(new Error('neither loadedmetadata nor error')), 10000);
    const report = () => resolve({width: v.videoWidth, height: v.videoHeight, duration: v.duration,
                                  error: v.error ? v.error.code : null});
    v.addEventListener('loadedmetadata', report, {once: true});
    v.addEventListener('error', report, {once: true});
    v.src = src;
})"""
# Play from the start at 4x; resolve at the ``ended`` event with the times seen on the way.
PLAY = """() => new Promise((resolve, reject) => {
    const v = document.getElementById('v');
    const seen = [];
    v.addEventListener('timeupdate', () => seen.push(v.currentTime));
    v.addEventListener('ended', () => resolve({seen, end: v.currentTime, paused: v.paused}), {once: true});
    setTimeout(() => reject(new Error('no ended event; currentTime ' + v.currentTime)), 10000);
    v.playbackRate = 4;
    v.play().catch(reject);
})"""
# The picture at time ``t``, as the browser decoded it: mean of R, G, B over a canvas copy.
PICTURE = """t => new Promise((resolve, reject) => {
    const v = document.getElementById('v');
    setTimeout(() => reject(new Error('no seeked event')), 10000);
    v.addEventListener('seeked', () => { try {
        const c = document.createElement('canvas');
        c.width = v.videoWidth;
        c.height = v.videoHeight;
        const g = c.getContext('2d');
        g.drawImage(v, 0, 0);
        const d = g.getImageData(0, 0, c.width, c.height).data;
        const sum = [0, 0, 0];
        for (let i = 0; i < d.length; i += 4) { sum[0] += d[i]; sum[1] += d[i + 1]; sum[2] += d[i + 2]; }
        resolve(sum.map(s => s / (d.length / 4)));
    } catch (e) { reject(e); } }, {once: true});
    v.currentTime = t;
})"""


@pytest.fixture(scope="module")
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # file:// pages are each their own origin: without the flag the canvas copy of the video is "tainted"
        # and getImageData throws a SecurityError.
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=[*ARGS, "--allow-file-access-from-files"], headless=True
        )
        try:
            yield browser.new_page()
        finally:
            browser.close()


def _open(page, video: Path) -> dict:
    html = video.parent / "player.html"
    html.write_text('<!doctype html><video id="v" muted preload="auto"></video>')
    page.goto(html.as_uri())
    return page.evaluate(LOAD, video.name)


def test_a_webm_demo_recording_plays_in_the_browser(page, tmp_path: Path) -> None:
    try:
        locate_models(PipelineConfig())
    except UsageError as exc:
        pytest.skip(f"the model zoo is not built: {exc}")
    out = tmp_path / "demo.webm"
    summary = run_demo(PipelineConfig(max_frames=FRAMES, realtime=False, record=str(out)))
    assert summary["record"] == str(out) and summary["record_frames"] == FRAMES

    meta = _open(page, out)
    assert meta["error"] is None
    assert (meta["width"], meta["height"]) == (480, 360)
    assert meta["duration"] == pytest.approx(FRAMES / 10, abs=0.15)
    played = page.evaluate(PLAY)
    assert played["end"] == pytest.approx(meta["duration"], abs=0.15)
    assert len(played["seen"]) >= 2 and played["seen"] == sorted(
        played["seen"]
    )  # time advanced while playing

    # The browser shows the recorded picture, not just a stream it accepted: its first frame matches OpenCV's.
    capture = cv2.VideoCapture(str(out))
    ok, first = capture.read()
    capture.release()
    assert ok
    shown = page.evaluate(PICTURE, 0)
    assert np.allclose(shown, first[:, :, ::-1].reshape(-1, 3).mean(axis=0), atol=3), shown


def test_an_mp4v_recording_does_not_play_in_the_browser(page, tmp_path: Path) -> None:
    # Documents why .webm is offered: Chromium has no MPEG-4 Part 2 decoder (it never had; H.264 is not writable
    # with the pip OpenCV), so the element reports MEDIA_ERR_SRC_NOT_SUPPORTED and never learns a size.
    out = tmp_path / "demo.mp4"
    with Recorder(out, fps=10) as recorder:
        for n in range(12):
            recorder.write(numbered_frame(n))
    meta = _open(page, out)
    assert meta["error"] == 4 and meta["width"] == 0
    assert page.evaluate("document.getElementById('v').canPlayType('video/mp4; codecs=\"mp4v.20.9\"')") == ""
