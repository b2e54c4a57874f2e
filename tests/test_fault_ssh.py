"""Fault suite, ``bench --remote --ssh-option`` (issue 15, finding 7): only options that tune the connection pass
to ``ssh -o``; ProxyCommand and the other keys that run local commands, load libraries or redirect ssh are refused
with exit 2 before ssh is started, and the message lists the allowed keys."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import REPO, assert_one_line_error

from toolkit.bench.remote import SAFE_SSH_OPTIONS, check_ssh_option
from toolkit.errors import UsageError

MODEL = REPO / "models" / "behaviour" / "behaviour_int8.tflite"
DANGEROUS = [
    "ProxyCommand=touch {s}",
    "proxycommand=touch {s}",
    " PROXYCOMMAND = touch {s}",
    "LocalCommand=touch {s}",
    "PermitLocalCommand=yes",
    "KnownHostsCommand=/bin/touch {s}",
    "ProxyJump=evil@host",
    "Include=/tmp/evil_config",
    "Match=exec touch {s}",
    "PKCS11Provider=/tmp/evil.so",
    "SecurityKeyProvider=/tmp/evil.so",
    "ForwardAgent=yes",
    "RemoteCommand=touch {s}",
    "HostName=elsewhere",
    "ControlPath=/tmp/sock",
    "SendEnv=*",
]


@pytest.mark.parametrize("option", DANGEROUS)
def test_dangerous_options_are_refused_with_the_allowed_list(option: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not allowed") as err:
        check_ssh_option(option.format(s=tmp_path / "sentinel"))
    assert "allowed: " + ", ".join(SAFE_SSH_OPTIONS) in str(err.value) and len(str(err.value)) < 400


@pytest.mark.parametrize(
    "option",
    [
        "ProxyCommand touch /tmp/x",
        "-oProxyCommand=touch /tmp/x",
        "=x",
        "Port",
        "Port=22\nProxyCommand=touch /tmp/x",
        "ConnectTimeout=",
    ],
)
def test_malformed_options_are_refused(option: str) -> None:
    with pytest.raises(UsageError, match="KEY=VALUE"):
        check_ssh_option(option)


@pytest.mark.parametrize(
    ("option", "passed"),
    [
        ("Port=2222", "Port=2222"),
        ("userknownhostsfile=/tmp/kh", "UserKnownHostsFile=/tmp/kh"),
        ("ServerAliveInterval = 15", "ServerAliveInterval=15"),
        ("StrictHostKeyChecking=yes", "StrictHostKeyChecking=yes"),
        ("HostKeyAlias=pi", "HostKeyAlias=pi"),
    ],
)
def test_safe_options_pass_in_their_canonical_spelling(option: str, passed: str) -> None:
    assert check_ssh_option(option) == passed


@pytest.mark.skipif(
    shutil.which("ssh") is None, reason="needs the OpenSSH client to show the command would run"
)
@pytest.mark.parametrize(
    "option", ["ProxyCommand=touch {s}", "proxycommand=sh -c 'touch {s}'", "LocalCommand=touch {s}"]
)
def test_cli_never_runs_the_local_command(cli, tmp_path: Path, option: str) -> None:
    sentinel = tmp_path / "sentinel"
    result = cli(
        "bench",
        MODEL,
        "--no-store",
        "--remote",
        "nobody@127.0.0.1:1",
        "--connect-timeout",
        "2",
        "--ssh-option",
        option.format(s=sentinel),
        "--ssh-option",
        "PermitLocalCommand=yes",
        timeout=60,
    )
    assert_one_line_error(result, 2, "not allowed")
    assert not sentinel.exists()


def test_bad_option_is_exit_2_even_without_an_ssh_client(cli, tmp_path: Path) -> None:
    """Bad input is reported as such (2), not as a missing client (3), and before any other check."""
    result = cli(
        "bench",
        MODEL,
        "--no-store",
        "--remote",
        "pi@host",
        "--ssh-option",
        "ProxyCommand=x",
        env={"PATH": str(tmp_path)},
    )
    assert_one_line_error(result, 2, "--ssh-option ProxyCommand: not allowed")
