"""Which interpreter package runs a model: a tflite-runtime that cannot work with numpy 2 is refused by name."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from toolkit.runtime import backends


def _fake_tflite_runtime(root: Path, version: str) -> None:
    package = root / "tflite_runtime"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "interpreter.py").write_text("class Interpreter: pass\ndef load_delegate(*a): pass\n")
    info = root / f"tflite_runtime-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: tflite-runtime\nVersion: {version}\n")


@pytest.fixture
def fake_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m.startswith("tflite_runtime")]:
        monkeypatch.delitem(sys.modules, name)
    return tmp_path


def test_old_tflite_runtime_is_refused_under_numpy_2(fake_site: Path) -> None:
    assert int(np.__version__.split(".")[0]) >= 2
    _fake_tflite_runtime(fake_site, "2.14.0")
    with pytest.raises(
        ImportError,
        match=r"tflite-runtime 2.14 was built for numpy 1.x and cannot run with numpy "
        r".*install ai-edge-litert instead \(1.4.0 on aarch64, 2.3.0 on x86_64",
    ):
        backends._load("tflite_runtime")


def test_a_numpy_2_tflite_runtime_would_be_used(fake_site: Path) -> None:
    _fake_tflite_runtime(fake_site, "2.16.1")
    backend = backends._load("tflite_runtime")
    assert backend.name == "tflite_runtime" and backend.version == "2.16.1"
