"""The message catalogue is the one place for the Chinese text HR and administrators read (issue 10).

Every module under `syncd/` and `connectors/` is parsed, and every string constant holding Chinese
(CJK ideographs, CJK punctuation, full-width forms) is collected, the literal parts of f-strings
included. Docstrings and other bare string statements are documentation and left out; comments are
not strings. Outside `syncd/reporting/messages.py` only what ALLOWED names may hold Chinese: data (the HR
export's own headers and values, the demo's synthetic rows, the simulated platform's messages) and
English text that names an HR term.
"""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

from syncd.config import DEFAULT_DEPARTMENT_COLUMNS, DEFAULT_PEOPLE_COLUMNS
from syncd.domain.model import LEADER_ROLE, PersonStatus
from syncd.reporting.messages import NOTICES, PROBLEM_TITLES
from syncd.reporting.notice import KINDS

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("syncd", "connectors")  # bench/ and tests/ are not the program
CATALOGUE = "syncd/reporting/messages.py"
CHINESE = re.compile("[\u4e00-\u9fff\u3000-\u303f\uff00-\uffef]")

ANY = None  # every string of the file (a path ending in "/": of every file under it)

# Where Chinese may stand outside the catalogue: a file (or folder) and the exact strings allowed there.
ALLOWED: dict[str, frozenset[str] | None] = {
    # Data: `syncd demo`'s synthetic HR rows, field values and the values its narration names.
    "syncd/demo/": ANY,
    # Data: the simulator plays the platform; its error messages and tenant name mimic the real one's.
    "connectors/zzd/simulator/": ANY,
    # Data: the HR export's own column headers, the defaults of `source.columns`.
    "syncd/config.py": frozenset({*DEFAULT_PEOPLE_COLUMNS.values(), *DEFAULT_DEPARTMENT_COLUMNS.values()}),
    # Data: 人员状态 values and the 人员角色 value of a leader, as the HR export spells them.
    "syncd/domain/model.py": frozenset({*(status.value for status in PersonStatus), LEADER_ROLE}),
    # Data: HR column names among the keys the log processor masks as personal.
    "syncd/log.py": frozenset({"姓名", "手机号", "办公电话"}),
    # Data: full-width parentheses are noise in a mobile number.
    "syncd/domain/validate.py": frozenset({r"[\s\-()（）]"}),
    # English for operators and API clients that names an HR column (工号, 部门编号), not wording for HR.
    "syncd/engine/apply.py": frozenset({"the mobile belongs to a person syncd already links to another 工号"}),
    "syncd/service/openapi.py": frozenset({"HR employee id (工号)",
                                           "HR department id (部门编号); the department and its people"}),
    # The help text is English naming 工号; 郑州市审计局 is data: the simulator's default tenant name.
    "syncd/cli.py": frozenset({"One person, by HR employee id (工号).", "郑州市审计局"}),
}


def modules() -> list[str]:
    """The program's modules, as paths relative to the repository."""
    return sorted(path.relative_to(ROOT).as_posix() for folder in SCANNED for path in (ROOT / folder).rglob("*.py"))


def chinese_strings(module: str) -> list[tuple[int, str]]:
    """(line, text) of each string constant in the module that holds Chinese, documentation left out."""
    return chinese_in((ROOT / module).read_text(encoding="utf-8"), module)


def chinese_in(source: str, name: str = "<source>") -> list[tuple[int, str]]:
    """(line, text) of each string constant in Python source that holds Chinese, documentation left out."""
    tree = ast.parse(source, name)
    documentation = {id(node.value) for node in ast.walk(tree)
                     if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}
    return sorted((node.lineno, node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and id(node) not in documentation and CHINESE.search(node.value))


def allowance(module: str) -> tuple[str, frozenset[str] | None] | None:
    """The ALLOWED entry covering the module, if any."""
    for key, allowed in ALLOWED.items():
        if module == key or (key.endswith("/") and module.startswith(key)):
            return key, allowed
    return None


def test_the_scan_finds_constants_and_f_string_parts_but_not_docstrings_or_comments() -> None:
    source = '''"""模块说明。"""
class Unit:
    """单位。"""

    name = "审计局"  # 注释
    text = f"{name}：{name!r}"
    wide = "ＡＢＣ"
    plain = "syncd"
'''
    assert chinese_in(source) == [(5, "审计局"), (6, "："), (7, "ＡＢＣ")]
    assert {text for _, text in chinese_strings(CATALOGUE)} >= {NOTICES["held.affects"], PROBLEM_TITLES["digest"]}


def test_no_chinese_text_outside_the_message_catalogue_but_what_the_allowlist_names() -> None:
    stray = []
    for module in modules():
        if module == CATALOGUE:
            continue
        entry = allowance(module)
        allowed = entry[1] if entry else frozenset()
        stray += [f"{module}:{line}: {text!r}" for line, text in chinese_strings(module)
                  if allowed is not ANY and text not in allowed]
    assert stray == [], ("Chinese text outside syncd/reporting/messages.py (move it there, or allowlist data):\n"
                         + "\n".join(stray))


def test_the_allowlist_names_only_files_and_strings_that_still_hold_chinese() -> None:
    found: dict[str, set[str]] = {}
    for module in modules():
        entry = allowance(module)
        if entry is not None:
            found.setdefault(entry[0], set()).update(text for _, text in chinese_strings(module))
    stale = []
    for key, allowed in ALLOWED.items():
        if not found.get(key):
            stale.append(f"{key}: no Chinese left")
        elif allowed is not ANY:
            stale += [f"{key}: {text!r} is gone" for text in sorted(allowed - found[key])]
    assert stale == [], "Allowlist entries to remove:\n" + "\n".join(stale)


def test_every_kind_of_problem_has_a_title() -> None:
    assert set(PROBLEM_TITLES) == set(KINDS)


def test_every_notice_template_is_used_and_every_key_used_has_a_template() -> None:
    constants: set[str] = set()
    used: set[str] = set()
    for module in modules():
        for node in ast.walk(ast.parse((ROOT / module).read_text(encoding="utf-8"), module)):
            # The catalogue's own constants are its keys; its calls (`duration_text`) are uses like any other.
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and module != CATALOGUE:
                constants.add(node.value)
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args
                  and isinstance(node.args[0], ast.Constant)):
                if node.func.id == "notice_text":
                    used.add(node.args[0].value)
                elif node.func.id == "notice_title":
                    used.add(f"title.{node.args[0].value}")
    assert used - set(NOTICES) == set()
    assert set(NOTICES) - used - constants == set()  # a key passed on in a variable still appears as a constant
    for key, template in NOTICES.items():
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
        assert all(name.isidentifier() for name in fields), key  # named placeholders only
