"""Live web view over real HTTP: routes, the shared MJPEG stream, slow clients, shutdown, host health."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from toolkit.errors import UsageError
from toolkit.pipeline.health import (
    decode_throttled,
    host_health,
    parse_vcgencmd,
    read_temperatures,
    read_throttled,
)
from toolkit.pipeline.server import LiveServer, ServerConfig
from toolkit.pipeline.sources import open_source


def frame(n: int, shape=(48, 64)) -> np.ndarray:
    """A frame whose brightness and bar length say which one it is."""
    image = np.full((*shape, 3), 40 + (n * 7) % 200, np.uint8)
    image[: shape[0] // 4, : (n * 5) % shape[1]] = 255
    return image


def get(url: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


class MjpegReader:
    """A raw multipart client: reads one part at a time (or not at all, to play a stalled browser)."""

    def __init__(self, server: LiveServer, rcvbuf: int | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
        self.file = self.sock.makefile("rb")
        status = self.file.readline()
        assert b"200" in status, status
        headers = self._headers()
        assert headers["content-type"].startswith("multipart/x-mixed-replace; boundary=frame")
        assert self.file.readline() == b"--frame\r\n"

    def _headers(self) -> dict[str, str]:
        headers = {}
        while line := self.file.readline().strip():
            key, _, value = line.decode().partition(":")
            headers[key.strip().lower()] = value.strip()
        return headers

    def part(self) -> tuple[int, np.ndarray]:
        headers = self._headers()
        body = self.file.read(int(headers["content-length"]))
        assert self.file.readline() == b"\r\n" and self.file.readline() == b"--frame\r\n"
        return int(headers["x-frame-seq"]), cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def test_routes_before_and_after_publishing() -> None:
    with LiveServer(port=0, config=ServerConfig(healthz_max_age_s=0.3)) as server:
        assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}/"
        code, headers, page = get(server.url)
        assert code == 200 and headers["Content-Type"].startswith("text/html")
        assert b"stream.mjpg" in page and b"status.json" in page
        assert b"http://" not in page and b"https://" not in page  # self-contained: no CDN, no external asset
        assert get(server.url + "snapshot.jpg")[0] == 503
        code, _, body = get(server.url + "healthz")
        assert code == 503 and json.loads(body)["reason"] == "no frame published yet"
        assert get(server.url + "nope")[0] == 404

        status = {
            "fps": np.float32(9.5),
            "latency_ms": {"detect": 4.25, "track": np.float64(0.5)},
            "source": {"status": "running", "reconnects": 2},
            "boxes": np.arange(3),
        }
        server.publish(frame(7, (60, 80)), status)
        code, headers, jpeg = get(server.url + "snapshot.jpg")
        assert code == 200 and headers["Content-Type"] == "image/jpeg"
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (60, 80, 3) and abs(float(image[-1, -1].mean()) - (40 + 49)) < 4
        doc = json.loads(get(server.url + "status.json")[2])
        assert doc["pipeline"] == {
            "fps": 9.5,
            "latency_ms": {"detect": 4.25, "track": 0.5},
            "source": {"status": "running", "reconnects": 2},
            "boxes": [0, 1, 2],
        }
        assert doc["server"]["frames_published"] == 1 and doc["server"]["stream_clients"] == 0
        assert set(doc["host"]) == {"temperature_c", "thermal_zones", "throttled", "cpu_governor"}
        assert get(server.url + "healthz")[0] == 200
        time.sleep(0.4)
        code, _, body = get(server.url + "healthz")
        assert code == 503 and json.loads(body)["reason"].startswith("no frame for")


def test_publish_rejects_non_bgr_images() -> None:
    with LiveServer(port=0) as server:
        with pytest.raises(ValueError, match="H x W x 3 uint8"):
            server.publish(np.zeros((10, 10), np.uint8), {})
        with pytest.raises(ValueError):
            server.publish(np.zeros((10, 10, 3), np.float32), {})


def test_stream_is_encoded_once_and_shared_by_clients() -> None:
    with LiveServer(port=0) as server:
        server.publish(frame(0), {})
        readers = [MjpegReader(server) for _ in range(3)]
        seen = [[r.part()[0]] for r in readers]
        for n in range(1, 6):
            server.publish(frame(n), {})
            for reader, got in zip(readers, seen, strict=True):
                seq, image = reader.part()
                got.append(seq)
                assert image.shape == (48, 64, 3)
                assert abs(float(image[-1, -1].mean()) - (40 + n * 7)) < 4  # the frame just published
        assert all(got == [1, 2, 3, 4, 5, 6] for got in seen)
        doc = server.status()
        assert doc["server"]["frames_encoded"] == 6  # 6 frames x 3 clients, each JPEG made once
        assert doc["server"]["stream_clients"] == 3
        for reader in readers:
            reader.close()


def test_slow_client_skips_to_the_newest_frame_and_close_is_prompt() -> None:
    noise = np.random.default_rng(0).integers(0, 256, (360, 480, 3), dtype=np.uint8)
    server = LiveServer(port=0).start()
    server.publish(noise, {})
    stalled = MjpegReader(server, rcvbuf=64 * 1024)  # stops reading: its socket buffers fill up
    stalled.part()
    for n in range(200):  # the pipeline keeps publishing at full speed meanwhile
        image = noise.copy()
        image[:8] = n
        server.publish(image, {})
    parts = []
    while not parts or parts[-1] < 201:
        parts.append(stalled.part()[0])
    # It receives what the kernel had buffered, then the newest frame: never a backlog of 200 frames.
    assert len(parts) < 30, parts
    assert server.status()["server"]["frames_encoded"] < 40
    other = MjpegReader(server)  # a second client blocked waiting for the next frame
    t0 = time.monotonic()
    server.close()
    assert time.monotonic() - t0 < 2.0
    assert get_fails(server.url)
    stalled.close()
    other.close()


def get_fails(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1)
    except (urllib.error.URLError, ConnectionError, OSError):
        return True
    return False


def test_busy_port_is_a_usage_error() -> None:
    with LiveServer(port=0) as server:
        with pytest.raises(UsageError, match=f"cannot listen on 127.0.0.1:{server.port}"):
            LiveServer(port=server.port).start()


def test_http_source_reads_the_stream_and_reconnects_after_a_server_restart() -> None:
    """The real FFmpeg URL path: a Source on our own MJPEG stream survives the server going away."""
    stop = threading.Event()

    def publisher(target: LiveServer) -> None:
        n = 0
        while not stop.is_set():
            target.publish(frame(n, (120, 160)), {})
            n += 1
            time.sleep(0.03)

    server = LiveServer(port=0).start()
    port = server.port
    threading.Thread(target=publisher, args=(server,), daemon=True).start()
    source = open_source(
        server.url + "stream.mjpg",
        stale_after_s=1.0,
        backoff_initial_s=0.1,
        backoff_max_s=0.4,
        backoff_jitter=0.0,
    )
    try:
        first = [source.read(2.0) for _ in range(3)]
        assert all(f is not None and f.image.shape == (120, 160, 3) for f in first)
        stop.set()
        server.close()
        deadline = time.monotonic() + 5
        while source.stats()["errors"] + source.stats()["stalls"] == 0 and time.monotonic() < deadline:
            source.read(0.1)
        assert source.stats()["status"] != "running"
        stop.clear()
        server = LiveServer(port=port).start()
        threading.Thread(target=publisher, args=(server,), daemon=True).start()
        deadline = time.monotonic() + 10
        while source.stats()["reconnects"] == 0 and time.monotonic() < deadline:
            source.read(0.2)
        after = source.read(2.0)
        stats = source.stats()
        assert stats["reconnects"] == 1 and stats["status"] == "running" and stats["last_gap_s"] > 0
        assert after is not None and after.index > first[-1].index
    finally:
        stop.set()
        source.close()
        server.close()


# -- host health ---------------------------------------------------------------------------------------
def test_decode_throttled_bits() -> None:
    state = decode_throttled(0x50005)  # under-voltage + throttled now, and both since boot
    assert state["raw"] == "0x50005"
    assert state["now"] == ["under_voltage", "throttled"]
    assert state["since_boot"] == ["under_voltage", "throttled"]
    assert state["under_voltage"] and state["throttled"] and not state["arm_freq_capped"]
    assert decode_throttled(0x80000)["now"] == [] and decode_throttled(0x80000)["since_boot"] == [
        "soft_temp_limit"
    ]
    assert decode_throttled(0)["now"] == [] and decode_throttled(0)["since_boot"] == []
    assert parse_vcgencmd("throttled=0x50005\n") == 0x50005
    assert parse_vcgencmd("throttled=0x0") == 0 and parse_vcgencmd("error=1") is None


def test_read_throttled_from_sysfs_and_vcgencmd(tmp_path: Path) -> None:
    sysfs = tmp_path / "get_throttled"
    sysfs.write_text("20002\n")  # the firmware file is hex without 0x
    assert read_throttled(sysfs, vcgencmd=None)["now"] == ["arm_freq_capped"]
    tool = tmp_path / "vcgencmd"
    tool.write_text('#!/bin/sh\n[ "$1" = get_throttled ] && echo throttled=0x4\n')
    tool.chmod(0o755)
    assert read_throttled(tmp_path / "absent", vcgencmd=str(tool))["now"] == ["throttled"]
    assert read_throttled(tmp_path / "absent", vcgencmd=str(tmp_path / "no-such-tool")) is None


def test_read_temperatures_from_thermal_zones(tmp_path: Path) -> None:
    for i, (kind, milli) in enumerate([("cpu-thermal", "48312"), ("gpu-thermal", "51000"), ("broken", "x")]):
        zone = tmp_path / f"thermal_zone{i}"
        zone.mkdir()
        (zone / "type").write_text(kind + "\n")
        (zone / "temp").write_text(milli + "\n")
    assert read_temperatures(tmp_path) == {"cpu-thermal": 48.3, "gpu-thermal": 51.0}
    assert read_temperatures(tmp_path / "none") == {}


def test_host_health_reports_na_for_what_is_missing() -> None:
    health = host_health()
    assert set(health) == {"temperature_c", "thermal_zones", "throttled", "cpu_governor"}
    temps = read_temperatures()
    assert health["temperature_c"] == (max(temps.values()) if temps else "n/a")
    assert health["throttled"] == "n/a" or "now" in health["throttled"]
