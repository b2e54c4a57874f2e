"""systemd notification on a real Unix datagram socket: READY once frames flow, WATCHDOG only while they do."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from toolkit.pipeline.config import PipelineConfig
from toolkit.pipeline.demo import run_demo
from toolkit.pipeline.notify import ServiceNotifier


class Listener:
    """A NOTIFY_SOCKET as systemd makes it: a bound datagram socket; messages are kept with their arrival time."""

    def __init__(self, path: Path | None = None, abstract: str | None = None) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.address = str(path) if path else f"@{abstract}"
        self.sock.bind(str(path) if path else b"\0" + abstract.encode())
        self.sock.settimeout(0.05)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.messages.append((time.monotonic(), data.decode()))

    def close(self) -> list[tuple[float, str]]:
        time.sleep(0.1)
        self._stop.set()
        self._thread.join()
        self.sock.close()
        return self.messages


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_ready_once_then_pings_at_half_the_interval(tmp_path: Path) -> None:
    listener = Listener(tmp_path / "notify")
    clock = Clock()
    notifier = ServiceNotifier(
        listener.address, watchdog_usec=2_000_000, clock=clock
    )  # ping every 1 s of frames
    for _ in range(25):  # 2.5 s of frames at 10 FPS
        notifier.frame_done()
        clock.t += 0.1
    clock.t += 30.0  # the camera stalls: no frame, no ping, however long
    notifier.stopping("signal SIGTERM")
    notifier.close()
    kinds = [m.split("\n")[0] for _, m in listener.close()]
    assert kinds == ["READY=1", "WATCHDOG=1", "WATCHDOG=1", "STOPPING=1"]
    assert notifier.pings == 2 and notifier.frames == 25


def test_abstract_socket_and_environment(tmp_path: Path) -> None:
    name = f"edge-toolkit-test-{os.getpid()}"
    listener = Listener(abstract=name)
    env = {"NOTIFY_SOCKET": f"@{name}", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid())}
    notifier = ServiceNotifier.from_env(env)
    assert notifier.enabled and notifier.interval_s == 0.5
    notifier.frame_done()
    notifier.close()
    assert listener.close()[0][1].startswith("READY=1\n")
    # The watchdog belongs to another process (e.g. a wrapper shell): this one must not ping for it.
    other = ServiceNotifier.from_env(env | {"WATCHDOG_PID": "1"})
    assert other.enabled and other.interval_s is None
    other.close()
    off = ServiceNotifier.from_env({})
    assert not off.enabled
    off.frame_done()  # a no-op outside systemd
    assert off.frames == 0


def test_a_vanished_socket_never_raises(tmp_path: Path) -> None:
    notifier = ServiceNotifier(str(tmp_path / "gone"), watchdog_usec=1000)
    notifier.frame_done()
    notifier.frame_done()
    assert not notifier.ready_sent and notifier.pings == 0
    notifier.close()


@pytest.mark.slow
def test_demo_pings_only_while_frames_flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    listener = Listener(tmp_path / "notify")
    monkeypatch.setenv("NOTIFY_SOCKET", listener.address)
    monkeypatch.setenv("WATCHDOG_USEC", "100000")  # ping every 50 ms of flowing frames
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    stall_at, stall_s = 40, 1.5
    window: dict[str, float] = {}

    def on_frame(entered: int) -> None:  # the detect loop: block it once, as a camera that stops delivering
        if entered == stall_at:
            window["start"] = time.monotonic()
            time.sleep(stall_s)
            window["end"] = time.monotonic()

    summary = run_demo(
        PipelineConfig(source="synthetic", realtime=False, max_frames=80, threads=1), on_frame=on_frame
    )
    messages = listener.close()
    assert summary.frames == 80
    kinds = [m.split("\n")[0] for _, m in messages]
    assert kinds[0] == "READY=1" and kinds[-1] == "STOPPING=1"
    pings = [t for t, m in messages if m.startswith("WATCHDOG=1")]
    before = [t for t in pings if t < window["start"]]
    during = [t for t in pings if window["start"] + 0.5 < t < window["end"]]  # queued frames drain in < 0.5 s
    after = [t for t in pings if t > window["end"]]
    assert before and after, (len(before), len(after))
    assert during == [], f"{len(during)} pings while no frame was processed"
