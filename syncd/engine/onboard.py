"""First contact with a unit that built its directory by hand: the review and what an operator confirmed (DESIGN.md §4).

`syncd onboard --output` reads HR and the whole directory under the unit's root, and `review`
correlates them (pure): each HR department with the organisation it matches and how, each HR person
in post with the directory person holding their mobile (or, only as a suggestion, a same-named person
of the same department), and what the directory holds that HR does not know. `syncd onboard --accept`
reads the rows an operator confirmed back (`onboard_workbook`), `check` refuses the stale or
contradictory ones, and `confirmed_links` turns the rest into links. Only `read_directory` and
`accept` do I/O; nothing here writes to the directory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import structlog

from syncd.config import Config
from syncd.domain.correlate import MatchKind, match_department, name_key, similar_departments
from syncd.domain.model import (
    ADOPTED_ORGANIZATION,
    ADOPTED_PERSON,
    Change,
    ChangeKind,
    Department,
    LinkedDepartment,
    LinkedPerson,
    LinkState,
    Person,
    PersonStatus,
    Snapshot,
    department_depth,
)
from syncd.domain.target import DirectoryEntry, DirectoryOrganization, DirectoryPerson, Target
from syncd.engine.cycle import SOURCE_TOKEN
from syncd.state.store import StateStore

log = structlog.get_logger(__name__)

# How a row matched, beyond correlate's MatchKind: linked earlier, matched by mobile or only by a
# same-named person of the same department, or found only in the directory.
LINKED = "linked"
MOBILE = "mobile"
SAME_NAME = "same_name"
NONE = MatchKind.NONE.value
DIRECTORY_ONLY = "directory_only"
_EXACT = (MatchKind.EXT_CODE.value, MatchKind.NAME.value, MatchKind.SHORT_NAME.value)
_ACTIVE = "A"


@dataclass(slots=True)
class Directory:
    """The unit's part of the directory as read: every active organisation under the root, and everyone in it."""

    root: str
    organizations: dict[str, DirectoryOrganization] = field(default_factory=dict)
    people: dict[str, DirectoryEntry] = field(default_factory=dict)  # employeeCode -> entry
    _children: dict[str, list[DirectoryOrganization]] | None = field(default=None, init=False, repr=False)

    def path(self, code: str | None) -> str:
        """The names from below the root down to `code`, joined by "/"; "" for the root or an organisation outside."""
        names: list[str] = []
        seen: set[str] = set()
        while code is not None and code in self.organizations and code not in seen:
            seen.add(code)
            names.append(self.organizations[code].name)
            code = self.organizations[code].parent
        return "/".join(reversed(names)) if code == self.root else ""

    def holds(self, code: str | None) -> bool:
        """Whether `code` is the root or an organisation under it."""
        return code == self.root or code in self.organizations

    def children(self, code: str) -> list[DirectoryOrganization]:
        """The organisations one level below `code` (indexed on first use: the tree is read once, then only read)."""
        if self._children is None:
            self._children = {}
            for org in self.organizations.values():
                self._children.setdefault(org.parent or "", []).append(org)
        return self._children.get(code, [])


def read_directory(target: Target, root_code: str) -> Directory:
    """The whole tree under `root_code` (one `sub_departments` read per organisation) and everyone with a
    position in it, as the directory holds them. Reads only."""
    directory = Directory(root_code)
    pending = [root_code]
    while pending:
        code = pending.pop()
        for org in target.sub_departments(code):
            if org.code not in directory.organizations and org.code != root_code:
                # The parent as walked: the read may leave parentCode out.
                directory.organizations[org.code] = org if org.parent == code else _with_parent(org, code)
                pending.append(org.code)
    for entry in target.read_people([root_code, *directory.organizations]):
        directory.people[entry.employee_code] = entry
    log.info("onboard.directory_read", organizations=len(directory.organizations), people=len(directory.people))
    return directory


def _with_parent(org: DirectoryOrganization, parent: str) -> DirectoryOrganization:
    return DirectoryOrganization(org.code, org.name, org.short_name, parent, org.ext_code, org.status, org.order)


