"""systemd service notification (``Type=notify`` + ``WatchdogSec=``) without libsystemd: sd_notify's datagrams.

Under systemd, ``NOTIFY_SOCKET`` names a Unix datagram socket (a path, or ``@name`` in the abstract namespace) and
``WATCHDOG_USEC`` the watchdog interval. The demo sends ``READY=1`` when the first frame has gone through the whole
pipeline (frames flow: the camera opened and the models run), and ``WATCHDOG=1`` only from the output stage, after a
fresh frame was processed, at most every half interval. A camera that stalls, a stage that hangs or a deadlock
stops the pings, so systemd kills and restarts the service (``Restart=on-failure``). Outside systemd (no
``NOTIFY_SOCKET``) every call is a no-op. ``STATUS=`` carries frames and FPS for ``systemctl status``.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any


def _address(value: str) -> str | bytes:
    """``NOTIFY_SOCKET`` -> a socket address: ``@name`` is Linux's abstract namespace (a leading NUL byte)."""
    return b"\0" + value[1:].encode() if value.startswith("@") else value


class ServiceNotifier:
    """Sends sd_notify messages for one service process; thread-safe; inert when not run by systemd."""

    def __init__(
        self,
        socket_path: str | None,
        watchdog_usec: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled = bool(socket_path)
        self.interval_s = watchdog_usec / 1e6 / 2 if watchdog_usec else None  # ping twice per interval
        self._clock = clock
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._address: str | bytes = _address(socket_path) if socket_path else ""
        self.ready_sent = False
        self.frames = 0
        self.pings = 0
        self._last_ping: float | None = None
        self._t0: float | None = None
        if self.enabled:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServiceNotifier:
        """The notifier systemd asked for: NOTIFY_SOCKET, WATCHDOG_USEC (honoured only when WATCHDOG_PID is this
        process or unset, as sd_watchdog_enabled does)."""
        env = os.environ if environ is None else environ
        watchdog = None
        pid = env.get("WATCHDOG_PID")
        if env.get("WATCHDOG_USEC", "").isdigit() and (not pid or pid == str(os.getpid())):
            watchdog = int(env["WATCHDOG_USEC"]) or None
        return cls(env.get("NOTIFY_SOCKET") or None, watchdog)

    def send(self, message: str) -> bool:
        """Send one datagram; False (never an exception) when systemd is gone or the socket is full."""
        if self._sock is None:
            return False
        try:
            self._sock.sendto(message.encode(), self._address)
            return True
        except OSError:
            return False

    def frame_done(self, *_: Any) -> None:
        """Call after each frame left the output stage (a sink ``(image, packet, ms)``): READY once, then pings."""
        if not self.enabled:
            return
        with self._lock:
            now = self._clock()
            self.frames += 1
            if self._t0 is None:
                self._t0 = now
            if not self.ready_sent:
                self.ready_sent = self.send(f"READY=1\nSTATUS=frames flowing\nMAINPID={os.getpid()}")
                self._last_ping = now
                return
            if self.interval_s is not None and (
                self._last_ping is None or now - self._last_ping >= self.interval_s
            ):
                fps = (self.frames - 1) / (now - self._t0) if now > self._t0 else 0.0
                if self.send(f"WATCHDOG=1\nSTATUS={self.frames} frames, {fps:.1f} FPS"):
                    self.pings += 1
                self._last_ping = now

    def stopping(self, why: str = "") -> None:
        """Tell systemd the service is shutting down on purpose (not a hang)."""
        if self.enabled:
            self.send("STOPPING=1" + (f"\nSTATUS=stopping: {why}" if why else ""))

    def close(self) -> None:
        """Close the notification socket (idempotent)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
