"""Finish what a dead run left: every journal entry still `planned` or `sent` is settled before the next plan.

A change marked `sent` may or may not have landed. Creates are looked up (departments by
extOrgCode, people by mobile) and adopted when found, so nothing is created twice. Every other
kind is idempotent at the directory or tolerated by its handler (deactivating an inactive person,
deleting a deleted department), so it is closed as interrupted and the next plan re-derives it.
"""

from __future__ import annotations

import structlog

from syncd.domain.model import ChangeKind, LinkedDepartment, LinkedPerson
from syncd.domain.target import Target
from syncd.engine.apply import inside_unit
from syncd.state.store import StateStore

log = structlog.get_logger(__name__)


def recover(store: StateStore, target: Target, root_department: str, root_organization_code: str,
            ext_org_code_prefix: str = "") -> int:
    """Settle the unfinished entries of earlier runs; return how many were found."""
    entries = store.unfinished_entries()
    if not entries:
        return 0
    links = store.links()
    org_codes = {hr_id: link.organization_code for hr_id, link in links.departments.items()}
    org_codes[root_department] = root_organization_code
    linked_codes = {link.employee_code for link in links.people.values()}
    for entry in entries:
        if entry.state == "planned":
            store.mark_failed(entry.id, "interrupted", "the run ended before this change was sent; re-planned",
                              state="abandoned")
            continue
        adopted = False
        if entry.kind == ChangeKind.DEPT_CREATE.value and entry.subject not in links.departments:
            code = target.find_department(ext_org_code_prefix + entry.subject)
            if code is not None and inside_unit(target, code, root_organization_code):
                link = LinkedDepartment(code, entry.department, dict(entry.fields))
                store.mark_done(entry.id, department=(entry.subject, link))
                org_codes[entry.subject] = code
                adopted = True
        elif entry.kind == ChangeKind.JOIN.value and entry.subject not in links.people:
            found = target.find_person_by_mobile(entry.fields.get("mobile", ""))
            org_code = org_codes.get(entry.department or "")
            if found is not None and found.employee_code not in linked_codes and org_code is not None:
                link = LinkedPerson(found.employee_code, found.account_id, entry.department or "", org_code,
                                    dict(entry.fields))
                store.mark_done(entry.id, person=(entry.subject, link))
                linked_codes.add(found.employee_code)
                adopted = True
        if not adopted:
            store.mark_failed(entry.id, "interrupted", "the run ended before the answer arrived; re-planned")
        log.info("recovery.settled", kind=entry.kind, subject=entry.subject, adopted=adopted, run_id=entry.run_id)
    store.close_dead_runs()
    return len(entries)
