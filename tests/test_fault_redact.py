"""Fault suite, secrets in stream URLs (issue 15, finding 9): one function, ``redact_url``, hides passwords and
tokens wherever a source is shown -- errors, the Source's name and stats (the web view), events, the demo summary."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error

from toolkit.errors import DeviceUnavailable, UsageError
from toolkit.pipeline.redact import redact_url
from toolkit.pipeline.sources import Source, open_source, parse_spec

SECRETS = ("hunter2", "s3cr3t", "tok3n")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        # userinfo with an empty user: was printed unredacted
        ("rtsp://:hunter2@cam.local/live", "rtsp://:***@cam.local/live"),
        # '@' in the password: was 'admin:***@secret@...'
        ("rtsp://admin:top@hunter2@10.0.0.5:554/s", "rtsp://admin:***@10.0.0.5:554/s"),
        ("rtsp://admin:hunter2@10.0.0.5:554/s", "rtsp://admin:***@10.0.0.5:554/s"),
        # percent-encoded characters: kept in the user, hidden with the password
        ("rtsp://ad%40min:p%40ss%3Ahunter2@cam/x", "rtsp://ad%40min:***@cam/x"),
        # '/', '?' or '#' typed in a password
        ("rtsp://admin:hun/ter2@cam/x", "rtsp://admin:***@cam/x"),
        ("rtsp://admin:hun?ter2@cam/x", "rtsp://admin:***@cam/x"),
        ("rtsp://admin:hun#ter2@cam/x?channel=1", "rtsp://admin:***@cam/x?channel=1"),
        # a bare token as the user
        ("https://hunter2@stream.example/x", "https://***@stream.example/x"),
        # query-string and fragment secrets; harmless parameters stay readable
        (
            "https://cam/x?token=tok3n&password=s3cr3t&channel=1",
            "https://cam/x?token=***&password=***&channel=1",
        ),
        (
            "http://cam/x?user=admin&pwd=s3cr3t&api_key=tok3n&sig=abc",
            "http://cam/x?user=admin&pwd=***&api_key=***&sig=***",
        ),
        ("http://cam/x?Pass%77ord=s3cr3t", "http://cam/x?Pass%77ord=***"),
        ("http://cam/cb#access_token=tok3n&x=1", "http://cam/cb#access_token=***&x=1"),
        ("rtsp://cam/cam/realmonitor?channel=1&subtype=0", "rtsp://cam/cam/realmonitor?channel=1&subtype=0"),
        # URLs inside a message
        ("cannot open rtsp://u:hunter2@h/x: timeout", "cannot open rtsp://u:***@h/x: timeout"),
        ("source 'foo://u:hunter2@h/x': unsupported", "source 'foo://u:***@h/x': unsupported"),
        # not URLs: untouched
        ("/videos/a:b@c.mp4", "/videos/a:b@c.mp4"),
        ("clips/cam@2024:01.avi?x=1", "clips/cam@2024:01.avi?x=1"),
        ("0", "0"),
        ("/dev/video0", "/dev/video0"),
        ("synthetic:seed=3,fps=5", "synthetic:seed=3,fps=5"),
        ("C:/clips/a.mp4", "C:/clips/a.mp4"),
        ("rtsp://cam.local:554/live", "rtsp://cam.local:554/live"),
    ],
)
def test_redact_url(text: str, shown: str) -> None:
    assert redact_url(text) == shown
    assert redact_url(shown) == shown  # idempotent


class _Frames:
    """A capture that delivers a few small frames, then ends."""

    def __init__(self) -> None:
        self.left = 3

    def read(self):
        self.left -= 1
        return (self.left >= 0), np.full((12, 16, 3), 100, np.uint8) if self.left >= 0 else None

    def release(self) -> None:
        pass


URL = "rtsp://:hunter2@cam.local:554/live?token=tok3n&channel=1"


def test_source_name_and_stats_are_redacted() -> None:
    with open_source(URL, opener=_Frames, realtime=False) as source:
        assert source.name == "rtsp://:***@cam.local:554/live?token=***&channel=1"
        stats = json.dumps(source.stats())  # what the web view and the demo summary show
    assert not any(secret in stats for secret in SECRETS)
    direct = Source(_Frames, name=URL, kind="url", live=True)  # any Source, however it was made
    assert direct.name == source.name


def test_failure_reasons_are_redacted() -> None:
    def opener():
        raise OSError(f"could not connect to {URL.replace('rtsp', 'rtsps')}")

    with pytest.raises(DeviceUnavailable) as err:
        open_source(URL, opener=opener, open_timeout_s=1.0, max_retries=0)
    assert "cannot open stream rtsp://:***@cam.local" in str(err.value)
    assert not any(secret in str(err.value) for secret in SECRETS)


def test_bad_scheme_error_is_redacted() -> None:
    with pytest.raises(UsageError, match="unsupported URL scheme") as err:
        parse_spec("foo://admin:hunter2@cam/x")
    assert "hunter2" not in str(err.value) and "admin:***@cam" in str(err.value)


@pytest.mark.parametrize(
    "url",
    [
        "rtsp://:hunter2@127.0.0.1:1/live",
        "rtsp://admin:top@hunter2@127.0.0.1:1/live",
        "rtsp://127.0.0.1:1/live?token=tok3n&password=s3cr3t",
    ],
)
def test_cli_error_line_is_redacted(cli, url: str) -> None:
    result = cli("demo", "--headless", "--source", url, timeout=120)
    assert_one_line_error(result, 3, "cannot open stream rtsp://")
    assert not any(secret in result.stderr + result.stdout for secret in SECRETS)


@pytest.fixture
def http_clip(tmp_path: Path) -> Iterator[str]:
    """A small MJPG clip served over HTTP on 127.0.0.1 (credentials in the URL are accepted and ignored)."""
    import cv2

    writer = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (256, 192))
    for i in range(12):
        writer.write(np.full((192, 256, 3), 40 + 10 * i, np.uint8))
    writer.release()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://:hunter2@127.0.0.1:{server.server_port}/clip.avi?token=tok3n&password=s3cr3t&channel=1"
    finally:
        server.shutdown()
        server.server_close()


def test_demo_summary_and_events_never_hold_the_secrets(cli, http_clip: str, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    result = cli(
        "demo",
        "--headless",
        "--source",
        http_clip,
        "--max-frames",
        "3",
        "--no-pacing",
        "--events",
        events,
        "--json",
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    recorded = events.read_text()
    for text in (result.stdout, result.stderr, recorded):
        assert not any(secret in text for secret in SECRETS), text[:500]
    shown = json.loads(recorded.splitlines()[0])["source"]["name"]
    assert shown.startswith("http://:***@127.0.0.1:") and shown.endswith("?token=***&password=***&channel=1")
    assert json.loads(result.stdout)["source"]["source"] == shown


def test_usage_errors_that_echo_the_command_line_are_redacted(cli) -> None:
    """argparse repeats a stray argument; the CLI's one error line goes through redact_url too."""
    result = cli("demo", "--headless", "rtsp://admin:hunter2@cam/live?token=tok3n")
    assert_one_line_error(result, 2, "unrecognized arguments: rtsp://admin:***@cam/live?token=***")
    assert not any(secret in result.stderr for secret in SECRETS)
