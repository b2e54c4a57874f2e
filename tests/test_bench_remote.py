"""`toolkit bench --remote` against a real OpenSSH server on 127.0.0.1 (this machine plays the device)."""

from __future__ import annotations

import getpass
import os
import shlex
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO, assert_one_line_error

pytestmark = [pytest.mark.ssh, pytest.mark.shared]
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
# The "device" runs the toolkit from this checkout with this interpreter (the repo's venv python).
REMOTE_TOOLKIT = f"env PYTHONPATH={shlex.quote(str(REPO))} {shlex.quote(sys.executable)} -m toolkit"


@dataclass(frozen=True)
class Server:
    port: int
    user: str
    key: Path
    known_hosts: Path

    def args(self, port: int | None = None) -> list[str]:
        return [
            "--remote",
            f"{self.user}@127.0.0.1:{port or self.port}",
            "-i",
            str(self.key),
            "--ssh-option",
            f"UserKnownHostsFile={self.known_hosts}",
            "--connect-timeout",
            "5",
        ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not Path(SSHD).is_file() or shutil.which("ssh-keygen") is None:
        pytest.skip("OpenSSH server not installed (apt-get install -y openssh-server)")
    root = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)], check=True)
    authorized = root / "authorized_keys"
    shutil.copy(root / "client_key.pub", authorized)
    authorized.chmod(0o600)
    if os.geteuid() == 0 and not Path("/run/sshd").is_dir():
        # sshd started as root insists on its privilege-separation directory (normally made by systemd).
        Path("/run/sshd").mkdir(mode=0o755, parents=True)
    port = _free_port()
    config = root / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {root / 'host_key'}",
                f"AuthorizedKeysFile {authorized}",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "PidFile none",
                f"AllowUsers {getpass.getuser()}",
                "Subsystem sftp internal-sftp",
                "",
            ]
        )
    )
    log = open(root / "sshd.log", "w")  # closed at teardown
    proc = subprocess.Popen([SSHD, "-D", "-f", str(config), "-e"], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"sshd exited: {(root / 'sshd.log').read_text()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    try:
        yield Server(port, getpass.getuser(), root / "client_key", root / "known_hosts")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def face(shared: Path) -> Path:
    return shared / "models" / "mediapipe-0.10.14" / "face_detection_short_range.tflite"


def _leftovers() -> set[str]:
    return {p.name for p in Path("/tmp").glob("toolkit-bench.*")}


def test_remote_bench_stored_locally_with_target(cli, sshd: Server, face: Path, tmp_path: Path) -> None:
    model = tmp_path / "face_fp16.tflite"
    shutil.copy(face, model)
    (tmp_path / "face_fp16.json").write_text('{"kind": "detector"}')  # travels with the model
    db = tmp_path / "local.sqlite"
    before = _leftovers()
    result = cli(
        "bench",
        model,
        "--runs",
        "20",
        "--warmup",
        "2",
        "--threads",
        "1",
        "--db",
        db,
        *sshd.args(),
        "--remote-toolkit",
        REMOTE_TOOLKIT,
        "--target",
        "lab-device",
    )
    assert result.returncode == 0, result.stderr
    assert "target lab-device:" in result.stdout and "coco128" in result.stdout
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "SELECT r.target, r.model_name, r.count, r.kind, length(r.samples), s.host_json, r.model_path "
        "FROM results r JOIN sessions s ON s.id = r.session_id"
    ).fetchall()
    conn.close()
    assert len(rows) == 1
    target, name, count, kind, samples, host, path = rows[0]
    assert path == str(model.resolve())  # the local file, not the deleted remote copy
    assert (target, name, count, kind) == ("lab-device", "face_fp16.tflite", 20, "detector")
    assert samples > 0 and '"backend": "ai_edge_litert"' in host
    assert _leftovers() == before  # the remote temporary folder was removed

    report = cli("bench", "report", "--db", db)
    assert "lab-device" in report.stdout


def test_remote_usage_error_comes_back_as_one_line(cli, sshd: Server, face: Path, tmp_path: Path) -> None:
    db = tmp_path / "local.sqlite"
    result = cli(
        "bench",
        face,
        "--delegate",
        "/nonexistent/libdelegate.so",
        "--db",
        db,
        *sshd.args(),
        "--remote-toolkit",
        REMOTE_TOOLKIT,
    )
    assert_one_line_error(
        result, 2, f"on {sshd.user}@127.0.0.1:{sshd.port}: toolkit bench: error: delegate library not found"
    )
    assert not db.exists() or sqlite3.connect(db).execute("SELECT COUNT(*) FROM results").fetchone() == (0,)


def test_unreachable_host_exit_3(cli, sshd: Server, face: Path, tmp_path: Path) -> None:
    result = cli("bench", face, "--db", tmp_path / "b.sqlite", *sshd.args(port=_free_port()))
    assert_one_line_error(result, 3, "cannot reach")


def test_host_without_toolkit_exit_3(cli, sshd: Server, face: Path, tmp_path: Path) -> None:
    result = cli(
        "bench",
        face,
        "--db",
        tmp_path / "b.sqlite",
        *sshd.args(),
        "--remote-toolkit",
        "/nonexistent/bin/toolkit",
    )
    assert_one_line_error(result, 3, "has no working toolkit")


def test_remote_flags_need_remote(cli, face: Path) -> None:
    assert_one_line_error(cli("bench", face, "--remote-python", "python3"), 2, "need --remote")