# -- the review ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DepartmentRow:
    """A row of the 部门 sheet: an HR department and the organisation it matched, or an organisation HR lacks."""

    kind: str  # linked | ext_code | name | short_name | similar | none | directory_only
    hr_id: str = ""
    name: str = ""
    short_name: str = ""
    parent: str = ""
    organization_code: str = ""
    organization_name: str = ""
    path: str = ""
    confirmed: bool = False
    candidates: int = 0  # organisations alike enough to be this one (more than one: a person chooses)

    @property
    def hr_key(self) -> str:
        """The HR department id."""
        return self.hr_id


@dataclass(frozen=True, slots=True)
class PersonRow:
    """A row of the 人员 sheet: an HR person in post and who matched, or a directory person HR lacks."""

    kind: str  # linked | mobile | same_name | none | directory_only
    employee_id: str = ""
    name: str = ""
    department: str = ""  # HR department id
    department_name: str = ""
    employee_code: str = ""
    directory_name: str = ""
    directory_path: str = ""
    directory_status: str = ""  # "A" | "F" | "" (not found)
    confirmed: bool = False
    candidates: int = 0  # same-named people in the department (more than one: none suggested)
    outside: bool = False  # the directory person holding the mobile has no main position in the unit

    @property
    def hr_key(self) -> str:
        """The HR employee id."""
        return self.employee_id


@dataclass(slots=True)
class Review:
    """The whole correlation, row by row, as the workbook and the console show it."""

    departments: list[DepartmentRow] = field(default_factory=list)
    people: list[PersonRow] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        """The counts an operator reads first (`messages.ONBOARD_SUMMARY`'s keys, in its order)."""
        counts: dict[str, int] = {}
        rows: Sequence[DepartmentRow | PersonRow]
        for sheet, rows in (("departments", self.departments), ("people", self.people)):
            hr_rows = [row for row in rows if row.kind != DIRECTORY_ONLY]
            hr = {row.hr_key for row in hr_rows}
            confirmed = {row.hr_key for row in hr_rows if row.confirmed}
            none = {row.hr_key for row in hr_rows if row.kind == NONE}
            linked = {row.hr_key for row in hr_rows if row.kind == LINKED}
            counts.update({sheet: len(hr), f"{sheet}.confirmed": len(confirmed),
                           f"{sheet}.to_confirm": len(hr - confirmed - none - linked), f"{sheet}.none": len(none),
                           f"{sheet}.directory_only": len(rows) - len(hr_rows), f"{sheet}.linked": len(linked)})
        return counts

    def suggestions(self) -> list[DepartmentRow | PersonRow]:
        """The rows a person must decide: a similar name, a same-named person, or an exact match not pre-confirmed
        (one of several, or under a parent not confirmed yet)."""
        return [row for row in [*self.departments, *self.people]
                if row.kind in (MatchKind.SIMILAR.value, SAME_NAME) or (row.kind in _EXACT and not row.confirmed)]


def review(snapshot: Snapshot, links: LinkState, directory: Directory, by_mobile: Mapping[str, DirectoryPerson],
           root_department: str, ext_prefix: str = "") -> Review:
    """Correlate HR with the directory: exact unique matches pre-confirmed, suggestions not (pure).

    `by_mobile` is the directory person holding each unlinked HR person's mobile, by employee id.
    """
    result = Review()
    org_of = _department_rows(snapshot, links, directory, root_department, ext_prefix, result.departments)
    _people_rows(snapshot, links, directory, by_mobile, org_of, result.people)
    return result


