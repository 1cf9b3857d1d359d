"""Normalise and validate raw HR records into a snapshot; every rejected record gets a field and a reason.

Shared by all sources: whatever a source yields goes through `build_snapshot`, so CSV, XLSX,
LDAP and SQL data are held to the same rules. One bad record never stops the read.
"""

from __future__ import annotations

import re
import sys
import tomllib
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TypeVar

from syncd.domain.model import (
    ARTICLE9_FIELDS,
    LEADER_ROLE,
    REPEATING_PERSON_FIELDS,
    Department,
    FieldIssue,
    Person,
    PersonStatus,
    Rejection,
    Snapshot,
)
from syncd.domain.source import RawRecord, Source, SourceError, one_read
from syncd.reporting.messages import LIST_SEPARATOR

# Package data, found the same way from a checkout, a wheel, the bundle and an editable install.
BUNDLED_CODE_TABLES: Traversable = files("syncd").joinpath("data", "codes")
SOURCE_REJECTION = "source"  # the kind of the one rejection an incomplete read records: the read, not a record

# Full-width digits and Latin letters (U+FF10–FF19, FF21–FF3A, FF41–FF5A) and the ideographic
# space become ASCII; Chinese punctuation such as （） is left alone, it belongs to names.
_FULL_WIDTH = {cp: cp - 0xFEE0 for r in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A))
               for cp in range(r[0], r[1] + 1)}
_FULL_WIDTH[0x3000] = 0x20
_ANY_FULL_WIDTH = re.compile("[" + "".join(re.escape(chr(cp)) for cp in sorted(_FULL_WIDTH)) + "]")
_Record = TypeVar("_Record", Department, Person)
_Params = tuple[tuple[str, str], ...]
# An Article 9 problem of a person: field, missing | invalid, English reason, reason code, the code's params.
_Issue = tuple[str, str, str, str, _Params]
# Why a department does not reach the root: English reason, reason code, the code's params.
_TreeReason = tuple[str, str, _Params]
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_MOBILE_NOISE = re.compile(r"[\s\-()（）]")
_NAME_MAX = 80
_NONE: frozenset[str] = frozenset()
_ARTICLE9_AFTER_NAME = ARTICLE9_FIELDS[1:]
_REPEATING = frozenset(REPEATING_PERSON_FIELDS)
_STATUSES = {status.value: status for status in PersonStatus}
_POST_MAX = 64
# HR values are plain text. One that holds markup (`<a href=…>`, `<script>`) or a spreadsheet formula
# (`=HYPERLINK(…)`, `@SUM(…)`, `+cmd(…)`, `-cmd|' /C calc'!A0`) is an attack or a slip in the export:
# reported for HR to fix. It is never executed anyway: pages escape it, downloads write it as text
# (`syncd.reporting.spreadsheet`).
_UNSAFE = re.compile(r"<[A-Za-z!/?]|^[=@]|^[+\-]\s*[A-Za-z_][\w.]*\s*\(|^[+\-].*[|!]")
_UNSAFE_FIRST = frozenset("=@+-")


def normalise_text(value: str | None) -> str:
    """Trimmed text with full-width digits and letters made ASCII."""
    return (value or "").translate(_FULL_WIDTH).strip()


def normalise_mobile(value: str) -> str:
    """A mobile without spaces, dashes or the +86 / 0086 country prefix."""
    digits = _MOBILE_NOISE.sub("", normalise_text(value))
    for prefix in ("+86", "0086"):
        if digits.startswith(prefix):
            digits = digits[len(prefix):]
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits


@dataclass(frozen=True, slots=True)
class CodeTables:
    """Label → code tables for coded person fields (GB/T 2261.1 gender, GB/T 4762 political status)."""

    gender: Mapping[str, str]
    political_status: Mapping[str, str]

    @property
    def checks(self) -> dict[str, Callable[[str], str]]:
        """Per checked Article 9 field: normalise a non-empty value or raise _Invalid."""
        return {
            "mobile": _check_mobile,
            "gender": lambda v: _coded(v, self.gender, "gender"),
            "political_status": lambda v: _coded(v, self.political_status, "political_status"),
            "post": _check_post,
        }

    @classmethod
    def load(cls, directory: Path | Traversable | None = None) -> CodeTables:
        """Read `gender.toml` and `political_status.toml` from the directory (bundled by default)."""
        directory = directory or BUNDLED_CODE_TABLES
        tables = {}
        for name in ("gender", "political_status"):
            with (directory / f"{name}.toml").open("rb") as handle:
                tables[name] = dict(tomllib.load(handle)["codes"])
        return cls(**tables)


