"""Benchmark on another machine over SSH: copy the models with scp, run ``toolkit bench --json`` there, bring the
result back. Uses the system OpenSSH client (``ssh``/``scp``) non-interactively: BatchMode=yes (never prompts),
ConnectTimeout, StrictHostKeyChecking=accept-new (first contact records the key; a CHANGED key still fails).

The remote needs the toolkit's device install; ``remote_toolkit`` is the shell command that starts it there
(default ``toolkit``; e.g. ``python3 -m toolkit`` or ``~/venv/bin/toolkit``).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.errors import DeviceUnavailable, ToolkitError, UsageError, one_line

# ``--ssh-option`` keys that only tune the connection. Everything else is refused: ProxyCommand, LocalCommand
# (+PermitLocalCommand) and KnownHostsCommand run a local command; PKCS11Provider and SecurityKeyProvider load a
# local library; ProxyJump, HostName, User, Include and Match change where or how ssh connects (use --remote);
# ForwardAgent, *Forward, SendEnv/SetEnv, ControlMaster/ControlPath hand local credentials or state to the remote.
SAFE_SSH_OPTIONS = (
    "AddressFamily",
    "BatchMode",
    "CheckHostIP",
    "Ciphers",
    "Compression",
    "ConnectionAttempts",
    "ConnectTimeout",
    "GlobalKnownHostsFile",
    "HostKeyAlgorithms",
    "HostKeyAlias",
    "IdentitiesOnly",
    "KexAlgorithms",
    "LogLevel",
    "MACs",
    "Port",
    "ServerAliveCountMax",
    "ServerAliveInterval",
    "StrictHostKeyChecking",
    "TCPKeepAlive",
    "UserKnownHostsFile",
)
_SAFE_KEYS = {key.lower(): key for key in SAFE_SSH_OPTIONS}  # ssh matches option names case-insensitively
_OPTION = re.compile(r"^\s*([A-Za-z0-9]+)\s*=(.*)$", re.DOTALL)


def check_ssh_option(option: str) -> str:
    """``KEY=VALUE`` for ``ssh -o`` when KEY is in :data:`SAFE_SSH_OPTIONS` (returned as ``Key=VALUE``), else a
    UsageError that lists the allowed keys; control characters in the value are refused too."""
    match = _OPTION.match(option)
    if not match:
        raise UsageError(f"--ssh-option {option!r}: expected KEY=VALUE, e.g. UserKnownHostsFile=/tmp/kh")
    key, value = match[1], match[2].strip()
    if key.lower() not in _SAFE_KEYS:
        raise UsageError(
            f"--ssh-option {key[:24]}: not allowed (may run commands or redirect ssh); "
            f"allowed: {', '.join(SAFE_SSH_OPTIONS)}"
        )
    if not value or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise UsageError(f"--ssh-option {key}: expected KEY=VALUE with a value of printable characters")
    return f"{_SAFE_KEYS[key.lower()]}={value}"


_REMOTE = re.compile(
    r"^(?:(?P<user>[^@\s:/]+)@)?(?P<host>\[[0-9a-fA-F:.]+\]|[^@\s:/\[\]]+)(?::(?P<port>\d+))?$"
)


@dataclass(frozen=True)
class RemoteTarget:
    """A parsed ``--remote`` address: optional user, host (IPv6 without brackets) and optional SSH port."""

    user: str | None
    host: str
    port: int | None

    @property
    def destination(self) -> str:
        """``user@host`` (or ``host``), the form ssh takes; the port is passed separately."""
        return f"{self.user}@{self.host}" if self.user else self.host

    def __str__(self) -> str:
        return self.destination + (f":{self.port}" if self.port else "")


def parse_remote(text: str) -> RemoteTarget:
    """'user@host[:port]' (IPv6 in brackets: 'pi@[fe80::1]:2222') -> RemoteTarget."""
    match = _REMOTE.match(text.strip())
    if not match:
        raise UsageError(f"--remote {text!r}: expected user@host or user@host:port")
    port = int(match["port"]) if match["port"] else None
    if port is not None and not 0 < port < 65536:
        raise UsageError(f"--remote {text!r}: port must be 1-65535")
    return RemoteTarget(match["user"], match["host"].strip("[]"), port)


class SshClient:
    """Runs commands on and copies files to one remote target with the OpenSSH client binaries."""

    def __init__(
        self,
        target: RemoteTarget,
        identity: str | Path | None = None,
        options: tuple[str, ...] = (),
        connect_timeout: int = 10,
    ) -> None:
        extra = [item for option in options for item in ("-o", check_ssh_option(option))]  # bad input first
        if identity is not None and not Path(identity).is_file():
            raise UsageError(f"identity file not found: {identity}")
        for tool in ("ssh", "scp"):
            if shutil.which(tool) is None:
                raise DeviceUnavailable(
                    f"'{tool}' not found: install the OpenSSH client (apt install openssh-client)"
                )
        self.target = target
        opts = [
            "-o",
            "BatchMode=yes",
            "-o",
            f"ConnectTimeout={int(connect_timeout)}",
            "-o",
            "StrictHostKeyChecking=accept-new",
        ]
        if identity is not None:
            opts += ["-i", str(identity), "-o", "IdentitiesOnly=yes"]
        opts += extra
        self.options = opts
        self.timeout = connect_timeout

    def ssh(self, command: str, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``command`` (a remote shell line) on the target; return the finished process with text stdout and
        stderr, whatever its exit status. subprocess.TimeoutExpired after ``timeout`` seconds."""
        argv = ["ssh", *self.options]
        if self.target.port:
            argv += ["-p", str(self.target.port)]
        return subprocess.run(
            [*argv, self.target.destination, command],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def scp(self, paths: list[Path], remote_dir: str) -> None:
        """Copy local ``paths`` into the existing folder ``remote_dir`` on the target; DeviceUnavailable with
        scp's last error line when the copy fails."""
        argv = ["scp", "-q", *self.options]
        if self.target.port:
            argv += ["-P", str(self.target.port)]
        dest = f"[{self.target.host}]" if ":" in self.target.host else self.target.host
        dest = f"{self.target.user}@{dest}" if self.target.user else dest
        proc = subprocess.run(
            [*argv, *map(str, paths), f"{dest}:{remote_dir}/"],
            capture_output=True,
            text=True,
            timeout=None,
            stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0:
            raise DeviceUnavailable(f"copying models to {self.target} failed: {_last_line(proc.stderr)}")

    def check(self, remote_toolkit: str) -> str:
        """Reach the host and find the toolkit there; returns its version line."""
        try:
            proc = self.ssh(f"{remote_toolkit} --version", timeout=self.timeout + 60)
        except subprocess.TimeoutExpired:
            raise DeviceUnavailable(
                f"cannot reach {self.target}: no answer within {self.timeout + 60} s"
            ) from None
        if proc.returncode == 255:
            raise DeviceUnavailable(f"cannot reach {self.target}: {_last_line(proc.stderr)}")
        if proc.returncode != 0:
            raise DeviceUnavailable(
                f"{self.target} has no working toolkit ('{remote_toolkit} --version' failed: "
                f"{_last_line(proc.stderr or proc.stdout)}); install the device install there "
                "(pip install edge-toolkit) or point --remote-toolkit / --remote-python at it"
            )
        return proc.stdout.strip()


def _last_line(text: str) -> str:
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return one_line(lines[-1], 240) if lines else "no error output"


def bench_remote(
    client: SshClient, models: list[Path], bench_args: list[str], remote_toolkit: str
) -> dict[str, Any]:
    """Copy ``models`` (and their manifest sidecars) to a temporary folder on the remote, run
    ``REMOTE_TOOLKIT bench MODELS BENCH_ARGS --json --no-store`` there, delete the folder; returns the parsed JSON.
    """
    from toolkit.bench.inputs import manifest_path

    client.check(remote_toolkit)
    folders = " ".join(f'"$d/{i}"' for i in range(len(models)))
    proc = client.ssh(
        f'd=$(mktemp -d -t toolkit-bench.XXXXXX) && mkdir {folders} && echo "$d"', timeout=client.timeout + 60
    )
    remote_dir = proc.stdout.strip()
    if proc.returncode != 0 or not remote_dir.startswith("/"):
        raise DeviceUnavailable(
            f"cannot create a temporary folder on {client.target}: {_last_line(proc.stderr or proc.stdout)}"
        )
    try:
        remote_models = []
        for i, model in enumerate(models):
            sidecar = manifest_path(model)
            client.scp([model, *([sidecar] if sidecar else [])], f"{remote_dir}/{i}")
            remote_models.append(f"{remote_dir}/{i}/{model.name}")
        command = " ".join(
            [
                remote_toolkit,
                "bench",
                *map(shlex.quote, remote_models),
                *map(shlex.quote, bench_args),
                "--json",
                "--no-store",
            ]
        )
        proc = client.ssh(command)
    finally:
        try:
            client.ssh(f"rm -rf {shlex.quote(remote_dir)}", timeout=client.timeout + 30)
        except (subprocess.TimeoutExpired, OSError):
            pass  # cleanup is best effort; the folder is in the remote's temporary directory
    if proc.returncode != 0:
        message = f"on {client.target}: {_last_line(proc.stderr)}"
        if proc.returncode == 2:
            raise UsageError(message)
        if proc.returncode in (3, 255):
            raise DeviceUnavailable(message)
        raise ToolkitError(message)
    try:
        reply = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise ToolkitError(
            f"{client.target} answered with something that is not the bench JSON: "
            f"{one_line(proc.stdout, 120)}"
        ) from None
    if not isinstance(reply, dict) or not isinstance(reply.get("results"), list):
        raise ToolkitError(f"{client.target} answered with JSON without 'results'")
    for result in reply["results"]:  # store the local file's path; the remote copy is gone
        for local, remote in zip(models, remote_models, strict=True):
            if result.get("model") == remote or str(result.get("model", "")).endswith(
                remote.split(remote_dir, 1)[1]
            ):
                result["remote_model"] = result["model"]
                result["model"] = str(local.resolve())
                break
    return reply
