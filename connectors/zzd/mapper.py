"""Pure field mapping: HR field names (`syncd.domain.model.PUSHED_PERSON_FIELDS`) to API fields (zzd-api.md §4).

Empty values. The gateway neither signs nor sends an empty parameter (§1), and the directory
treats a missing field as unchanged, so an empty value cannot be written as such:

- on create, empty fields are simply left out;
- on update, a field changed to a non-empty value is sent; a field cleared in HR is sent only
  when its API form is non-empty anyway: `leader_duties` travels inside
  `positionExtPropertiesStr` as `{"leaderDuties": ""}`, which clears it. Every other cleared
  field cannot be cleared through the API: it is reported in `uncleared` (names only) so the
  caller can log it, and the old value stays in the directory. This is a known limitation of
  the contract, not of syncd.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.zzd.client import AREA_CODE

PERSON_FIELD_MAP: Mapping[str, str] = {
    "name": "employeeName",
    "gender": "govEmpGenderCode",
    "mobile": "govEmpCellPhoneNo",
    "establishment": "govEmpBudgetedPostCode",
    "rank": "govEmpJobLevelCode",
    "political_status": "govEmpPoliticalStatusCode",
}
POSITION_FIELD_MAP: Mapping[str, str] = {
    "post": "govEmpPosJob",
    "role": "govEmpPosEmployeeRoleCode",
    "post_level": "posJobRankCode",
    "office_phone": "govEmpPosPhoneNo",
    "order": "orderInOrganization",
    "leader_duties": "positionExtPropertiesStr",
}
DEPARTMENT_FIELD_MAP: Mapping[str, str] = {
    "name": "organizationName",
    "short_name": "govShortName",
    "order": "displayOrder",
}


@dataclass(frozen=True, slots=True)
class PersonParams:
    """A person's fields as API parameters: the person part, the position part, and what stays uncleared."""

    person: dict[str, str] = field(default_factory=dict)
    position: dict[str, str] = field(default_factory=dict)
    uncleared: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DepartmentParams:
    """A department's fields as API parameters, and the HR fields that cannot be cleared."""

    params: dict[str, str] = field(default_factory=dict)
    uncleared: tuple[str, ...] = ()


def person_params(fields: Mapping[str, str], *, update: bool) -> PersonParams:
    """Map HR person fields to API person and position parameters (see the module docstring on empties)."""
    unknown = set(fields) - set(PERSON_FIELD_MAP) - set(POSITION_FIELD_MAP)
    if unknown:
        raise ValueError(f"not a pushed person field: {sorted(unknown)}")
    person: dict[str, str] = {}
    position: dict[str, str] = {}
    uncleared: list[str] = []
    for name, value in fields.items():
        if name == "leader_duties":
            if value or update:
                position[POSITION_FIELD_MAP[name]] = leader_duties_json(value)
            continue
        if not value:
            if update:
                uncleared.append(name)
            continue
        if name in PERSON_FIELD_MAP:
            person[PERSON_FIELD_MAP[name]] = value
            if name == "mobile":
                person["areaCode"] = AREA_CODE
        else:
            position[POSITION_FIELD_MAP[name]] = value
    return PersonParams(person, position, tuple(sorted(uncleared)))


def department_params(fields: Mapping[str, str], *, update: bool) -> DepartmentParams:
    """Map HR department fields (`name`, `short_name`, `order`) to API organisation parameters."""
    unknown = set(fields) - set(DEPARTMENT_FIELD_MAP)
    if unknown:
        raise ValueError(f"not a pushed department field: {sorted(unknown)}")
    params = {DEPARTMENT_FIELD_MAP[name]: value for name, value in fields.items() if value}
    uncleared = tuple(sorted(name for name, value in fields.items() if not value)) if update else ()
    return DepartmentParams(params, uncleared)


def leader_duties_json(value: str) -> str:
    """`positionExtPropertiesStr` carrying the leadership portfolio (zzd-api.md §4, key `leaderDuties`)."""
    return json.dumps({"leaderDuties": value}, ensure_ascii=False, separators=(",", ":"))


def person_fields_from_api(employee: Mapping[str, Any], main_position: Mapping[str, Any] | None) -> dict[str, str]:
    """The HR fields that a directory read reports back: person fields, and the main position's post and order.

    Only what `listEmployeesByCodes` and `pageOrganizationEmployeePositions` return is given: the
    mobile is never returned, and the other position fields would cost one call per person.
    """
    fields = {hr: _text(employee.get(api)) for hr, api in PERSON_FIELD_MAP.items() if api in employee}
    if main_position is not None:
        for hr in ("post", "order"):
            api = POSITION_FIELD_MAP[hr]
            if api in main_position:
                fields[hr] = _text(main_position[api])
    return fields


def _text(value: object) -> str:
    return "" if value is None else str(value)
