"""What the console's pages read: the state (runs, journal, links, holds) and the latest HR snapshot.

Reads only; every action (a resync, a decision) goes through the `Control`, as the JSON API's do.
Each page asks for a bounded amount (a page of runs, of a run's changes, one person's journal), so
it answers quickly with a hundred thousand people in the state; what the pages need from the HR
snapshot (the completeness report, the department tree, names) is indexed once per snapshot.
"""

from __future__ import annotations

import io
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from syncd.config import SafetyConfig
from syncd.domain.escalation import ProblemView, open_problems
from syncd.domain.model import (
    DEPARTMENT_KINDS,
    Change,
    ChangeKind,
    Department,
    FieldIssue,
    LinkedDepartment,
    LinkedPerson,
    LinkState,
    Person,
    PersonStatus,
    Rejection,
    Snapshot,
    department_pushed_fields,
    fingerprint,
)
from syncd.domain.reconcile import reconcile
from syncd.domain.target import DirectoryEntry, Target
from syncd.domain.validate import CodeTables
from syncd.reporting.messages import GROUP_SEPARATOR, console_text, problem_text
from syncd.reporting.report import INCOMPLETE, CompletenessReport, ReportRow, completeness, write_csv, write_xlsx
from syncd.service.leader import Holder, running_daemon
from syncd.state.models import DepartmentLink, JournalEntry, PersonLink, Run
from syncd.state.store import CLOSED_STATES, StateStore, aware

_DEPARTMENT_KINDS = tuple(kind.value for kind in DEPARTMENT_KINDS)
OVERVIEW_RUNS = 10
OVERDUE_LISTED = 20
JOURNAL_LISTED = 100  # a person's latest journal entries
HELD_LISTED = 500  # changes shown per held run
NAME_HITS = 50
EXPORT_ROWS = 100000  # changes one download holds
SYNCED_OUTCOMES = ("success", "skipped")  # a run that left the directory as HR has it
DEPARTMENT_COMPARED = 2000  # a department's own people compared with the directory on its page
OPEN_ENTRIES_READ = 5000  # journal entries read to say where the differences of one page stand
REPORT_FILES_KEPT = 16  # report downloads kept per snapshot (whole unit and departments, XLSX and CSV)


# -- the HR snapshot, indexed ---------------------------------------------------------------------


@dataclass(slots=True)
class SnapshotIndex:
    """What the pages look up in one HR snapshot, built once for it."""

    snapshot: Snapshot
    built_at: datetime
    report: CompletenessReport
    rows_by_department: dict[str, list[ReportRow]]
    in_post: Counter[str]  # department → in-post people (its own, not below it)
    incomplete: Counter[str]  # department → in-post people with a missing or invalid field
    children: dict[str, list[str]]  # the HR tree, children in HR's order
    paths: dict[str, str]  # department → `郑州市审计局 / 办公室`
    by_name: dict[str, list[str]]  # name → employee ids
    issues: dict[str, list[FieldIssue]]  # employee id → its Article 9 problems
    rejections: dict[str, list[Rejection]]  # employee or department id → why its record was rejected
    people_in: dict[str, list[str]]  # department → its in-post people, in HR's order
    by_field: dict[str, set[str]]  # Article 9 field → in-post people with it missing or invalid
    bad_values: dict[str, dict[str, str]]  # employee id → field → the invalid value HR holds

    @classmethod
    def build(cls, snapshot: Snapshot, now: datetime) -> SnapshotIndex:
        """Index a snapshot (a pass over its people and one over its departments)."""
        report = completeness(snapshot)
        rows_by_department: dict[str, list[ReportRow]] = {}
        incomplete: Counter[str] = Counter()
        for row in report.rows:
            if row.status == INCOMPLETE:
                rows_by_department.setdefault(row.department, []).append(row)
                incomplete[row.department] += 1
        in_post: Counter[str] = Counter()
        by_name: dict[str, list[str]] = {}
        people_in: dict[str, list[str]] = {}
        for person in snapshot.people.values():
            by_name.setdefault(person.name, []).append(person.employee_id)
            if person.status is PersonStatus.IN_POST:
                in_post[person.department] += 1
                people_in.setdefault(person.department, []).append(person.employee_id)
        issues: dict[str, list[FieldIssue]] = {}
        by_field: dict[str, set[str]] = {}
        bad_values: dict[str, dict[str, str]] = {}
        for issue in snapshot.issues:
            issues.setdefault(issue.key, []).append(issue)
            by_field.setdefault(issue.field, set()).add(issue.key)
            value = dict(issue.params).get("value")
            if value:
                bad_values.setdefault(issue.key, {})[issue.field] = value
        rejections: dict[str, list[Rejection]] = {}
        for rejection in snapshot.rejections:
            if rejection.key:
                rejections.setdefault(rejection.key, []).append(rejection)
        children: dict[str, list[str]] = {}
        for dept in sorted(snapshot.departments.values(), key=_department_order):
            if dept.parent is not None:
                children.setdefault(dept.parent, []).append(dept.id)
        return cls(snapshot, now, report, rows_by_department, in_post, incomplete, children,
                   _paths(snapshot.departments), by_name, issues, rejections, people_in, by_field, bad_values)

    def subtree(self, department: str) -> list[str]:
        """The department and every department under it in HR's tree, depth first in HR's order."""
        found, todo = [], [department]
        while todo:
            current = todo.pop()
            found.append(current)
            todo.extend(reversed(self.children.get(current, ())))
        return found


