"""HR field names map onto API fields; empty values follow the documented rule."""

from __future__ import annotations

import json

import pytest

from connectors.zzd.client import PERSON_PARAMS, POSITION_PARAMS
from connectors.zzd.mapper import (
    PERSON_FIELD_MAP,
    POSITION_FIELD_MAP,
    department_params,
    person_fields_from_api,
    person_params,
)
from syncd.domain.model import PUSHED_PERSON_FIELDS


def test_every_pushed_person_field_has_exactly_one_api_field() -> None:
    assert set(PERSON_FIELD_MAP) | set(POSITION_FIELD_MAP) == set(PUSHED_PERSON_FIELDS)
    assert not set(PERSON_FIELD_MAP) & set(POSITION_FIELD_MAP)
    assert set(PERSON_FIELD_MAP.values()) <= PERSON_PARAMS
    assert set(POSITION_FIELD_MAP.values()) <= POSITION_PARAMS


def test_create_splits_person_and_position_fields_and_adds_the_area_code() -> None:
    mapped = person_params({
        "name": "测试员", "gender": "2", "mobile": "13800000001", "establishment": "行政编制", "rank": "四级主任科员",
        "political_status": "01", "role": "R1", "post": "副科长", "post_level": "副科级",
        "office_phone": "0371-00000001", "leader_duties": "分管财务", "order": "5",
    }, update=False)
    assert mapped.person == {
        "employeeName": "测试员", "govEmpGenderCode": "2", "govEmpCellPhoneNo": "13800000001", "areaCode": "86",
        "govEmpBudgetedPostCode": "行政编制", "govEmpJobLevelCode": "四级主任科员", "govEmpPoliticalStatusCode": "01",
    }
    assert mapped.position == {
        "govEmpPosJob": "副科长", "govEmpPosEmployeeRoleCode": "R1", "posJobRankCode": "副科级",
        "govEmpPosPhoneNo": "0371-00000001", "orderInOrganization": "5",
        "positionExtPropertiesStr": '{"leaderDuties":"分管财务"}',
    }
    assert json.loads(mapped.position["positionExtPropertiesStr"]) == {"leaderDuties": "分管财务"}


def test_create_leaves_empty_fields_out() -> None:
    mapped = person_params({"name": "测试员", "mobile": "13800000001", "rank": "", "leader_duties": ""}, update=False)
    assert mapped.person == {"employeeName": "测试员", "govEmpCellPhoneNo": "13800000001", "areaCode": "86"}
    assert mapped.position == {}
    assert mapped.uncleared == ()


def test_update_clears_leader_duties_and_reports_fields_it_cannot_clear() -> None:
    mapped = person_params({"leader_duties": "", "rank": "", "post": "科长"}, update=True)
    assert mapped.position == {"positionExtPropertiesStr": '{"leaderDuties":""}', "govEmpPosJob": "科长"}
    assert mapped.person == {}
    assert mapped.uncleared == ("rank",)


def test_unknown_person_field_is_a_bug() -> None:
    with pytest.raises(ValueError, match="department"):
        person_params({"department": "D1"}, update=False)


def test_department_fields_map_and_empty_ones_are_reported_on_update() -> None:
    created = department_params({"name": "办公室", "short_name": "", "order": "2"}, update=False)
    assert created.params == {"organizationName": "办公室", "displayOrder": "2"}
    assert created.uncleared == ()
    updated = department_params({"short_name": ""}, update=True)
    assert updated.params == {}
    assert updated.uncleared == ("short_name",)


def test_directory_read_maps_back_to_hr_field_names_without_the_mobile() -> None:
    employee = {"employeeCode": "GE_a", "employeeName": "测试员", "status": "A", "govEmpGenderCode": "2",
                "govEmpPoliticalStatusCode": None, "govEmpJobLevelCode": "", "govEmpBudgetedPostCode": "事业编制"}
    main = {"organizationCode": "GO_o", "mainJob": True, "govEmpPosJob": "科员", "orderInOrganization": 4}
    assert person_fields_from_api(employee, main) == {
        "name": "测试员", "gender": "2", "political_status": "", "rank": "", "establishment": "事业编制",
        "post": "科员", "order": "4",
    }
    assert "post" not in person_fields_from_api(employee, None)