def _department_rows(snapshot: Snapshot, links: LinkState, directory: Directory, root_department: str,
                     ext_prefix: str, rows: list[DepartmentRow]) -> dict[str, str]:
    """Fill the 部门 rows; return HR department id -> the organisation it most likely is (for the people)."""
    code_of = {hr_id: link.organization_code for hr_id, link in links.departments.items() if link.status == "active"}
    code_of[root_department] = directory.root
    taken = set(code_of.values())
    sure = {root_department, *code_of}  # matched for certain: their children's exact matches are pre-confirmed
    by_depth: dict[int, list[Department]] = {}
    for dept in snapshot.departments.values():
        if dept.id != root_department:
            by_depth.setdefault(department_depth(dept, snapshot.departments), []).append(dept)
    matches: dict[str, tuple[str, tuple[DirectoryOrganization, ...]]] = {}
    for depth in sorted(by_depth):
        level = by_depth[depth]
        # Exact matches first, level by level, so that a similar name never takes an organisation
        # a sibling matches exactly.
        for dept in level:
            if dept.id in code_of:
                matches[dept.id] = (LINKED, ())
                continue
            if dept.parent not in code_of:
                matches[dept.id] = (NONE, ())
                continue
            match = match_department(dept, directory.children(code_of[dept.parent]), taken, ext_prefix + dept.id)
            matches[dept.id] = (match.kind.value, match.candidates)
            if match.unique is not None:
                code_of[dept.id] = match.unique.code
                taken.add(match.unique.code)
                if dept.parent in sure:
                    sure.add(dept.id)
        for dept in level:
            if matches[dept.id][0] == NONE and dept.parent in code_of:
                similar = similar_departments(dept, directory.children(code_of[dept.parent]), taken)
                if similar.candidates:
                    matches[dept.id] = (similar.kind.value, similar.candidates)
                    code_of[dept.id] = similar.candidates[0].code  # tentatively, to look for its children
    shown: set[str] = set()
    for dept in sorted(snapshot.departments.values(), key=lambda d: department_depth(d, snapshot.departments)):
        if dept.id == root_department:
            continue
        kind, candidates = matches[dept.id]
        base = DepartmentRow(kind, dept.id, dept.name, dept.short_name, dept.parent or "")
        if kind == LINKED:
            code = code_of[dept.id]
            org = directory.organizations.get(code)
            rows.append(_with_org(base, code, org, directory))
            shown.add(code)
        elif not candidates:
            rows.append(base)
        else:
            confirmed = kind in _EXACT and len(candidates) == 1 and dept.id in sure
            for org in candidates:
                rows.append(_with_org(base, org.code, org, directory, confirmed=confirmed, candidates=len(candidates)))
                shown.add(org.code)
    for code, org in directory.organizations.items():
        if code not in shown and code not in taken:
            rows.append(DepartmentRow(DIRECTORY_ONLY, organization_code=code, organization_name=org.name,
                                      path=directory.path(code)))
    return code_of


def _with_org(row: DepartmentRow, code: str, org: DirectoryOrganization | None, directory: Directory,
              confirmed: bool = False, candidates: int = 1) -> DepartmentRow:
    return DepartmentRow(row.kind, row.hr_id, row.name, row.short_name, row.parent, code,
                         org.name if org else "", directory.path(code), confirmed, candidates)


def _people_rows(snapshot: Snapshot, links: LinkState, directory: Directory, by_mobile: Mapping[str, DirectoryPerson],
                 org_of: Mapping[str, str], rows: list[PersonRow]) -> None:
    linked_codes = {link.employee_code for link in links.people.values()}
    # A directory person whose mobile two HR records share is nobody's for certain.
    holders: dict[str, int] = {}
    for found in by_mobile.values():
        holders[found.employee_code] = holders.get(found.employee_code, 0) + 1
    matched = set(linked_codes) | set(holders)
    in_post = [p for p in snapshot.people.values() if p.status is PersonStatus.IN_POST]
    # Same-named people of a department, among those no mobile or link matched: suggestions only.
    by_name: dict[tuple[str | None, str], list[DirectoryEntry]] = {}
    for entry in directory.people.values():
        if entry.employee_code not in matched and entry.status == _ACTIVE:
            by_name.setdefault((entry.organization_code, name_key(entry.fields.get("name", ""))), []).append(entry)
    suggested: set[str] = set()
    for person in in_post:
        row = _person_row(person, snapshot)
        link = links.people.get(person.employee_id)
        if link is not None:
            rows.append(_with_entry(row, LINKED, link.employee_code, directory))
        elif person.employee_id in by_mobile:
            found = by_mobile[person.employee_id]
            confirmed = holders[found.employee_code] == 1 and found.employee_code not in linked_codes
            rows.append(_with_entry(row, MOBILE, found.employee_code, directory, confirmed,
                                    status=found.status))
        else:
            same = by_name.get((org_of.get(person.department), name_key(person.name)), [])
            if len(same) == 1 and same[0].employee_code not in suggested:
                suggested.add(same[0].employee_code)
                rows.append(_with_entry(row, SAME_NAME, same[0].employee_code, directory))
            else:
                rows.append(PersonRow(NONE, row.employee_id, row.name, row.department, row.department_name,
                                      candidates=len(same)))
    for code, entry in directory.people.items():
        if code not in matched and code not in suggested and entry.status == _ACTIVE:
            rows.append(_with_entry(PersonRow(DIRECTORY_ONLY), DIRECTORY_ONLY, code, directory))


