"""Drift: what someone changed by hand in the directory, found by reading the unit's part of it.

The full mode reads the directory, and where it differs from what syncd last pushed, the link is
corrected to what the directory really holds. Reconcile then plans the repair against HR as for
any other difference, so a hand edit costs one update and HR stays the truth. People in the unit's
organisations that syncd does not know are reported (and deactivated only when configured).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from syncd.domain.model import LinkState
from syncd.domain.target import DirectoryEntry


@dataclass(slots=True)
class Drift:
    """What the directory read showed, and the links corrected to it."""

    links: LinkState
    changed_fields: dict[str, list[str]] = field(default_factory=dict)  # employee id -> fields edited by hand
    moved: list[str] = field(default_factory=list)  # employee ids whose main position is elsewhere
    deactivated: list[str] = field(default_factory=list)  # employee ids found inactive
    missing: list[str] = field(default_factory=list)  # employee ids not found in the unit's organisations
    unknown: list[DirectoryEntry] = field(default_factory=list)  # directory people no HR record links to

    @property
    def found(self) -> bool:
        """Whether anything differed."""
        return bool(self.changed_fields or self.moved or self.deactivated or self.missing or self.unknown)


def detect_drift(links: LinkState, entries: list[DirectoryEntry]) -> Drift:
    """Compare the directory with what syncd last pushed; return links corrected to the directory."""
    by_code = {entry.employee_code: entry for entry in entries}
    hr_of_org = {link.organization_code: hr_id for hr_id, link in links.departments.items()
                 if link.status == "active"}
    drift = Drift(LinkState(dict(links.departments), {}))
    linked_codes = set()
    for employee_id, link in links.people.items():
        linked_codes.add(link.employee_code)
        entry = by_code.get(link.employee_code)
        if link.status != "active":
            drift.links.people[employee_id] = link
            continue
        if entry is None:
            drift.missing.append(employee_id)
            drift.links.people[employee_id] = link
            continue
        corrected = link
        if entry.status != "A":
            drift.deactivated.append(employee_id)
            corrected = replace(corrected, status="inactive")
        elif entry.organization_code and entry.organization_code != link.organization_code:
            drift.moved.append(employee_id)
            department = hr_of_org.get(entry.organization_code, f"(organisation {entry.organization_code})")
            corrected = replace(corrected, organization_code=entry.organization_code, department=department)
        changed = sorted(k for k, v in entry.fields.items() if k in link.pushed and link.pushed[k] != v)
        if changed:
            drift.changed_fields[employee_id] = changed
            corrected = replace(corrected, pushed={**link.pushed, **{k: entry.fields[k] for k in changed}})
        drift.links.people[employee_id] = corrected
    drift.unknown = [entry for entry in entries if entry.employee_code not in linked_codes and entry.status == "A"]
    return drift
