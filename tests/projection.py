"""What the directory should hold for an HR export, and what it does hold, in one comparable shape."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

ROOT_DEPARTMENT = "D0001"

Projection = dict[str, dict[str, tuple[Any, ...]]]


def directory_projection(data: Mapping[str, Any]) -> Projection:
    """The simulator's directory as HR would describe it: departments by HR id, people by mobile."""
    ext = {o["organizationCode"]: o["extOrgCode"] or ROOT_DEPARTMENT for o in data["organizations"]}
    departments = {o["extOrgCode"]: (o["organizationName"], ext.get(o["parentCode"]))
                   for o in data["organizations"] if o["extOrgCode"]}
    people: dict[str, tuple[Any, ...]] = {}
    for e in data["employees"]:
        main = [p for p in e["positions"] if p["mainJob"]]
        assert len(main) <= 1, f"{e['employeeCode']} has {len(main)} main positions"
        assert main or e["status"] == "F", f"active {e['employeeCode']} has no main position"
        assert e["mobile"] not in people, "two directory people share a mobile"
        where = ext[main[0]["organizationCode"]] if main else None
        post = main[0].get("govEmpPosJob", "") if main else None
        people[e["mobile"]] = (e["employeeName"], where, e["status"], post)
    return {"departments": departments, "people": people}


def hr_projection(people: Iterable[Mapping[str, str]], departments: Iterable[Mapping[str, str]],
                  inactive_mobiles: Iterable[str] = ()) -> Projection:
    """The projection of an HR export: in-post people active in their department, plus people
    syncd deactivated earlier (status F, no position), who stay in the directory."""
    wanted: dict[str, tuple[Any, ...]] = {m: ("?", None, "F", None) for m in inactive_mobiles}
    for p in people:
        if p["人员状态"] == "在职":
            wanted[p["手机号"]] = (p["姓名"], p["部门编号"], "A", p["职务"])
    return {
        "departments": {d["部门编号"]: (d["部门名称"], d["上级部门编号"]) for d in departments if d["上级部门编号"]},
        "people": wanted,
    }


def same(actual: Projection, expected: Projection) -> bool:
    """Equal, where an expected inactive person's name ("?") may be anything."""
    if actual["departments"] != expected["departments"] or set(actual["people"]) != set(expected["people"]):
        return False
    return all((want[0] == "?" and got[1:] == want[1:]) or got == want
               for mobile, want in expected["people"].items() for got in [actual["people"][mobile]])
