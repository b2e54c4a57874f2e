"""A SIGKILLed ``toolkit bench`` takes its measuring worker with it (issue 15, finding 10).

Before, the worker (``python -m toolkit.bench.measure``) ran on until its measurement ended, re-parented to
init. Now it dies with its parent: ``prctl(PR_SET_PDEATHSIG)`` on Linux, a thread that watches the parent pid
elsewhere (toolkit.runtime.lifeline); both are tested here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO

MODEL = REPO / "models" / "mnist_classifier" / "mnist_classifier_int8.tflite"

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")


def _alive(pid: int) -> bool:
    """Running (a zombie is dead: an init that does not reap leaves one behind)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _children(pid: int, marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid and marker in cmdline:
            found.append(int(entry.name))
    return found


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)


def test_sigkilled_bench_takes_its_worker_with_it(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TOOLKIT_HOME": str(tmp_path)}
    bench = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "toolkit",
            "bench",
            str(MODEL),
            "--seconds",
            "60",
            "--warmup",
            "0",
            "--threads",
            "1",
            "--db",
            str(tmp_path / "b.sqlite"),
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while not workers and time.monotonic() < deadline and bench.poll() is None:
            workers = _children(bench.pid, "toolkit.bench.measure")
            time.sleep(0.05)
        assert workers, bench.communicate(timeout=30)
        time.sleep(2.0)  # loaded and measuring (a 60 s measurement)
        assert _alive(workers[0])
        bench.kill()
        bench.wait(timeout=10)
        assert _wait_gone(workers[0], 5.0), "the measuring worker outlived the SIGKILLed bench"
    finally:
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if bench.poll() is None:
            bench.kill()
        bench.communicate()


# A parent that starts a lifeline'd child, prints its pid and waits; the test SIGKILLs the parent.
PARENT = """
import subprocess, sys, time
from toolkit.runtime.lifeline import child_env
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]], env=child_env(), stdout=subprocess.PIPE, text=True)
print(child.pid, child.stdout.readline().strip(), flush=True)
time.sleep(120)
"""
CHILD = """
import sys, time
if {force_poll}:
    sys.platform = "portable"  # as on macOS: no prctl
from toolkit.runtime.lifeline import die_with_parent
print(die_with_parent(), flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize(
    "force_poll, how", [(False, "pdeathsig" if sys.platform.startswith("linux") else "poll"), (True, "poll")]
)
def test_a_lifelined_child_dies_with_its_parent(force_poll: bool, how: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, CHILD.format(force_poll=force_poll)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    child = 0
    try:
        child_pid, used = parent.stdout.readline().split()
        child = int(child_pid)
        assert used == how
        assert _alive(child)
        parent.kill()
        parent.wait(timeout=10)
        assert _wait_gone(child, 5.0), f"the child ({how}) outlived its SIGKILLed parent"
    finally:
        if child and _alive(child):
            os.kill(child, signal.SIGKILL)
        if parent.poll() is None:
            parent.kill()
        parent.communicate()


def test_an_orphan_at_birth_exits_at_once() -> None:
    """The parent died before the child called die_with_parent: the child must not start its work."""
    code = "from toolkit.runtime.lifeline import die_with_parent; die_with_parent(); print('ran')"
    env = {**os.environ, "PYTHONPATH": str(REPO), "TOOLKIT_PARENT_PID": "1"}  # pid 1 is not our parent
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 137 and "ran" not in proc.stdout
