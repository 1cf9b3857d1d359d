"""The domain: HR records, the snapshot a source yields, and the changes a plan is made of."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from syncd.domain.target import DirectoryPerson


class PersonStatus(StrEnum):
    """`人员状态` of the HR export: only 在职 people belong in the directory as active."""

    IN_POST = "在职"
    TRANSFERRED_OUT = "调离"
    RETIRED = "退休"
    RESIGNED = "离职"
    DECEASED = "死亡"


@dataclass(frozen=True, slots=True)
class Department:
    """One HR department, normalised. `parent` is None only for the unit's root department."""

    id: str
    name: str
    short_name: str = ""
    parent: str | None = None
    order: int | None = None


@dataclass(frozen=True, slots=True)
class Person:
    """One HR person record, normalised; codes (gender, political status) already mapped."""

    employee_id: str
    name: str
    gender: str = ""
    mobile: str = ""
    department: str = ""
    establishment: str = ""
    rank: str = ""
    political_status: str = ""
    role: str = ""
    post: str = ""
    post_level: str = ""
    office_phone: str = ""
    leader_duties: str = ""
    status: PersonStatus = PersonStatus.IN_POST
    order: int | None = None
    # Fields whose HR value is missing or unusable: left out of every write, so a typo in HR
    # never blanks what the directory holds. Reported by the completeness report.
    invalid: frozenset[str] = frozenset()

    def pushed_fields(self) -> dict[str, str]:
        """The fields syncd writes to the directory, as text, leaving out the invalid ones."""
        return {name: _text(getattr(self, name)) for name in PUSHED_PERSON_FIELDS if name not in self.invalid}

    @property
    def creatable(self) -> bool:
        """A person can be created only with a valid mobile: it is their login account (zzd-api.md §5)."""
        return "mobile" not in self.invalid


# Person fields whose values repeat from person to person (a few dozen labels, an office's phone):
# held once in memory rather than once per person, in the snapshot and in the links read back.
REPEATING_PERSON_FIELDS: tuple[str, ...] = (
    "gender", "establishment", "rank", "political_status", "role", "post", "post_level", "office_phone",
    "leader_duties",
)
# Fields of a person that reach the directory. `employee_id` is the anchor (stored on the link),
# `department` becomes the position's organisation and `status` the lifecycle; neither is a field.
PUSHED_PERSON_FIELDS: tuple[str, ...] = (
    "name", "gender", "mobile", "establishment", "rank", "political_status",
    "role", "post", "post_level", "office_phone", "leader_duties", "order",
)
PERSON_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Person) if f.name != "invalid")
# The eleven fields Article 9 requires complete for every in-post person; 领导分工 only for leaders.
ARTICLE9_FIELDS: tuple[str, ...] = (
    "name", "gender", "mobile", "establishment", "rank", "political_status",
    "role", "post", "post_level", "office_phone", "leader_duties",
)
LEADER_ROLE = "领导"
DEPARTMENT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Department))


def department_pushed_fields(dept: Department) -> dict[str, str]:
    """The fields of a department that reach the directory, as text."""
    return {"name": dept.name, "short_name": dept.short_name, "order": _text(dept.order)}


def department_depth(dept: Department, departments: Mapping[str, Department]) -> int:
    """How many ancestors of `dept` are among `departments` (0 for a top department): sorting by it
    orders a tree top-down."""
    depth, seen = 0, set()
    while dept.parent is not None and dept.parent in departments and dept.parent not in seen:
        seen.add(dept.parent)
        dept = departments[dept.parent]
        depth += 1
    return depth


