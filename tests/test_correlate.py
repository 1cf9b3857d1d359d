"""Which organisation of the directory is an HR department: the pure matching rules of `syncd.domain.correlate`."""

from __future__ import annotations

from syncd.domain.correlate import MatchKind, match_department, name_key, similar_departments
from syncd.domain.model import Department
from syncd.domain.target import DirectoryOrganization

FINANCE = Department("D0003", "财政审计处", "财政处", "D0001", 2)


def org(code: str, name: str, short_name: str = "", ext_code: str = "", status: str = "A") -> DirectoryOrganization:
    return DirectoryOrganization(code, name, short_name, "GO_root", ext_code, status)


def test_the_name_is_compared_without_full_width_forms_or_spaces() -> None:
    assert name_key(" 财政审计处（一） ") == name_key("财政审计处(一)") == "财政审计处(一)"
    assert name_key("办 公 室") == "办公室"


def test_an_organisation_with_hrs_name_is_the_department() -> None:
    match = match_department(FINANCE, [org("GO_a", "办公室"), org("GO_b", "财政审计处 ")])
    assert match.kind is MatchKind.NAME and match.unique == org("GO_b", "财政审计处 ")


def test_an_organisation_typed_with_hrs_short_name_is_the_department() -> None:
    match = match_department(FINANCE, [org("GO_a", "财政处")])
    assert match.kind is MatchKind.SHORT_NAME and match.unique is not None and match.unique.code == "GO_a"


def test_the_ext_org_code_syncd_writes_wins_over_a_name() -> None:
    match = match_department(FINANCE, [org("GO_a", "财政审计处"), org("GO_b", "旧名称", ext_code="ZZ-D0003")],
                             ext_code="ZZ-D0003")
    assert match.kind is MatchKind.EXT_CODE and match.unique is not None and match.unique.code == "GO_b"


def test_a_linked_or_retired_organisation_is_never_matched() -> None:
    siblings = [org("GO_a", "财政审计处"), org("GO_b", "财政处", status="F")]
    assert match_department(FINANCE, siblings, taken={"GO_a"}).kind is MatchKind.NONE


def test_two_organisations_answering_to_the_name_are_ambiguous() -> None:
    match = match_department(FINANCE, [org("GO_a", "财政审计处"), org("GO_b", "财务科", short_name="财政审计处")])
    assert match.kind is MatchKind.NAME and match.unique is None and len(match.candidates) == 2
    assert match.exact


def test_a_renamed_department_is_only_a_similar_suggestion() -> None:
    siblings = [org("GO_a", "财政审计一处"), org("GO_b", "办公室")]
    assert match_department(FINANCE, siblings).kind is MatchKind.NONE
    suggestion = similar_departments(FINANCE, siblings)
    assert suggestion.kind is MatchKind.SIMILAR and not suggestion.exact
    assert [o.code for o in suggestion.candidates] == ["GO_a"]
