"""The live web view: an MJPEG stream of the annotated frames and a status panel, stdlib HTTP only.

Routes: ``/`` (a self-contained page, no external assets), ``/stream.mjpg`` (multipart/x-mixed-replace),
``/snapshot.jpg``, ``/status.json``, ``/healthz``, and ``/ground.html`` + ``POST /ground`` (four clicked ground
points -> the camera's homography, written to :attr:`LiveServer.ground_path`; 404 when that is unset). The pipeline calls :meth:`LiveServer.publish` once per
frame. A frame is JPEG-encoded at most once, lazily, when a client asks for it, and the bytes are shared by all
clients; a slow client skips to the newest frame (there is no per-client queue), and with no client connected
nothing is encoded at all.

Hostile clients are bounded (issue 15): every connection holds a thread, so there is a cap on connections of every
kind (beyond it a 503 goes out from the accept loop and the socket is closed, no thread is started) besides the cap
on streams; the request line and headers must arrive within a total deadline (a slowloris trickling a header every
few seconds gets a 408 and is closed); a read or write that makes no progress for ``client_timeout_s`` drops the
client (a stream nobody reads); and the listen backlog takes a burst of connections at once. IPv6 hosts (``::1``,
``::``) listen on an IPv6 socket; ``::`` also takes IPv4 where the system allows dual-stack sockets.
"""

from __future__ import annotations

import contextlib
import errno
import json
import select
import socket
import socketserver
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import UsageError
from toolkit.pipeline.health import host_health

PAGE = Path(__file__).resolve().parent / "static" / "index.html"
GROUND_PAGE = PAGE.with_name("ground.html")
MAX_POST_BYTES = 4096  # a four-point calibration is ~200 bytes; anything larger is refused unread
BOUNDARY = b"frame"


@dataclass(frozen=True)
class ServerConfig:
    """Limits and timeouts of the live HTTP server (MJPEG stream, snapshot, status, /healthz)."""

    jpeg_quality: int = 80  # JPEG quality (0-100) of the stream and the snapshot
    client_timeout_s: float = (
        10.0  # a read, or a write (a stream nobody reads), stuck this long drops the client
    )
    request_timeout_s: float = (
        10.0  # the request line and headers must all arrive within this; else 408 and close
    )
    max_connections: int = 32  # concurrent connections of every kind (one thread each); more get 503 at once
    max_stream_clients: int = 8  # concurrent /stream.mjpg clients (within max_connections); more get 503
    listen_backlog: int = (
        128  # connections the kernel queues before accept: a burst of browsers opens at once
    )
    health_every_s: float = 2.0  # re-read host temperature / throttling at most this often
    healthz_max_age_s: float = 10.0  # /healthz is 503 when no frame was published for this long


class _Hub:
    """The newest published frame and status; JPEG bytes encoded once per frame on first request."""

    def __init__(self, quality: int) -> None:
        self.cond = threading.Condition()
        self.encode_lock = threading.Lock()
        self.quality = quality
        self.seq = 0
        self.frame: np.ndarray | None = None
        self.status: dict[str, Any] = {}
        self.published_at: float | None = None
        self.publish_times: deque[float] = deque(maxlen=32)
        self.jpeg: bytes | None = None
        self.jpeg_seq = 0
        self.encoded = 0

    def publish(self, frame: np.ndarray, status: dict[str, Any] | None) -> None:
        image = np.ascontiguousarray(frame).copy()  # the caller may draw on its buffer again next frame
        now = time.monotonic()
        with self.cond:
            self.frame = image
            if status is not None:
                self.status = dict(status)
            self.seq += 1
            self.published_at = now
            self.publish_times.append(now)
            self.cond.notify_all()

    def wait_newer(self, seq: int, timeout: float) -> int:
        with self.cond:
            self.cond.wait_for(lambda: self.seq > seq, timeout)
            return self.seq

    def latest_jpeg(self) -> tuple[int, bytes | None]:
        with self.encode_lock:  # one encoder at a time: other clients wait and reuse its bytes
            with self.cond:
                seq, frame = self.seq, self.frame
            if frame is None:
                return 0, None
            if seq != self.jpeg_seq:
                import cv2

                ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
                if not ok:
                    return seq, None
                self.jpeg, self.jpeg_seq = buf.tobytes(), seq
                self.encoded += 1
            return self.jpeg_seq, self.jpeg