def _text(value: object) -> str:
    return "" if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A source record that was not accepted: where it came from, which field, and why."""

    kind: str  # "person" | "department"
    key: str  # employee id / department id when known, else ""
    field: str
    reason: str
    source: str = ""  # file name, LDAP DN, query …
    line: int | None = None
    code: str = ""  # stable reason code (`department.unknown`): `syncd.reporting.messages` renders it for HR
    params: tuple[tuple[str, str], ...] = ()  # what the code's Chinese text names (ids, limits), never a value

    def location(self) -> str:
        """`people.csv:17` or the DN: where an HR user finds the record."""
        return f"{self.source}:{self.line}" if self.line is not None else self.source


@dataclass(frozen=True, slots=True)
class FieldIssue:
    """An Article 9 field of an accepted person that is missing or invalid: synced without it, reported."""

    key: str  # employee id
    field: str
    problem: str  # "missing" | "invalid"
    reason: str
    department: str = ""
    source: str = ""
    line: int | None = None
    code: str = ""  # stable reason code (`mobile.invalid`): `syncd.reporting.messages` renders it for HR
    params: tuple[tuple[str, str], ...] = ()

    def location(self) -> str:
        """`people.csv:17` or the DN."""
        return f"{self.source}:{self.line}" if self.line is not None else self.source


@dataclass(slots=True)
class Snapshot:
    """What a source read: accepted records, rejected ones, and whether every page arrived."""

    departments: dict[str, Department] = field(default_factory=dict)
    people: dict[str, Person] = field(default_factory=dict)
    rejections: list[Rejection] = field(default_factory=list)
    complete: bool = True
    issues: list[FieldIssue] = field(default_factory=list)


class ChangeKind(StrEnum):
    """Every kind of change a plan can hold (DESIGN.md §4), in apply order."""

    DEPT_ADOPT = "dept_adopt"  # link an organisation built by hand, then update it like any department
    DEPT_CREATE = "dept_create"
    DEPT_UPDATE = "dept_update"
    DEPT_MOVE = "dept_move"
    TRANSFER = "transfer"
    UPDATE = "update"
    REJOIN = "rejoin"
    ADOPT = "adopt"
    JOIN = "join"
    TRANSFER_OUT = "transfer_out"
    LEAVE = "leave"
    DEPT_RETIRE = "dept_retire"
    FREEZE = "freeze"
    UNFREEZE = "unfreeze"


DEPARTMENT_KINDS = frozenset({ChangeKind.DEPT_ADOPT, ChangeKind.DEPT_CREATE, ChangeKind.DEPT_UPDATE,
                              ChangeKind.DEPT_MOVE, ChangeKind.DEPT_RETIRE})
# Why a change was not attempted when the service stopped mid-run (journaled as `not attempted: …`):
# not a failure of the change, so escalation does not count it as one.
STOPPED_BY_SIGNAL = "the service is stopping"


@dataclass(frozen=True, slots=True)
class Change:
    """One planned change: its kind, its subject (HR id) and what it needs to be applied.

    `fields` holds the values to push (all of them for a create, only the changed ones for an
    update); `department` is the HR department the change lands in; `from_department` is
    where a transfer comes from.
    """

    kind: ChangeKind
    subject: str
    fields: dict[str, str] = field(default_factory=dict)
    department: str | None = None
    from_department: str | None = None
    reason: str = ""
    # The directory person an `adopt` links, as the batched look-up by mobile found them: read by
    # the applier, never journaled (the employeeCode is in `fields`, under ADOPTED_PERSON).
    found: DirectoryPerson | None = field(default=None, compare=False, repr=False)

    @property
    def pushed(self) -> dict[str, str]:
        """The fields to write: `fields` without the directory codes an adoption names."""
        if ADOPTED_ORGANIZATION not in self.fields and ADOPTED_PERSON not in self.fields:
            return self.fields
        return {k: v for k, v in self.fields.items() if k not in (ADOPTED_ORGANIZATION, ADOPTED_PERSON)}

    @property
    def adopted_code(self) -> str | None:
        """The organisationCode a `dept_adopt`, or the employeeCode an `adopt`, links; None when ambiguous."""
        return self.fields.get(ADOPTED_ORGANIZATION) or self.fields.get(ADOPTED_PERSON) or None

    def fingerprint(self) -> str:
        """What the change does, as one comparable string: an approval holds for exactly this change."""
        return fingerprint(self.kind.value, self.subject, self.fields, self.department, self.from_department)

    def describe(self) -> str:
        """A line for an operator: kind, subject, what changes (field names, never values)."""
        extra = f" [{', '.join(sorted(self.fields))}]" if self.kind in _FIELD_KINDS else ""
        where = ""
        if self.kind is ChangeKind.TRANSFER:
            where = f" {self.from_department} → {self.department}"
        elif self.department and self.kind in (ChangeKind.JOIN, ChangeKind.ADOPT, ChangeKind.DEPT_CREATE,
                                               ChangeKind.DEPT_ADOPT, ChangeKind.DEPT_MOVE):
            where = f" in {self.department}"
        if self.kind in (ChangeKind.ADOPT, ChangeKind.DEPT_ADOPT):
            where += f" = {self.adopted_code or '(ambiguous)'}"
        reason = f" ({self.reason})" if self.reason else ""
        return f"{self.kind.value} {self.subject}{where}{extra}{reason}"


def fingerprint(kind: str, subject: str, fields: dict[str, str], department: str | None,
                from_department: str | None) -> str:
    """The identity of a change's effect (not its reason): kind, subject, values, departments."""
    return json.dumps([kind, subject, fields, department, from_department], sort_keys=True, ensure_ascii=False)


_FIELD_KINDS = frozenset({ChangeKind.UPDATE, ChangeKind.DEPT_UPDATE})
# Keys of `Change.fields` that name the directory object an adoption links (part of what an
# approval binds to), not values to push.
ADOPTED_ORGANIZATION = "organization_code"
ADOPTED_PERSON = "employee_code"


@dataclass(slots=True)
class Plan:
    """The ordered changes of one cycle."""

    changes: list[Change] = field(default_factory=list)

    def by_kind(self) -> dict[ChangeKind, list[Change]]:
        """Changes grouped by kind, kinds in apply order, empty kinds left out."""
        groups: dict[ChangeKind, list[Change]] = {}
        for change in self.changes:
            groups.setdefault(change.kind, []).append(change)
        return {kind: groups[kind] for kind in ChangeKind if kind in groups}

    def __len__(self) -> int:
        return len(self.changes)


