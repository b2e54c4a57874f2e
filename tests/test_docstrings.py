"""Every public function, method and class of the runtime, convert, pipeline, bench and adapters packages has a
docstring (STYLE.md point 10). Read with ``ast`` only: nothing is imported, so the test takes milliseconds."""

from __future__ import annotations

import ast
from pathlib import Path

TOOLKIT = Path(__file__).resolve().parents[1] / "toolkit"
PACKAGES = ("runtime", "convert", "pipeline", "bench", "adapters")
DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)


def _public(name: str) -> bool:
    return not name.startswith("_")


def missing_docstrings(path: Path, root: Path = TOOLKIT.parent) -> list[str]:
    """``"path:line name"`` (path relative to ``root``) for each public module-level function or class of ``path``,
    and each public method (properties and setters included) of a public class, that has no docstring."""
    rel = path.relative_to(root).as_posix()
    missing = []
    for node in ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body:
        if isinstance(node, DEFS) and _public(node.name) and not ast.get_docstring(node):
            missing.append(f"{rel}:{node.lineno} {node.name}")
        elif isinstance(node, ast.ClassDef) and _public(node.name):
            if not ast.get_docstring(node):
                missing.append(f"{rel}:{node.lineno} class {node.name}")
            missing += [
                f"{rel}:{sub.lineno} {node.name}.{sub.name}"
                for sub in node.body
                if isinstance(sub, DEFS) and _public(sub.name) and not ast.get_docstring(sub)
            ]
    return missing


def _modules() -> list[Path]:
    # Private modules (_name.py) are skipped; a package's __init__.py is its public face and is checked.
    return [
        path
        for package in PACKAGES
        for path in sorted((TOOLKIT / package).rglob("*.py"))
        if path.name == "__init__.py" or _public(path.name)
    ]


def test_the_rule_sees_functions_classes_methods_and_properties(tmp_path: Path) -> None:
    source = tmp_path / "toolkit" / "sample.py"
    source.parent.mkdir()
    source.write_text(
        "def documented():\n    'Yes.'\n\n"
        "def bare(): pass\n\n"
        "def _private(): pass\n\n"
        "class Thing:\n"
        "    @property\n    def size(self): return 1\n"
        "    def _helper(self): pass\n"
        "    def __len__(self): return 0\n\n"
        "class _Hidden:\n    def bare(self): pass\n"
    )
    assert missing_docstrings(source, tmp_path) == [
        "toolkit/sample.py:4 bare",
        "toolkit/sample.py:8 class Thing",
        "toolkit/sample.py:10 Thing.size",
    ]


def test_every_public_function_method_and_class_has_a_docstring() -> None:
    modules = _modules()
    assert len(modules) > 50, f"expected the toolkit's packages under {TOOLKIT}, found {len(modules)} modules"
    missing = [item for path in modules for item in missing_docstrings(path)]
    assert not missing, (
        f"{len(missing)} public definitions without a docstring (say what it takes and returns):\n"
        + "\n".join(missing)
    )
