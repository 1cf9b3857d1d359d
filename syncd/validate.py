"""Normalise and validate raw HR records into a snapshot; every rejected record gets a field and a reason.

Shared by all sources: whatever a source yields goes through `build_snapshot`, so CSV, XLSX,
LDAP and SQL data are held to the same rules. One bad record never stops the read.
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from syncd.model import ARTICLE9_FIELDS, LEADER_ROLE, Department, FieldIssue, Person, PersonStatus, Rejection, Snapshot
from syncd.source import RawRecord, Source, SourceError

BUNDLED_CODE_TABLES = Path(__file__).resolve().parent.parent / "config" / "codes"

# Full-width digits and Latin letters (U+FF10–FF19, FF21–FF3A, FF41–FF5A) and the ideographic
# space become ASCII; Chinese punctuation such as （） is left alone, it belongs to names.
_FULL_WIDTH = {cp: cp - 0xFEE0 for r in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A))
               for cp in range(r[0], r[1] + 1)}
_FULL_WIDTH[0x3000] = 0x20
_Record = TypeVar("_Record", Department, Person)
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_MOBILE_NOISE = re.compile(r"[\s\-()（）]")
_NAME_MAX = 80
_FEW_VALUES = ("gender", "establishment", "rank", "political_status", "role", "post", "post_level")
_NONE: frozenset[str] = frozenset()
_POST_MAX = 64


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
    def load(cls, directory: Path | None = None) -> CodeTables:
        """Read `gender.toml` and `political_status.toml` from the directory (bundled by default)."""
        directory = directory or BUNDLED_CODE_TABLES
        tables = {}
        for name in ("gender", "political_status"):
            with (directory / f"{name}.toml").open("rb") as handle:
                tables[name] = dict(tomllib.load(handle)["codes"])
        return cls(**tables)


class _Invalid(Exception):
    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason


def _coded(value: str, table: Mapping[str, str], field: str) -> str:
    if not value:
        return ""
    if value in table:
        return table[value]
    if value in table.values():  # already a code
        return value
    # The value itself stays out of the reason: reasons reach logs, and a shifted column puts a name here.
    raise _Invalid(field, f"not a known label; expected one of {', '.join(sorted(set(table)))}")


def _order(value: str) -> int | None:
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise _Invalid("order", "not a whole number") from None


def _required(fields: Mapping[str, str], name: str) -> str:
    value = fields.get(name, "")
    if not value:
        raise _Invalid(name, "missing")
    return value


def parse_department(fields: Mapping[str, str]) -> Department:
    """A department from normalised raw fields, or _Invalid."""
    dept_id = _required(fields, "id")
    name = _required(fields, "name")
    if len(name) > _NAME_MAX:
        raise _Invalid("name", f"longer than {_NAME_MAX} characters")
    return Department(
        id=dept_id, name=name, short_name=fields.get("short_name", ""),
        parent=fields.get("parent") or None, order=_order(fields.get("order", "")),
    )


def parse_person(fields: Mapping[str, str], codes: CodeTables, checks: Mapping[str, Callable[[str], str]] | None = None
                 ) -> tuple[Person, list[tuple[str, str, str]]]:
    """A person from normalised raw fields and its Article 9 issues (field, missing|invalid, reason).

    Raises _Invalid only for what makes the record unusable (no id, no name, no department, an
    unknown status); a bad Article 9 value is left out and reported, and the rest still syncs.
    """
    employee_id = _required(fields, "employee_id")
    name = _required(fields, "name")
    if len(name) > _NAME_MAX:
        raise _Invalid("name", f"longer than {_NAME_MAX} characters")
    department = _required(fields, "department")
    status_text = fields.get("status", "") or PersonStatus.IN_POST.value
    try:
        status = PersonStatus(status_text)
    except ValueError:
        labels = ", ".join(s.value for s in PersonStatus)
        raise _Invalid("status", f"not a known status; expected one of {labels}") from None
    order = _order(fields.get("order", ""))

    issues: list[tuple[str, str, str]] = []
    values: dict[str, str] = {}
    checks = checks or codes.checks
    for field in ARTICLE9_FIELDS[1:]:
        raw = fields.get(field, "")
        try:
            values[field] = checks[field](raw) if field in checks and raw else raw
        except _Invalid as bad:
            issues.append((field, "invalid", bad.reason))
            values[field] = ""
            continue
        needed = field != "leader_duties" or values.get("role") == LEADER_ROLE
        if not values[field] and needed:
            reason = "missing; the login account is the mobile number" if field == "mobile" else "missing"
            issues.append((field, "missing", reason))
    for field in _FEW_VALUES:  # shared strings: a million people hold a few dozen distinct values here
        values[field] = sys.intern(values[field])
    person = Person(employee_id=employee_id, name=name, department=sys.intern(department), status=status,
                    order=order, invalid=frozenset(f for f, _, _ in issues) if issues else _NONE, **values)
    return person, issues


def _check_mobile(value: str) -> str:
    mobile = normalise_mobile(value)
    if not _MOBILE.match(mobile):
        raise _Invalid("mobile", "not an 11-digit mainland mobile number (1[3-9] and 9 digits)")
    return mobile


def _check_post(value: str) -> str:
    if len(value) > _POST_MAX:
        raise _Invalid("post", f"longer than {_POST_MAX} characters")
    return value


def _reject(kind: str, record: RawRecord, key_field: str, field: str, reason: str) -> Rejection:
    key = normalise_text(record.fields.get(key_field))
    return Rejection(kind, key, field, reason, record.source, record.line)


def build_snapshot(source: Source, root_department: str, codes: CodeTables) -> Snapshot:
    """Read the source to the end, keep the valid records, reject the rest with reasons.

    A source that breaks off part-way yields an incomplete snapshot: what was read is kept,
    but the engine must not conclude that anyone missing has left.
    """
    snapshot = Snapshot()
    try:
        raw_departments = list(source.departments())
        departments = _accept(raw_departments, "department", "id", parse_department, snapshot)
        _check_tree(departments, root_department, snapshot)
        raw_people = source.people()
        issues: dict[str, list[tuple[str, str, str]]] = {}
        checks = codes.checks  # built once, not per person

        def parse(fields: Mapping[str, str]) -> Person:
            person, found = parse_person(fields, codes, checks)
            if found:
                issues[person.employee_id] = found
            return person

        people = _accept(raw_people, "person", "employee_id", parse, snapshot)
    except SourceError as exc:
        snapshot.complete = False
        snapshot.rejections.append(Rejection("source", "", "", f"read broke off: {exc}", type(source).__name__))
        return snapshot
    located: dict[str, RawRecord] = {}
    for record, person in people:
        if person.department not in snapshot.departments:
            snapshot.rejections.append(_reject(
                "person", record, "employee_id", "department",
                f"unknown department {person.department!r} (not in the departments export, or rejected)"))
            continue
        snapshot.people[person.employee_id] = person
        located[person.employee_id] = record
    _flag_shared_mobiles(snapshot, issues)
    for employee_id, person in snapshot.people.items():
        record = located[employee_id]
        for field, problem, reason in issues.get(employee_id, []):
            snapshot.issues.append(FieldIssue(employee_id, field, problem, reason, person.department,
                                              record.source, record.line))
    return snapshot


def _flag_shared_mobiles(snapshot: Snapshot, issues: dict[str, list[tuple[str, str, str]]]) -> None:
    """A mobile held by two in-post people belongs to neither until HR decides: both are flagged.

    The mobile is the login account and the key for adopting an existing directory person, so
    guessing would give one person's account to another.
    """
    holders: dict[str, list[str]] = {}
    for person in snapshot.people.values():
        if person.status is PersonStatus.IN_POST and person.creatable and person.mobile:
            holders.setdefault(person.mobile, []).append(person.employee_id)
    for ids in holders.values():
        if len(ids) < 2:
            continue
        for employee_id in ids:
            others = ", ".join(i for i in ids if i != employee_id)
            issues.setdefault(employee_id, []).append(
                ("mobile", "invalid", f"the same mobile as {others}; neither is created or adopted until HR fixes it"))
            person = snapshot.people[employee_id]
            snapshot.people[employee_id] = replace(person, mobile="", invalid=person.invalid | {"mobile"})


def _accept(records: Iterable[RawRecord], kind: str, key_field: str,
            parse: Callable[[Mapping[str, str]], _Record], snapshot: Snapshot) -> list[tuple[RawRecord, _Record]]:
    """Parse every record; a key that appears twice rejects every record carrying it."""
    parsed: list[tuple[RawRecord, _Record]] = []
    for record in records:
        # normalise_text, inlined: this runs for every cell of every row.
        fields = {name: (value or "").translate(_FULL_WIDTH).strip() for name, value in record.fields.items()}
        try:
            item = parse(fields)
            # Keep only where the record came from: a million raw rows would double the memory.
            parsed.append((RawRecord({key_field: fields.get(key_field, "")}, record.source, record.line), item))
        except _Invalid as bad:
            snapshot.rejections.append(_reject(kind, record, key_field, bad.field, bad.reason))
    counts = Counter(_key(item) for _, item in parsed)
    accepted = []
    for record, item in parsed:
        key = _key(item)
        if counts[key] > 1:
            snapshot.rejections.append(_reject(
                kind, record, key_field, key_field, f"{key!r} appears {counts[key]} times; every copy is rejected"))
        else:
            accepted.append((record, item))
    return accepted


def _key(item: Department | Person) -> str:
    return item.employee_id if isinstance(item, Person) else item.id


def _tree_problem(
    dept_id: str, parents: Mapping[str, str | None], root: str, memo: dict[str, str | None]
) -> str | None:
    """None when the department reaches the root through known parents, else why not."""
    path: list[str] = []
    node: str = dept_id
    while True:
        if node in memo:
            result = memo[node] and f"under a rejected department ({node}: {memo[node]})"
            break
        if node == root:
            result = None
            break
        if node in path:
            result = "department cycle: " + " → ".join([*path[path.index(node):], node])
            break
        path.append(node)
        if node not in parents:
            result = f"unknown parent department {node!r} (path {' → '.join(path)})"
            break
        parent = parents[node]
        if parent is None:
            result = f"no parent, and not the unit's root department {root!r}"
            break
        node = parent
    for visited in path:
        memo.setdefault(visited, result)
    return memo.get(dept_id, result)


def _check_tree(departments: list[tuple[RawRecord, Department]], root: str, snapshot: Snapshot) -> None:
    """Keep the departments that reach the root through known parents; reject the rest with the path."""
    parents = {dept.id: dept.parent for _, dept in departments}
    memo: dict[str, str | None] = {}
    for record, dept in departments:
        if dept.id == root:
            # The root's parent is the level above the unit, which syncd never touches.
            snapshot.departments[dept.id] = Department(dept.id, dept.name, dept.short_name, None, dept.order)
            continue
        reason = _tree_problem(dept.id, parents, root, memo)
        if reason is None:
            snapshot.departments[dept.id] = dept
        else:
            snapshot.rejections.append(_reject("department", record, "id", "parent", reason))
