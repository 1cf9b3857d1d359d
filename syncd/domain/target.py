"""The contract between the engine and the contacts directory it writes to.

The engine speaks HR field names (`syncd.domain.model.PUSHED_PERSON_FIELDS`); the Zhengzhengding
adapter in `connectors/zzd/` maps them onto the API of `zzd-api.md`. Organisation codes and
employee codes are the directory's own identifiers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class CreatedPerson:
    """What the directory returns for a new person: the employee and the login account."""

    employee_code: str
    account_id: int | None


@dataclass(frozen=True, slots=True)
class DirectoryPerson:
    """A person found in the directory by mobile (`get_by_mobiles`)."""

    employee_code: str
    account_id: int | None
    status: str  # "A" active | "F" inactive


@dataclass(frozen=True, slots=True)
class DirectoryOrganization:
    """An organisation as the directory holds it (`listOrganizationsByCodes`)."""

    code: str
    name: str
    short_name: str
    parent: str | None
    ext_code: str  # the caller's own key; HR's department id when syncd made it, often empty when made by hand
    status: str  # "A" active | "F" retired
    order: int | None = None


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    """A person as the directory holds them, in HR field names (the mobile is never returned)."""

    employee_code: str
    status: str  # "A" | "F"
    organization_code: str | None  # the main position's organisation
    fields: dict[str, str]  # the fields the directory reports back, e.g. name, gender, post


class Target(Protocol):
    """The verbs the engine needs from a contacts directory (zzd-api.md §5)."""

    def create_department(self, fields: Mapping[str, str], parent_code: str, ext_code: str) -> str:
        """Create an organisation under `parent_code`; return its organisationCode.

        `fields` has `name`, `short_name`, `order`; `ext_code` is the HR department id."""

    def find_department(self, ext_code: str) -> str | None:
        """The organisationCode whose extOrgCode is this HR department id, or None."""

    def sub_departments(self, code: str) -> list[DirectoryOrganization]:
        """The active organisations one level below `code`."""

    def organization_parent(self, code: str) -> str | None:
        """The parent organisationCode of an organisation; None for a top-level one or an unknown code."""

    def update_department(self, code: str, fields: Mapping[str, str]) -> None:
        """Change `name` / `short_name` / `order` of an organisation (only the keys given)."""

    def create_person(self, fields: Mapping[str, str], org_code: str) -> CreatedPerson:
        """Create a person with a main position in `org_code` (all pushed fields given)."""

    def find_person_by_mobile(self, mobile: str) -> DirectoryPerson | None:
        """The person holding this mobile in the tenant, or None."""

    def find_people_by_mobiles(self, mobiles: Sequence[str]) -> dict[str, DirectoryPerson]:
        """The people holding these mobiles, by mobile (batched: 50 mobiles a call)."""

    def update_person(self, employee_code: str, org_code: str, fields: Mapping[str, str]) -> None:
        """Push changed fields: person fields to the person, position fields to the position in
        `org_code`; only the keys given are written."""

    def move_person(self, employee_code: str, from_code: str, to_code: str) -> None:
        """Move the person's position from one organisation to another."""

    def deactivate_person(self, employee_code: str) -> None:
        """Set the person inactive (status F): the 离职/退休 call. Never a delete."""

    def rehire_person(self, employee_code: str, org_code: str, fields: Mapping[str, str]) -> None:
        """Set an inactive person active again with a main position in `org_code` (same employeeCode)."""

    def person_positions(self, employee_code: str) -> list[str]:
        """The organisationCodes of the person's positions, main position first."""

    def remove_position(self, employee_code: str, org_code: str) -> None:
        """Remove the person's position in `org_code` (调离 while another position remains)."""

    def move_department(self, code: str, parent_code: str) -> None:
        """Move an organisation under another parent."""

    def delete_department(self, code: str) -> None:
        """Delete an empty organisation (a `state` error while it has members or children)."""

    def set_account_frozen(self, account_id: int, frozen: bool) -> None:
        """Freeze a login at once (a lost phone, Article 17) or unfreeze it."""

    def account_ids(self, employee_codes: Sequence[str]) -> dict[str, int]:
        """The login account of each of these people, by employeeCode (those with none are left out)."""

    def visible_scope(self) -> list[str]:
        """The organisation codes the app may see and write (check-config verifies the unit's root is one)."""

    def read_people(self, org_codes: Sequence[str], employee_codes: Sequence[str] = ()) -> list[DirectoryEntry]:
        """Everyone with a position in these organisations, and the people named by `employee_codes`
        wherever they are, as the directory holds them (drift check)."""


class TargetError(Exception):
    """The directory refused a call or could not be reached.

    `category` is one of zzd-api.md §3 (auth, throttled, unavailable, scope, not_found, conflict,
    invalid, state, duplicate_message). Connectors raise subclasses; the engine decides per
    change by category and never needs the connector's own classes.
    """

    category: str = "unavailable"

    @property
    def stops_run(self) -> bool:
        """Auth problems are configuration or clock problems: no later call can succeed."""
        return self.category == "auth"
