"""The simulated tenant's contacts directory and every rule of it (zzd-api.md §3–§6); no HTTP.

`Directory.call(path, params)` is the whole business side of the API: it validates the
parameters, applies the rules, changes the state and returns the `content.data` (plus paging)
or raises `SimError` with one of the codes of §3. The gateway (signing, throttling, envelopes)
is `app.py`'s.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_PAGE_SIZE = 100
MAX_CODES = 100
MAX_MOBILES = 50
MAX_RECEIVERS = 1000
MAX_MSG_BYTES = 2048
SCOPE_CODE = "300037"
SCOPE_BIZ_CODE = "MFH-B003-02-16-0037"
MOBILE = re.compile(r"1[3-9]\d{9}")
GENDERS = frozenset({"1", "2", "9"})

PERSON_FIELDS = (
    "govEmpGenderCode", "govEmpBudgetedPostCode", "govEmpJobLevelCode", "govEmpPoliticalStatusCode",
    "employeeExtPropertiesStr",
)
POSITION_FIELDS = (
    "govEmpPosJob", "govEmpPosEmployeeRoleCode", "posJobRankCode", "govEmpPosPhoneNo",
    "orderInOrganization", "positionExtPropertiesStr",
)


class SimError(Exception):
    """A business refusal: a code of zzd-api.md §3 and a message without personal data."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def biz_code(self) -> str:
        """The `bizErrorCode` of the envelope: the platform's long form where one is known."""
        return SCOPE_BIZ_CODE if self.code == SCOPE_CODE else self.code


@dataclass(frozen=True, slots=True)
class Result:
    """`content.data` of a successful call and, for paged calls, (currentPage, pageSize, totalSize)."""

    data: Any
    page: tuple[int, int, int | None] | None = None


class Params:
    """The form parameters of one request: repeated keys kept as lists."""

    def __init__(self, values: Mapping[str, list[str]]) -> None:
        self._values = {key: [v for v in vs if v != ""] for key, vs in values.items()}

    def get(self, name: str, default: str = "") -> str:
        """The first value of `name`, or `default`."""
        values = self._values.get(name)
        return values[0] if values else default

    def has(self, name: str) -> bool:
        """Whether `name` was sent with a non-empty value."""
        return bool(self._values.get(name))

    def require(self, name: str) -> str:
        """The value of a required parameter; SIM-PARAM-MISSING without it."""
        value = self.get(name)
        if not value:
            raise SimError("SIM-PARAM-MISSING", f"missing required parameter {name}")
        return value

    def codes(self, name: str, limit: int) -> list[str]:
        """A required list sent as repeated keys, at most `limit` long."""
        values = self._values.get(name) or []
        if not values:
            raise SimError("SIM-PARAM-MISSING", f"missing required parameter {name}")
        if len(values) > limit:
            raise SimError("SIM-LIST-TOO-LONG", f"{name} holds {len(values)} values, at most {limit} allowed")
        return values

    def joined(self, name: str, limit: int, required: bool = True) -> list[str]:
        """A list sent comma-joined, at most `limit` long."""
        values = [part.strip() for part in self.get(name).split(",") if part.strip()]
        if required and not values:
            raise SimError("SIM-PARAM-MISSING", f"missing required parameter {name}")
        if len(values) > limit:
            raise SimError("SIM-LIST-TOO-LONG", f"{name} holds {len(values)} values, at most {limit} allowed")
        return values

    def integer(self, name: str, default: int | None = None) -> int | None:
        """An integer parameter; SIM-PARAM-INVALID when it is not one."""
        value = self.get(name)
        if not value:
            return default
        try:
            return int(value)
        except ValueError:
            raise SimError("SIM-PARAM-INVALID", f"{name} must be an integer") from None

    def choice(self, name: str, allowed: Iterable[str], default: str) -> str:
        """A parameter restricted to `allowed` values."""
        value = self.get(name, default)
        if value not in allowed:
            raise SimError("SIM-PARAM-INVALID", f"{name} must be one of {sorted(allowed)}")
        return value