def _person_row(person: Person, snapshot: Snapshot) -> PersonRow:
    dept = snapshot.departments.get(person.department)
    return PersonRow(NONE, person.employee_id, person.name, person.department, dept.name if dept else "")


def _with_entry(row: PersonRow, kind: str, code: str, directory: Directory, confirmed: bool = False,
                status: str = "") -> PersonRow:
    entry = directory.people.get(code)
    return PersonRow(kind, row.employee_id, row.name, row.department, row.department_name, code,
                     entry.fields.get("name", "") if entry else "",
                     directory.path(entry.organization_code) if entry else "",
                     entry.status if entry else status, confirmed, 1 if kind != DIRECTORY_ONLY else 0,
                     outside=entry is None or not directory.holds(entry.organization_code))


def lookup_mobiles(snapshot: Snapshot, links: LinkState, target: Target) -> dict[str, DirectoryPerson]:
    """The directory person holding each unlinked in-post HR person's mobile, by employee id (50 a call)."""
    wanted: dict[str, list[str]] = {}
    for person in snapshot.people.values():
        if person.status is PersonStatus.IN_POST and person.creatable and person.employee_id not in links.people:
            wanted.setdefault(person.mobile, []).append(person.employee_id)
    found = target.find_people_by_mobiles(list(wanted)) if wanted else {}
    return {employee_id: holder for mobile, holder in found.items() for employee_id in wanted[mobile]}


# -- accepting what was confirmed ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConfirmedRow:
    """A row an operator confirmed (确认 = 是), as read back from the workbook."""

    sheet: str  # "departments" | "people"
    row: int  # the worksheet's row number
    hr_id: str  # 部门编号 or 工号
    code: str  # organisationCode or employeeCode
    hr_name: str = ""  # 部门名称 or 姓名, as the review wrote it ("" when an operator filled the row in)
    directory_name: str = ""  # the directory's name as the review wrote it


@dataclass(frozen=True, slots=True)
class Refusal:
    """A confirmed row that cannot be stored: where it is and why (a code of `messages.ONBOARD_REFUSALS`)."""

    sheet: str
    row: int
    reason: str
    params: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class Accepted:
    """What an acceptance stores: the links, and the confirmed rows already linked exactly so."""

    departments: dict[str, LinkedDepartment] = field(default_factory=dict)
    people: dict[str, LinkedPerson] = field(default_factory=dict)
    rows: dict[tuple[str, str], ConfirmedRow] = field(default_factory=dict)  # (sheet, HR id) -> its row
    unchanged: int = 0


def check(rows: Sequence[ConfirmedRow], snapshot: Snapshot, links: LinkState, directory: Directory,
          by_mobile: Mapping[str, DirectoryPerson], root_department: str) -> tuple[Accepted, list[Refusal]]:
    """Check every confirmed row against HR and the directory as they are now (pure); the links to store,
    or why not. `by_mobile` holds the directory person holding each confirmed HR person's mobile now."""
    accepted = Accepted()
    departments = [row for row in rows if row.sheet == "departments"]
    people = [row for row in rows if row.sheet == "people"]
    problems = [*_check_departments(departments, snapshot, links, directory, root_department),
                *_check_people(people, snapshot, links, directory, by_mobile)]
    if problems:
        return accepted, [Refusal(row.sheet, row.row, reason, params) for row, reason, params in problems]
    code_of = {hr_id: link.organization_code for hr_id, link in links.departments.items() if link.status == "active"}
    code_of[root_department] = directory.root
    for row in departments:
        if links.departments.get(row.hr_id, None) is not None and code_of.get(row.hr_id) == row.code:
            accepted.unchanged += 1
            continue
        dept = snapshot.departments[row.hr_id]
        accepted.departments[row.hr_id] = LinkedDepartment(row.code, dept.parent, {})
        accepted.rows[("departments", row.hr_id)] = row
        code_of[row.hr_id] = row.code
    hr_of = {code: hr_id for hr_id, code in code_of.items()}
    for hr_id, link in accepted.departments.items():
        # Its parent is where the directory has it: under another parent than HR's, the next sync moves it.
        org = directory.organizations[link.organization_code]
        accepted.departments[hr_id] = replace(link, parent=hr_of.get(org.parent or "", ""))
    for employee_id, link in links.people.items():
        # Accepted earlier into an organisation no department was confirmed for, which one now is.
        if not link.department and link.organization_code in hr_of and not link.pushed:
            accepted.people[employee_id] = replace(link, department=hr_of[link.organization_code])
    for row in people:
        link = links.people.get(row.hr_id)
        if link is not None and link.employee_code == row.code:
            accepted.unchanged += 1
            continue
        entry = directory.people[row.code]
        main = entry.organization_code or directory.root
        holder = by_mobile.get(row.hr_id)
        # Their department is where the directory has them: the next sync moves them to HR's.
        accepted.people[row.hr_id] = LinkedPerson(
            row.code, holder.account_id if holder is not None else None, hr_of.get(main, ""), main, {},
            "active" if entry.status == _ACTIVE else "inactive")
        accepted.rows[("people", row.hr_id)] = row
    return accepted, []


