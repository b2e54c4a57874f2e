"""The live view in a real headless browser (Debian chromium driven by Playwright).

CI installs the browser with ``apt-get install -y chromium``; ``playwright install`` is never used.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from toolkit.pipeline.server import LiveServer

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]


def numbered_frame(n: int) -> np.ndarray:
    image = np.full((240, 320, 3), (40, 60 + n % 150, 90), np.uint8)
    cv2.putText(image, f"frame {n}", (20, 130), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 3)
    cv2.rectangle(image, ((n * 9) % 300, 180), ((n * 9) % 300 + 20, 220), (0, 0, 255), -1)
    return image


@pytest.fixture
def live_pipeline():
    """A server fed at ~15 FPS with numbered frames and status numbers that change."""
    stop = threading.Event()
    with LiveServer(port=0) as server:

        def feed() -> None:
            n = 0
            while not stop.is_set():
                status = {
                    "fps": 15.0 + (n % 7) / 10,
                    "latency_ms": {"capture": 1.5, "detect": 20.0 + n % 5},
                    "source": {"status": "running", "frames_dropped": n // 3, "reconnects": 1, "stalls": 0},
                }
                server.publish(numbered_frame(n), status)
                n += 1
                time.sleep(1 / 15)

        thread = threading.Thread(target=feed, daemon=True)
        thread.start()
        yield server
        stop.set()
        thread.join(2)


def test_page_shows_a_moving_stream_and_live_status(live_pipeline: LiveServer) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 700})
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(live_pipeline.url, wait_until="domcontentloaded")
            page.wait_for_function("document.getElementById('live').naturalWidth > 0", timeout=10_000)
            assert page.evaluate("document.getElementById('live').naturalWidth") == 320
            page.wait_for_function("document.getElementById('published').textContent !== '-'", timeout=10_000)
            first = {k: page.text_content(f"#{k}") for k in ("published", "fps", "dropped", "reconnects")}
            shot1 = page.locator("#live").screenshot()
            time.sleep(1.6)  # the panel polls once a second
            second = {k: page.text_content(f"#{k}") for k in ("published", "fps", "dropped", "reconnects")}
            shot2 = page.locator("#live").screenshot()

            assert int(second["published"]) > int(first["published"]) > 0
            assert int(second["dropped"]) > int(first["dropped"])
            assert second["reconnects"] == "1" and float(second["fps"]) >= 15.0
            assert page.text_content("#source-status") == "running"
            latency = page.text_content("#latency")
            assert "capture" in latency and "detect" in latency
            assert page.text_content("#temperature")  # a value or "n/a", never empty
            assert page.text_content("#conn") == "live"
            img1 = cv2.imdecode(np.frombuffer(shot1, np.uint8), cv2.IMREAD_COLOR).astype(int)
            img2 = cv2.imdecode(np.frombuffer(shot2, np.uint8), cv2.IMREAD_COLOR).astype(int)
            assert img1.shape == img2.shape and np.abs(img1 - img2).mean() > 1.0  # the picture moved
            assert all(u.startswith(live_pipeline.url) for u in requests), requests  # nothing external
        finally:
            browser.close()
