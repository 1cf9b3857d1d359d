"""Correlation: which organisation of the directory already is an HR department (DESIGN.md §4).

Units have built their part of the directory by hand since 2021. Sibling names are unique in the
directory, so an active organisation under the parent's node whose name is HR's 部门名称 or 简称 is
that department: it is adopted, never duplicated. A person is never matched on a name; the
onboarding review (`syncd onboard`) may *suggest* a name match for a person to confirm.
Pure functions: the directory's organisations come in as data.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import structlog

from syncd.domain.model import Department, LinkState, PersonStatus, Snapshot, department_depth
from syncd.domain.target import DirectoryOrganization, DirectoryPerson, Target

log = structlog.get_logger(__name__)

# Two names this alike (difflib's ratio) are offered as a 相似名称 suggestion, never adopted.
SIMILAR_RATIO = 0.6


class MatchKind(StrEnum):
    """How an HR department was found in the directory, strongest first."""

    EXT_CODE = "ext_code"
    NAME = "name"
    SHORT_NAME = "short_name"
    SIMILAR = "similar"  # a suggestion for a person to confirm
    NONE = "none"


@dataclass(frozen=True, slots=True)
class DepartmentMatch:
    """The organisations an HR department matched, and how."""

    kind: MatchKind
    candidates: tuple[DirectoryOrganization, ...] = ()

    @property
    def exact(self) -> bool:
        """An extOrgCode, name or short-name match (a similar name is only a suggestion)."""
        return self.kind in (MatchKind.EXT_CODE, MatchKind.NAME, MatchKind.SHORT_NAME)

    @property
    def unique(self) -> DirectoryOrganization | None:
        """The one organisation matched, or None when there are none or several."""
        return self.candidates[0] if len(self.candidates) == 1 else None


def name_key(name: str) -> str:
    """A name as compared: full-width forms folded (NFKC), inner white space removed, trimmed."""
    return "".join(unicodedata.normalize("NFKC", name).split())


def match_department(dept: Department, siblings: Iterable[DirectoryOrganization],
                     taken: Collection[str] = (), ext_code: str = "") -> DepartmentMatch:
    """The active organisations among `siblings` (the children of the parent's node) that are HR's
    department: by extOrgCode (`ext_code`, what syncd writes), else 部门名称, else 简称. `taken` holds
    codes already linked to another department."""
    free = [org for org in siblings if org.status == "A" and org.code not in taken]
    by_ext = tuple(org for org in free if ext_code and org.ext_code == ext_code)
    if by_ext:
        return DepartmentMatch(MatchKind.EXT_CODE, by_ext)
    for kind, wanted in ((MatchKind.NAME, dept.name), (MatchKind.SHORT_NAME, dept.short_name)):
        key = name_key(wanted)
        if not key:
            continue
        found = tuple(org for org in free if key in (name_key(org.name), name_key(org.short_name)))
        if found:
            return DepartmentMatch(kind, found)
    return DepartmentMatch(MatchKind.NONE)


def similar_departments(dept: Department, siblings: Sequence[DirectoryOrganization],
                        taken: Collection[str] = ()) -> DepartmentMatch:
    """Organisations whose name resembles HR's (a renamed department): suggestions, most alike first."""
    wanted = [key for key in (name_key(dept.name), name_key(dept.short_name)) if key]
    scored = []
    for org in siblings:
        if org.status != "A" or org.code in taken:
            continue
        ratio = max(difflib.SequenceMatcher(None, key, name_key(org.name)).ratio() for key in wanted) if wanted else 0
        if ratio >= SIMILAR_RATIO:
            scored.append((ratio, org))
    scored.sort(key=lambda pair: -pair[0])
    return DepartmentMatch(MatchKind.SIMILAR, tuple(org for _, org in scored)) if scored else \
        DepartmentMatch(MatchKind.NONE)


@dataclass(slots=True)
class Found:
    """What the directory already holds of HR's unlinked records, read before planning."""

    departments: dict[str, DepartmentMatch]  # HR department id -> its exact match (unique or not)
    people: dict[str, DirectoryPerson]  # employee id -> the directory person holding their mobile

    @classmethod
    def nothing(cls) -> Found:
        """No look-up made (a plan against an empty directory, or tests of reconcile alone)."""
        return cls({}, {})


def find_existing(snapshot: Snapshot, links: LinkState, target: Target, root_department: str,
                  root_organization_code: str, ext_prefix: str = "") -> Found:
    """Look for HR's unlinked departments among the children of their parent's node (top-down, so
    that an adopted parent's children are looked for under it) and for HR's unlinked in-post people
    by mobile, 50 a call. Reads only; a department under a parent that does not exist yet is new."""
    codes = {hr_id: link.organization_code for hr_id, link in links.departments.items() if link.status == "active"}
    codes[root_department] = root_organization_code
    taken = set(codes.values())
    children: dict[str, list[DirectoryOrganization]] = {}
    departments: dict[str, DepartmentMatch] = {}
    for dept in sorted(snapshot.departments.values(), key=lambda d: department_depth(d, snapshot.departments)):
        if dept.id in codes or dept.parent not in codes:
            continue
        parent_code = codes[dept.parent]
        if parent_code not in children:
            children[parent_code] = target.sub_departments(parent_code)
        match = match_department(dept, children[parent_code], taken, ext_prefix + dept.id)
        if match.kind is MatchKind.NONE:
            continue
        departments[dept.id] = match
        if match.unique is not None:
            codes[dept.id] = match.unique.code
            taken.add(match.unique.code)
    linked = links.people
    wanted = {person.mobile: person.employee_id for person in snapshot.people.values()
              if person.status is PersonStatus.IN_POST and person.creatable and person.employee_id not in linked}
    people = {wanted[mobile]: found for mobile, found in target.find_people_by_mobiles(list(wanted)).items()} \
        if wanted else {}
    if departments or people:
        log.info("directory.matched", departments=sum(1 for m in departments.values() if m.unique),
                 ambiguous=sum(1 for m in departments.values() if m.unique is None), people=len(people))
    return Found(departments, people)