@dataclass(frozen=True, slots=True)
class LinkedDepartment:
    """What the state knows of a department syncd manages: its organisation and what was pushed."""

    organization_code: str
    parent: str | None
    pushed: dict[str, str]
    status: str = "active"  # active | retired


class PushedFields(Mapping[str, str]):
    """Fields as last pushed, read back from the state: a read-only mapping that equals the dict it was made from.

    A plain dict of the twelve pushed fields costs about 1 KB with its keys; a million links
    would hold a gigabyte of it. Here the field names and their positions are kept once for
    every link with the same fields (a layout), and each link keeps only a tuple of values.
    """

    __slots__ = ("_layout", "_values")
    _MAX_LAYOUTS: ClassVar[int] = 256  # different field lists seen; beyond it a layout is not shared
    _layouts: ClassVar[dict[tuple[str, ...], _Layout]] = {}

    def __init__(self, items: Mapping[str, str]) -> None:
        keys = tuple(items)
        layout = self._layouts.get(keys)
        if layout is None:
            layout = _Layout(keys)
            if len(self._layouts) < self._MAX_LAYOUTS:
                layout = self._layouts.setdefault(keys, layout)
        self._layout = layout
        self._values = tuple(items.values())

    def __getitem__(self, key: str) -> str:
        return self._values[self._layout.index[key]]

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        """The value pushed for `key`, or `default` when it was never pushed."""
        position = self._layout.index.get(key)
        return default if position is None else self._values[position]

    def __contains__(self, key: object) -> bool:
        return key in self._layout.index

    def __iter__(self) -> Iterator[str]:
        return iter(self._layout.keys)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return repr(dict(self))

    def changed(self, wanted: Mapping[str, str]) -> dict[str, str]:
        """The entries of `wanted` whose value differs from the pushed one (or that were never pushed)."""
        if tuple(wanted) == self._layout.keys and tuple(wanted.values()) == self._values:
            return {}  # the common case, compared in one go
        return {k: v for k, v in wanted.items() if self.get(k) != v}


class _Layout:
    """The field names of a PushedFields, in order, and each one's position."""

    __slots__ = ("index", "keys")

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = keys
        self.index = {key: position for position, key in enumerate(keys)}


class PushedAsHR(Mapping[str, str]):
    """Fields last pushed that are exactly what an HR record pushes now: read from that (immutable) record.

    A link read beside its person's record (`StateStore.links(like=snapshot)`) and unchanged since
    holds the record rather than a copy of its twelve values; it equals `person.pushed_fields()`.
    """

    __slots__ = ("person",)

    def __init__(self, person: Person) -> None:
        self.person = person

    def __getitem__(self, key: str) -> str:
        if key not in _PUSHED or key in self.person.invalid:
            raise KeyError(key)
        return _text(getattr(self.person, key))

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        """The value pushed for `key`, or `default` when it was never pushed."""
        if key not in _PUSHED or key in self.person.invalid:
            return default
        return _text(getattr(self.person, key))

    def __contains__(self, key: object) -> bool:
        return key in _PUSHED and key not in self.person.invalid

    def __iter__(self) -> Iterator[str]:
        invalid = self.person.invalid
        return (name for name in PUSHED_PERSON_FIELDS if name not in invalid)

    def __len__(self) -> int:
        return len(_PUSHED - self.person.invalid)

    def __repr__(self) -> str:
        return repr(dict(self))

    def changed(self, wanted: Mapping[str, str]) -> dict[str, str]:
        """The entries of `wanted` whose value differs from the pushed one (or that were never pushed)."""
        pushed = self.person.pushed_fields()
        return {k: v for k, v in wanted.items() if pushed.get(k) != v}


_PUSHED = frozenset(PUSHED_PERSON_FIELDS)


def changed_fields(wanted: Mapping[str, str], pushed: Mapping[str, str]) -> dict[str, str]:
    """The entries of `wanted` whose value differs from what was pushed (or that were never pushed)."""
    if isinstance(pushed, PushedFields | PushedAsHR):
        return pushed.changed(wanted)
    return {k: v for k, v in wanted.items() if pushed.get(k) != v}


def person_changes(person: Person, pushed: Mapping[str, str]) -> dict[str, str]:
    """The fields of `person` whose value differs from what was pushed for them (or that were never pushed)."""
    if isinstance(pushed, PushedAsHR) and pushed.person is person:
        return {}  # read as unchanged beside this very record
    return changed_fields(person.pushed_fields(), pushed)


@dataclass(frozen=True, slots=True)
class LinkedPerson:
    """What the state knows of a person syncd manages: directory ids, position, what was pushed."""

    employee_code: str
    account_id: int | None
    department: str
    organization_code: str
    pushed: Mapping[str, str]  # a dict, or PushedFields when read from the state
    status: str = "active"  # active | inactive
    frozen: bool = False


@dataclass(slots=True)
class LinkState:
    """Every link, as reconcile sees them: HR id → linked object."""

    departments: dict[str, LinkedDepartment] = field(default_factory=dict)
    people: dict[str, LinkedPerson] = field(default_factory=dict)
