"""Find the demo's models in a folder by what they are (their kind), not by their file names.

A ``.tflite`` file's kind comes from its manifest (``<name>.json`` beside it, key ``"kind"``, written by
``toolkit convert``), else from its input/output names (:func:`toolkit.capabilities.kind_for_io`), so models
converted elsewhere with the same signature names work too. The shipped zoo keeps one model per folder
(``models/person_detector/``, ``models/behaviour/``, ``models/scene_segmenter/``); a user folder may hold the
files side by side.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from toolkit.capabilities import MODEL_KINDS, kind_for_io
from toolkit.errors import UsageError

PIPELINE_KINDS = ("detector", "behaviour", "segmenter")
HOW_TO_GET = (
    "build the zoo with 'toolkit zoo build', or pass --models DIR holding int8 .tflite files "
    "made by 'toolkit convert'"
)


def model_kind(path: Path) -> str | None:
    """The kind of the ``.tflite`` at ``path`` (manifest first, then I/O names); None for a foreign model."""
    manifest = path.with_suffix(".json")
    if not manifest.is_file() and path.stem.endswith(
        "_edgetpu"
    ):  # a compilation: the CPU original's manifest
        manifest = path.with_name(path.stem.removesuffix("_edgetpu") + ".json")
    if manifest.is_file():
        try:
            kind = json.loads(manifest.read_text()).get("kind")
        except (OSError, ValueError, AttributeError):
            kind = None
        if kind in MODEL_KINDS:
            return str(kind)
    from toolkit.runtime.tflite_file import read_model_file

    inputs, outputs = read_model_file(path).io_names()
    return kind_for_io(tuple(inputs), tuple(outputs))


def _candidates(folder: Path) -> list[Path]:
    # The folder itself and one level of sub-folders (the zoo layout); hidden and partial files are skipped.
    files = [*folder.glob("*.tflite"), *folder.glob("*/*.tflite")]
    return sorted(p for p in files if p.is_file() and not p.name.startswith("."))


def find_models(
    folder: str | Path, kinds: Iterable[str] = PIPELINE_KINDS, edgetpu: bool = False
) -> dict[str, Path]:
    """``{kind: path}`` for each of ``kinds`` found in ``folder``; UsageError (one line) for missing/ambiguous ones.

    When a folder holds several files of one kind, the ``*_int8.tflite`` one is taken if it is the only one;
    with ``edgetpu`` (the Edge TPU delegate) a ``*_edgetpu.tflite`` compilation is taken first, and Edge TPU
    compilations are never taken without it (only the Edge TPU can run them).
    """
    root = Path(folder).expanduser()
    wanted = list(kinds)
    if not root.exists():
        raise UsageError(f"model folder not found: {root}; {HOW_TO_GET}")
    if not root.is_dir():
        raise UsageError(f"models: {root} is a file, expected the folder that holds the .tflite files")
    found: dict[str, list[Path]] = {k: [] for k in wanted}
    for path in _candidates(root):
        try:
            kind = model_kind(path)
        except UsageError:
            continue  # a broken file of some other kind must not hide the good ones; a needed one is reported
        if kind in found:
            found[kind].append(path)
    missing = [k for k in wanted if not found[k]]
    if missing:
        names = ", ".join(missing)
        raise UsageError(
            f"no {names} model in {root} (a .tflite whose manifest 'kind' or signature names say what "
            f"it is); {HOW_TO_GET}"
        )
    chosen = {}
    for kind in wanted:
        compiled = [p for p in found[kind] if p.stem.endswith("_edgetpu")]
        if edgetpu and len(compiled) == 1:
            chosen[kind] = compiled[0]
            continue
        paths = [p for p in found[kind] if p not in compiled] or found[kind]
        int8 = [p for p in paths if p.name.endswith("_int8.tflite")]
        if len(paths) > 1 and len(int8) != 1:
            listed = ", ".join(str(p.relative_to(root)) for p in paths)
            raise UsageError(
                f"{root} holds {len(paths)} {kind} models ({listed}); keep one per kind in the folder"
            )
        chosen[kind] = int8[0] if len(paths) > 1 else paths[0]
    return chosen