class _Invalid(Exception):
    def __init__(self, field: str, reason: str, code: str, **params: str) -> None:
        self.field = field
        self.reason = reason  # English, for logs
        self.code = code  # stable, rendered in Chinese for HR by syncd.reporting.messages
        self.params: _Params = tuple(params.items())


def _coded(value: str, table: Mapping[str, str], field: str) -> str:
    if not value:
        return ""
    if value in table:
        return table[value]
    if value in table.values():  # already a code
        return value
    # The value itself stays out of the reason: reasons reach logs, and a shifted column puts a name here.
    raise _Invalid(field, f"not a known label; expected one of {', '.join(sorted(set(table)))}", f"{field}.unknown",
                   expected=LIST_SEPARATOR.join(sorted(set(table))))


def _order(value: str) -> int | None:
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise _Invalid("order", "not a whole number", "order.not_integer") from None


def _required(fields: Mapping[str, str], name: str) -> str:
    value = fields.get(name, "")
    if not value:
        raise _Invalid(name, "missing", f"{name}.missing")
    return value


def parse_department(fields: Mapping[str, str]) -> Department:
    """A department from normalised raw fields, or _Invalid."""
    dept_id = _required(fields, "id")
    name = _required(fields, "name")
    if len(name) > _NAME_MAX:
        raise _Invalid("name", f"longer than {_NAME_MAX} characters", "name.too_long", limit=str(_NAME_MAX))
    return Department(
        id=dept_id, name=name, short_name=fields.get("short_name", ""),
        parent=fields.get("parent") or None, order=_order(fields.get("order", "")),
    )


def parse_person(fields: Mapping[str, str], codes: CodeTables, checks: Mapping[str, Callable[[str], str]] | None = None
                 ) -> tuple[Person, list[_Issue]]:
    """A person from normalised raw fields and its Article 9 issues (field, missing|invalid, reason, code, params).

    Raises _Invalid only for what makes the record unusable (no id, no name, no department, an
    unknown status); a bad Article 9 value is left out and reported, and the rest still syncs.
    """
    employee_id = _required(fields, "employee_id")
    name = _required(fields, "name")
    if len(name) > _NAME_MAX:
        raise _Invalid("name", f"longer than {_NAME_MAX} characters", "name.too_long", limit=str(_NAME_MAX))
    department = _required(fields, "department")
    status = _STATUSES.get(fields.get("status", "") or PersonStatus.IN_POST.value)
    if status is None:
        labels = ", ".join(s.value for s in PersonStatus)
        raise _Invalid("status", f"not a known status; expected one of {labels}", "status.unknown",
                       expected=LIST_SEPARATOR.join(s.value for s in PersonStatus))
    order = _order(fields.get("order", ""))

    issues: list[_Issue] = []
    if _unsafe(name):  # reported, and still the name (the directory needs one; see _UNSAFE)
        issues.append(("name", "invalid", "holds markup or a spreadsheet formula", "name.unsafe", ()))
    values: dict[str, str] = {}
    checks = checks or codes.checks
    for field in _ARTICLE9_AFTER_NAME:
        value = fields.get(field, "")
        if value and _unsafe(value):
            issues.append((field, "invalid", "holds markup or a spreadsheet formula", f"{field}.unsafe", ()))
            values[field] = ""
            continue
        if value and field in checks:
            try:
                value = checks[field](value)
            except _Invalid as bad:
                # The bad value goes with the issue: HR's console shows what to correct (never logged).
                issues.append((field, "invalid", bad.reason, bad.code, (*bad.params, ("value", value))))
                values[field] = ""
                continue
        if field in _REPEATING:  # shared strings: a million people hold a few dozen distinct values here
            value = sys.intern(value)
        values[field] = value
        if not value and (field != "leader_duties" or values.get("role") == LEADER_ROLE):
            reason = "missing; the login account is the mobile number" if field == "mobile" else "missing"
            issues.append((field, "missing", reason, f"{field}.missing", ()))
    person = Person(employee_id=employee_id, name=name, department=sys.intern(department), status=status,
                    order=order, invalid=frozenset(i[0] for i in issues if i[0] != "name") if issues else _NONE,
                    **values)
    return person, issues