def _department_order(dept: Department) -> tuple[int, str]:
    return (dept.order if dept.order is not None else 1 << 30, dept.id)


def _paths(departments: dict[str, Department]) -> dict[str, str]:
    """Each department's names from the root down, `/`-separated."""
    paths: dict[str, str] = {}
    for dept_id in departments:
        chain: list[str] = []
        current: str | None = dept_id
        while current is not None and current in departments and current not in paths and current not in chain:
            chain.append(current)
            current = departments[current].parent
        prefix = paths.get(current, "") if current is not None else ""
        for link in reversed(chain):
            prefix = f"{prefix} / {departments[link].name}" if prefix else departments[link].name
            paths[link] = prefix
    return paths


# -- what the pages show --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JournalLine:
    """One change of the journal, as a page lists it."""

    id: int
    run_id: str
    seq: int
    kind: str
    subject: str
    state: str
    attempts: int
    category: str | None
    detected_at: datetime
    due: date
    updated_at: datetime
    fields: dict[str, str]
    department: str | None
    from_department: str | None
    reason: str
    overdue: bool

    @property
    def is_department(self) -> bool:
        """Whether the subject is a department (else a person)."""
        return self.kind in _DEPARTMENT_KINDS


class ExportedChange(NamedTuple):
    """One change of a change-log download: what and when, the names of the fields (never their values)."""

    detected_at: datetime
    run_id: str
    kind: str
    subject: str
    fields: tuple[str, ...]
    state: str
    category: str | None
    due: date
    is_department: bool


@dataclass(frozen=True, slots=True)
class RunLine:
    """One run, as the run history lists it."""

    id: str
    trigger: str
    mode: str
    scope: str
    dry_run: bool
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    counts: dict[str, int]

    @property
    def done(self) -> int:
        """Changes the directory accepted."""
        return sum(v for k, v in self.counts.items() if k.endswith(".done"))

    @property
    def failed(self) -> int:
        """Changes that did not land."""
        return sum(v for k, v in self.counts.items() if k.endswith(".failed"))

    @property
    def held(self) -> int:
        """Changes kept back for a decision (and those waiting on them)."""
        return int(self.counts.get("held", 0))

    @property
    def seconds(self) -> float | None:
        """How long it ran."""
        return None if self.finished_at is None else (self.finished_at - self.started_at).total_seconds()

    @property
    def by_kind(self) -> list[tuple[str, str, int]]:
        """(kind, state, count) of its changes, from the run's counts."""
        found = []
        for key, value in sorted(self.counts.items()):
            kind, _, state = key.partition(".")
            if state:
                found.append((kind, state, value))
        return found


