"""Web-view abuse (issue 15, finding 8), over real sockets on localhost: a slowloris is dropped at the request
deadline, connections beyond the cap are refused while a stream keeps streaming, a burst of 50 connections opens
at once, IPv6 listen addresses serve, and malformed ``--serve`` addresses are one-line exit-2 errors. The refusals
the probe found working (path traversal, oversized headers, extra streams) are checked again next to the new cap.
"""

from __future__ import annotations

import selectors
import socket
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from conftest import assert_one_line_error, run_cli

from toolkit.errors import UsageError
from toolkit.pipeline.config import parse_address
from toolkit.pipeline.server import LiveServer, ServerConfig


def frame(n: int) -> np.ndarray:
    return np.full((48, 64, 3), 40 + (n * 7) % 200, np.uint8)


def connect(server: LiveServer, host: str = "127.0.0.1", timeout: float = 5.0) -> socket.socket:
    return socket.create_connection((host, server.port), timeout=timeout)


def response_or_close(sock: socket.socket, timeout: float) -> bytes:
    """What the server sent before closing (b"" for a bare close or a reset); raises TimeoutError if it did not."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


class StreamReader:
    """A minimal /stream.mjpg client: returns the X-Frame-Seq of each part it reads."""

    def __init__(self, server: LiveServer, host: str = "127.0.0.1") -> None:
        self.sock = connect(server, host)
        self.sock.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
        self.file = self.sock.makefile("rb")
        assert b" 200 " in self.file.readline()
        while self.file.readline().strip():
            pass
        assert self.file.readline() == b"--frame\r\n"

    def part(self) -> int:
        headers = {}
        while line := self.file.readline().strip():
            key, _, value = line.decode().partition(":")
            headers[key.lower()] = value.strip()
        self.file.read(int(headers["content-length"]))
        assert self.file.readline() == b"\r\n" and self.file.readline() == b"--frame\r\n"
        return int(headers["x-frame-seq"])

    def close(self) -> None:
        self.file.close()
        self.sock.close()


# -- slowloris ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("trickle", ["header-lines", "bytes"])
def test_slowloris_is_dropped_at_the_request_deadline(trickle: str) -> None:
    # Each piece arrives well within the per-read timeout (5 s): only a total deadline for the request catches it.
    config = ServerConfig(request_timeout_s=1.0, client_timeout_s=5.0)
    with LiveServer(port=0, config=config) as server:
        sock = connect(server)
        sock.sendall(b"GET / HTTP/1.1\r\n")
        pieces = [f"X-Pad-{i}: {i}\r\n".encode() for i in range(40)]
        if trickle == "bytes":
            pieces = [bytes([b]) for b in b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]
        t0 = time.monotonic()
        dropped_after = None
        for piece in pieces:  # ~0.15 s apart, for up to 6 s
            try:
                sock.sendall(piece)
            except OSError:
                dropped_after = time.monotonic() - t0
                break
            sock.settimeout(0.15)
            try:
                data = sock.recv(4096)
            except TimeoutError:
                continue
            except ConnectionResetError:
                data = b""
            dropped_after = time.monotonic() - t0
            assert data == b"" or data.startswith(b"HTTP/1.0 408"), data
            break
        sock.close()
        assert dropped_after is not None, "the slowloris client was never dropped"
        assert 0.8 <= dropped_after <= 1.8, dropped_after
        assert wait_for(lambda: server.status()["server"]["connections"] == 0, 2.0)
        assert server.status()["server"]["timed_out"] == 1


def test_an_idle_connection_is_dropped_and_a_prompt_request_is_served() -> None:
    with LiveServer(port=0, config=ServerConfig(request_timeout_s=0.5)) as server:
        idle = connect(server)
        t0 = time.monotonic()
        assert response_or_close(idle, timeout=3.0).startswith(b"HTTP/1.0 408")
        assert time.monotonic() - t0 < 1.5
        idle.close()
        prompt = connect(server)
        prompt.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert response_or_close(prompt, timeout=3.0).startswith(b"HTTP/1.0 503")  # nothing published yet
        prompt.close()


# -- connection cap -------------------------------------------------------------------------------------
def test_connections_beyond_the_cap_are_refused_while_a_stream_keeps_streaming() -> None:
    config = ServerConfig(max_connections=4, max_stream_clients=2, request_timeout_s=5.0)
    with LiveServer(port=0, config=config) as server:
        server.publish(frame(0), {})
        stream = StreamReader(server)
        first = stream.part()
        second_stream = StreamReader(server)
        second_stream.part()
        extra_stream = connect(server)  # the stream cap (2) is kept: a third stream is a 503
        extra_stream.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
        assert response_or_close(extra_stream, timeout=3.0).startswith(b"HTTP/1.0 503")
        extra_stream.close()
        idle = [connect(server) for _ in range(2)]  # 2 streams + 2 idle = the cap of 4
        assert wait_for(lambda: server.status()["server"]["connections"] == 4, 2.0)

        t0 = time.monotonic()
        for n in range(8):  # each beyond the cap is refused at once, without a thread
            sock = connect(server)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            data = response_or_close(sock, timeout=2.0)
            sock.close()
            assert data == b"" or data.startswith(b"HTTP/1.0 503"), data
            server.publish(frame(n + 1), {})
            assert stream.part() > first  # the existing stream keeps getting new frames meanwhile
        assert time.monotonic() - t0 < 3.0
        doc = server.status()["server"]
        assert doc["connections"] == 4 and doc["refused"] == 8 and doc["stream_clients"] == 2

        for sock in idle:  # below the cap again: new clients are served
            sock.close()
        assert wait_for(lambda: server.status()["server"]["connections"] == 2, 2.0)
        with urllib.request.urlopen(server.url + "status.json", timeout=5) as r:
            assert r.status == 200
        stream.close()
        second_stream.close()


def test_a_stream_client_that_stops_reading_is_dropped_at_the_write_timeout() -> None:
    noise = np.random.default_rng(0).integers(0, 256, (360, 480, 3), dtype=np.uint8)
    with LiveServer(port=0, config=ServerConfig(client_timeout_s=0.5)) as server:
        server.publish(noise, {})
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        stalled.connect(("127.0.0.1", server.port))
        stalled.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")  # and never reads
        assert wait_for(lambda: server.status()["server"]["stream_clients"] == 1, 2.0)
        deadline = time.monotonic() + 10
        n = 0
        while server.status()["server"]["stream_clients"] and time.monotonic() < deadline:
            image = noise.copy()
            image[:8] = n
            server.publish(image, {})
            n += 1
            time.sleep(0.01)
        assert server.status()["server"]["stream_clients"] == 0
        assert wait_for(lambda: server.status()["server"]["connections"] == 0, 2.0)
        stalled.close()


def test_a_stream_client_that_leaves_while_no_frames_come_frees_its_slot() -> None:
    with LiveServer(port=0, config=ServerConfig(max_stream_clients=1)) as server:
        reader = StreamReader(server)  # nothing is published: the handler waits for a frame
        assert wait_for(lambda: server.status()["server"]["stream_clients"] == 1, 2.0)
        reader.close()
        assert wait_for(lambda: server.status()["server"]["stream_clients"] == 0, 2.0)
        assert wait_for(lambda: server.status()["server"]["connections"] == 0, 2.0)
        StreamReader(server).close()  # the single slot is free again


# -- bursts ---------------------------------------------------------------------------------------------
def test_fifty_connections_open_at_once() -> None:
    with LiveServer(port=0, config=ServerConfig(max_connections=64)) as server:
        server.publish(frame(0), {})
        socks = []
        selector = selectors.DefaultSelector()
        t0 = time.monotonic()
        for _ in range(50):  # all SYNs in one burst, as 50 browsers (or a scanner) would send them
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", server.port))
            selector.register(sock, selectors.EVENT_WRITE)
            socks.append(sock)
        pending = set(socks)
        while pending and time.monotonic() - t0 < 5:
            for key, _ in selector.select(0.05):
                selector.unregister(key.fileobj)
                pending.discard(key.fileobj)
        opened = time.monotonic() - t0
        assert not pending and opened < 0.5, (len(pending), opened)  # backlog 5: SYNs dropped, ~1-7 s
        for sock in socks:
            sock.setblocking(True)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answers = [response_or_close(sock, timeout=5.0) for sock in socks]
        assert all(a.startswith(b"HTTP/1.0 200") for a in answers), {a[:12] for a in answers}
        assert time.monotonic() - t0 < 3.0
        for sock in socks:
            sock.close()


# -- the refusals the probe found working, next to the new limits ---------------------------------------
def test_traversal_and_oversized_headers_are_still_refused() -> None:
    with LiveServer(port=0) as server:
        for path in ("/../../etc/passwd", "/static/../server.py", "/%2e%2e/%2e%2e/etc/passwd"):
            sock = connect(server)
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert response_or_close(sock, 3.0).startswith(b"HTTP/1.0 404"), path
            sock.close()
        sock = connect(server)
        sock.sendall(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n")
        assert response_or_close(sock, 3.0).startswith(b"HTTP/1.0 431")
        sock.close()
        sock = connect(server)
        sock.sendall(b"GET / HTTP/1.1\r\n" + b"".join(f"X-{i}: 1\r\n".encode() for i in range(200)) + b"\r\n")
        assert response_or_close(sock, 3.0).startswith(b"HTTP/1.0 431")
        sock.close()
        assert wait_for(lambda: server.status()["server"]["connections"] == 0, 2.0)


# -- IPv6 -----------------------------------------------------------------------------------------------
def ipv6_loopback() -> str | None:
    """Why IPv6 loopback cannot be tested here, or None when it can (an actual bind to ::1 decides)."""
    if not socket.has_ipv6:
        return "Python was built without IPv6 (socket.has_ipv6 is False)"
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError as exc:
        return f"this machine has no IPv6 loopback (bind to ::1 failed: {exc})"
    return None


@pytest.mark.skipif(ipv6_loopback() is not None, reason=str(ipv6_loopback()))
def test_ipv6_loopback_serves_pages_and_the_stream() -> None:
    host, port = parse_address("[::1]:0")
    with LiveServer(host, port) as server:
        assert server.url == f"http://[::1]:{server.port}/"
        server.publish(frame(3), {"fps": 1.0})
        with urllib.request.urlopen(server.url + "status.json", timeout=5) as r:
            assert r.status == 200
        reader = StreamReader(server, host="::1")
        assert reader.part() == 1
        server.publish(frame(4), {})
        assert reader.part() == 2
        reader.close()
        assert server.status()["server"]["connections"] <= 1


@pytest.mark.skipif(ipv6_loopback() is not None, reason=str(ipv6_loopback()))
def test_ipv6_any_address_serves_both_families() -> None:
    host, port = parse_address("[::]:0")
    with LiveServer(host, port) as server:
        assert server.url == f"http://[::1]:{server.port}/"
        for url in (f"http://[::1]:{server.port}/healthz", f"http://127.0.0.1:{server.port}/healthz"):
            try:
                urllib.request.urlopen(url, timeout=5)
            except urllib.error.HTTPError as err:
                assert err.code == 503  # no frame yet: the server answered
            else:
                raise AssertionError("healthz before any frame should be 503")


# -- addresses ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[::1]:8080", ("::1", 8080)),
        ("[::]:0", ("::", 0)),
        (" [::1]:81 ", ("::1", 81)),
        ("[fe80::1%lo]:80", ("fe80::1%lo", 80)),
        ("0.0.0.0:8080", ("0.0.0.0", 8080)),
        ("localhost:9000", ("localhost", 9000)),
        (":0", ("127.0.0.1", 0)),
        ("9000", ("127.0.0.1", 9000)),
    ],
)
def test_parse_address_forms(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("::1", "brackets"),
        ("::1:8080", "brackets"),
        ("[::1]", "HOST:PORT"),
        ("[::1", "HOST:PORT"),
        ("::1]:80", "brackets"),
        ("[::1]x:80", "HOST:PORT"),
        ("[127.0.0.1]:80", "IPv6"),
        ("[not-an-ip]:80", "IPv6"),
        ("[]:80", "IPv6"),
        ("a b:80", "host"),
        ("host/x:80", "host"),
        ("[::1]:+80", "HOST:PORT"),
        ("[::1]:70000", "HOST:PORT"),
        ("localhost:8_0", "HOST:PORT"),
        ("localhost:\u0668\u0660", "HOST:PORT"),
        ("", "HOST:PORT"),
    ],
)
def test_parse_address_refuses_malformed_addresses(text: str, says: str) -> None:
    with pytest.raises(UsageError, match=says) as info:
        parse_address(text)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("address", ["[::1", "::1", "[127.0.0.1]:0", "1.2.3.4:99999"])
def test_demo_with_a_malformed_serve_address_exits_2(address: str) -> None:
    result = run_cli("demo", "--headless", "--max-frames", "1", "--serve", address, timeout=120)
    assert_one_line_error(result, 2, contains="--serve")