def _unsafe(value: str) -> bool:
    """Whether a non-empty HR value holds markup or a formula (the cheap test first: a million people pass here)."""
    return (value[0] in _UNSAFE_FIRST or "<" in value) and _UNSAFE.search(value) is not None


def _check_mobile(value: str) -> str:
    if value.isascii() and _MOBILE.fullmatch(value):
        return value  # already what normalise_mobile would make of it (most rows: no need to ask)
    mobile = normalise_mobile(value)
    if not _MOBILE.match(mobile):
        raise _Invalid("mobile", "not an 11-digit mainland mobile number (1[3-9] and 9 digits)", "mobile.invalid")
    return mobile


def _check_post(value: str) -> str:
    if len(value) > _POST_MAX:
        raise _Invalid("post", f"longer than {_POST_MAX} characters", "post.too_long", limit=str(_POST_MAX))
    return value


def _reject(kind: str, record: RawRecord, key_field: str, bad: _Invalid) -> Rejection:
    key = normalise_text(record.fields.get(key_field))
    return Rejection(kind, key, bad.field, bad.reason, record.source, record.line, bad.code, bad.params)


def build_snapshot(source: Source, root_department: str, codes: CodeTables) -> Snapshot:
    """Read the source to the end, keep the valid records, reject the rest with reasons.

    A source that breaks off part-way yields an incomplete snapshot: what was read is kept,
    but the engine must not conclude that anyone missing has left. A source that can (SQL) reads
    both in one snapshot, so a department HR creates between the two reads cannot leave its new
    people looking unplaced.
    """
    snapshot = Snapshot()
    try:
        with one_read(source):  # departments and people as of one moment, where the source can
            raw_departments = list(source.departments())
            departments, department_locations = _accept(raw_departments, "department", "id", parse_department, snapshot)
            _check_tree(departments, department_locations, root_department, snapshot)
            if raw_departments and root_department not in snapshot.departments:
                # Configuration, not HR data: every record would be rejected as outside the unit. The read
                # counts as incomplete, so nothing is concluded from it and level 1 is told.
                snapshot.complete = False
                snapshot.rejections.append(Rejection(
                    SOURCE_REJECTION, root_department, "root_department",
                    f"unit.root_department {root_department} is not among the {len(raw_departments)} departments HR "
                    "exported", type(source).__name__, code="source.no_root", params=(("id", root_department),)))
            del raw_departments, departments, department_locations
            raw_people = source.people()
            issues: dict[str, list[_Issue]] = {}
            checks = codes.checks  # built once, not per person

            def parse(fields: Mapping[str, str]) -> Person:
                person, found = parse_person(fields, codes, checks)
                if found:
                    issues[person.employee_id] = found
                return person

            people, located = _accept(raw_people, "person", "employee_id", parse, snapshot)
    except SourceError as exc:
        snapshot.complete = False
        snapshot.rejections.append(Rejection(SOURCE_REJECTION, "", "", f"read broke off: {exc}", type(source).__name__,
                                             code="source.broke_off"))
        return snapshot
    snapshot.people, located = _in_known_departments(people, located, snapshot)
    del people
    _flag_shared_mobiles(snapshot, issues)
    for position, (employee_id, person) in enumerate(snapshot.people.items()):
        found = issues.get(employee_id)
        if found:
            source_name, line = located[position]
            for field, problem, reason, code, params in found:
                snapshot.issues.append(FieldIssue(employee_id, field, problem, reason, person.department,
                                                  source_name, line, code, params))
    return snapshot


