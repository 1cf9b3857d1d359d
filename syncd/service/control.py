"""The control surface the HTTP API and the console call: one place for every action.

The API never touches the store or the target itself; it calls a `Control`, so role checks and
behaviour are the same whichever front end asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from syncd.domain.scope import ResyncRequest, Scope
from syncd.domain.target import DirectoryEntry
from syncd.state import StateUnavailable
from syncd.version import __version__

# The scope, the request and the state's outage are the engine's and the store's; re-exported for the API.
ResyncScope = Scope
__all__ = ["Control", "Health", "ResyncRequest", "ResyncScope", "StateUnavailable"]


@dataclass(frozen=True, slots=True)
class Health:
    """`/healthz`: ok while the last cycle succeeded or was skipped within three intervals."""

    ok: bool
    last_success: datetime | None
    last_outcome: str | None
    reason: str | None = None  # why not ok, when the cycles do not tell (the state, a standby's view)
    role: str | None = None  # leader | standby, when several nodes share the state

    def as_json(self) -> dict[str, Any]:
        """`{"status": "ok"|"failing", "last_success", "last_outcome", "version"}`, `reason` and `role` when known."""
        body: dict[str, Any] = {"status": "ok" if self.ok else "failing", "version": __version__,
                                "last_success": self.last_success.isoformat() if self.last_success else None,
                                "last_outcome": self.last_outcome}
        if self.reason is not None:
            body["reason"] = self.reason
        if self.role is not None:
            body["role"] = self.role
        return body


class Control(Protocol):
    """Every action the API offers; implemented by `syncd.service.daemon.DaemonControl`. Any of them but
    `health` raises StateUnavailable while the state database is out of reach."""

    def request_resync(self, scope: ResyncScope, full: bool, requested_by: str) -> ResyncRequest:
        """Queue a resync (an identical one still waiting is returned instead); the daemon starts it within
        seconds. `syncd.state.store.ResyncQueueFull`: too many wait already."""

    def resync(self, request_id: str) -> ResyncRequest | None:
        """One resync request, or None when the id is unknown."""

    def status(self) -> dict[str, Any]:
        """JSON-ready: `runs` (last runs), `held` (runs waiting for a decision), `overdue` (changes
        past their due date), `resyncs` (queued and recent), `daemon` (running, pid, host, since)."""

    def decide(self, run_id: str, approve: bool, by: str) -> int:
        """Approve or reject a held run; how many changes were decided. LookupError: unknown run."""

    def set_frozen(self, employee_id: str, frozen: bool, by: str) -> str:
        """Freeze or unfreeze a login now; the run id. LookupError: not a linked person;
        `syncd.domain.target.TargetError`: the directory refused."""

    def health(self) -> Health:
        """Whether the service is doing its job."""

    def directory_person(self, employee_id: str) -> DirectoryEntry | None:
        """What the directory holds for a linked person now (a live read), None when it has no such
        employee. LookupError: not a linked person; `syncd.domain.target.TargetError`: the directory refused."""

    def escalations(self) -> dict[str, Any]:
        """`{"open": [...], "resolved": [...]}`: problems and the notices sent about them."""

    def acknowledge(self, key: str, by: str) -> bool:
        """Stop the reminders of an open problem (not its level-2 deadline); False when none is open."""

    def compliance(self, start: date, end: date) -> dict[str, Any]:
        """The Article 9 figures of the changes detected from `start` to `end` (`syncd.domain.compliance`),
        JSON-ready."""
