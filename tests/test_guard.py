"""Guards: mass deactivations and structure changes held, dependents waiting, scope refused."""

from __future__ import annotations

import pytest

from syncd.domain.guard import (
    HOLD_MASS_DEACTIVATION,
    HOLD_STRUCTURE,
    WAITING,
    InPost,
    Limits,
    ScopeViolation,
    check_scope,
    guard,
)
from syncd.domain.model import Change, ChangeKind, Department, LinkedPerson, LinkState, Plan, Snapshot

APPLY = Limits(max_deactivations=2, max_deactivation_share=0.5, hold_structure=False)
HOLD = Limits(max_deactivations=50, max_deactivation_share=1.0, hold_structure=True)


def links(active: int) -> LinkState:
    return LinkState(people={f"A{i}": LinkedPerson(f"GE_{i}", i, "D2", "GO_2", {}) for i in range(active)})


def leaves(n: int) -> list[Change]:
    return [Change(ChangeKind.LEAVE, f"A{i}") for i in range(n)]


def test_deactivations_within_limits_pass() -> None:
    guarded = guard(Plan(leaves(2)), links(10), APPLY, frozenset())
    assert len(guarded.allowed) == 2 and not guarded.needs_approval


def test_over_the_count_every_deactivation_is_held_and_the_rest_proceeds() -> None:
    plan = Plan([Change(ChangeKind.UPDATE, "A9", {"post": "科员"}), *leaves(3)])
    guarded = guard(plan, links(10), APPLY, frozenset())
    assert [c.kind for c in guarded.allowed.changes] == [ChangeKind.UPDATE]
    assert [h.reason for h in guarded.held] == [HOLD_MASS_DEACTIVATION] * 3
    assert guarded.needs_approval


def test_over_the_share_is_held_even_under_the_count() -> None:
    limits = Limits(max_deactivations=50, max_deactivation_share=0.05, hold_structure=False)
    guarded = guard(Plan(leaves(3)), links(10), limits, frozenset())
    assert len(guarded.held) == 3 and "30.0% of 10" in guarded.held[0].detail


def test_hr_shrunk_past_the_floor_holds_every_deactivation_whatever_their_number() -> None:
    lenient = Limits(max_deactivations=50, max_deactivation_share=1.0, hold_structure=False, max_shrink_share=0.10)
    guarded = guard(Plan(leaves(2)), links(10), lenient, frozenset(), InPost(before=100, now=89))
    assert [h.reason for h in guarded.held] == [HOLD_MASS_DEACTIVATION] * 2 and guarded.shrink_held
    assert "from 100 to 89 (11 fewer, 11.0%)" in guarded.held[0].detail
    within = guard(Plan(leaves(2)), links(10), lenient, frozenset(), InPost(before=100, now=90))
    assert within.held == [] and not within.shrink_held
    approved = frozenset(c.fingerprint() for c in leaves(2))
    decided = guard(Plan(leaves(2)), links(10), lenient, approved, InPost(before=100, now=80))
    assert decided.held == [] and not decided.shrink_held  # approved: the smaller HR becomes the baseline


@pytest.mark.parametrize(("before", "now", "held"), [
    (10, 8, False),  # 20 %, but 2 people: a small unit's ordinary month
    (10, 5, False),  # 50 %, 5 people: not more than the count
    (10, 4, True),  # 60 %, 6 people: past both
    (100, 94, False),  # 6 people, but 6 %: not past the share
    (100, 89, True),  # 11 people, 11 %: past both
])
def test_a_shrink_is_held_only_past_both_the_share_and_the_count(before: int, now: int, held: bool) -> None:
    lenient = Limits(max_deactivations=50, max_deactivation_share=1.0, hold_structure=False, max_shrink_share=0.10,
                     max_shrink_count=5)
    guarded = guard(Plan(leaves(2)), links(10), lenient, frozenset(), InPost(before=before, now=now))
    assert guarded.shrink_held is held and bool(guarded.held) is held
    if held:
        assert f"{before - now} fewer" in guarded.held[0].detail and "max_shrink_count=5" in guarded.held[0].detail


def test_the_shrink_count_defaults_to_five() -> None:
    assert Limits(max_deactivations=50, max_deactivation_share=0.05, hold_structure=False).max_shrink_count == 5


def test_approved_deactivations_pass_and_do_not_count() -> None:
    approved = frozenset(c.fingerprint() for c in leaves(3))
    guarded = guard(Plan(leaves(3)), links(10), APPLY, approved)
    assert len(guarded.allowed) == 3 and guarded.held == []


def test_an_approval_holds_for_that_change_only_not_the_same_subject_changed_again() -> None:
    approved = frozenset({Change(ChangeKind.DEPT_UPDATE, "D2", {"name": "综合处"}).fingerprint()})
    plan = Plan([Change(ChangeKind.DEPT_UPDATE, "D2", {"name": "另一个名字"})])
    assert [h.reason for h in guard(plan, links(1), HOLD, approved).held] == [HOLD_STRUCTURE]


def test_held_structure_holds_the_people_who_need_it() -> None:
    plan = Plan([
        Change(ChangeKind.DEPT_CREATE, "D9", {"name": "新处"}, department="D1"),
        Change(ChangeKind.DEPT_UPDATE, "D2", {"name": "综合处"}),
        Change(ChangeKind.TRANSFER, "A1", department="D9", from_department="D2"),
        Change(ChangeKind.UPDATE, "A1", {"post": "处长"}),
        Change(ChangeKind.JOIN, "A5", {"name": "x"}, department="D9"),
        Change(ChangeKind.JOIN, "A6", {"name": "y"}, department="D2"),
    ])
    guarded = guard(plan, links(10), HOLD, frozenset())
    assert [(h.change.subject, h.reason) for h in guarded.held] == [
        ("D9", HOLD_STRUCTURE), ("D2", HOLD_STRUCTURE), ("A1", WAITING), ("A1", WAITING), ("A5", WAITING)]
    assert [c.subject for c in guarded.allowed.changes] == ["A6"]


def test_a_plan_reaching_outside_the_root_is_refused() -> None:
    snapshot = Snapshot({"D1": Department("D1", "局"), "D2": Department("D2", "处", parent="D1"),
                         "X1": Department("X1", "外单位")})
    check_scope(Plan([Change(ChangeKind.JOIN, "A1", department="D2")]), snapshot, "D1")
    with pytest.raises(ScopeViolation, match="X1"):
        check_scope(Plan([Change(ChangeKind.JOIN, "A1", department="X1")]), snapshot, "D1")
    with pytest.raises(ScopeViolation, match="root"):
        check_scope(Plan([Change(ChangeKind.DEPT_UPDATE, "D1", {"name": "改"})]), snapshot, "D1")