@dataclass(frozen=True, slots=True)
class Overview:
    """The 总览 page: the service, the last runs, what waits, what is late, the HR data's state."""

    daemon: Holder | None
    next_cycle: datetime | None
    runs: list[RunLine]
    held: list[tuple[RunLine, int]]  # each run holding changes for a decision (any trigger), with how many
    last_success: RunLine | None  # the latest run that synced (any trigger: schedule, CLI, resync, start)
    overdue: list[JournalLine]
    overdue_count: int
    problems: list[ProblemView]
    resyncs_waiting: int
    linked_people: int
    index: SnapshotIndex


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Which runs the run history lists: by trigger, outcome, and start (UTC, `until` excluded)."""

    trigger: str = ""
    outcome: str = ""
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class ChangeFilter:
    """Which changes the change log lists: a person, a department (and below), a kind, a state, and the
    start of the run that journaled them (`period`)."""

    employee_id: str = ""
    department: str = ""
    kind: str = ""
    state: str = ""
    period: RunFilter = RunFilter()


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a longer list."""

    items: list[Any]
    number: int
    size: int
    total: int  # when not `exact`: the items up to this page's end, plus one if more follow
    exact: bool = True

    @property
    def pages(self) -> int:
        """How many pages there are (at least one); not exact: up to the next page, if there is one."""
        return max(1, -(-self.total // self.size))


def page_of(items: list[Any], number: int, size: int) -> Page:
    """Page `number` (from 1) of a list."""
    number = max(1, number)
    return Page(items[(number - 1) * size:number * size], number, size, len(items))


@dataclass(frozen=True, slots=True)
class DirectoryDepartment:
    """What syncd last wrote to the directory for a department (its link)."""

    organization_code: str
    parent_hr_id: str | None
    pushed: dict[str, str]
    status: str  # active | retired


@dataclass(frozen=True, slots=True)
class DepartmentRow:
    """A department as HR has it beside what syncd last wrote to the directory, and how they differ."""

    id: str
    hr: Department | None
    link: DirectoryDepartment | None
    differences: tuple[str, ...]  # in_directory_only | missing | name | short_name | order | parent | people
    in_post: int  # its own in-post people (HR)
    linked: int  # its own people in the directory (links)
    in_post_total: int  # with everything under it
    linked_total: int

    @property
    def name(self) -> str:
        """HR's name, else the name last pushed."""
        if self.hr is not None:
            return self.hr.name
        return str((self.link.pushed or {}).get("name", "")) if self.link is not None else ""


@dataclass(frozen=True, slots=True)
class DepartmentView:
    """The 部门 page of one department: itself, its children, and the differences below it."""

    row: DepartmentRow
    path: list[tuple[str, str]]  # (id, name) from the root down to it
    children: list[DepartmentRow]
    differences_below: list[DepartmentRow]
    differences_below_count: int
    people: list[Person]
    people_count: int
    is_root: bool
    root_organization_code: str
    findings: list[Finding]  # the department's own differences
    people_findings: dict[str, list[Finding]]  # its own people (HR's and the directory's) that differ
    names: dict[str, str]  # employee id → name, for the people the findings name

    @property
    def consistent(self) -> bool:
        """Whether the department and its own people are in the directory as HR has them."""
        return not self.findings and not self.people_findings


@dataclass(frozen=True, slots=True)
class Finding:
    """One way the directory differs from HR for a subject, and where syncd stands with it.

    `what` names the difference (messages.DIFFERENCES): a change the planner would make (its kind,
    or `leave_absent`), or one it cannot make (`uncreatable`, `rejected`). `standing` says what
    syncd does about it (messages.STANDINGS): `planned` for the next sync, `held` / `waiting` for an
    operator's decision on `run`, `approved`, `failed` (`category`), `running`, `blocked`.
    """

    subject: str
    what: str
    params: dict[str, str]
    standing: str
    run: RunLine | None = None
    category: str | None = None
    fields: dict[str, tuple[str, str]] = field(default_factory=dict)  # field → (directory, HR) of an update


@dataclass(frozen=True, slots=True)
class PersonView:
    """The 人员查询 page of one person: HR's record, what the directory holds, the journal."""

    employee_id: str
    person: Person | None
    department_path: str
    issues: list[FieldIssue]
    rejections: list[Rejection]
    link: PersonLink | None
    link_department_path: str
    journal: list[JournalLine]
    findings: list[Finding]  # empty: the directory holds what HR says

    @property
    def consistent(self) -> bool:
        """Whether the directory holds what HR says (nothing planned, held, failed or impossible)."""
        return not self.findings


@dataclass(frozen=True, slots=True)
class HeldRunView:
    """A run with changes waiting for an operator's decision."""

    run_id: str
    started_at: datetime
    decide: int  # changes the decision is about
    changes: list[JournalLine]  # held ones first, then those waiting on them
    total: int


@dataclass(frozen=True, slots=True)
class RunView:
    """One run's page: the run and a page of its changes."""

    run: RunLine
    states: dict[str, int]
    changes: Page


@dataclass(slots=True)
class _Tree:
    """The department tree of one snapshot beside the links of one state version, with what differs."""

    index: SnapshotIndex
    version: tuple[Any, ...]
    links: dict[str, DirectoryDepartment]
    linked: dict[str, int]  # department → its active linked people
    linked_people: int
    children: dict[str, list[str]]  # HR's children, then departments only the directory still has
    differences: dict[str, tuple[str, ...]]
    in_post_total: Counter[str]
    linked_total: Counter[str]


@dataclass
class _Memo:
    index: SnapshotIndex | None = None
    tree: _Tree | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    files_for: SnapshotIndex | None = None  # the snapshot the report files below were made from
    files: dict[tuple[str | None, str], bytes] = field(default_factory=dict)


class ConsoleData:
    """The console's reads over the state store and the latest HR snapshot."""

    def __init__(self, store: StateStore, snapshots: Callable[[], Snapshot], *, root_department: str,
                 root_organization_code: str, today: Callable[[], date],
                 next_cycle: Callable[[], datetime | None] = lambda: None, code_tables: Path | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 safety: Callable[[], SafetyConfig] | None = None) -> None:
        """`snapshots` returns the latest HR snapshot (a `SnapshotCache`); `today` is the unit's date;
        `code_tables` the directory of the code tables (`source.code_tables`; default the bundled ones);
        `safety` the guard's current `[safety]` (read at each use: SIGHUP may change it)."""
        self.store = store
        self._safety = safety
        codes = CodeTables.load(code_tables)
        # The snapshot holds national codes (gender 1, political status 01); pages show the shortest label.
        self.code_labels: dict[str, dict[str, str]] = {
            name: {code: min((label for label, c in table.items() if c == code), key=len)
                   for code in set(table.values())}
            for name, table in (("gender", codes.gender), ("political_status", codes.political_status))}
        self.root_department = root_department
        self.root_organization_code = root_organization_code
        self._snapshots = snapshots
        self._today = today
        self._next_cycle = next_cycle
        self._clock = clock
        self._session = sessionmaker(store.engine, expire_on_commit=False)
        self._memo = _Memo()
        subscribe = getattr(snapshots, "subscribe", None)
        if subscribe is not None:  # a SnapshotCache: index each new snapshot as it arrives, off the request path
            subscribe(self.warm)

    # -- the snapshot ----------------------------------------------------------------------------

    def index(self) -> SnapshotIndex:
        """The index of the latest HR snapshot (built on first use of each snapshot)."""
        return self._indexed(self._snapshots())

    def warm(self, snapshot: Snapshot | None = None) -> None:
        """Build what the pages need of a snapshot (the latest by default): its index and the department tree."""
        self._indexed(snapshot if snapshot is not None else self._snapshots())
        self._tree()

    def _indexed(self, snapshot: Snapshot) -> SnapshotIndex:
        memo = self._memo
        index = memo.index
        if index is not None and index.snapshot is snapshot:
            return index
        with memo.lock:
            if memo.index is None or memo.index.snapshot is not snapshot:
                memo.index = SnapshotIndex.build(snapshot, self._clock())
            return memo.index

    def deactivation_limits(self) -> tuple[int, float] | None:
        """The guard's thresholds now (`safety.max_deactivations`, `safety.max_deactivation_share`)."""
        if self._safety is None:
            return None
        safety = self._safety()
        return safety.max_deactivations, safety.max_deactivation_share

    def today(self) -> date:
        """Today in the unit's time zone."""
        return self._today()

    def next_cycle(self) -> datetime | None:
        """When the daemon's next scheduled cycle starts (None: no daemon schedule here)."""
        return self._next_cycle()

    def code_label(self, field: str, value: object) -> str:
        """A coded person field's value with its label (`男（1）`), any other value as text."""
        text = "" if value is None else str(value)
        label = self.code_labels.get(field, {}).get(text)
        return console_text("coded_value", label=label, code=text) if label else text

    # -- pages -----------------------------------------------------------------------------------

    def overview(self) -> Overview:
        """Everything the 总览 page shows."""
        today = self.today()
        with self._session() as session:
            runs = [_run_line(run) for run in session.scalars(
                select(Run).order_by(Run.started_at.desc()).limit(OVERVIEW_RUNS))]
            overdue_query = self._overdue_query(session, today)
            overdue_count = session.scalar(select(func.count()).select_from(overdue_query.subquery())) or 0
            overdue = [self._journal_line(entry, today) for entry in session.scalars(
                overdue_query.order_by(JournalEntry.due_at, JournalEntry.id).limit(OVERDUE_LISTED))]
            last_success = session.scalars(select(Run).where(
                Run.outcome.in_(SYNCED_OUTCOMES), Run.dry_run.is_(False), Run.finished_at.is_not(None))
                .order_by(Run.finished_at.desc()).limit(1)).first()
        tree = self._tree()
        linked = tree.linked_total[self.root_department]  # as the root department's page counts them
        waiting = sum(1 for request in self.store.resyncs(0) if request.status in ("queued", "running"))
        holding = self.store.held_runs()
        named = self.runs_by_id(run_id for run_id, _, _ in holding)
        held = [(named[run_id], count) for run_id, _, count in holding if run_id in named]
        return Overview(running_daemon(self.store), self._next_cycle(), runs, held,
                        None if last_success is None else _run_line(last_success), overdue,
                        overdue_count, open_problems(self.store), waiting, linked, tree.index)

    def _overdue_query(self, session: Session, today: date) -> Any:
        """`StateStore.overdue`, as a query to count and page (tests check the two agree)."""
        last = self.store.last_unit_run()
        latest = None if last is None else last.id
        return select(JournalEntry).where(JournalEntry.due_at < today, (
            JournalEntry.state.in_(("held", "approved"))
            | ((JournalEntry.run_id == latest) & JournalEntry.state.not_in(CLOSED_STATES))))

    def completeness_for(self, department: str | None) -> CompletenessReport:
        """The completeness report of the whole unit, or of a department and everything under it."""
        index = self.index()
        if department is None:
            return index.report
        departments = index.subtree(department)
        rows = [row for dept in departments for row in index.rows_by_department.get(dept, ())]
        rows.sort(key=lambda r: (r.department_path, r.employee_id))
        in_post = sum(index.in_post[dept] for dept in departments)
        return CompletenessReport(rows, in_post, in_post - len(rows), 0)

    def report_file(self, department: str | None, fmt: str) -> bytes:
        """The completeness report as an XLSX or CSV file (UTF-8 with BOM), made once per snapshot and department."""
        index = self.index()
        memo = self._memo
        with memo.lock:
            if memo.files_for is not index:
                memo.files_for, memo.files = index, {}
            found = memo.files.get((department, fmt))
        if found is not None:
            return found
        report = self.completeness_for(department)
        if fmt == "xlsx":
            buffer = io.BytesIO()
            write_xlsx(report, buffer)
            found = buffer.getvalue()
        else:
            text = io.StringIO()
            write_csv(report, text)
            found = text.getvalue().encode("utf-8-sig")  # so that Excel on Windows opens it as Chinese text
        with memo.lock:
            if memo.files_for is index:
                if len(memo.files) >= REPORT_FILES_KEPT:
                    memo.files.clear()
                memo.files[(department, fmt)] = found
        return found

    def find_by_name(self, text: str) -> list[Person]:
        """People whose name is `text`, else whose name contains it (at most NAME_HITS)."""
        index = self.index()
        people = index.snapshot.people
        exact = index.by_name.get(text, [])
        if exact:
            return [people[i] for i in exact[:NAME_HITS]]
        hits = []
        for name, ids in index.by_name.items():
            if text in name:
                hits.extend(people[i] for i in ids)
                if len(hits) >= NAME_HITS:
                    break
        return hits[:NAME_HITS]

    def knows_person(self, employee_id: str) -> bool:
        """Whether HR's snapshot, its rejections or the links know this employee id."""
        index = self.index()
        if employee_id in index.snapshot.people or employee_id in index.rejections:
            return True
        with self._session() as session:
            return session.get(PersonLink, employee_id) is not None

    def person(self, employee_id: str) -> PersonView | None:
        """The person's page, or None when neither HR, the links nor the journal know the id."""
        index = self.index()
        person = index.snapshot.people.get(employee_id)
        today = self.today()
        with self._session() as session:
            link = session.get(PersonLink, employee_id)
            journal = [self._journal_line(entry, today) for entry in session.scalars(
                select(JournalEntry).where(JournalEntry.subject == employee_id,
                                           JournalEntry.kind.not_in(_DEPARTMENT_KINDS))
                .order_by(JournalEntry.id.desc()).limit(JOURNAL_LISTED))]
        rejections = [r for r in index.rejections.get(employee_id, ()) if r.kind == "person"]
        if person is None and link is None and not journal and not rejections:
            return None
        path = index.paths.get(person.department, person.department) if person is not None else ""
        link_path = index.paths.get(link.department, link.department) if link is not None else ""
        findings = self.compare([employee_id]).get(employee_id, [])
        return PersonView(employee_id, person, path, index.issues.get(employee_id, []), rejections, link, link_path,
                          journal, findings)

    # -- the differences, as the planner sees them -----------------------------------------------

    def compare(self, people: Iterable[str], departments: Iterable[str] = ()) -> dict[str, list[Finding]]:
        """Subject → how the directory differs from HR for it: the changes `reconcile` plans for these
        people and departments (as a run scoped to them plans them), each with what the journal says
        of it (held for a decision, failed, approved), and what the planner cannot do (no valid
        mobile, a rejected record). A subject the directory holds as HR has it is absent."""
        wanted_people, wanted_departments = set(people), set(departments) - {self.root_department}
        # A person's page needs no department link: it is not rebuilt for one after every run.
        department_links = self._tree().links if wanted_departments else {}
        index = self.index()
        snapshot = index.snapshot
        # The planner's own inputs cut to these subjects, as `narrow` cuts them for a scoped run: reconcile
        # compares each person and department on its own, so the rest of the unit changes nothing here.
        links = LinkState({d: LinkedDepartment(link.organization_code, link.parent_hr_id, link.pushed, link.status)
                           for d in wanted_departments if (link := department_links.get(d)) is not None},
                          self._person_links(wanted_people))
        narrowed = Snapshot(departments={d: snapshot.departments[d] for d in wanted_departments
                                         if d in snapshot.departments},
                            people={i: snapshot.people[i] for i in wanted_people if i in snapshot.people},
                            rejections=snapshot.rejections, complete=snapshot.complete)
        subjects = frozenset(wanted_people | wanted_departments)
        changes = [c for c in reconcile(narrowed, links, self.root_department).changes if c.subject in subjects]
        rejected = {r.key for r in snapshot.rejections if r.kind == "person"}
        if snapshot.complete and snapshot.people and not narrowed.people:
            # reconcile says nothing of the absent from an empty read; the whole read is not empty,
            # so a run over the unit plans their leave, as here.
            changes += [Change(ChangeKind.LEAVE, i, reason="absent from HR") for i, link in links.people.items()
                        if link.status == "active" and i not in snapshot.people and i not in rejected]
        if snapshot.complete and snapshot.departments and not narrowed.departments:  # the same for a department
            gone = {r.key for r in snapshot.rejections if r.kind == "department"}
            changes += [Change(ChangeKind.DEPT_RETIRE, d, reason="absent from HR")
                        for d, link in links.departments.items()
                        if link.status == "active" and d not in snapshot.departments and d not in gone]
        found: dict[str, list[Finding]] = {}
        journal = self._open_entries(subjects)
        for change in changes:
            found.setdefault(change.subject, []).append(self._finding(change, links, journal))
        for employee_id in wanted_people - set(found):
            person, link = snapshot.people.get(employee_id), links.people.get(employee_id)
            if person is not None and person.status is PersonStatus.IN_POST and link is None and not person.creatable:
                issues = [i for i in index.issues.get(employee_id, ()) if i.field == "mobile"]
                found[employee_id] = [Finding(employee_id, "uncreatable", {
                    "reason": GROUP_SEPARATOR.join(problem_text(i) for i in issues) or "—"}, "blocked")]
            elif person is None and employee_id in index.rejections:
                found[employee_id] = [Finding(employee_id, "rejected", {}, "blocked")]
        return found

    def _person_links(self, employee_ids: set[str]) -> dict[str, LinkedPerson]:
        """The links of these people, as `StateStore.links` reads them for reconcile."""
        found: dict[str, LinkedPerson] = {}
        if not employee_ids:
            return found
        with self._session() as session:
            for link in session.scalars(select(PersonLink).where(PersonLink.employee_id.in_(list(employee_ids)))):
                found[link.employee_id] = LinkedPerson(link.employee_code, link.account_id, link.department,
                                                       link.organization_code, dict(link.pushed or {}), link.status,
                                                       link.frozen)
        return found

    def _open_entries(self, subjects: Iterable[str]) -> dict[str, tuple[JournalEntry, RunLine]]:
        """Fingerprint → the latest journal entry (and its run) of these subjects that is not closed."""
        found: dict[str, tuple[JournalEntry, RunLine]] = {}
        subjects = list(subjects)
        if not subjects:
            return found
        with self._session() as session:
            rows = session.execute(
                select(JournalEntry, Run).join(Run, Run.id == JournalEntry.run_id)
                .where(JournalEntry.subject.in_(subjects),
                       JournalEntry.state.in_(("held", "approved", "failed", "planned", "sent")))
                .order_by(JournalEntry.id.desc()).limit(OPEN_ENTRIES_READ))
            for entry, run in rows:
                payload = entry.change or {}
                key = fingerprint(entry.kind, entry.subject, dict(payload.get("fields") or {}),  # type: ignore[call-overload]
                                  payload.get("department"), payload.get("from_department"))  # type: ignore[arg-type]
                found.setdefault(key, (entry, _run_line(run)))
        return found

    def _finding(self, change: Change, links: LinkState, journal: dict[str, tuple[JournalEntry, RunLine]]) -> Finding:
        kind = change.kind.value
        params: dict[str, str] = {}
        fields: dict[str, tuple[str, str]] = {}
        what = kind
        if change.kind in (ChangeKind.LEAVE, ChangeKind.TRANSFER_OUT):
            what = "leave_absent" if change.reason == "absent from HR" else kind
            params["status"] = change.reason
        elif change.kind in (ChangeKind.TRANSFER, ChangeKind.DEPT_MOVE):
            params.update(to=change.department or "", from_=change.from_department or "")
        elif change.kind in (ChangeKind.UPDATE, ChangeKind.DEPT_UPDATE):
            link = links.people.get(change.subject) if change.kind is ChangeKind.UPDATE else None
            pushed = (link.pushed if link is not None else
                      (links.departments[change.subject].pushed if change.subject in links.departments else {}))
            fields = {name: (str(pushed.get(name) or ""), value) for name, value in change.fields.items()}
        standing, run, category = "planned", None, None
        entry = journal.get(change.fingerprint())
        if entry is not None:
            journaled, run = entry
            category = journaled.error_category
            if journaled.state == "held":
                standing = "waiting" if category == "waiting" else "held"
            elif journaled.state in ("planned", "sent"):
                standing = "running" if run.finished_at is None else "planned"
            else:
                standing = journaled.state  # approved | failed
        return Finding(change.subject, what, params, standing, run, category, fields)

    def department_of_code(self, organization_code: str) -> str | None:
        """The HR department syncd linked to a directory organisation, if any."""
        if organization_code == self.root_organization_code:
            return self.root_department
        return next((hr_id for hr_id, link in self._tree().links.items()
                     if link.organization_code == organization_code), None)

    def runs_by_id(self, run_ids: Iterable[str]) -> dict[str, RunLine]:
        """These runs, by id (for naming them by time and trigger)."""
        with self._session() as session:
            return {run.id: _run_line(run) for run in session.scalars(select(Run).where(Run.id.in_(list(run_ids))))}

    def run_changes(self, run_id: str, subjects: Iterable[str] | None = None) -> list[JournalLine]:
        """What a run journaled (for these subjects only, when given), in the order journaled."""
        today = self.today()
        query = select(JournalEntry).where(JournalEntry.run_id == run_id)
        if subjects is not None:
            query = query.where(JournalEntry.subject.in_(list(subjects)))
        with self._session() as session:
            return [self._journal_line(e, today) for e in session.scalars(
                query.order_by(JournalEntry.id).limit(HELD_LISTED))]

    def _links_version(self) -> tuple[Any, ...]:
        """Changes whenever links may have changed: links are written only by runs (cycles, resyncs, freezes)."""
        with self._session() as session:
            return tuple(session.execute(select(func.count(), func.max(Run.started_at), func.max(Run.finished_at))
                                         .select_from(Run)).one())

    def _tree(self) -> _Tree:
        """The department tree for the latest snapshot and the links as they are now (rebuilt when either changed)."""
        index = self.index()
        version = self._links_version()
        tree = self._memo.tree
        if tree is not None and tree.index is index and tree.version == version:
            return tree
        with self._memo.lock:
            tree = self._memo.tree
            if tree is None or tree.index is not index or tree.version != version:
                tree = self._memo.tree = self._build_tree(index, version)
            return tree

    def _build_tree(self, index: SnapshotIndex, version: tuple[Any, ...]) -> _Tree:
        departments = index.snapshot.departments
        with self._session() as session:
            links = {hr_id: DirectoryDepartment(code, parent, dict(pushed or {}), status)
                     for hr_id, code, parent, pushed, status in session.execute(select(
                         DepartmentLink.hr_id, DepartmentLink.organization_code, DepartmentLink.parent_hr_id,
                         DepartmentLink.pushed, DepartmentLink.status))}
            linked = {dept: int(count) for dept, count in session.execute(
                select(PersonLink.department, func.count()).where(PersonLink.status == "active")
                .group_by(PersonLink.department))}
        children: dict[str, list[str]] = {parent: list(kids) for parent, kids in index.children.items()}
        for hr_id, link in sorted(links.items()):
            if link.parent_hr_id is not None and hr_id not in departments and link.status == "active":
                children.setdefault(link.parent_hr_id, []).append(hr_id)
        differences = {dept_id: self._differences(dept_id, departments.get(dept_id), links.get(dept_id))
                       for dept_id in {*departments, *links, *linked}}
        for dept_id, found in differences.items():
            # Its own in-post people against its people in the directory: a leaver held for a decision,
            # a newcomer who cannot be created (the department's page says who and why).
            if index.in_post[dept_id] != linked.get(dept_id, 0):
                differences[dept_id] = (*found, "people")
        order, seen, todo = [], set(), [self.root_department]
        while todo:  # depth first from the root; a department off the tree (a cycle) is left out
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                order.append(current)
                todo.extend(reversed(children.get(current, [])))
        in_post_total: Counter[str] = Counter()
        linked_total: Counter[str] = Counter()
        parent_of = {kid: parent for parent, kids in children.items() for kid in kids}
        for dept_id in reversed(order):
            in_post_total[dept_id] += index.in_post[dept_id]
            linked_total[dept_id] += linked.get(dept_id, 0)
            parent = parent_of.get(dept_id)
            if parent is not None:
                in_post_total[parent] += in_post_total[dept_id]
                linked_total[parent] += linked_total[dept_id]
        return _Tree(index, version, links, linked, sum(linked.values()), children, differences, in_post_total,
                     linked_total)

    def department(self, department_id: str) -> DepartmentView | None:
        """The department's page, or None when neither HR nor the links know it."""
        tree = self._tree()
        index = tree.index
        departments = index.snapshot.departments
        is_root = department_id == self.root_department
        if department_id not in departments and department_id not in tree.links and not is_root:
            return None

        def row(dept_id: str) -> DepartmentRow:
            return DepartmentRow(dept_id, departments.get(dept_id), tree.links.get(dept_id),
                                 tree.differences.get(dept_id, ()), index.in_post[dept_id],
                                 tree.linked.get(dept_id, 0), tree.in_post_total[dept_id], tree.linked_total[dept_id])

        below: list[str] = []
        seen = {department_id}
        todo = list(reversed(tree.children.get(department_id, [])))
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                if tree.differences.get(current):
                    below.append(current)
                todo.extend(reversed(tree.children.get(current, [])))
        people_ids = index.people_in.get(department_id, [])
        with self._session() as session:  # its people as the directory holds them (moved, left or not)
            linked_ids = list(session.scalars(select(PersonLink.employee_id).where(
                PersonLink.department == department_id).limit(DEPARTMENT_COMPARED)))
        compared = self.compare({*people_ids[:DEPARTMENT_COMPARED], *linked_ids}, [department_id])
        own = compared.pop(department_id, [])
        names = {i: index.snapshot.people[i].name for i in compared if i in index.snapshot.people}
        if len(names) < len(compared):  # gone from HR: the name syncd last wrote
            with self._session() as session:
                for employee_id, pushed in session.execute(select(PersonLink.employee_id, PersonLink.pushed).where(
                        PersonLink.employee_id.in_([i for i in compared if i not in names]))):
                    names[employee_id] = str((pushed or {}).get("name", ""))
        return DepartmentView(
            row(department_id), self._path(department_id, departments, tree.links),
            [row(child) for child in tree.children.get(department_id, [])], [row(d) for d in below[:100]],
            len(below), [index.snapshot.people[i] for i in people_ids[:200]], len(people_ids), is_root,
            self.root_organization_code, own, compared, names)

    def _differences(self, dept_id: str, hr: Department | None, link: DirectoryDepartment | None
                     ) -> tuple[str, ...]:
        if dept_id == self.root_department:
            return ()  # the unit's root organisation is the directory's own; syncd never writes it
        if hr is None:
            return ("in_directory_only",) if link is not None and link.status == "active" else ()
        if link is None or link.status != "active":
            return ("missing",)
        pushed = link.pushed or {}
        found = [name for name, value in department_pushed_fields(hr).items() if str(pushed.get(name, "")) != value]
        if link.parent_hr_id != hr.parent:
            found.append("parent")
        return tuple(found)

    def _path(self, dept_id: str, departments: dict[str, Department],
              links: dict[str, DirectoryDepartment]) -> list[tuple[str, str]]:
        chain: list[tuple[str, str]] = []
        current: str | None = dept_id
        while current is not None and current not in {c for c, _ in chain}:
            hr, link = departments.get(current), links.get(current)
            if hr is not None:
                chain.append((current, hr.name))
                current = hr.parent
            elif link is not None:
                chain.append((current, str((link.pushed or {}).get("name", current))))
                current = link.parent_hr_id
            else:
                break
        return list(reversed(chain))

    def held(self) -> list[HeldRunView]:
        """Runs with changes waiting for a decision, newest first, each with its changes."""
        today = self.today()
        views = []
        with self._session() as session:
            for run_id, started, count in self.store.held_runs():
                held = (select(JournalEntry).where(JournalEntry.run_id == run_id, JournalEntry.state == "held")
                        .order_by(JournalEntry.error_category == "waiting", JournalEntry.seq))
                total = session.scalar(select(func.count()).select_from(held.subquery())) or 0
                changes = [self._journal_line(e, today) for e in session.scalars(held.limit(HELD_LISTED))]
                views.append(HeldRunView(run_id, aware(started), count, changes, total))
        return views

    def held_run(self, run_id: str) -> HeldRunView | None:
        """One run with changes waiting for a decision, or None."""
        return next((view for view in self.held() if view.run_id == run_id), None)

    def runs(self, number: int, size: int = 50, filters: RunFilter | None = None) -> Page:
        """A page of runs as filtered (trigger, outcome, start time), newest first."""
        number = max(1, number)
        query = _runs_query(filters or RunFilter())
        with self._session() as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            runs = [_run_line(run) for run in session.scalars(
                query.order_by(Run.started_at.desc()).offset((number - 1) * size).limit(size))]
        return Page(runs, number, size, total)

    def run(self, run_id: str, number: int, size: int = 200) -> RunView | None:
        """One run and a page of its changes in the order they were journaled, or None."""
        number = max(1, number)
        today = self.today()
        with self._session() as session:
            run = session.get(Run, run_id)
            if run is None:
                return None
            states = dict(session.execute(select(JournalEntry.state, func.count()).where(
                JournalEntry.run_id == run_id).group_by(JournalEntry.state)).all())
            changes = [self._journal_line(e, today) for e in session.scalars(
                # In the order journaled (the plan's, held changes first): the run_id index gives it without a sort.
                select(JournalEntry).where(JournalEntry.run_id == run_id).order_by(JournalEntry.id)
                .offset((number - 1) * size).limit(size))]
        return RunView(_run_line(run), states, Page(changes, number, size, sum(states.values())))

    def _change_query(self, filters: ChangeFilter) -> Any:
        """The journal entries a filter selects, newest first (by index: subject, run, kind and state)."""
        query = select(JournalEntry)
        if filters.employee_id:
            query = query.where(JournalEntry.subject == filters.employee_id)
        if filters.department:
            # The department and those under it, and the people the directory holds in them.
            departments = self.index().subtree(filters.department)
            query = query.where(JournalEntry.subject.in_(departments) | JournalEntry.subject.in_(
                select(PersonLink.employee_id).where(PersonLink.department.in_(departments))))
        if filters.kind:
            query = query.where(JournalEntry.kind == filters.kind)
        if filters.state:
            query = query.where(JournalEntry.state == filters.state)
        if filters.period.since or filters.period.until:
            query = query.where(JournalEntry.run_id.in_(_runs_query(filters.period).with_only_columns(Run.id)))
        return query

    def changes(self, filters: ChangeFilter, number: int, size: int = 100) -> Page:
        """A page of the change log as filtered, newest first. Not counted: a department's changes may be a
        whole unit's, and counting them costs as much as the page; the pager knows whether more follow."""
        number = max(1, number)
        today = self.today()
        with self._session() as session:
            entries = list(session.scalars(self._change_query(filters).order_by(JournalEntry.id.desc())
                                           .offset((number - 1) * size).limit(size + 1)))
        lines = [self._journal_line(e, today) for e in entries[:size]]
        return Page(lines, number, size, (number - 1) * size + len(entries), exact=False)

    def change_export(self, filters: ChangeFilter) -> list[ExportedChange]:
        """The change log as filtered, newest first, for a download (at most EXPORT_ROWS; columns, not entries)."""
        query = self._change_query(filters).with_only_columns(
            JournalEntry.detected_at, JournalEntry.run_id, JournalEntry.kind, JournalEntry.subject,
            JournalEntry.change, JournalEntry.state, JournalEntry.error_category, JournalEntry.due_at)
        with self._session() as session:
            return [ExportedChange(aware(detected), run_id, kind, subject,
                                   tuple(sorted((change or {}).get("fields") or ())),  # type: ignore[call-overload]
                                   state, category, due, kind in _DEPARTMENT_KINDS)
                    for detected, run_id, kind, subject, change, state, category, due in session.execute(
                        query.order_by(JournalEntry.id.desc()).limit(EXPORT_ROWS))]

    def _journal_line(self, entry: JournalEntry, today: date) -> JournalLine:
        change = entry.change or {}
        return JournalLine(
            entry.id, entry.run_id, entry.seq, entry.kind, entry.subject, entry.state, entry.attempts,
            entry.error_category, aware(entry.detected_at), entry.due_at, aware(entry.updated_at),
            dict(change.get("fields") or {}),  # type: ignore[call-overload]
            change.get("department"), change.get("from_department"),  # type: ignore[arg-type]
            str(change.get("reason") or ""),
            entry.due_at < today and entry.state not in CLOSED_STATES)


def _runs_query(filters: RunFilter) -> Any:
    """The runs a filter selects."""
    query = select(Run)
    if filters.trigger:
        query = query.where(Run.trigger == filters.trigger)
    if filters.outcome:
        query = query.where(Run.outcome == filters.outcome)
    if filters.since:
        query = query.where(Run.started_at >= filters.since)
    if filters.until:
        query = query.where(Run.started_at < filters.until)
    return query


def _run_line(run: Run) -> RunLine:
    outcome = run.outcome or ("running" if run.finished_at is None else "")
    return RunLine(run.id, run.trigger, run.mode, run.scope, run.dry_run, aware(run.started_at),
                   None if run.finished_at is None else aware(run.finished_at), outcome, dict(run.counts or {}))


def read_directory_person(target: Target, store: StateStore, employee_id: str) -> DirectoryEntry | None:
    """What the directory holds for a linked person now (one read of the directory), None when it has no
    such employee. LookupError when syncd does not manage the person; `TargetError` when the directory refused."""
    with Session(store.engine) as session:
        link = session.get(PersonLink, employee_id)
    if link is None:
        raise LookupError(f"{employee_id} is not a person syncd manages")
    entries: Iterable[DirectoryEntry] = target.read_people([], [link.employee_code])
    entry = next((entry for entry in entries if entry.employee_code == link.employee_code), None)
    if entry is None or entry.organization_code is not None:
        return entry
    # Read by code alone, the directory does not say where the main position is: one more call does.
    positions = target.person_positions(link.employee_code)
    return replace(entry, organization_code=positions[0]) if positions else entry
