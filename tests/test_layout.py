"""The layout of `syncd/` holds: the domain imports no engine, no infrastructure and no connector.

DESIGN.md §3: contracts between the parts are small typed protocols, and the engine never imports a
concrete connector (configuration picks them, in `syncd/wiring.py`). Checked on the source, so an
import hidden inside a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What each part may not import (a prefix of the module's name).
FORBIDDEN = {
    "syncd/domain": ("syncd.engine", "syncd.service", "syncd.console", "syncd.cli", "syncd.wiring", "syncd.demo",
                     "connectors"),
    "syncd/engine": ("syncd.service", "syncd.console", "syncd.cli", "syncd.wiring", "syncd.demo", "connectors"),
    "syncd/reporting": ("syncd.service", "syncd.console", "syncd.cli", "syncd.wiring", "syncd.demo", "connectors"),
}


def imported(path: Path) -> set[str]:
    """Every module the file imports, at the top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_a_part_of_syncd_imports_nothing_it_must_not(part: str) -> None:
    files = sorted((ROOT / part).rglob("*.py"))
    assert files, f"{part} is empty"
    wrong = [f"{path.relative_to(ROOT)} imports {name}" for path in files for name in sorted(imported(path))
             if name.startswith(FORBIDDEN[part])]
    assert wrong == []


def test_the_check_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from syncd.engine.cycle import run_cycle\n    import connectors.zzd\n")
    assert imported(module) == {"syncd.engine.cycle", "connectors.zzd"}
