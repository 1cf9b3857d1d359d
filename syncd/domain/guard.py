"""Guards on a plan, before any write (DESIGN.md §6). A remote directory cannot be rolled back, so the
dangerous changes are stopped here, as data, not discovered half-applied.

- Deactivations above `max_deactivations` or `max_deactivation_share` of the active people are
  all held (other changes proceed) until an operator approves or rejects the run.
- A sanity floor on the size of HR: when a complete read has more than `max_shrink_share` and more
  than `max_shrink_count` fewer in-post people than the last complete read that was let through,
  every deactivation is held the same way, whatever their number: a well-formed but wrong export
  (one department's sheet, last year's file) looks like this. The count keeps a small unit's
  ordinary month (2 of 10 leaving) from being held.
- With `structure_changes = "hold"`, department creates, renames, moves and retirements are held
  for approval (Article 7: structure changes are reported to the city bureau beforehand).
- A change that depends on a held one (a person joining a department whose creation is held)
  waits with it: reported as waiting, not failed.
- Nothing outside the unit's root is touched: a plan that would is refused with ScopeViolation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from syncd.domain.model import Change, ChangeKind, LinkState, Plan, Snapshot

DEACTIVATIONS = frozenset({ChangeKind.LEAVE, ChangeKind.TRANSFER_OUT})
STRUCTURE = frozenset({ChangeKind.DEPT_ADOPT, ChangeKind.DEPT_CREATE, ChangeKind.DEPT_UPDATE, ChangeKind.DEPT_MOVE,
                       ChangeKind.DEPT_RETIRE})
_NEW_DEPARTMENT = frozenset({ChangeKind.DEPT_ADOPT, ChangeKind.DEPT_CREATE})  # people into it wait while it is held
_INTO_DEPARTMENT = frozenset({ChangeKind.JOIN, ChangeKind.TRANSFER, ChangeKind.REJOIN, ChangeKind.ADOPT})

HOLD_MASS_DEACTIVATION = "mass_deactivation"  # by either rule: the run's counts (COUNT_*) tell which
HOLD_STRUCTURE = "structure"
WAITING = "waiting"
# A held run's counts that say which rule held its deactivations, with the figures its notice names: the
# limits (and the active people they were measured against), the shrink floor (in post before and now).
COUNT_OVER_LIMITS = "held_over_limits"
COUNT_ACTIVE = "active_people"
COUNT_IN_POST_BEFORE = "in_post_before"
COUNT_IN_POST_NOW = "in_post_now"


class ScopeViolation(Exception):
    """The plan would write outside the unit's root organisation; nothing of it is applied."""


@dataclass(frozen=True, slots=True)
class Limits:
    """The thresholds of `[safety]` the guard applies."""

    max_deactivations: int
    max_deactivation_share: float
    hold_structure: bool
    max_shrink_share: float = 0.10
    max_shrink_count: int = 5


@dataclass(frozen=True, slots=True)
class InPost:
    """The in-post people of the last complete read let through (`before`) and of this one (`now`)."""

    before: int
    now: int

    @property
    def lost(self) -> int:
        """How many fewer in-post people (0 when HR grew)."""
        return max(self.before - self.now, 0)

    @property
    def drop(self) -> float:
        """The share of `before` that is gone (0 when HR grew)."""
        return self.lost / self.before if self.before else 0.0

    def past(self, limits: Limits) -> bool:
        """Whether HR shrank by more than both `max_shrink_share` and `max_shrink_count`."""
        return self.drop > limits.max_shrink_share and self.lost > limits.max_shrink_count


@dataclass(frozen=True, slots=True)
class Held:
    """A change kept back: why, and for a waiting change, what it waits on."""

    change: Change
    reason: str  # mass_deactivation | structure | waiting
    detail: str


@dataclass(slots=True)
class GuardedPlan:
    """The plan split into what may be applied now and what is held."""

    allowed: Plan
    held: list[Held] = field(default_factory=list)
    shrink_held: bool = False  # deactivations held because HR shrank past max_shrink_share and max_shrink_count
    over_limits: bool = False  # deactivations held past max_deactivations or max_deactivation_share
    active: int = 0  # the active people the share was measured against
    in_post: InPost | None = None

    @property
    def needs_approval(self) -> bool:
        """Whether an operator must approve or reject (exit code 3)."""
        return any(h.reason != WAITING for h in self.held)

    def hold_counts(self) -> dict[str, int]:
        """The run's counts that record which rule held the deactivations, and its figures (none if neither)."""
        counts: dict[str, int] = {}
        if self.over_limits:
            counts |= {COUNT_OVER_LIMITS: 1, COUNT_ACTIVE: self.active}
        if self.shrink_held and self.in_post is not None:
            counts |= {COUNT_IN_POST_BEFORE: self.in_post.before, COUNT_IN_POST_NOW: self.in_post.now}
        return counts


