"""`ZzdTarget`: the engine's `syncd.domain.target.Target` spoken to Zhengzhengding through `ContactsClient`.

Field names are mapped by `connectors.zzd.mapper`; errors arrive already typed (`errors.py`), as
`TargetError` subclasses with the categories of zzd-api.md §3.

A write whose response was lost may have landed (zzd-api.md §5, idempotency). The client never
re-sends such a write by itself; here, creates, moves and deactivations look first (an
organisation by extOrgCode, a person by mobile, a position by its organisation, a status) and
adopt what landed, and only re-send when nothing did.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import structlog

from connectors.zzd.client import ContactsClient
from connectors.zzd.errors import Category, ConflictError, InvalidError, NotFoundError, TransientError
from connectors.zzd.mapper import department_params, person_fields_from_api, person_params
from syncd.domain.target import CreatedPerson, DirectoryEntry, DirectoryOrganization, DirectoryPerson

log = structlog.get_logger(__name__)

T = TypeVar("T")


class ZzdTarget:
    """The contacts directory of one Zhengzhengding tenant, as the engine sees it."""

    def __init__(self, client: ContactsClient) -> None:
        self.client = client

    def visible_scope(self) -> list[str]:
        """The organisation codes the app may see and write (`/auth/scopesV2`)."""
        return self.client.scopes()

    def recorded_writes(self) -> list[tuple[str, list[str]]]:
        """In a dry run, the writes the client recorded instead of sending: (path, parameter names)."""
        return [(write.path, list(write.param_names)) for write in self.client.dry_run_writes]

    # -- departments -------------------------------------------------------------------------

    def create_department(self, fields: Mapping[str, str], parent_code: str, ext_code: str) -> str:
        """Create an organisation under `parent_code` with extOrgCode `ext_code`; return its code."""
        params = department_params(fields, update=False).params
        return self._exactly_once(
            "/mozi/organization/createGovOrganization",
            lambda: self.client.create_gov_organization(
                parent_code, params.get("organizationName", ""), ext_org_code=ext_code,
                display_order=params.get("displayOrder", ""), gov_short_name=params.get("govShortName", ""),
            ),
            # Without an extOrgCode nothing can be looked up, so a lost create is not re-sent.
            (lambda: self._landed_department(ext_code, parent_code)) if ext_code else None,
        )

    def _landed_department(self, ext_code: str, parent_code: str) -> str | None:
        """After a lost create: the organisation it made, which must sit exactly where it was asked."""
        code = self.find_department(ext_code)
        return code if code is not None and self.organization_parent(code) == parent_code else None

    def sub_departments(self, code: str) -> list[DirectoryOrganization]:
        """The active organisations one level below `code`: one paged read of codes, one read per 100."""
        codes = self.client.all_sub_organization_codes(code, status="A")
        return [_organization(org) for org in self.client.organizations_in_batches(codes)
                if str(org.get("status", "A")) == "A"]

    def organization_parent(self, code: str) -> str | None:
        """The parent organisationCode of an organisation, None for a top-level one or an unknown code."""
        found = self.client.list_organizations_by_codes([code])
        return (str(found[0].get("parentCode") or "") or None) if found else None

    def find_department(self, ext_code: str) -> str | None:
        """The organisationCode whose extOrgCode is this HR department id, or None."""
        try:
            return self.client.get_org_code_by_ext_org_code(ext_code)
        except NotFoundError:
            return None

    def update_department(self, code: str, fields: Mapping[str, str]) -> None:
        """Change `name` / `short_name` / `order` of an organisation (only the keys given)."""
        mapped = department_params(fields, update=True)
        if mapped.uncleared:
            log.warning("zzd.fields_not_cleared", organization_code=code, fields=list(mapped.uncleared))
        if mapped.params:
            self.client.update_gov_organization(code, mapped.params)

    def move_department(self, code: str, parent_code: str) -> None:
        """Move an organisation under another parent."""
        self.client.move_gov_organization(code, parent_code)

    def delete_department(self, code: str) -> None:
        """Delete an empty organisation (StateError while it has members or children)."""
        self.client.delete_gov_organization(code)

    # -- people ------------------------------------------------------------------------------

    def create_person(self, fields: Mapping[str, str], org_code: str) -> CreatedPerson:
        """Create a person with a main position in `org_code`; a person without a mobile cannot be."""
        if not fields.get("mobile"):
            # The login account is the mobile number: report the person, never invent a number.
            raise InvalidError(Category.INVALID, "MOBILE-REQUIRED", "a person needs a mobile to be created",
                               "/addressBook/employee/createComplexEmployee")
        mapped = person_params(fields, update=False)
        mobile = fields["mobile"]

        def create() -> CreatedPerson:
            data = self.client.create_complex_employee(org_code, {**mapped.person, **mapped.position})
            return CreatedPerson(str(data["employeeCode"]), _account_id(data.get("accountId")))

        def landed() -> CreatedPerson | None:
            # Someone holds the mobile now: perhaps our create, perhaps a person who held it all along
            # (the lost answer may have been a refusal). Which one is the engine's adopt decision —
            # linked elsewhere, inactive, in another organisation — so it gets a conflict, not a guess.
            if self.find_person_by_mobile(mobile) is not None:
                raise ConflictError(Category.CONFLICT, "LOST-CREATE-MOBILE-TAKEN",
                                    "the answer to a create was lost and the mobile is now taken",
                                    "/addressBook/employee/createComplexEmployee")
            return None

        return self._exactly_once("/addressBook/employee/createComplexEmployee", create, landed)

    def find_person_by_mobile(self, mobile: str) -> DirectoryPerson | None:
        """The person holding this mobile in the tenant, or None."""
        return self.find_people_by_mobiles([mobile]).get(mobile)

    def find_people_by_mobiles(self, mobiles: Sequence[str]) -> dict[str, DirectoryPerson]:
        """The people holding these mobiles, by mobile: 50 mobiles a call (zzd-api.md §5)."""
        wanted = set(mobiles)
        # An answer for one mobile that leaves the mobile out can only be about that one.
        only = next(iter(wanted)) if len(wanted) == 1 else ""
        found: dict[str, DirectoryPerson] = {}
        for account in self.client.mobiles_in_batches(dict.fromkeys(mobiles)):
            mobile = str(account.get("mobile") or only)
            if mobile in wanted and account.get("employeeCode"):
                found[mobile] = DirectoryPerson(str(account["employeeCode"]), _account_id(account.get("accountId")),
                                                str(account.get("status", "A")))
        return found

    def update_person(self, employee_code: str, org_code: str, fields: Mapping[str, str]) -> None:
        """Push changed person fields to the person and position fields to the position in `org_code`."""
        mapped = person_params(fields, update=True)
        if mapped.uncleared:
            log.warning("zzd.fields_not_cleared", employee_code=employee_code, fields=list(mapped.uncleared))
        if mapped.person:
            self.client.update_gov_employee(employee_code, mapped.person)
        if mapped.position:
            self.client.update_gov_employee_position(employee_code, org_code, mapped.position)

    def move_person(self, employee_code: str, from_code: str, to_code: str) -> None:
        """Move the person's position from one organisation to another."""
        def landed() -> bool | None:
            positions = self.person_positions(employee_code)
            return True if to_code in positions and from_code not in positions else None

        def move() -> bool:
            self.client.move_employee_position(employee_code, from_code, to_code)
            return True

        self._exactly_once("/mozi/employee/moveEmployeePosition", move, landed)

    def deactivate_person(self, employee_code: str) -> None:
        """Set the person inactive (status F): the 离职/退休 call. Never a delete."""
        def landed() -> bool | None:
            found = self.client.list_employees_by_codes([employee_code])
            return True if found and found[0].get("status") == "F" else None

        def deactivate() -> bool:
            self.client.deactivate_gov_employee(employee_code)
            return True

        self._exactly_once("/mozi/employee/deactivateGovEmployee", deactivate, landed)

    def rehire_person(self, employee_code: str, org_code: str, fields: Mapping[str, str]) -> None:
        """Set an inactive person active again with a main position in `org_code` (same employeeCode)."""
        mapped = person_params(fields, update=False)
        self.client.rehired_gov_employee(employee_code, org_code, mapped.position)
        if mapped.person:
            self.client.update_gov_employee(employee_code, mapped.person)

    def person_positions(self, employee_code: str) -> list[str]:
        """The organisationCodes of the person's positions, main position first."""
        positions = self.client.list_employee_positions_by_employee_code(employee_code)
        ordered = sorted(positions, key=lambda p: not p.get("mainJob"))
        return [str(p["organizationCode"]) for p in ordered]

    def remove_position(self, employee_code: str, org_code: str) -> None:
        """Remove the person's position in `org_code` (调离 while another position remains)."""
        self.client.delete_gov_employee_position(employee_code, org_code)

    def set_account_frozen(self, account_id: int, frozen: bool) -> None:
        """Freeze a login at once (a lost phone) or unfreeze it."""
        self.client.update_gov_account_status(account_id, "F" if frozen else "A")

    def account_ids(self, employee_codes: Sequence[str]) -> dict[str, int]:
        """The login account of each person, by employeeCode: 100 codes a call (`listEmployeeAccountIds`)."""
        found: dict[str, int] = {}
        for account in self.client.account_ids_in_batches(dict.fromkeys(employee_codes)):
            account_id = _account_id(account.get("accountId"))
            if account.get("employeeCode") and account_id is not None:
                found[str(account["employeeCode"])] = account_id
        return found

    def read_people(self, org_codes: Sequence[str], employee_codes: Sequence[str] = ()) -> list[DirectoryEntry]:
        """Everyone with a position in these organisations, active or not, as the directory holds them,
        and the people `employee_codes` names wherever they are (a person deactivated by hand may hold
        no position any more, and must still be seen as deactivated).

        Fields are those a read reports back cheaply (see `mapper.person_fields_from_api`): one
        paged read per organisation and one batched read per 100 people."""
        main_of: dict[str, dict[str, Any] | None] = {}
        for org_code in dict.fromkeys(org_codes):
            for member in self.client.all_organization_employee_positions(org_code, employee_status="TOTAL"):
                positions = member.get("govEmployeePositions") or []
                main_of[str(member["employeeCode"])] = next((p for p in positions if p.get("mainJob")), None)
        for code in employee_codes:
            main_of.setdefault(code, None)
        entries = []
        for employee in self.client.employees_in_batches(main_of):
            main = main_of.get(str(employee["employeeCode"]))
            entries.append(DirectoryEntry(
                employee_code=str(employee["employeeCode"]),
                status=str(employee.get("status", "A")),
                organization_code=str(main["organizationCode"]) if main else None,
                fields=person_fields_from_api(employee, main),
            ))
        return entries

    def _exactly_once(self, path: str, send: Callable[[], T], landed: Callable[[], T | None] | None) -> T:
        """Send a write; after a lost response, adopt what landed (`landed()` not None) or send again."""
        sent = False

        def attempt() -> T:
            nonlocal sent
            if sent and landed is not None:
                found = landed()
                if found is not None:
                    log.info("zzd.write_adopted", path=path)
                    return found
            sent = True
            return send()

        def lost(exc: BaseException) -> bool:
            return landed is not None and isinstance(exc, TransientError) and exc.maybe_applied

        return self.client.retrying(lost, path)(attempt)


def _organization(org: Mapping[str, Any]) -> DirectoryOrganization:
    order = str(org.get("displayOrder") or "")
    return DirectoryOrganization(
        code=str(org["organizationCode"]), name=str(org.get("organizationName") or ""),
        short_name=str(org.get("govShortName") or ""), parent=str(org.get("parentCode") or "") or None,
        ext_code=str(org.get("extOrgCode") or ""), status=str(org.get("status") or "A"),
        order=int(order) if order.lstrip("-").isdigit() else None,
    )


def _account_id(value: object) -> int | None:
    if value is None or value == "":
        return None
    return int(str(value))