class _Locations:
    """Where each kept record came from (source name, line), by position in the order kept.

    A million people must not keep a million raw records, or even a million tuples, alive until
    the read ends: a list of (mostly one shared) source names and an array of line numbers.
    """

    __slots__ = ("_lines", "_sources")
    _NO_LINE = -1

    def __init__(self) -> None:
        self._sources: list[str] = []
        self._lines = array("q")

    def append(self, source: str, line: int | None) -> None:
        """Locate the next kept record."""
        self._sources.append(source)
        self._lines.append(self._NO_LINE if line is None else line)

    def __getitem__(self, position: int) -> tuple[str, int | None]:
        line = self._lines[position]
        return self._sources[position], None if line == self._NO_LINE else line


def _in_known_departments(people: dict[str, Person], located: _Locations,
                          snapshot: Snapshot) -> tuple[dict[str, Person], _Locations]:
    """The people whose department the snapshot holds; the others are rejected, in the order read."""
    departments = snapshot.departments
    if all(person.department in departments for person in people.values()):
        return people, located
    kept: dict[str, Person] = {}
    kept_located = _Locations()
    for position, (employee_id, person) in enumerate(people.items()):
        source_name, line = located[position]
        if person.department not in departments:
            snapshot.rejections.append(Rejection(
                "person", employee_id, "department",
                f"unknown department {person.department!r} (not in the departments export, or rejected)",
                source_name, line, "department.unknown", (("department", person.department),)))
            continue
        kept[employee_id] = person
        kept_located.append(source_name, line)
    return kept, kept_located


def _flag_shared_mobiles(snapshot: Snapshot, issues: dict[str, list[_Issue]]) -> None:
    """A mobile held by two in-post people belongs to neither until HR decides: both are flagged.

    The mobile is the login account and the key for adopting an existing directory person, so
    guessing would give one person's account to another.
    """
    first: dict[str, str] = {}  # mobile → its first holder; a list of holders only for a mobile held twice
    holders: dict[str, list[str]] = {}
    for person in snapshot.people.values():
        if person.status is PersonStatus.IN_POST and person.creatable and person.mobile:
            holder = first.setdefault(person.mobile, person.employee_id)
            if holder != person.employee_id:
                holders.setdefault(person.mobile, [holder]).append(person.employee_id)
    for ids in holders.values():
        for employee_id in ids:
            others = [i for i in ids if i != employee_id]
            issues.setdefault(employee_id, []).append((
                "mobile", "invalid",
                f"the same mobile as {', '.join(others)}; neither is created or adopted until HR fixes it",
                "mobile.shared", (("others", LIST_SEPARATOR.join(others)),)))
            person = snapshot.people[employee_id]
            snapshot.people[employee_id] = replace(person, mobile="", invalid=person.invalid | {"mobile"})


def _accept(records: Iterable[RawRecord], kind: str, key_field: str,
            parse: Callable[[Mapping[str, str]], _Record],
            snapshot: Snapshot) -> tuple[dict[str, _Record], _Locations]:
    """Parse every record; a key that appears twice rejects every record carrying it.

    The accepted records by key, in the order read, and where each came from (same positions).
    """
    firsts: dict[str, _Record] = {}
    located = _Locations()
    later: list[tuple[int, str, str, int | None]] = []  # (how many firsts were read before it, key, source, line)
    for record in records:
        try:
            item = parse(_normalised(record.fields))
        except _Invalid as bad:
            snapshot.rejections.append(_reject(kind, record, key_field, bad))
            continue
        key = _key(item)
        if key in firsts:
            later.append((len(firsts), key, record.source, record.line))
        else:
            firsts[key] = item
            located.append(record.source, record.line)
    if not later:
        return firsts, located
    return _reject_repeated(firsts, located, later, kind, key_field, snapshot)


def _normalised(fields: Mapping[str, str]) -> dict[str, str]:
    """Every field trimmed, full-width digits and letters made ASCII (normalise_text, quick when there are none)."""
    if _ANY_FULL_WIDTH.search("".join(filter(None, fields.values()))):
        return {name: (value or "").translate(_FULL_WIDTH).strip() for name, value in fields.items()}
    return {name: (value or "").strip() for name, value in fields.items()}


