"""`ZzdTarget`: the engine's `syncd.target.Target` spoken to Zhengzhengding through `ContactsClient`.

Field names are mapped by `connectors.zzd.mapper`; errors arrive already typed (`errors.py`), as
`TargetError` subclasses with the categories of zzd-api.md §3.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from connectors.zzd.client import ContactsClient
from connectors.zzd.errors import Category, InvalidError, NotFoundError
from connectors.zzd.mapper import department_params, person_params
from syncd.target import CreatedPerson, DirectoryPerson

log = structlog.get_logger(__name__)


class ZzdTarget:
    """The contacts directory of one Zhengzhengding tenant, as the engine sees it."""

    def __init__(self, client: ContactsClient) -> None:
        self.client = client

    # -- departments -------------------------------------------------------------------------

    def create_department(self, fields: Mapping[str, str], parent_code: str, ext_code: str) -> str:
        """Create an organisation under `parent_code` with extOrgCode `ext_code`; return its code."""
        params = department_params(fields, update=False).params
        return self.client.create_gov_organization(
            parent_code, params.get("organizationName", ""), ext_org_code=ext_code,
            display_order=params.get("displayOrder", ""), gov_short_name=params.get("govShortName", ""),
        )

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
        data = self.client.create_complex_employee(org_code, {**mapped.person, **mapped.position})
        return CreatedPerson(str(data["employeeCode"]), _account_id(data.get("accountId")))

    def find_person_by_mobile(self, mobile: str) -> DirectoryPerson | None:
        """The person holding this mobile in the tenant, or None."""
        for found in self.client.get_by_mobiles([mobile]):
            if str(found.get("mobile", mobile)) == mobile and found.get("employeeCode"):
                return DirectoryPerson(
                    str(found["employeeCode"]), _account_id(found.get("accountId")), str(found.get("status", "A")),
                )
        return None

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
        self.client.move_employee_position(employee_code, from_code, to_code)

    def deactivate_person(self, employee_code: str) -> None:
        """Set the person inactive (status F): the 离职/退休 call. Never a delete."""
        self.client.deactivate_gov_employee(employee_code)

    def rehire_person(self, employee_code: str, org_code: str, fields: Mapping[str, str]) -> None:
        """Set an inactive person active again with a main position in `org_code` (same employeeCode)."""
        mapped = person_params(fields, update=False)
        self.client.rehired_gov_employee(employee_code, org_code, mapped.position)
        if mapped.person:
            self.client.update_gov_employee(employee_code, mapped.person)

    def remove_position(self, employee_code: str, org_code: str) -> None:
        """Remove the person's position in `org_code` (调离 while another position remains)."""
        self.client.delete_gov_employee_position(employee_code, org_code)

    def set_account_frozen(self, account_id: int, frozen: bool) -> None:
        """Freeze a login at once (a lost phone) or unfreeze it."""
        self.client.update_gov_account_status(account_id, "F" if frozen else "A")


def _account_id(value: object) -> int | None:
    if value is None or value == "":
        return None
    return int(str(value))