Problem = tuple[str, tuple[tuple[str, str], ...]]  # a code of `messages.ONBOARD_REFUSALS` and its params


def _check_departments(rows: Sequence[ConfirmedRow], snapshot: Snapshot, links: LinkState, directory: Directory,
                       root_department: str) -> Iterable[tuple[ConfirmedRow, str, tuple[tuple[str, str], ...]]]:
    def facts(row: ConfirmedRow) -> Problem | None:
        dept = snapshot.departments.get(row.hr_id)
        org = directory.organizations.get(row.code)
        if dept is None:
            return "department.unknown", (("id", row.hr_id),)
        if row.hr_id == root_department:
            return "department.root", (("id", row.hr_id),)
        if row.hr_name and name_key(row.hr_name) != name_key(dept.name):
            return "department.renamed_in_hr", (("id", row.hr_id), ("name", dept.name))
        if org is None:
            return "organization.gone", (("code", row.code),)
        if row.directory_name and name_key(row.directory_name) != name_key(org.name):
            return "organization.renamed", (("code", row.code), ("name", org.name))
        return None

    linked = {hr_id: link.organization_code for hr_id, link in links.departments.items() if link.status == "active"}
    return _one_to_one(rows, facts, linked, "department", "organization")


def _check_people(rows: Sequence[ConfirmedRow], snapshot: Snapshot, links: LinkState, directory: Directory,
                  by_mobile: Mapping[str, DirectoryPerson]) -> Iterable[tuple[ConfirmedRow, str,
                                                                               tuple[tuple[str, str], ...]]]:
    def facts(row: ConfirmedRow) -> Problem | None:
        person = snapshot.people.get(row.hr_id)
        entry = directory.people.get(row.code)
        holder = by_mobile.get(row.hr_id)
        if person is None:
            return "person.unknown", (("id", row.hr_id),)
        if person.status is not PersonStatus.IN_POST:
            return "person.not_in_post", (("id", row.hr_id), ("status", person.status.value))
        if entry is None:
            return "employee.gone", (("code", row.code),)
        if row.directory_name and name_key(row.directory_name) != name_key(entry.fields.get("name", "")):
            return "employee.renamed", (("code", row.code),)
        if holder is not None and holder.employee_code != row.code:
            return "mobile.elsewhere", (("id", row.hr_id), ("code", holder.employee_code))
        return None

    return _one_to_one(rows, facts, {employee_id: link.employee_code for employee_id, link in links.people.items()},
                       "person", "employee")