def _reject_repeated(firsts: dict[str, _Record], located: _Locations, later: list[tuple[int, str, str, int | None]],
                     kind: str, key_field: str, snapshot: Snapshot) -> tuple[dict[str, _Record], _Locations]:
    """Reject every copy of a repeated key, in the order read; the records and locations left."""
    copies = Counter(key for _, key, _, _ in later)
    # Back into the order read: a later copy read after `before` first copies comes after the first
    # copy at position before - 1 and ahead of the one at `before`, so (before - 1, n) sorts it
    # among the first copies' (position, -1).
    repeated: list[tuple[tuple[int, int], str, str, int | None]] = []
    kept: dict[str, _Record] = {}
    kept_located = _Locations()
    for position, (key, item) in enumerate(firsts.items()):
        source_name, line = located[position]
        if key in copies:
            repeated.append(((position, -1), key, source_name, line))
        else:
            kept[key] = item
            kept_located.append(source_name, line)
    repeated.extend(((before - 1, n), key, source_name, line)
                    for n, (before, key, source_name, line) in enumerate(later))
    repeated.sort(key=lambda copy: copy[0])
    for _, key, source_name, line in repeated:
        reason = f"{key!r} appears {copies[key] + 1} times; every copy is rejected"
        snapshot.rejections.append(Rejection(kind, key, key_field, reason, source_name, line, f"{key_field}.duplicate",
                                             (("key", key), ("count", str(copies[key] + 1)))))
    return kept, kept_located


def _key(item: Department | Person) -> str:
    return item.employee_id if isinstance(item, Person) else item.id


def _tree_problem(
    dept_id: str, parents: Mapping[str, str | None], root: str, memo: dict[str, _TreeReason | None]
) -> _TreeReason | None:
    """None when the department reaches the root through known parents, else why not."""
    path: list[str] = []
    node: str = dept_id
    while True:
        if node in memo:
            known = memo[node]
            result = known and (f"under a rejected department ({node}: {known[0]})", "parent.rejected",
                                (("department", node),))
            break
        if node == root:
            result = None
            break
        if node in path:
            cycle = " → ".join([*path[path.index(node):], node])
            result = ("department cycle: " + cycle, "parent.cycle", (("path", cycle),))
            break
        path.append(node)
        if node not in parents:
            result = (f"unknown parent department {node!r} (path {' → '.join(path)})", "parent.unknown",
                      (("parent", node), ("path", " → ".join(path))))
            break
        parent = parents[node]
        if parent is None:
            result = (f"no parent, and not the unit's root department {root!r}", "parent.missing", (("root", root),))
            break
        node = parent
    for visited in path:
        memo.setdefault(visited, result)
    return memo.get(dept_id, result)


def _check_tree(departments: dict[str, Department], located: _Locations, root: str, snapshot: Snapshot) -> None:
    """Keep the departments that reach the root through known parents; reject the rest with the path."""
    parents = {dept.id: dept.parent for dept in departments.values()}
    memo: dict[str, _TreeReason | None] = {}
    # A name with markup or a formula would reach the directory, and every export of it: rejected
    # (with its sub-departments and people, who stay as they are), unlike a person's name, which the
    # directory needs and is only reported. The root is the unit's own organisation, never written.
    unsafe = {dept.id: field for dept in departments.values() if dept.id != root
              for field, value in (("name", dept.name), ("short_name", dept.short_name)) if value and _unsafe(value)}
    for dept_id, field in unsafe.items():
        memo[dept_id] = ("holds markup or a spreadsheet formula", f"{field}.unsafe", ())
    for position, dept in enumerate(departments.values()):
        if dept.id == root:
            # The root's parent is the level above the unit, which syncd never touches.
            snapshot.departments[dept.id] = Department(dept.id, dept.name, dept.short_name, None, dept.order)
            continue
        if dept.id in unsafe:
            snapshot.rejections.append(Rejection("department", dept.id, unsafe[dept.id],
                                                 "holds markup or a spreadsheet formula", *located[position],
                                                 f"{unsafe[dept.id]}.unsafe", ()))
            continue
        problem = _tree_problem(dept.id, parents, root, memo)
        if problem is None:
            snapshot.departments[dept.id] = dept
        else:
            reason, code, params = problem
            snapshot.rejections.append(Rejection("department", dept.id, "parent", reason, *located[position], code,
                                                 params))
