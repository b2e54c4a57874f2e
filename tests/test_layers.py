"""The package's layers, written once, and the import rules that keep them one-way.

Lower layers never import higher ones -- not at module level, not inside a function, not for type checking --
so the device path (runtime, adapters, data, pipeline) can be read, installed and tested without the TensorFlow
side above it. The order is the dependency order, not the order a model travels in: ``runtime`` sits under
``convert`` because the converter checks what it wrote with the same interpreter the device runs, and ``eval``
sits over ``pipeline`` because tracking is scored by running the pipeline's tracker.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "toolkit"

# Lowest first. A module may import its own layer and the layers before it, never a later one.
LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "errors",
        "config",
        "fileio",
        "paths",
        "capabilities",
        "__init__",
    ),  # foundation: no numpy models, no IO policy
    ("runtime",),  # the LiteRT interpreter: load, check, run a .tflite
    ("adapters",),  # pre- and post-processing: letterbox, box decoding, NMS, trajectory frames, label maps
    ("data",),  # datasets and SPECs: loaders, the synthetic street, calibration / benchmark inputs
    ("inspect",),  # what a .tflite holds: ops, dtypes, Edge TPU mapping
    ("models",),  # Keras model definitions (TensorFlow from here up)
    ("train",),  # training tasks and the trainer
    ("convert",),  # Keras -> .tflite, calibration, QAT, per-layer reports
    ("pipeline",),  # the camera pipeline: sources, stages, tracker, outputs
    ("eval",),  # metrics and evaluators for every kind (float and int8 through the same code)
    ("bench",),  # latency, memory and accuracy per model, format and target
    ("zoobuild",),  # building the shipped models (installed as toolkit.zoo) and their cards from recipes
    ("deploy",),  # device checks (doctor)
    ("cli", "__main__"),  # argument parsing and printing only
)
# The device install has no TensorFlow: these layers never import the TensorFlow ones, even lazily.
DEVICE_PATH = ("runtime", "adapters", "data", "inspect", "pipeline", "deploy")
TENSORFLOW_SIDE = ("models", "train", "convert")

RANK = {name: i for i, names in enumerate(LAYERS) for name in names}


def _layer(module: str) -> str:
    """toolkit.pipeline.detect -> pipeline; toolkit.errors -> errors; toolkit -> __init__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported toolkit module, line, at module level) for every import in ``path``."""
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    return _imports_of(path.read_text(encoding="utf-8"), package)


def _imports_of(text: str, package: str) -> list[tuple[str, int, bool]]:
    """:func:`_imports` of source ``text`` living in ``package`` (relative imports resolve against it)."""
    tree = ast.parse(text)
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            # "from toolkit.data import spec" imports the module toolkit.data.spec
            names = [
                f"{base}.{alias.name}" if _is_module(f"{base}.{alias.name}") else base for alias in node.names
            ]
        else:
            continue
        for name in names:
            if name == "toolkit" or name.startswith("toolkit."):
                found.append((name, node.lineno, id(node) in top_level))
    return found


def _is_module(name: str) -> bool:
    path = ROOT.parent / name.replace(".", "/")
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


FILES = sorted(ROOT.rglob("*.py"))


def test_every_package_has_a_layer() -> None:
    unplaced = sorted({_layer(_module_name(f)) for f in FILES} - set(RANK))
    assert not unplaced, f"place these in LAYERS (tests/test_layers.py): {unplaced}"


def test_no_import_from_a_higher_layer() -> None:
    back_edges = []
    for path in FILES:
        here = _layer(_module_name(path))
        for target, line, _ in _imports(path):
            there = _layer(target)
            if here in RANK and there in RANK and RANK[there] > RANK[here]:
                back_edges.append(
                    f"{path.relative_to(ROOT.parent)}:{line} ({here}) imports {target} ({there})"
                )
    assert not back_edges, "imports against the layer order:\n" + "\n".join(back_edges)


def test_device_path_never_imports_tensorflow_layers() -> None:
    found = []
    for path in FILES:
        here = _layer(_module_name(path))
        if here not in DEVICE_PATH:
            continue
        for target, line, _ in _imports(path):
            if _layer(target) in TENSORFLOW_SIDE:
                found.append(f"{path.relative_to(ROOT.parent)}:{line} imports {target}")
    assert not found, "the device path reaches for TensorFlow code:\n" + "\n".join(found)


def test_no_module_level_import_cycle() -> None:
    """Between files: module-level imports form no cycle (a cycle makes import order matter)."""
    graph: dict[str, set[str]] = {}
    for path in FILES:
        name = _module_name(path)
        graph[name] = {t for t, _, top in _imports(path) if top and t != name}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            pytest.fail("module-level import cycle: " + " -> ".join(cycle))


def test_the_checker_sees_every_kind_of_import() -> None:
    """Relative, lazy and TYPE_CHECKING imports are all seen (else the rules above would pass vacuously)."""
    text = (
        "from typing import TYPE_CHECKING\nfrom . import spec\nfrom .. import errors\n"
        "if TYPE_CHECKING:\n    from toolkit.eval import report\n"
        "def f():\n    from toolkit.pipeline.detect import Detector\n"
    )
    found = {(name, top) for name, _, top in _imports_of(text, "toolkit.data")}
    assert found == {
        ("toolkit.data.spec", True),
        ("toolkit.errors", True),
        ("toolkit.eval.report", False),
        ("toolkit.pipeline.detect", False),
    }
