"""Pure logic of toolkit bench: statistics, throttling decode, names/families, report tables, SSH target parsing."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from toolkit.bench.host import (
    decode_throttled,
    fingerprint,
    host_warnings,
    parse_throttled_output,
    read_throttled,
)
from toolkit.bench.measure import time_invokes
from toolkit.bench.modelinfo import model_family, model_format, split_name
from toolkit.bench.remote import parse_remote
from toolkit.bench.report import build_tables, render
from toolkit.bench.stats import pack_samples, summarize, thin, unpack_samples
from toolkit.bench.store import accuracy_from_metrics
from toolkit.errors import UsageError


def test_summarize_hand_checked() -> None:
    stats = summarize(np.arange(1, 101, dtype=np.float64))  # 1..100 ms
    assert stats.count == 100
    assert stats.mean_ms == pytest.approx(50.5)
    assert stats.min_ms == 1 and stats.max_ms == 100
    assert stats.p50_ms == pytest.approx(50.5)  # linear interpolation between 50 and 51
    assert stats.p90_ms == pytest.approx(90.1)
    assert stats.p99_ms == pytest.approx(99.01)
    assert stats.std_ms == pytest.approx(np.sqrt((100**2 - 1) / 12))
    assert stats.throughput == pytest.approx(1000 / 50.5)
    with pytest.raises(ValueError):
        summarize(np.array([]))


def test_samples_round_trip_and_thinning() -> None:
    samples = np.random.default_rng(0).gamma(2.0, 1.0, 5000).astype(np.float32)
    blob = pack_samples(samples)
    assert len(blob) < samples.nbytes
    np.testing.assert_array_equal(unpack_samples(blob), samples)
    thinned = thin(samples, 100)
    assert thinned.size == 100 and thinned[0] == samples[0] and thinned[-1] == samples[-1]
    assert unpack_samples(None).size == 0


def test_time_invokes_counts_and_budget() -> None:
    calls = []
    latencies = time_invokes(lambda: calls.append(1), runs=37)
    assert len(calls) == 37 and latencies.shape == (37,) and np.all(latencies >= 0)
    calls.clear()
    latencies = time_invokes(lambda: calls.append(1), seconds=0.05)
    assert len(calls) == latencies.size > 10


@pytest.mark.parametrize(
    ("value", "now", "occurred"),
    [
        (0x0, (), ()),
        (0x50005, ("under_voltage", "throttled"), ("under_voltage", "throttled")),
        (0x80008, ("soft_temperature_limit",), ("soft_temperature_limit",)),
        (0x20000, (), ("arm_frequency_capped",)),
        (
            0xF000F,
            ("under_voltage", "arm_frequency_capped", "throttled", "soft_temperature_limit"),
            ("under_voltage", "arm_frequency_capped", "throttled", "soft_temperature_limit"),
        ),
    ],
)
def test_decode_throttled(value: int, now: tuple, occurred: tuple) -> None:
    state = decode_throttled(value)
    assert state.now == now and state.occurred == occurred
    assert state.throttled_now is bool(now)


def test_parse_throttled_output() -> None:
    assert parse_throttled_output("throttled=0x50005\n").raw == 0x50005
    assert parse_throttled_output("throttled=0x0").now == ()
    assert parse_throttled_output('error=1 error_msg="Command not registered"') is None


def _fake_vcgencmd(bin_dir: Path, output: str) -> None:
    script = bin_dir / "vcgencmd"
    script.write_text(f"#!/bin/sh\n[ \"$1\" = get_throttled ] && echo '{output}'\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


@pytest.mark.parametrize(
    ("output", "now"), [("throttled=0x0", []), ("throttled=0x50005", ["under_voltage", "throttled"])]
)
def test_read_throttled_with_fake_vcgencmd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str, now: list
) -> None:
    _fake_vcgencmd(tmp_path, output)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    state, note = read_throttled()
    assert state is not None and note == ""
    assert list(state.now) == now
    host = fingerprint("ai_edge_litert", "2.3.0").as_dict()
    assert host["throttle"]["raw"] == output.split("=")[1]
    assert any("throttling now" in w for w in host_warnings(host)) is bool(now)


def test_read_throttled_without_vcgencmd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no vcgencmd
    state, note = read_throttled()
    assert state is None and "vcgencmd not found" in note
    host = fingerprint().as_dict()
    assert host["throttle"] is None and host["cores"] >= 1 and host["python"]


def test_governor_warning() -> None:
    assert host_warnings({"governors": ["performance"]}) == []
    assert "ondemand" in host_warnings({"governors": ["ondemand"]})[0]


def test_names_formats_and_families() -> None:
    assert split_name("detector_int8_edgetpu.tflite") == ("detector", "int8")
    assert split_name("nets/pose_fp16.tflite") == ("pose", "fp16")
    assert split_name("pose.tflite") == ("pose", None)
    assert split_name("int8.tflite") == ("int8", None)  # a bare suffix is a name, not a format
    assert model_family("a/detector_fp32.tflite", {}) == "detector"
    sha = "ab" * 32
    assert model_family("x_int8.tflite", {"kind": "detector", "source_sha256": sha}) == f"detector@{'ab' * 6}"
    assert model_family("y.tflite", {"source": {"sha256": sha}}) == f"model@{'ab' * 6}"
    assert model_format("m_int8.tflite", None, {"quantize": "fp16"}) == ("fp16", "manifest")
    assert model_format("m.tflite", None, {"mode": "dynamic"}) == (
        "dynamic",
        "manifest",
    )  # toolkit convert's key
    enc = {"kind": "vae_encoder", "source": {"sha256": sha}}
    assert model_family("a.tflite", enc) != model_family("a.tflite", {**enc, "kind": "vae_decoder"})
    assert model_format("m_dynamic.tflite", None, {}) == ("dynamic", "name")


def test_accuracy_from_metrics() -> None:
    assert accuracy_from_metrics({"top1": 0.9, "top5": 0.99}) == (0.9, "top1")
    assert accuracy_from_metrics({"ade": 0.5}) == (0.5, "ade")
    assert accuracy_from_metrics({"x": 1.5}) == (1.5, "x")
    assert accuracy_from_metrics({"a": 1.0, "b": 2.0}) == (None, None)
    assert accuracy_from_metrics({}) == (None, None)


def _result(name: str, fmt: str, target: str, p50: float, threads: int = 1, **extra) -> dict:
    return {
        "family": split_name(name)[0],
        "model_name": name,
        "format": fmt,
        "target": target,
        "threads": threads,
        "delegate": "xnnpack",
        "p50_ms": p50,
        "p90_ms": p50 * 1.1,
        "p99_ms": p50 * 1.5,
        "mean_ms": p50,
        "count": 100,
        "size_bytes": 2048,
        "peak_rss_mb": 50.0,
        "throttled": 0,
        **extra,
    }


def test_report_speedup_within_family_target_and_threads() -> None:
    results = [
        _result("det_fp32.tflite", "fp32", "pi", 40.0),
        _result("det_int8.tflite", "int8", "pi", 10.0, accuracy=0.61, accuracy_metric="map50"),
        _result("det_int8.tflite", "int8", "laptop", 2.0),  # no fp32 on laptop: no speed-up
        _result("det_int8.tflite", "int8", "pi", 6.0, threads=4),  # no fp32 at 4 threads: no speed-up
        _result("seg_fp32.tflite", "fp32", "pi", 8.0),
    ]
    tables = build_tables(results)
    assert [t.family for t in tables] == ["det", "seg"]
    rows = {(r.format, r.target, r.threads): r for r in tables[0].rows}
    assert rows[("fp32", "pi", 1)].speedup == pytest.approx(1.0)
    assert rows[("int8", "pi", 1)].speedup == pytest.approx(4.0)
    assert rows[("int8", "laptop", 1)].speedup is None
    assert rows[("int8", "pi", 4)].speedup is None
    # rows are ordered target, threads, then fp32 < fp16 < dynamic < int8
    assert [(r.target, r.threads, r.format) for r in tables[0].rows] == [
        ("laptop", 1, "int8"),
        ("pi", 1, "fp32"),
        ("pi", 1, "int8"),
        ("pi", 4, "int8"),
    ]

    text = render(tables, "table")
    assert "4.00x" in text and "map50=0.61" in text and "== det (det_fp32.tflite, det_int8.tflite)" in text
    md = render(tables, "md")
    assert md.count("### ") == 2 and "| int8 | pi | 1 | xnnpack | 10.00 |" in md
    parsed = list(csv.DictReader(io.StringIO(render(tables, "csv"))))
    assert len(parsed) == 5 and {p["family"] for p in parsed} == {"det", "seg"}
    assert float(
        next(p for p in parsed if p["format"] == "int8" and p["target"] == "pi" and p["threads"] == "1")[
            "speedup"
        ]
    ) == pytest.approx(4.0)
    data = json.loads(render(tables, "json"))
    assert data[0]["rows"][2]["speedup"] == pytest.approx(4.0)


def test_report_html_escapes_names() -> None:
    page = render(build_tables([_result("<b>x_fp32.tflite", "fp32", "t&1", 1.0)]), "html")
    assert page.startswith("<!DOCTYPE html>") and "&lt;b&gt;x" in page and "t&amp;1" in page
    assert "<b>x" not in page


@pytest.mark.parametrize(
    ("text", "user", "host", "port"),
    [
        ("pi@raspberrypi.local", "pi", "raspberrypi.local", None),
        ("pi@10.0.0.5:2222", "pi", "10.0.0.5", 2222),
        ("board", None, "board", None),
        ("me@[fe80::1]:22", "me", "fe80::1", 22),
    ],
)
def test_parse_remote(text: str, user: str | None, host: str, port: int | None) -> None:
    target = parse_remote(text)
    assert (target.user, target.host, target.port) == (user, host, port)


@pytest.mark.parametrize("text", ["pi@", "a b@host", "pi@host:99999", "pi@host:port", ""])
def test_parse_remote_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        parse_remote(text)


def _fake_runner(**specs):
    """Only the ``inputs`` mapping of a Runner: what make_inputs reads."""
    from types import SimpleNamespace

    return SimpleNamespace(inputs=specs)


def test_make_inputs_latent_and_random() -> None:
    from toolkit.bench.inputs import make_inputs
    from toolkit.runtime import TensorSpec

    z = TensorSpec("z", 0, (1, 64), np.dtype(np.float32), 0.0, 0)
    feeds, source = make_inputs(_fake_runner(z=z), {"kind": "vae_decoder"}, seed=3)
    # a VAE decoder gets prior latents from the VAE evaluator (N(0, 1), the sampling the card's grids use)
    assert source.startswith("mnist:split=test sample (seed 3)") and feeds["z"].dtype == np.float32
    assert feeds["z"].min() < 0 < feeds["z"].max()
    q = TensorSpec("x", 0, (1, 10), np.dtype(np.int8), 0.5, -3)
    feeds, source = make_inputs(_fake_runner(x=q), {}, seed=0)
    assert feeds["x"].dtype == np.int8 and source == "random uniform [0, 1] seed 0"
    assert set(np.unique(feeds["x"])) <= {-3, -2, -1}  # [0, 1] / 0.5 - 3, rounded
    with pytest.raises(UsageError, match="input_range"):
        make_inputs(_fake_runner(x=q), {"input_range": [1, 0]})


@pytest.mark.shared
def test_make_inputs_real_image_quantized(shared: Path) -> None:
    from toolkit.bench.inputs import make_inputs
    from toolkit.runtime import TensorSpec

    image = TensorSpec("image", 0, (1, 32, 32, 3), np.dtype(np.int8), 1 / 255, -128)
    feeds, source = make_inputs(_fake_runner(image=image), {"kind": "detector"})
    assert source.startswith("coco128:split=all sample") and feeds["image"].dtype == np.int8
    assert feeds["image"].std() > 10  # a photo, not a constant
    digit = TensorSpec("image", 0, (1, 28, 28, 1), np.dtype(np.float32), 0.0, 0)
    feeds, source = make_inputs(_fake_runner(image=digit), {"kind": "classifier", "input_range": [-1, 1]})
    assert source.startswith("mnist:split=test sample (seed 0)")
    assert feeds["image"].min() >= 0.0 and feeds["image"].max() <= 1.0 and feeds["image"].std() > 0.1