def _one_to_one(rows: Sequence[ConfirmedRow], facts: Callable[[ConfirmedRow], Problem | None],
                linked: Mapping[str, str], subject: str, thing: str) -> Iterable[tuple[ConfirmedRow, str,
                                                                                      tuple[tuple[str, str], ...]]]:
    """Each row's own problem (`facts`), else whether its HR record or directory object is confirmed twice
    or linked to another already: one HR record is one directory object."""
    linked_to = {code: hr_id for hr_id, code in linked.items()}
    first_of_id: dict[str, ConfirmedRow] = {}
    first_of_code: dict[str, ConfirmedRow] = {}
    for row in rows:
        problem = facts(row) if row.hr_id and row.code else ("row.incomplete", ())
        if problem is not None:
            pass
        elif row.hr_id in first_of_id:
            problem = f"{subject}.twice", (("id", row.hr_id), ("row", str(first_of_id[row.hr_id].row)))
        elif row.code in first_of_code:
            problem = f"{thing}.twice", (("code", row.code), ("row", str(first_of_code[row.code].row)))
        elif linked.get(row.hr_id, row.code) != row.code:
            problem = f"{subject}.linked_elsewhere", (("id", row.hr_id), ("code", linked[row.hr_id]))
        elif linked_to.get(row.code, row.hr_id) != row.hr_id:
            problem = f"{thing}.linked_elsewhere", (("code", row.code), ("id", linked_to[row.code]))
        if problem is not None:
            yield row, *problem
        first_of_id.setdefault(row.hr_id, row)
        first_of_code.setdefault(row.code, row)


def accept(rows: Sequence[ConfirmedRow], snapshot: Snapshot, store: StateStore, target: Target,
           root_department: str, root_code: str) -> tuple[Accepted, list[Refusal], str | None]:
    """Check the confirmed rows against HR and the directory now; store them as links, journaled as one
    run, unless any is refused (then nothing is stored). Returns what was stored, the refusals and the run."""
    links = store.links()
    directory = read_directory(target, root_code)
    missing = [row.code for row in rows if row.sheet == "people" and row.code and row.code not in directory.people]
    for entry in target.read_people([], missing) if missing else []:
        directory.people[entry.employee_code] = entry  # a person now outside the unit is still a person
    wanted = {row.hr_id: snapshot.people[row.hr_id].mobile for row in rows
              if row.sheet == "people" and row.hr_id in snapshot.people and snapshot.people[row.hr_id].creatable}
    found = target.find_people_by_mobiles(sorted(set(wanted.values()))) if wanted else {}
    by_mobile = {employee_id: found[mobile] for employee_id, mobile in wanted.items() if mobile in found}
    accepted, refusals = check(rows, snapshot, links, directory, by_mobile, root_department)
    if refusals:
        log.warning("onboard.refused", refused=len(refusals), rows=len(rows))
        return accepted, refusals, None
    run_id = store.start_run("onboard", "onboard", dry_run=False)
    changes = [*(_adoption(ChangeKind.DEPT_ADOPT, hr_id, ADOPTED_ORGANIZATION, link.organization_code, link.parent,
                           accepted.rows[("departments", hr_id)]) for hr_id, link in accepted.departments.items()),
               *(_adoption(ChangeKind.ADOPT, employee_id, ADOPTED_PERSON, link.employee_code, link.department,
                           accepted.rows.get(("people", employee_id)))
                 for employee_id, link in accepted.people.items())]
    store.store_confirmed(run_id, changes, accepted.departments, accepted.people, datetime.now(UTC))
    counts = {"dept_adopt": len(accepted.departments), "adopt": len(accepted.people), "unchanged": accepted.unchanged}
    store.finish_run(run_id, "success", counts)
    # The links changed under an unchanged HR source: the daemon's next cycle must not skip the read.
    store.set_value(SOURCE_TOKEN, None)
    log.info("onboard.accepted", run_id=run_id, **counts)
    return accepted, [], run_id


def _adoption(kind: ChangeKind, subject: str, key: str, code: str, department: str | None,
              row: ConfirmedRow | None) -> Change:
    reason = f"confirmed in the onboarding review ({row.sheet} row {row.row})" if row is not None else \
        "placed in the department its organisation was confirmed as"
    return Change(kind, subject, {key: code}, department=department or None, reason=reason)


def build_review(config: Config, snapshot: Snapshot, target: Target, store: StateStore) -> Review:
    """Correlate an HR snapshot (read and validated like a sync's) with the links and the whole directory
    under the root. Reads only."""
    links = store.links()
    directory = read_directory(target, config.unit.root_organization_code)
    result = review(snapshot, links, directory, lookup_mobiles(snapshot, links, target), config.unit.root_department,
                    config.unit.ext_org_code_prefix)
    log.info("onboard.reviewed", **{key.replace(".", "_"): value for key, value in result.summary().items()})
    return result