class LiveServer:
    """``with LiveServer("0.0.0.0", 8080) as server: server.publish(frame, status)``; port 0 picks a free port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8080, config: ServerConfig | None = None) -> None:
        self.host = host
        self.config = config or ServerConfig()
        self._requested_port = port
        self._hub = _Hub(self.config.jpeg_quality)
        self._closing = threading.Event()
        self._conns: set[socket.socket] = set()  # every admitted connection, until its thread ends
        self._reading: dict[socket.socket, float] = {}  # connections still reading their request -> deadline
        self._conns_lock = threading.Lock()  # guards the two above and the counters
        self._stream_clients = 0
        self._refused = 0  # connections turned away at the cap
        self._timed_out = 0  # requests dropped at the request deadline
        self._health: dict[str, Any] = {}
        self._health_at = -1e9
        self._health_lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = port
        self.ground_path: Path | None = None  # where POST /ground saves the four-point homography; None = off

    @property
    def url(self) -> str:
        """The address to open in a browser, e.g. ``http://127.0.0.1:8080/`` (a wildcard bind shown as loopback)."""
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return f"http://{_host_port(host.replace('%', '%25'), self.port)}/"

    def start(self) -> LiveServer:
        """Bind and serve in a daemon thread; UsageError (one line) when the address cannot be bound."""
        if self._httpd is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        try:
            httpd = _HTTPServer((self.host, self._requested_port), family, self.config.listen_backlog)
        except OSError as exc:
            fix = {
                errno.EADDRINUSE: "pick another port (0 = any free port)",
                errno.EACCES: "ports below 1024 need root: pick a higher one",
            }.get(
                exc.errno, "listen on an address of this machine (0.0.0.0 or [::] = all, 127.0.0.1 or [::1])"
            )
            raise UsageError(
                f"cannot listen on {_host_port(self.host, self._requested_port)}: "
                f"{exc.strerror or exc}; {fix}"
            ) from None
        httpd.live = self
        self._httpd = httpd
        self.port = int(httpd.server_address[1])
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"live-server:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def publish(self, frame_bgr: np.ndarray, status: dict[str, Any] | None = None) -> None:
        """Make ``frame_bgr`` (H x W x 3 uint8) the newest frame and ``status`` the panel's pipeline numbers.

        Recognised status keys: fps, latency_ms ({stage: ms}), frames_dropped, reconnects, stalls,
        source_status, source (a Source.stats() dict); any others are listed as details.
        """
        if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3 or frame_bgr.dtype != np.uint8:
            raise ValueError(
                f"publish expects an H x W x 3 uint8 BGR image, got {frame_bgr.shape} {frame_bgr.dtype}"
            )
        self._hub.publish(frame_bgr, status)

    def status(self) -> dict[str, Any]:
        """The /status.json document: {"pipeline": ..., "server": ..., "host": ...}."""
        hub = self._hub
        with hub.cond:
            times = list(hub.publish_times)
            pipeline = dict(hub.status)
            published_at, seq = hub.published_at, hub.seq
        fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else None
        age = time.monotonic() - published_at if published_at is not None else None
        with self._conns_lock:
            server = {
                "frames_published": seq,
                "frames_encoded": hub.encoded,
                "publish_fps": fps,
                "last_publish_age_s": age,
                "stream_clients": self._stream_clients,
                "connections": len(self._conns),
                "refused": self._refused,
                "timed_out": self._timed_out,
            }
        return {"pipeline": pipeline, "server": server, "host": self._host_health(), "time": time.time()}

    def _host_health(self) -> dict[str, Any]:
        with self._health_lock:  # vcgencmd is a subprocess: do not run it for every poll of every browser
            if time.monotonic() - self._health_at >= self.config.health_every_s:
                self._health = host_health()
                self._health_at = time.monotonic()
            return self._health

    def _admit(self, conn: socket.socket) -> bool:
        """Accept-loop side: count ``conn`` in and start its request deadline, or False beyond the cap."""
        with self._conns_lock:
            if len(self._conns) >= self.config.max_connections or self._closing.is_set():
                self._refused += 1
                return False
            self._conns.add(conn)
            self._reading[conn] = time.monotonic() + self.config.request_timeout_s
            return True

    def _release(self, conn: socket.socket) -> None:
        with self._conns_lock:
            self._conns.discard(conn)
            self._reading.pop(conn, None)

    def _request_read(self, conn: socket.socket) -> bool:
        """Handler side, once the headers are in: True if they came before the deadline (it is then lifted)."""
        with self._conns_lock:
            return self._reading.pop(conn, None) is not None

    def _expire_requests(self) -> None:
        """Accept-loop side, every poll: a 408 and a shutdown for each request past its deadline (the shutdown
        wakes its handler from the read it is blocked in)."""
        now = time.monotonic()
        with self._conns_lock:
            late = [conn for conn, deadline in self._reading.items() if deadline <= now]
            for conn in late:
                del self._reading[conn]
            self._timed_out += len(late)
        for conn in late:
            _reply_and_close(conn, HTTPStatus.REQUEST_TIMEOUT, b"request not received in time\n")

    def close(self, timeout: float = 2.0) -> None:
        """Stop serving and disconnect every client; returns within ``timeout`` seconds."""
        if self._httpd is None or self._closing.is_set():
            return
        deadline = time.monotonic() + timeout
        self._closing.set()
        with self._hub.cond:
            self._hub.cond.notify_all()
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:  # unblocks handlers stuck writing to a client that stopped reading
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(max(deadline - time.monotonic(), 0.0))

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _reply_and_close(conn: socket.socket, status: HTTPStatus, body: bytes) -> None:
    """Send a tiny response without blocking (it fits an empty send buffer; if not, the client just sees the
    close), then shut the socket down. Used from the accept loop, which must never wait on a client."""
    head = (
        f"HTTP/1.0 {status.value} {status.phrase}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with contextlib.suppress(OSError):
        conn.send(head + body, getattr(socket, "MSG_DONTWAIT", 0))
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a client that never leaves must not keep the process alive
    allow_reuse_address = True
    live: LiveServer

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily, backlog: int) -> None:
        self.address_family = family  # read by TCPServer.__init__ when it creates the socket
        self.request_queue_size = backlog  # read by server_activate: listen(backlog)
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6:  # "::" takes IPv4 too (dual stack); "::1" only itself
            with contextlib.suppress(OSError, AttributeError):
                self.socket.setsockopt(
                    socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(self.server_address[0] != "::")
                )
        # Not HTTPServer.server_bind: its getfqdn() is a reverse DNS lookup that can stall start-up for seconds.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.live._admit(request):  # beyond the cap: answered here, no thread is started
            _reply_and_close(request, HTTPStatus.SERVICE_UNAVAILABLE, b"too many connections; try again\n")
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.live._release(request)  # the thread did not start (no memory for its stack)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.live._release(request)

    def service_actions(self) -> None:  # called by serve_forever after every poll (0.1 s) and every accept
        self.live._expire_requests()

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            return  # the client went away or was dropped: nothing to report
        print(f"live view: error serving {client_address}: {type(error).__name__}: {error}", file=sys.stderr)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "edge-toolkit-live"

    def setup(self) -> None:
        self.timeout = (
            self.server.live.config.client_timeout_s
        )  # every read and write: no progress -> dropped
        super().setup()

    def parse_request(self) -> bool:
        """The stdlib's parsing (request line, then headers), refused when the deadline passed meanwhile."""
        ok = super().parse_request()
        if not self.server.live._request_read(self.connection):
            self.close_connection = True  # the accept loop already answered 408 and shut the socket down
            return False
        return ok

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        pass  # the pipeline's terminal output is its status line, not an access log

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        path = self.path.split("?", 1)[0]
        routes = {
            "/": self._page,
            "/index.html": self._page,
            "/stream.mjpg": self._stream,
            "/snapshot.jpg": self._snapshot,
            "/status.json": self._status,
            "/healthz": self._healthz,
            "/ground.html": self._ground_page,
        }
        handler = routes.get(path)
        if handler is None:
            self._send(
                HTTPStatus.NOT_FOUND,
                b"not found: try / , /stream.mjpg, /snapshot.jpg, /status.json\n",
                "text/plain",
            )
            return
        try:
            handler()
        except (BrokenPipeError, ConnectionResetError, TimeoutError, OSError):
            self.close_connection = True  # the client went away; nothing to report

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        """``POST /ground``: JSON {size, pixels, rect | ground} -> homography saved to ``ground_path``."""
        from toolkit.pipeline.ground_source import save_clicked_homography

        path = self.server.live.ground_path
        if self.path.split("?", 1)[0] != "/ground" or path is None:
            self._send(HTTPStatus.NOT_FOUND, b'{"error": "not found"}', "application/json")
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 < length <= MAX_POST_BYTES:
            self.close_connection = True
            self._send(
                HTTPStatus.BAD_REQUEST, b'{"error": "body must be 1-4096 bytes of JSON"}', "application/json"
            )
            return
        try:
            reply = save_clicked_homography(self.rfile.read(length), path)
            self._send(HTTPStatus.OK, json.dumps(reply).encode(), "application/json")
        except UsageError as exc:
            self._send(HTTPStatus.BAD_REQUEST, json.dumps({"error": str(exc)}).encode(), "application/json")
        except (BrokenPipeError, ConnectionResetError, TimeoutError, OSError):
            self.close_connection = True

    def _ground_page(self) -> None:
        self._send(HTTPStatus.OK, GROUND_PAGE.read_bytes(), "text/html; charset=utf-8")

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _page(self) -> None:
        self._send(HTTPStatus.OK, PAGE.read_bytes(), "text/html; charset=utf-8")

    def _status(self) -> None:
        body = json.dumps(self.server.live.status(), default=_json_default).encode()
        self._send(HTTPStatus.OK, body, "application/json")

    def _snapshot(self) -> None:
        _, jpeg = self.server.live._hub.latest_jpeg()
        if jpeg is None:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"no frame published yet\n", "text/plain")
        else:
            self._send(HTTPStatus.OK, jpeg, "image/jpeg")

    def _healthz(self) -> None:
        live = self.server.live
        age = live.status()["server"]["last_publish_age_s"]
        ok = age is not None and age <= live.config.healthz_max_age_s
        reason = "ok" if ok else ("no frame published yet" if age is None else f"no frame for {age:.1f} s")
        body = json.dumps({"ok": ok, "reason": reason, "last_publish_age_s": age}).encode()
        self._send(HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE, body, "application/json")

    def _stream(self) -> None:
        live = self.server.live
        with live._conns_lock:
            full = live._stream_clients >= live.config.max_stream_clients
            if not full:
                live._stream_clients += 1
        if full:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"too many stream clients\n", "text/plain")
            return
        try:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY.decode()}")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"--" + BOUNDARY + b"\r\n")
            sent = 0
            while not live._closing.is_set():
                if live._hub.wait_newer(sent, timeout=0.5) <= sent:
                    if _peer_closed(
                        self.connection
                    ):  # no frames: do not hold the slot for a client long gone
                        break
                    continue
                seq, jpeg = live._hub.latest_jpeg()  # the newest frame: a slow client skips, never queues
                if jpeg is None or seq <= sent:
                    continue
                head = (
                    f"Content-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\nX-Frame-Seq: {seq}\r\n\r\n"
                ).encode()
                # The closing boundary goes out right after the image so browsers show it without waiting for
                # the next frame.
                self.wfile.write(head + jpeg + b"\r\n--" + BOUNDARY + b"\r\n")
                sent = seq
        finally:
            self.close_connection = True
            with live._conns_lock:
                live._stream_clients -= 1


def _peer_closed(conn: socket.socket) -> bool:
    """True when the client closed its side (readable with nothing to read) or the socket failed."""
    try:
        if hasattr(select, "poll"):  # select() cannot take descriptors above 1023
            poller = select.poll()
            poller.register(conn, select.POLLIN)
            readable = bool(poller.poll(0))
        else:
            readable = bool(select.select([conn], [], [], 0)[0])
        return readable and conn.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True