@dataclass(slots=True)
class Organization:
    """One organisation node."""

    code: str
    name: str
    parent: str | None
    display_order: int | None = None
    ext_org_code: str = ""
    short_name: str = ""
    status: str = "A"

    def as_api(self) -> dict[str, Any]:
        """The organisation object of the API."""
        return {
            "organizationCode": self.code, "organizationName": self.name, "parentCode": self.parent or "",
            "displayOrder": self.display_order, "extOrgCode": self.ext_org_code,
            "govShortName": self.short_name, "status": self.status,
        }


@dataclass(slots=True)
class Position:
    """A person's position (任职) in one organisation."""

    organization_code: str
    main_job: bool
    fields: dict[str, str] = field(default_factory=dict)

    def as_api(self) -> dict[str, Any]:
        """The position object of the API."""
        return {"organizationCode": self.organization_code, "mainJob": self.main_job,
                **{name: self.fields.get(name, "") for name in POSITION_FIELDS}}


@dataclass(slots=True)
class Employee:
    """A person with their positions and login account."""

    code: str
    name: str
    mobile: str
    account_id: int
    status: str = "A"
    area_code: str = "86"
    fields: dict[str, str] = field(default_factory=dict)
    positions: list[Position] = field(default_factory=list)

    def as_api(self) -> dict[str, Any]:
        """The employee object of the API: never the mobile (zzd-api.md §4)."""
        return {"employeeCode": self.code, "employeeName": self.name, "status": self.status,
                **{name: self.fields.get(name, "") for name in PERSON_FIELDS}}

    def position(self, organization_code: str) -> Position | None:
        """The position in this organisation, if any."""
        return next((p for p in self.positions if p.organization_code == organization_code), None)


@dataclass(slots=True)
class Account:
    """A login account."""

    account_id: int
    employee_code: str
    status: str = "A"


@dataclass(frozen=True, slots=True)
class _Index:
    """What `Directory.index` keeps between writes."""

    members: dict[str, list[Employee]]
    by_mobile: dict[str, Employee]


Handler = Callable[["Directory", Params], Any]


