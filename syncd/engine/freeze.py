"""Freeze and unfreeze a person's login (Article 17: a lost phone is frozen at once).

The freeze is kept on the person's link, so no sync undoes it, whatever HR says, until an
operator unfreezes. Both are journaled as their own run, with who asked.
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog

from syncd.domain.model import Change, ChangeKind
from syncd.domain.target import Target, TargetError
from syncd.domain.workdays import local_date
from syncd.state.store import StateStore

log = structlog.get_logger(__name__)


class NotLinked(LookupError):
    """The employee id is not a person syncd manages."""


def set_frozen(target: Target, store: StateStore, employee_id: str, frozen: bool, requested_by: str,
               timezone: str = "Asia/Shanghai") -> str:
    """Freeze (or unfreeze) the login of one person now; return the run id that journals it."""
    link = store.links(people=[employee_id]).people.get(employee_id)
    if link is None:
        raise NotLinked(f"{employee_id} is not a person syncd has linked to a directory account")
    account_id = link.account_id
    if account_id is None:
        # A link made without the account (confirmed by name in `syncd onboard --accept`): a lost phone
        # cannot wait for the next sync to fill it, so the directory is asked now and the link completed.
        account_id = target.account_ids([link.employee_code]).get(link.employee_code)
        if account_id is None:
            raise NotLinked(f"{employee_id} ({link.employee_code}) has no login account in the directory")
        store.set_account_id(employee_id, account_id)
        log.info("person.account_found", subject=employee_id, requested_by=requested_by)
    kind = ChangeKind.FREEZE if frozen else ChangeKind.UNFREEZE
    run_id = store.start_run(kind.value, "manual", dry_run=False)
    now = datetime.now(UTC)
    change = Change(kind, employee_id, reason=f"requested by {requested_by}")
    # Due the day it was asked, in the unit's zone (`schedule.timezone`): never a day before it was found.
    [(entry, _)] = store.journal_plan(run_id, [change], now, local_date(now, timezone))
    store.mark_sent(entry)
    try:
        target.set_account_frozen(account_id, frozen)
    except TargetError as exc:
        store.mark_failed(entry, exc.category, str(exc))
        store.finish_run(run_id, "failed", {f"{kind.value}.failed": 1})
        raise
    store.set_frozen(employee_id, frozen, entry)
    store.finish_run(run_id, "success", {f"{kind.value}.done": 1})
    log.info("person.freeze" if frozen else "person.unfreeze", subject=employee_id, requested_by=requested_by,
             run_id=run_id)
    return run_id