def check_scope(plan: Plan, snapshot: Snapshot, root_department: str) -> None:
    """Refuse a plan that would create, move or change anything outside the unit's root."""
    for change in plan.changes:
        if change.kind in STRUCTURE and change.subject == root_department:
            raise ScopeViolation(f"{change.kind.value} of the unit's root department {root_department}")
        placed = change.kind in (*_NEW_DEPARTMENT, ChangeKind.DEPT_MOVE, *_INTO_DEPARTMENT)
        if placed and change.department and not _under_root(change.department, snapshot, root_department):
            raise ScopeViolation(f"{change.kind.value} {change.subject} into {change.department}, "
                                     f"which is not under the unit's root {root_department}")


def _under_root(dept_id: str, snapshot: Snapshot, root: str) -> bool:
    seen: set[str] = set()
    current: str | None = dept_id
    while current is not None and current not in seen:
        if current == root:
            return True
        seen.add(current)
        dept = snapshot.departments.get(current)
        current = dept.parent if dept else None
    return False


def guard(plan: Plan, links: LinkState, limits: Limits, approved: frozenset[str],
          in_post: InPost | None = None) -> GuardedPlan:
    """Split the plan: held deactivations and structure changes, waiting dependents, the rest allowed.

    `approved` holds the fingerprints of changes an operator approved in an earlier held run: exactly
    those changes pass; the same subject with different values is held again. `in_post` compares a
    complete read's size with the last one let through (None: no such read, or this one incomplete).
    """
    held: dict[int, Held] = {}

    def is_approved(change: Change) -> bool:
        return change.fingerprint() in approved

    deactivations = [i for i, c in enumerate(plan.changes) if c.kind in DEACTIVATIONS and not is_approved(c)]
    active = sum(1 for link in links.people.values() if link.status == "active")
    share = len(deactivations) / active if active else 0.0
    over_limits = bool(deactivations) and (len(deactivations) > limits.max_deactivations
                                           or share > limits.max_deactivation_share)
    if over_limits:
        detail = (f"{len(deactivations)} deactivations ({share:.1%} of {active} active people) exceed "
                  f"max_deactivations={limits.max_deactivations} / "
                  f"max_deactivation_share={limits.max_deactivation_share:.1%}")
        for i in deactivations:
            held[i] = Held(plan.changes[i], HOLD_MASS_DEACTIVATION, detail)
    shrink_held = bool(deactivations) and in_post is not None and in_post.past(limits)
    if shrink_held:
        assert in_post is not None
        detail = (f"HR's in-post people fell from {in_post.before} to {in_post.now} ({in_post.lost} fewer, "
                  f"{in_post.drop:.1%}), more than max_shrink_share={limits.max_shrink_share:.1%} and "
                  f"max_shrink_count={limits.max_shrink_count}")
        for i in deactivations:
            held.setdefault(i, Held(plan.changes[i], HOLD_MASS_DEACTIVATION, detail))

    held_kinds: dict[str, ChangeKind] = {}
    for i, change in enumerate(plan.changes):
        # An ambiguous adoption has nothing to approve: it fails with its reason until a person
        # chooses in the onboarding review.
        decidable = change.kind is not ChangeKind.DEPT_ADOPT or change.adopted_code is not None
        if change.kind in STRUCTURE and limits.hold_structure and decidable and not is_approved(change):
            held[i] = Held(change, HOLD_STRUCTURE, "structure changes are held for approval (safety.structure_changes)")
            if change.kind in _NEW_DEPARTMENT:
                held_kinds[change.subject] = change.kind
        elif change.kind in _INTO_DEPARTMENT and change.department in held_kinds:
            held[i] = Held(change, WAITING, f"waits for {held_kinds[change.department].value} {change.department}")

    # A held join holds the person's later changes in the same plan too.
    waiting_people = {h.change.subject for h in held.values() if h.change.kind in _INTO_DEPARTMENT}
    for i, change in enumerate(plan.changes):
        if i not in held and change.kind not in STRUCTURE and change.subject in waiting_people:
            held[i] = Held(change, WAITING, f"waits for the held change of {change.subject}")

    allowed = Plan([c for i, c in enumerate(plan.changes) if i not in held])
    return GuardedPlan(allowed, [held[i] for i in sorted(held)], shrink_held, over_limits, active, in_post)
