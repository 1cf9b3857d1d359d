"""docs/events.md lists every log event name the code emits, and nothing else."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from syncd import log as logging_setup

ROOT = Path(__file__).resolve().parent.parent
LEVELS = {"debug", "info", "warning", "error", "critical", "exception"}
EVENT = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
# Named by the logging setup itself, not at a call: stdlib records and Python warnings.
SET_BY_LOGGING = {"third_party.log", "python.warning"}


def _names(node: ast.expr) -> set[str]:
    """The event names an event argument can be: a literal, or either branch of a conditional."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _names(node.body) | _names(node.orelse)
    return set()


def emitted() -> dict[str, set[str]]:
    """Every event name logged in syncd/ and connectors/, with the files that log it."""
    found: dict[str, set[str]] = {}
    for path in [*ROOT.joinpath("syncd").rglob("*.py"), *ROOT.joinpath("connectors").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in LEVELS
                    and node.args):
                names = _names(node.args[0])
                assert names or not isinstance(node.args[0], ast.JoinedStr), \
                    f"{path.relative_to(ROOT)}:{node.lineno}: an event name built at run time cannot be listed"
                for name in names:
                    if EVENT.match(name):
                        found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def documented() -> set[str]:
    text = ROOT.joinpath("docs", "events.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\| `([a-z0-9_.]+)` \|", text, re.MULTILINE))


def test_every_event_the_code_logs_is_in_the_table_and_every_listed_one_is_logged() -> None:
    code = set(emitted()) | SET_BY_LOGGING
    listed = documented()
    assert sorted(code - listed) == [], "logged but not in docs/events.md"
    assert sorted(listed - code) == [], "in docs/events.md but logged nowhere"


def test_the_collector_sees_events_whatever_the_call_looks_like() -> None:
    # A multi-line call (cycle.finished), a conditional name (person.freeze), a logger on self.
    found = emitted()
    assert {"cycle.finished", "person.freeze", "person.unfreeze", "change.done", "zzd.call"} <= set(found)
    assert "syncd/log.py" not in {file for files in found.values() for file in files}
    assert set(re.findall(r'"([a-z_]+\.[a-z_]+)"', Path(logging_setup.__file__).read_text())) >= SET_BY_LOGGING
