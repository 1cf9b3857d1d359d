"""A directory built by hand, as every unit has kept its own since 2021: for tests, the demo and benchmarks.

The unit admin typed HR's departments and people into the directory's console: the same names,
organisations whose extOrgCode is not HR's department id (often empty), and people with the same
mobiles but only a few fields filled in. Everything goes through the API like any client's writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from connectors.zzd.client import ContactsClient


@dataclass(slots=True)
class HandBuilt:
    """What was built: HR department id → organisationCode, HR employee id → employeeCode."""

    organizations: dict[str, str] = field(default_factory=dict)
    employees: dict[str, str] = field(default_factory=dict)


def build_by_hand(client: ContactsClient, root_code: str, root_department: str,
                  departments: Iterable[Mapping[str, str]], people: Iterable[Mapping[str, str]] = (),
                  name_of: Callable[[Mapping[str, str]], str] | None = None,
                  ext_code_of: Callable[[Mapping[str, str]], str] | None = None) -> HandBuilt:
    """Build HR's tree (rows with 部门编号, 部门名称, 简称, 上级部门编号) under `root_code` and put HR's in-post
    people (rows with 工号, 姓名, 手机号, 部门编号, 人员状态) into it.

    `name_of` picks the name typed for a department (default 部门名称); `ext_code_of` its extOrgCode
    (default empty). People whose department was not built go into the root.
    """
    rows = {row["部门编号"]: row for row in departments}
    built = HandBuilt({root_department: root_code})
    pending = [row for hr_id, row in rows.items() if hr_id != root_department]
    while pending:  # parents first, in whatever order the rows come
        ready = [row for row in pending if row["上级部门编号"] in built.organizations]
        if not ready:
            break  # the rest hang below a department that is not in the rows
        for row in ready:
            built.organizations[row["部门编号"]] = client.create_gov_organization(
                built.organizations[row["上级部门编号"]], name_of(row) if name_of else row["部门名称"],
                ext_org_code=ext_code_of(row) if ext_code_of else "",
            )
        pending = [row for row in pending if row["部门编号"] not in built.organizations]
    for person in people:
        if person.get("人员状态", "在职") not in ("", "在职"):
            continue
        org_code = built.organizations.get(person["部门编号"], root_code)
        created = client.create_complex_employee(org_code, {
            "employeeName": person["姓名"], "govEmpCellPhoneNo": person["手机号"], "areaCode": "86",
        })
        built.employees[person["工号"]] = str(created["employeeCode"])
    return built
