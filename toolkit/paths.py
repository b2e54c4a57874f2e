"""Where things live: the repository, the shipped model zoo, the shared real data, the user's state."""

from __future__ import annotations

import os
from pathlib import Path

from toolkit.errors import UsageError

PACKAGE_DIR = Path(__file__).resolve().parent
SHARED_ENV = "TOOLKIT_SHARED"
HOME_ENV = "TOOLKIT_HOME"


def repo_root() -> Path | None:
    """The source checkout holding this package, or None for a non-editable install."""
    root = PACKAGE_DIR.parent
    return root if (root / "pyproject.toml").is_file() else None


def shared_dir() -> Path:
    """The shared real-data folder: ``$TOOLKIT_SHARED``, else ``../shared`` beside the repository (or the cwd)."""
    env = os.environ.get(SHARED_ENV)
    if env:
        return Path(env).expanduser().resolve()
    base = repo_root() or Path.cwd()
    return (base / ".." / "shared").resolve()


def shared_path(*parts: str, required: bool = True) -> Path:
    """A path inside the shared folder; a clear error when it is missing and ``required``."""
    path = shared_dir().joinpath(*parts)
    if required and not path.exists():
        raise UsageError(
            f"shared data not found: {path} (set {SHARED_ENV} to the folder that holds data/ and models/)"
        )
    return path


def zoo_dir() -> Path:
    """The shipped model zoo: ``models/`` in a checkout, the ``toolkit.zoo`` package data when installed."""
    root = repo_root()
    if root is not None and (root / "models").is_dir():
        return root / "models"
    from importlib import resources

    return Path(str(resources.files("toolkit.zoo")))


def state_dir() -> Path:
    """Per-user state (benchmark database, caches): ``$TOOLKIT_HOME`` or ``~/.local/share/edge-toolkit``."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "edge-toolkit"