class Directory:
    """One tenant's organisations, people, accounts and notifications, with the platform's rules."""

    def __init__(
        self, tenant_id: int, root_code: str, root_name: str,
        other_units: Mapping[str, str] | None = None, state_file: Path | None = None,
    ) -> None:
        self.tenant_id = str(tenant_id)
        self.root_code = root_code
        self.state_file = state_file
        self.organizations: dict[str, Organization] = {}
        self.employees: dict[str, Employee] = {}
        self.accounts: dict[int, Account] = {}
        self.notifications: dict[str, dict[str, Any]] = {}
        self.next_account_id = 100001
        self.lock = threading.RLock()
        # Look-ups by organisation and by mobile, built on the first read after a write: a read of
        # a 100,000-person directory must not walk every employee for every page it asks.
        self._index: _Index | None = None
        if state_file is not None and state_file.exists():
            self._load(json.loads(state_file.read_text(encoding="utf-8")))
        else:
            self.organizations[root_code] = Organization(root_code, root_name, None)
            for code, name in (other_units or {}).items():
                self.organizations[code] = Organization(code, name, None)

    # -- dispatch ----------------------------------------------------------------------------

    def call(self, path: str, params: Params) -> Result:
        """Run one API call; SimError for a business refusal, KeyError for an unknown path."""
        handler, write = ROUTES[path]
        with self.lock:
            if params.require("tenantId") != self.tenant_id:
                raise SimError("SIM-PARAM-INVALID", "unknown tenantId")
            if write:
                params.require("creator" if path == "/mozi/organization/createGovOrganization" else "operator")
            result = handler(self, params)
            if write:
                self._index = None
                self.save()
        return result if isinstance(result, Result) else Result(result)

    @staticmethod
    def is_write(path: str) -> bool:
        """Whether the call at `path` changes state (unknown paths are not writes)."""
        route = ROUTES.get(path)
        return bool(route and route[1])

    def index(self) -> _Index:
        """Employees by organisation (in creation order) and by mobile, as of the last write."""
        with self.lock:
            if self._index is None:
                members: dict[str, list[Employee]] = {}
                for employee in self.employees.values():
                    for code in dict.fromkeys(p.organization_code for p in employee.positions):
                        members.setdefault(code, []).append(employee)
                self._index = _Index(members, {e.mobile: e for e in self.employees.values()})
            return self._index

    # -- rules shared by many calls ----------------------------------------------------------

    def _org(self, code: str, missing: str = "SIM-ORG-NOT-FOUND") -> Organization:
        org = self.organizations.get(code)
        if org is None:
            raise SimError(missing, f"organisation {code} does not exist")
        return org

    def _employee(self, code: str) -> Employee:
        employee = self.employees.get(code)
        if employee is None:
            raise SimError("SIM-EMP-NOT-FOUND", f"employee {code} does not exist")
        return employee

    def in_scope(self, code: str) -> bool:
        """Whether `code` is the app's root or below it."""
        seen: set[str] = set()
        current: str | None = code
        while current is not None and current not in seen:
            if current == self.root_code:
                return True
            seen.add(current)
            org = self.organizations.get(current)
            current = org.parent if org else None
        return False

    def _check_scope(self, *codes: str) -> None:
        for code in codes:
            if not self.in_scope(code):
                raise SimError(SCOPE_CODE, f"没有[{code}]组织的操作权限")

    def _check_employee_scope(self, employee: Employee) -> None:
        # A person's record belongs to the units of their positions: all of them must be ours.
        self._check_scope(*(p.organization_code for p in employee.positions))

    def _check_name_free(self, parent: str | None, name: str, ignore: str | None = None) -> None:
        for org in self.organizations.values():
            if org.parent == parent and org.name == name and org.code != ignore:
                raise SimError("SIM-ORG-NAME-DUP", f"an organisation of that name exists under {parent}")

    def _check_mobile_free(self, mobile: str, ignore: str | None = None) -> None:
        if not MOBILE.fullmatch(mobile):
            raise SimError("SIM-PARAM-INVALID", "govEmpCellPhoneNo must be an 11-digit mainland mobile")
        for employee in self.employees.values():
            if employee.mobile == mobile and employee.code != ignore:
                raise SimError("SIM-MOBILE-EXISTS", f"the mobile is held by {employee.code}")

    @staticmethod
    def _page(items: list[Any], params: Params) -> Result:
        page_no = params.integer("pageNo", 1) or 1
        page_size = params.integer("pageSize", 20) or 20
        if page_size > MAX_PAGE_SIZE:
            raise SimError("SIM-PAGE-SIZE", f"pageSize must be at most {MAX_PAGE_SIZE}")
        if page_no < 1 or page_size < 1:
            raise SimError("SIM-PARAM-INVALID", "pageNo and pageSize start at 1")
        start = (page_no - 1) * page_size
        total = len(items) if params.get("returnTotalSize") == "true" else None
        return Result(items[start:start + page_size], (page_no, page_size, total))

    @staticmethod
    def _person_fields(params: Params) -> dict[str, str]:
        fields = {name: params.get(name) for name in PERSON_FIELDS if params.has(name)}
        gender = fields.get("govEmpGenderCode")
        if gender is not None and gender not in GENDERS:
            raise SimError("SIM-PARAM-INVALID", "govEmpGenderCode must be 1, 2 or 9")
        return fields

    @staticmethod
    def _position_fields(params: Params) -> dict[str, str]:
        fields = {name: params.get(name) for name in POSITION_FIELDS if params.has(name)}
        if "orderInOrganization" in fields:
            params.integer("orderInOrganization")
        if len(fields.get("govEmpPosJob", "")) > 64:
            raise SimError("SIM-PARAM-INVALID", "govEmpPosJob is longer than 64 characters")
        if "positionExtPropertiesStr" in fields:
            try:
                json.loads(fields["positionExtPropertiesStr"])
            except ValueError:
                raise SimError("SIM-PARAM-INVALID", "positionExtPropertiesStr must be JSON") from None
        return fields

    @staticmethod
    def _name(params: Params, key: str, limit: int) -> str:
        name = params.require(key)
        if len(name) > limit:
            raise SimError("SIM-PARAM-INVALID", f"{key} is longer than {limit} characters")
        return name

    def _children(self, code: str) -> list[Organization]:
        children = [org for org in self.organizations.values() if org.parent == code]
        # Display order first (unset last), then creation order, which dict order preserves.
        return sorted(children, key=lambda org: org.display_order if org.display_order is not None else 1 << 31)

    # -- organisations -----------------------------------------------------------------------

    def scopes(self, params: Params) -> Any:
        """`/auth/scopesV2`."""
        return {"deptVisibleScopes": [self.root_code]}

    def get_root_organization(self, params: Params) -> Any:
        """`/mozi/organization/getRootOrganization`."""
        return self.organizations[self.root_code].as_api()

    def page_sub_organization_codes(self, params: Params) -> Any:
        """`/mozi/organization/pageSubOrganizationCodes`."""
        org = self._org(params.require("organizationCode"))
        status = params.choice("status", ("A", "F", "TOTAL"), "A")
        codes = [c.code for c in self._children(org.code) if status == "TOTAL" or c.status == status]
        return self._page(codes, params)

    def list_organizations_by_codes(self, params: Params) -> Any:
        """`/mozi/organization/listOrganizationsByCodes`: unknown codes are left out."""
        codes = params.codes("organizationCodes", MAX_CODES)
        return [self.organizations[c].as_api() for c in codes if c in self.organizations]

    def get_org_code_by_ext_org_code(self, params: Params) -> Any:
        """`/mozi/organization/getOrgCodeByExtOrgCode`."""
        ext = params.require("extOrgCode")
        for org in self.organizations.values():
            if org.ext_org_code == ext:
                return org.code
        raise SimError("SIM-ORG-NOT-FOUND", "no organisation has that extOrgCode")

    def create_gov_organization(self, params: Params) -> Any:
        """`/mozi/organization/createGovOrganization`."""
        name = self._name(params, "organizationName", 64)
        parent = self._org(params.require("parentCode"), "SIM-PARENT-NOT-FOUND")
        self._check_scope(parent.code)
        self._check_name_free(parent.code, name)
        ext = params.get("extOrgCode")
        if ext and any(org.ext_org_code == ext for org in self.organizations.values()):
            raise SimError("SIM-EXT-CODE-EXISTS", "an organisation with that extOrgCode exists")
        org = Organization(
            "GO_" + secrets.token_hex(16), name, parent.code, params.integer("displayOrder"), ext,
            params.get("govShortName"),
        )
        self.organizations[org.code] = org
        return {"organizationCode": org.code}

    def update_gov_organization(self, params: Params) -> Any:
        """`/mozi/organization/updateGovOrganization`: only the fields sent change."""
        org = self._org(params.require("organizationCode"))
        self._check_scope(org.code)
        # Validate everything before changing anything: a refused call leaves no trace.
        name = self._name(params, "organizationName", 64) if params.has("organizationName") else org.name
        self._check_name_free(org.parent, name, ignore=org.code)
        order = params.integer("displayOrder") if params.has("displayOrder") else org.display_order
        org.name, org.display_order = name, order
        if params.has("govShortName"):
            org.short_name = params.get("govShortName")
        return True

    def move_gov_organization(self, params: Params) -> Any:
        """`/mozi/organization/moveGovOrganization`: never the root, never under itself."""
        org = self._org(params.require("organizationCode"))
        parent = self._org(params.require("parentCode"), "SIM-PARENT-NOT-FOUND")
        if org.code == self.root_code:
            raise SimError(SCOPE_CODE, f"没有[{org.code}]组织的操作权限")
        self._check_scope(org.code, parent.code)
        cursor: str | None = parent.code
        while cursor is not None:
            if cursor == org.code:
                raise SimError("SIM-PARAM-INVALID", "an organisation cannot move below itself")
            cursor = self.organizations[cursor].parent
        self._check_name_free(parent.code, org.name, ignore=org.code)
        org.parent = parent.code
        return True

    def delete_gov_organization(self, params: Params) -> Any:
        """`/mozi/organization/deleteGovOrganization`: only an empty node, never the root."""
        org = self._org(params.require("organizationCode"))
        if org.code == self.root_code:
            raise SimError(SCOPE_CODE, f"没有[{org.code}]组织的操作权限")
        self._check_scope(org.code)
        if self._children(org.code) or any(e.position(org.code) for e in self.employees.values()):
            raise SimError("SIM-ORG-NOT-EMPTY", "the organisation still has members or children")
        del self.organizations[org.code]
        return True

    def page_organization_employee_positions(self, params: Params) -> Any:
        """`/mozi/organization/pageOrganizationEmployeePositions`."""
        org = self._org(params.require("organizationCode"))
        status = params.choice("employeeStatus", ("A", "F", "TOTAL"), "A")
        items = [
            {"employeeCode": e.code, "employeeName": e.name, "status": e.status,
             "govEmployeePositions": [
                 {"organizationCode": p.organization_code, "mainJob": p.main_job,
                  "govEmpPosJob": p.fields.get("govEmpPosJob", ""),
                  "orderInOrganization": p.fields.get("orderInOrganization", "")}
                 for p in e.positions
             ]}
            for e in self.index().members.get(org.code, ())
            if status == "TOTAL" or e.status == status
        ]
        return self._page(items, params)

    # -- employees ---------------------------------------------------------------------------

    def get_by_mobiles(self, params: Params) -> Any:
        """`/mozi/employee/get_by_mobiles`: mobiles comma-joined, at most 50."""
        mobiles = params.joined("mobiles", MAX_MOBILES)
        if params.get("areaCode", "86") != "86":
            return []
        by_mobile = self.index().by_mobile
        return [
            {"accountId": by_mobile[m].account_id, "mobile": m, "employeeCode": by_mobile[m].code,
             "status": by_mobile[m].status}
            for m in dict.fromkeys(mobiles) if m in by_mobile
        ]

    def list_employees_by_codes(self, params: Params) -> Any:
        """`/mozi/employee/listEmployeesByCodes`: unknown codes are left out."""
        codes = params.codes("employeeCodes", MAX_CODES)
        return [self.employees[c].as_api() for c in codes if c in self.employees]

    def list_employee_positions_by_employee_code(self, params: Params) -> Any:
        """`/mozi/employee/listEmployeePositionsByEmployeeCode`."""
        return [p.as_api() for p in self._employee(params.require("employeeCode")).positions]

    def list_employee_account_ids(self, params: Params) -> Any:
        """`/mozi/employee/listEmployeeAccountIds`."""
        codes = params.codes("employeeCodes", MAX_CODES)
        return [
            {"employeeCode": c, "accountId": self.employees[c].account_id,
             "accountCode": f"acc{self.employees[c].account_id}", "accountNamespace": "local"}
            for c in codes if c in self.employees
        ]

    def create_complex_employee(self, params: Params) -> Any:
        """`/addressBook/employee/createComplexEmployee`: person, main position and account at once."""
        name = self._name(params, "employeeName", 80)
        mobile = params.require("govEmpCellPhoneNo")
        org = self._org(params.require("organizationCode"))
        self._check_scope(org.code)
        if params.get("areaCode", "86") != "86":
            raise SimError("SIM-PARAM-INVALID", "areaCode must be 86")
        self._check_mobile_free(mobile)
        person = self._person_fields(params)
        position = Position(org.code, True, self._position_fields(params))
        employee = Employee("GE_" + secrets.token_hex(16), name, mobile, self.next_account_id,
                            fields=person, positions=[position])
        self.next_account_id += 1
        self.employees[employee.code] = employee
        self.accounts[employee.account_id] = Account(employee.account_id, employee.code)
        return {"employeeCode": employee.code, "accountId": employee.account_id}

    def update_gov_employee(self, params: Params) -> Any:
        """`/mozi/employee/updateGovEmployee`: only the fields sent change."""
        employee = self._employee(params.require("employeeCode"))
        self._check_employee_scope(employee)
        fields = self._person_fields(params)
        name = self._name(params, "employeeName", 80) if params.has("employeeName") else None
        mobile = params.get("govEmpCellPhoneNo")
        if mobile:
            self._check_mobile_free(mobile, ignore=employee.code)
        employee.fields.update(fields)
        employee.name = name or employee.name
        employee.mobile = mobile or employee.mobile
        return True

    def update_gov_employee_position(self, params: Params) -> Any:
        """`/mozi/employee/updateGovEmployeePosition`: only the fields sent change."""
        employee = self._employee(params.require("employeeCode"))
        org = self._org(params.require("organizationCode"))
        self._check_scope(org.code)
        position = employee.position(org.code)
        if position is None:
            raise SimError("SIM-POSITION-NOT-FOUND", f"{employee.code} has no position in {org.code}")
        position.fields.update(self._position_fields(params))
        return True

    def move_employee_position(self, params: Params) -> Any:
        """`/mozi/employee/moveEmployeePosition`: the position keeps its fields and main flag."""
        employee = self._employee(params.require("employeeCode"))
        source = params.require("fromOrganizationCode")
        target = self._org(params.require("toOrganizationCode"))
        position = employee.position(source)
        if position is None:
            raise SimError("SIM-POSITION-NOT-FOUND", f"{employee.code} has no position in {source}")
        self._check_scope(source, target.code)
        if employee.position(target.code) is not None:
            raise SimError("SIM-POSITION-EXISTS", f"{employee.code} already has a position in {target.code}")
        position.organization_code = target.code
        return True

    def create_gov_employee_position(self, params: Params) -> Any:
        """`/mozi/employee/createGovEmployeePosition`: an additional, not main, position."""
        employee = self._employee(params.require("employeeCode"))
        org = self._org(params.require("organizationCode"))
        self._check_scope(org.code)
        if employee.status != "A":
            raise SimError("SIM-EMP-INACTIVE", f"{employee.code} is inactive")
        if employee.position(org.code) is not None:
            raise SimError("SIM-POSITION-EXISTS", f"{employee.code} already has a position in {org.code}")
        employee.positions.append(Position(org.code, False, self._position_fields(params)))
        return True

    def delete_gov_employee_position(self, params: Params) -> Any:
        """`/mozi/employee/deleteGovEmployeePosition`: never the last one; the main job passes on."""
        employee = self._employee(params.require("employeeCode"))
        code = params.require("organizationCode")
        position = employee.position(code)
        if position is None:
            raise SimError("SIM-POSITION-NOT-FOUND", f"{employee.code} has no position in {code}")
        self._check_scope(code)
        if len(employee.positions) == 1:
            raise SimError("SIM-LAST-POSITION", "the last position cannot be deleted: deactivate instead")
        employee.positions.remove(position)
        if position.main_job:
            employee.positions[0].main_job = True
        return True

    def deactivate_gov_employee(self, params: Params) -> Any:
        """`/mozi/employee/deactivateGovEmployee`: status F, positions released (so nodes can empty).

        [I] Whether the platform keeps a leaver's positions is not known; the `employeeStatus`
        filter of pageOrganizationEmployeePositions hints that it does. Releasing them here means
        that filter with `F` finds nobody."""
        employee = self._employee(params.require("employeeCode"))
        self._check_employee_scope(employee)
        if employee.status != "A":
            raise SimError("SIM-EMP-INACTIVE", f"{employee.code} is already inactive")
        employee.status = "F"
        employee.positions = []
        return True

    def rehired_gov_employee(self, params: Params) -> Any:
        """`/mozi/employee/rehiredGovEmployee`: status A again, with one main position in organizationCode."""
        employee = self._employee(params.require("employeeCode"))
        org = self._org(params.require("organizationCode"))
        self._check_scope(org.code)
        if employee.status == "A":
            raise SimError("SIM-EMP-ACTIVE", f"{employee.code} is active")
        employee.positions = [Position(org.code, True, self._position_fields(params))]
        employee.status = "A"
        return True

    def update_gov_account_status(self, params: Params) -> Any:
        """`/mozi/account/updateGovAccountStatus`: freeze (F) or unfreeze (A) a login."""
        params.require("accountId")
        params.require("status")
        account_id = params.integer("accountId")
        status = params.choice("status", ("A", "F"), "")
        account = self.accounts.get(account_id or 0)
        if account is None:
            raise SimError("SIM-ACCOUNT-NOT-FOUND", f"account {account_id} does not exist")
        self._check_employee_scope(self.employees[account.employee_code])
        account.status = status
        return True

    # -- notifications -----------------------------------------------------------------------

    def work_notification(self, params: Params) -> Any:
        """`/message/workNotification`: kept, deduplicated by bizMsgId."""
        biz_msg_id = params.require("bizMsgId")
        msg = params.require("msg")
        receivers = params.joined("receiverIds", MAX_RECEIVERS, required=False)
        org_codes = params.joined("organizationCodes", MAX_CODES, required=False)
        if not receivers and not org_codes:
            raise SimError("SIM-PARAM-MISSING", "receiverIds or organizationCodes is required")
        if len(msg.encode("utf-8")) > MAX_MSG_BYTES:
            raise SimError("SIM-PARAM-INVALID", f"msg is longer than {MAX_MSG_BYTES} bytes")
        try:
            json.loads(msg)
        except ValueError:
            raise SimError("SIM-PARAM-INVALID", "msg must be JSON") from None
        self._check_scope(*org_codes)
        if biz_msg_id in self.notifications:
            raise SimError("SIM-BIZMSGID-DUP", "a notification with that bizMsgId was already sent")
        msg_id = "msg" + secrets.token_hex(8)
        self.notifications[biz_msg_id] = {
            "bizMsgId": biz_msg_id, "msgId": msg_id, "receiverIds": receivers,
            "organizationCodes": org_codes, "msg": msg,
        }
        return {"msgId": msg_id}

    # -- state -------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The whole state as JSON-able data, mobiles included: for admins, tests and the state file."""
        with self.lock:
            return {
                "tenantId": self.tenant_id,
                "rootCode": self.root_code,
                "organizations": [org.as_api() for org in self.organizations.values()],
                "employees": [
                    {**e.as_api(), "mobile": e.mobile, "areaCode": e.area_code, "accountId": e.account_id,
                     "positions": [p.as_api() for p in e.positions]}
                    for e in self.employees.values()
                ],
                "accounts": [
                    {"accountId": a.account_id, "employeeCode": a.employee_code, "status": a.status}
                    for a in self.accounts.values()
                ],
                "notifications": list(self.notifications.values()),
                "nextAccountId": self.next_account_id,
            }

    def save(self) -> None:
        """Write the state file atomically (temporary file, then rename), private to its owner."""
        if self.state_file is None:
            return
        data = json.dumps(self.snapshot(), ensure_ascii=False, indent=1)
        directory = self.state_file.parent
        fd, tmp = tempfile.mkstemp(prefix=self.state_file.name, suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(data)
            os.replace(tmp, self.state_file)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _load(self, data: Mapping[str, Any]) -> None:
        for org in data["organizations"]:
            self.organizations[org["organizationCode"]] = Organization(
                org["organizationCode"], org["organizationName"], org["parentCode"] or None,
                org["displayOrder"], org["extOrgCode"], org["govShortName"], org["status"],
            )
        for e in data["employees"]:
            self.employees[e["employeeCode"]] = Employee(
                e["employeeCode"], e["employeeName"], e["mobile"], e["accountId"], e["status"], e["areaCode"],
                fields={name: e[name] for name in PERSON_FIELDS if e.get(name)},
                positions=[
                    Position(p["organizationCode"], p["mainJob"],
                             {name: p[name] for name in POSITION_FIELDS if p.get(name)})
                    for p in e["positions"]
                ],
            )
        for a in data["accounts"]:
            self.accounts[a["accountId"]] = Account(a["accountId"], a["employeeCode"], a["status"])
        self.notifications = {n["bizMsgId"]: dict(n) for n in data["notifications"]}
        self.next_account_id = data["nextAccountId"]
        if self.root_code not in self.organizations:
            raise ValueError(f"state file has no root organisation {self.root_code}")


# path → (handler, whether the call changes state)
ROUTES: dict[str, tuple[Handler, bool]] = {
    "/auth/scopesV2": (Directory.scopes, False),
    "/mozi/organization/getRootOrganization": (Directory.get_root_organization, False),
    "/mozi/organization/pageSubOrganizationCodes": (Directory.page_sub_organization_codes, False),
    "/mozi/organization/listOrganizationsByCodes": (Directory.list_organizations_by_codes, False),
    "/mozi/organization/getOrgCodeByExtOrgCode": (Directory.get_org_code_by_ext_org_code, False),
    "/mozi/organization/createGovOrganization": (Directory.create_gov_organization, True),
    "/mozi/organization/updateGovOrganization": (Directory.update_gov_organization, True),
    "/mozi/organization/moveGovOrganization": (Directory.move_gov_organization, True),
    "/mozi/organization/deleteGovOrganization": (Directory.delete_gov_organization, True),
    "/mozi/organization/pageOrganizationEmployeePositions": (Directory.page_organization_employee_positions, False),
    "/mozi/employee/get_by_mobiles": (Directory.get_by_mobiles, False),
    "/mozi/employee/listEmployeesByCodes": (Directory.list_employees_by_codes, False),
    "/mozi/employee/listEmployeePositionsByEmployeeCode": (Directory.list_employee_positions_by_employee_code, False),
    "/mozi/employee/listEmployeeAccountIds": (Directory.list_employee_account_ids, False),
    "/addressBook/employee/createComplexEmployee": (Directory.create_complex_employee, True),
    "/mozi/employee/updateGovEmployee": (Directory.update_gov_employee, True),
    "/mozi/employee/updateGovEmployeePosition": (Directory.update_gov_employee_position, True),
    "/mozi/employee/moveEmployeePosition": (Directory.move_employee_position, True),
    "/mozi/employee/createGovEmployeePosition": (Directory.create_gov_employee_position, True),
    "/mozi/employee/deleteGovEmployeePosition": (Directory.delete_gov_employee_position, True),
    "/mozi/employee/deactivateGovEmployee": (Directory.deactivate_gov_employee, True),
    "/mozi/employee/rehiredGovEmployee": (Directory.rehired_gov_employee, True),
    "/mozi/account/updateGovAccountStatus": (Directory.update_gov_account_status, True),
    "/message/workNotification": (Directory.work_notification, True),
}
