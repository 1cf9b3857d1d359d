"""The version of syncd: the installed distribution's, else the source tree's pyproject.toml."""

from __future__ import annotations

import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

_PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def _version() -> str:
    """The installed version, or pyproject's when syncd runs from a checkout that was never installed."""
    try:
        return version("syncd")
    except PackageNotFoundError:
        pass
    try:
        return str(tomllib.loads(_PYPROJECT.read_text(encoding="utf-8"))["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        # Still answer: a version line that says "unknown" beats a daemon that cannot start.
        return "0+unknown"


__version__: str = _version()
