"""`ContactsClient`: the calls of zzd-api.md §5 and §6, signed (§1), one method per call.

Every call is a signed form POST carrying `tenantId`; every write carries `operator` (`creator`
for createGovOrganization). Responses go through `errors.unwrap`, the only place they become data
or typed errors. Methods named after an API call make exactly one request; the helpers
(`all_*`, `*_in_batches`) read every page (pageSize 100) or split long lists (100 codes, 50
mobiles) into several.

Retries (tenacity) cover the transient categories only: every read, and a write only when it
certainly did not land (throttled at the gateway, connection refused) or is idempotent (updates,
account status, a notification deduplicated by bizMsgId). A create, move, delete, deactivate or
rehire whose response was lost is raised to the caller, which must look before re-sending
(`ZzdTarget` does). Waits grow exponentially with jitter, honour `Retry-After`, and are bounded
by attempts and total time; `RetryPolicy(sleep=...)` makes them instant in tests. A shared
`RateLimiter` spaces all calls and slows down when throttled.

Dry run happens here, at the transport boundary: writes are recorded in `dry_run_writes` and not
sent, reads still go out, so a dry run exercises everything but the writes themselves.

Logs carry the path, duration, outcome and error category/code only: never a header, a body, a
secret or a personal value.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

import requests
import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential,
    wait_random,
)

from connectors.zzd.errors import Category, CodeTable, Reply, TransientError, ZzdError, unwrap
from connectors.zzd.ratelimit import RateLimiter
from connectors.zzd.signing import Params, param_pairs, signed_headers

log = structlog.get_logger(__name__)

T = TypeVar("T")

PAGE_SIZE = 100
MAX_CODES = 100
MAX_MOBILES = 50
AREA_CODE = "86"
CONTENT_TYPE = "application/x-www-form-urlencoded; charset=UTF-8"

# API fields accepted per call, so that a mapping bug fails loudly instead of being dropped.
PERSON_PARAMS = frozenset({
    "employeeName", "govEmpGenderCode", "govEmpCellPhoneNo", "areaCode", "govEmpBudgetedPostCode",
    "govEmpJobLevelCode", "govEmpPoliticalStatusCode", "employeeExtPropertiesStr",
})
POSITION_PARAMS = frozenset({
    "govEmpPosJob", "govEmpPosEmployeeRoleCode", "posJobRankCode", "govEmpPosPhoneNo",
    "orderInOrganization", "positionExtPropertiesStr",
})
ORGANIZATION_PARAMS = frozenset({"organizationName", "displayOrder", "govShortName"})

# Parameters whose values are personal: masked in any error message that echoes them.
PERSONAL_PARAMS = frozenset({
    "employeeName", "govEmpCellPhoneNo", "mobiles", "govEmpPosPhoneNo", "positionExtPropertiesStr",
    "employeeExtPropertiesStr", "msg",
})

WRITE_PATHS = frozenset({
    "/mozi/organization/createGovOrganization",
    "/mozi/organization/updateGovOrganization",
    "/mozi/organization/moveGovOrganization",
    "/mozi/organization/deleteGovOrganization",
    "/addressBook/employee/createComplexEmployee",
    "/mozi/employee/updateGovEmployee",
    "/mozi/employee/updateGovEmployeePosition",
    "/mozi/employee/moveEmployeePosition",
    "/mozi/employee/createGovEmployeePosition",
    "/mozi/employee/deleteGovEmployeePosition",
    "/mozi/employee/deactivateGovEmployee",
    "/mozi/employee/rehiredGovEmployee",
    "/mozi/account/updateGovAccountStatus",
    "/message/workNotification",
})
# The one write that names its author `creator` instead of `operator` (zzd-api.md §5).
CREATOR_PATHS = frozenset({"/mozi/organization/createGovOrganization"})
# Writes that may be re-sent even if the first one landed: the second has the same effect (or, for
# a notification, is refused as a duplicate, which the caller treats as success).
IDEMPOTENT_WRITES = frozenset({
    "/mozi/organization/updateGovOrganization",
    "/mozi/employee/updateGovEmployee",
    "/mozi/employee/updateGovEmployeePosition",
    "/mozi/account/updateGovAccountStatus",
    "/message/workNotification",
})


_SERVICE_PROBLEMS = frozenset({Category.AUTH, Category.THROTTLED, Category.UNAVAILABLE})
_LEVELS = {"warning": logging.WARNING, "info": logging.INFO}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How transient failures are retried: at most `attempts` tries within `total` seconds, waits included.

    Waits grow from `initial` seconds, doubling, capped at `maximum`, plus up to `jitter` random
    seconds; a longer `Retry-After` wins. `sleep` is what waits: tests pass a recorder."""

    attempts: int = 5
    total: float = 60.0
    initial: float = 0.5
    maximum: float = 10.0
    jitter: float = 0.5
    sleep: Callable[[float], None] = time.sleep
    # Set when the service stops: no further retry, so SIGTERM is answered in seconds, not a minute.
    interrupt: threading.Event | None = None

    @classmethod
    def instant(cls, attempts: int = 5) -> RetryPolicy:
        """A policy that retries without waiting, for tests."""
        return cls(attempts=attempts, sleep=lambda _seconds: None)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a paged call."""

    items: list[T]
    page_no: int
    page_size: int
    total_size: int | None


@dataclass(frozen=True, slots=True)
class DryRunWrite:
    """A write that a dry run recorded instead of sending: the path and the exact parameters."""

    path: str
    params: tuple[tuple[str, str], ...]

    @property
    def param_names(self) -> list[str]:
        """The parameter names, sorted and unique: what may be shown or logged."""
        return sorted({name for name, _ in self.params})


class ContactsClient:
    """A signed client of the Zhengzhengding contacts API for one tenant and one app."""

    def __init__(
        self,
        base_url: str,
        app_key: str,
        secret: Callable[[], str],
        tenant_id: int | str,
        operator: str,
        timeout: float = 5.0,
        error_codes: Mapping[str, str] | None = None,
        dry_run: bool = False,
        session: requests.Session | None = None,
        retry: RetryPolicy | None = None,
        rate_limit: float | RateLimiter | None = None,
        on_call: Callable[[str], None] | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._app_key = app_key
        # Called per request, so that a rotated secret file takes effect without a restart.
        self._secret = secret
        self._tenant_id = str(tenant_id)
        self._operator = operator
        self._timeout = timeout
        self._codes = CodeTable(error_codes)
        self._session = session or requests.Session()
        self.retry = retry or RetryPolicy()
        # A number builds this client's own limiter (evenly spaced calls, no burst, so that no
        # one-second window ever sees more than the rate); a RateLimiter may be shared by several clients.
        self.limiter = RateLimiter(float(rate_limit)) if isinstance(rate_limit, int | float) else rate_limit
        self.dry_run = dry_run
        # Told "ok" or the error category of every call that got an answer (the daemon's metrics).
        self._on_call = on_call
        self.dry_run_writes: list[DryRunWrite] = []
        self.calls: Counter[str] = Counter()
        self.reads = 0
        self.writes = 0
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()

    def __enter__(self) -> ContactsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------------

    def request(self, path: str, params: Params) -> Reply:
        """POST one call: `tenantId` (and `operator`/`creator` on a write) added, signed, translated."""
        write = path in WRITE_PATHS
        full: dict[str, Any] = {"tenantId": self._tenant_id, **params}
        if write:
            full["creator" if path in CREATOR_PATHS else "operator"] = self._operator
        pairs = param_pairs(full)
        if write and self.dry_run:
            with self._lock:
                self.dry_run_writes.append(DryRunWrite(path, tuple(pairs)))
                number = len(self.dry_run_writes)
            log.info("zzd.dry_run_write", path=path)
            return Reply(data=_dry_run_data(path, number))
        return self._send(path, pairs, write)

    def _send(self, path: str, pairs: list[tuple[str, str]], write: bool) -> Reply:
        personal = _personal_values(pairs)

        def send() -> requests.Response:
            if self.limiter is not None:
                self.limiter.acquire()
            # Signed per attempt: a retry carries a fresh timestamp and nonce.
            headers = signed_headers(self._app_key, self._secret(), "POST", path, pairs)
            headers["Content-Type"] = CONTENT_TYPE
            with self._lock:
                self.calls[path] += 1
                if write:
                    self.writes += 1
                else:
                    self.reads += 1
            return self._session.post(
                self._base_url + path, data=urlencode(pairs, encoding="utf-8"),
                headers=headers, timeout=self._timeout,
            )

        def attempt() -> Reply:
            started = time.monotonic()
            try:
                reply = unwrap(path, send, self._codes, personal)
            except ZzdError as exc:
                # A refusal about one object (not found, conflict …) is routine; the caller decides.
                level = "warning" if exc.category in _SERVICE_PROBLEMS else "info"
                log.log(_LEVELS[level], "zzd.call", path=path, outcome="error", duration_ms=_ms(started),
                        category=exc.category.value, code=exc.code)
                if exc.category is Category.THROTTLED and self.limiter is not None:
                    self.limiter.throttled(getattr(exc, "retry_after", None))
                if self._on_call is not None:
                    self._on_call(exc.category.value)
                raise
            log.debug("zzd.call", path=path, outcome="ok", duration_ms=_ms(started))
            if self._on_call is not None:
                self._on_call("ok")
            if self.limiter is not None:
                self.limiter.succeeded()
            return reply

        def may_resend(exc: BaseException) -> bool:
            if not isinstance(exc, TransientError):
                return False
            return not write or not exc.maybe_applied or path in IDEMPOTENT_WRITES

        return self.retrying(may_resend, path)(attempt)

    def retrying(self, predicate: Callable[[BaseException], bool], path: str = "") -> Retrying:
        """A tenacity `Retrying` with this client's policy, retrying errors that satisfy `predicate`."""
        policy = self.retry
        backoff = wait_exponential(multiplier=policy.initial, max=policy.maximum) + wait_random(0, policy.jitter)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            after = exc.retry_after if isinstance(exc, TransientError) and exc.retry_after else 0.0
            return max(backoff(state), after)

        def log_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.info("zzd.retry", path=path or getattr(exc, "path", ""), attempt=state.attempt_number,
                     wait_s=round(state.upcoming_sleep, 3), category=str(getattr(exc, "category", "")),
                     code=getattr(exc, "code", type(exc).__name__))

        stop = stop_after_attempt(policy.attempts) | stop_before_delay(policy.total)
        sleep = policy.sleep
        if policy.interrupt is not None:
            interrupt = policy.interrupt
            stop = stop | (lambda _state: interrupt.is_set())
            sleep = interrupt.wait  # a wait ends at once when the service stops
        return Retrying(retry=retry_if_exception(predicate), stop=stop, wait=wait, sleep=sleep,
                        before_sleep=log_retry, reraise=True)

    def _page(self, path: str, params: Params, page_no: int, page_size: int) -> Page[Any]:
        reply = self.request(path, {**params, "pageNo": page_no, "pageSize": page_size, "returnTotalSize": "true"})
        items = list(reply.data or [])
        return Page(items, reply.current_page or page_no, reply.page_size or page_size, reply.total_size)

    def _all_pages(self, fetch: Callable[[int], Page[T]]) -> list[T]:
        items: list[T] = []
        page_no = 1
        while True:
            page = fetch(page_no)
            items.extend(page.items)
            # Stop on what the server says, not on what was asked: a gateway may cap pages smaller.
            reached = page.total_size is not None and len(items) >= page.total_size
            empty = not page.items
            short = page.total_size is None and len(page.items) < page.page_size
            if empty or reached or short:
                return items
            page_no += 1

    @staticmethod
    def _in_batches(values: Iterable[T], size: int, fetch: Callable[[list[T]], list[Any]]) -> list[Any]:
        unique = list(dict.fromkeys(values))
        results: list[Any] = []
        for start in range(0, len(unique), size):
            results.extend(fetch(unique[start:start + size]))
        return results

    # -- organisations (zzd-api.md §5) -------------------------------------------------------

    def scopes(self) -> list[str]:
        """The organisation codes the app may see and write (`/auth/scopesV2`)."""
        data = self.request("/auth/scopesV2", {}).data or {}
        return list(data.get("deptVisibleScopes") or [])

    def get_root_organization(self) -> dict[str, Any]:
        """The tenant's root organisation."""
        return dict(self.request("/mozi/organization/getRootOrganization", {}).data or {})

    def page_sub_organization_codes(
        self, organization_code: str, *, status: str = "A", page_no: int = 1, page_size: int = PAGE_SIZE,
    ) -> Page[str]:
        """One page of the codes one level below `organization_code` (status `A`, `F` or `TOTAL`)."""
        params = {"organizationCode": organization_code, "status": status}
        return self._page("/mozi/organization/pageSubOrganizationCodes", params, page_no, page_size)

    def all_sub_organization_codes(self, organization_code: str, *, status: str = "A") -> list[str]:
        """Every code one level below `organization_code`, all pages read."""
        return self._all_pages(
            lambda n: self.page_sub_organization_codes(organization_code, status=status, page_no=n)
        )

    def list_organizations_by_codes(self, organization_codes: Sequence[str]) -> list[dict[str, Any]]:
        """The organisations with these codes (one call: at most 100 codes)."""
        reply = self.request("/mozi/organization/listOrganizationsByCodes", {"organizationCodes": organization_codes})
        return list(reply.data or [])

    def organizations_in_batches(self, organization_codes: Iterable[str]) -> list[dict[str, Any]]:
        """The organisations with these codes, any number, 100 per call."""
        return self._in_batches(organization_codes, MAX_CODES, self.list_organizations_by_codes)

    def get_org_code_by_ext_org_code(self, ext_org_code: str) -> str:
        """The organisationCode whose extOrgCode is this; NotFoundError when none."""
        return str(self.request("/mozi/organization/getOrgCodeByExtOrgCode", {"extOrgCode": ext_org_code}).data)

    def create_gov_organization(
        self, parent_code: str, organization_name: str, *, ext_org_code: str = "",
        display_order: int | str = "", gov_short_name: str = "",
    ) -> str:
        """Create an organisation under `parent_code`; return its organisationCode."""
        reply = self.request("/mozi/organization/createGovOrganization", {
            "parentCode": parent_code, "organizationName": organization_name, "extOrgCode": ext_org_code,
            "displayOrder": display_order, "govShortName": gov_short_name,
        })
        return str(reply.data["organizationCode"])

    def update_gov_organization(self, organization_code: str, fields: Mapping[str, str]) -> None:
        """Change organizationName / displayOrder / govShortName: only the fields given."""
        _check_keys(fields, ORGANIZATION_PARAMS)
        self.request("/mozi/organization/updateGovOrganization", {"organizationCode": organization_code, **fields})

    def move_gov_organization(self, organization_code: str, parent_code: str) -> None:
        """Move an organisation under another parent."""
        self.request("/mozi/organization/moveGovOrganization",
                     {"organizationCode": organization_code, "parentCode": parent_code})

    def delete_gov_organization(self, organization_code: str) -> None:
        """Delete an empty organisation (StateError while it has members or children)."""
        self.request("/mozi/organization/deleteGovOrganization", {"organizationCode": organization_code})

    def page_organization_employee_positions(
        self, organization_code: str, *, employee_status: str = "A", page_no: int = 1, page_size: int = PAGE_SIZE,
    ) -> Page[dict[str, Any]]:
        """One page of the people holding a position in `organization_code`, with their positions."""
        params = {"organizationCode": organization_code, "employeeStatus": employee_status}
        return self._page("/mozi/organization/pageOrganizationEmployeePositions", params, page_no, page_size)

    def all_organization_employee_positions(
        self, organization_code: str, *, employee_status: str = "A",
    ) -> list[dict[str, Any]]:
        """Every person holding a position in `organization_code`, all pages read."""
        return self._all_pages(lambda n: self.page_organization_employee_positions(
            organization_code, employee_status=employee_status, page_no=n,
        ))

    # -- employees (zzd-api.md §5) -----------------------------------------------------------

    def get_by_mobiles(self, mobiles: Sequence[str]) -> list[dict[str, Any]]:
        """The accounts holding these mobiles (one call: at most 50, sent comma-joined)."""
        reply = self.request("/mozi/employee/get_by_mobiles", {
            "mobiles": ",".join(mobiles), "areaCode": AREA_CODE, "namespace": "local",
        })
        return list(reply.data or [])

    def mobiles_in_batches(self, mobiles: Iterable[str]) -> list[dict[str, Any]]:
        """The accounts holding these mobiles, any number, 50 per call."""
        return self._in_batches(mobiles, MAX_MOBILES, self.get_by_mobiles)

    def list_employees_by_codes(self, employee_codes: Sequence[str]) -> list[dict[str, Any]]:
        """The people with these codes (one call: at most 100 codes)."""
        return list(self.request("/mozi/employee/listEmployeesByCodes", {"employeeCodes": employee_codes}).data or [])

    def employees_in_batches(self, employee_codes: Iterable[str]) -> list[dict[str, Any]]:
        """The people with these codes, any number, 100 per call."""
        return self._in_batches(employee_codes, MAX_CODES, self.list_employees_by_codes)

    def list_employee_positions_by_employee_code(self, employee_code: str) -> list[dict[str, Any]]:
        """Every position of one person."""
        reply = self.request("/mozi/employee/listEmployeePositionsByEmployeeCode", {"employeeCode": employee_code})
        return list(reply.data or [])

    def list_employee_account_ids(self, employee_codes: Sequence[str]) -> list[dict[str, Any]]:
        """The login accounts of these people (one call: at most 100 codes)."""
        reply = self.request("/mozi/employee/listEmployeeAccountIds", {"employeeCodes": employee_codes})
        return list(reply.data or [])

    def account_ids_in_batches(self, employee_codes: Iterable[str]) -> list[dict[str, Any]]:
        """The login accounts of these people, any number, 100 per call."""
        return self._in_batches(employee_codes, MAX_CODES, self.list_employee_account_ids)

    def create_complex_employee(self, organization_code: str, fields: Mapping[str, str]) -> dict[str, Any]:
        """Create a person, their main position in `organization_code` and their account in one call.

        `fields` are API person and position fields; employeeName and govEmpCellPhoneNo are
        required. Returns `{employeeCode, accountId}`."""
        _check_keys(fields, PERSON_PARAMS | POSITION_PARAMS)
        reply = self.request("/addressBook/employee/createComplexEmployee",
                             {"organizationCode": organization_code, **fields})
        return dict(reply.data or {})

    def update_gov_employee(self, employee_code: str, fields: Mapping[str, str]) -> None:
        """Change person fields: only the fields given."""
        _check_keys(fields, PERSON_PARAMS)
        self.request("/mozi/employee/updateGovEmployee", {"employeeCode": employee_code, **fields})

    def update_gov_employee_position(
        self, employee_code: str, organization_code: str, fields: Mapping[str, str],
    ) -> None:
        """Change the fields of the person's position in `organization_code`: only those given."""
        _check_keys(fields, POSITION_PARAMS)
        self.request("/mozi/employee/updateGovEmployeePosition",
                     {"employeeCode": employee_code, "organizationCode": organization_code, **fields})

    def move_employee_position(self, employee_code: str, from_organization_code: str,
                               to_organization_code: str) -> None:
        """Move the person's position from one organisation to another."""
        self.request("/mozi/employee/moveEmployeePosition", {
            "employeeCode": employee_code, "fromOrganizationCode": from_organization_code,
            "toOrganizationCode": to_organization_code,
        })

    def create_gov_employee_position(
        self, employee_code: str, organization_code: str, fields: Mapping[str, str] | None = None,
    ) -> None:
        """Give the person an additional (not main) position in `organization_code`."""
        _check_keys(fields or {}, POSITION_PARAMS)
        self.request("/mozi/employee/createGovEmployeePosition",
                     {"employeeCode": employee_code, "organizationCode": organization_code, **(fields or {})})

    def delete_gov_employee_position(self, employee_code: str, organization_code: str) -> None:
        """Remove the person's position in `organization_code`."""
        self.request("/mozi/employee/deleteGovEmployeePosition",
                     {"employeeCode": employee_code, "organizationCode": organization_code})

    def deactivate_gov_employee(self, employee_code: str) -> None:
        """Set the person inactive (status F): the 离职/退休 call."""
        self.request("/mozi/employee/deactivateGovEmployee", {"employeeCode": employee_code})

    def rehired_gov_employee(
        self, employee_code: str, organization_code: str, fields: Mapping[str, str] | None = None,
    ) -> None:
        """Set an inactive person active again, with a main position in `organization_code`."""
        _check_keys(fields or {}, POSITION_PARAMS)
        self.request("/mozi/employee/rehiredGovEmployee",
                     {"employeeCode": employee_code, "organizationCode": organization_code, **(fields or {})})

    def update_gov_account_status(self, account_id: int, status: str) -> None:
        """Freeze (`F`) or unfreeze (`A`) a login account."""
        if status not in ("A", "F"):
            raise ValueError(f"account status must be 'A' or 'F', not {status!r}")
        self.request("/mozi/account/updateGovAccountStatus", {"accountId": str(account_id), "status": status})

    # -- work notifications (zzd-api.md §6) --------------------------------------------------

    def work_notification(
        self, biz_msg_id: str, msg: Mapping[str, Any] | str, *,
        receiver_ids: Iterable[int] = (), organization_codes: Iterable[str] = (),
    ) -> str:
        """Send a work notification; return its msgId. A reused bizMsgId raises DuplicateMessageError."""
        body = msg if isinstance(msg, str) else json.dumps(msg, ensure_ascii=False, separators=(",", ":"))
        reply = self.request("/message/workNotification", {
            "bizMsgId": biz_msg_id, "msg": body,
            "receiverIds": ",".join(str(r) for r in receiver_ids),
            "organizationCodes": ",".join(organization_codes),
        })
        # Some deployments return {"msgId": …}, others the bare id.
        data = reply.data
        return str(data.get("msgId") if isinstance(data, dict) else data)


def _check_keys(fields: Mapping[str, str], allowed: frozenset[str]) -> None:
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"fields not accepted by this call: {sorted(unknown)}")


def _personal_values(pairs: Iterable[tuple[str, str]]) -> set[str]:
    values: set[str] = set()
    for key, value in pairs:
        if key in PERSONAL_PARAMS:
            values.add(value)
            values.update(part for part in value.split(",") if part)
    return values


def _dry_run_data(path: str, number: int) -> Any:
    # Visibly fake identifiers, so that later writes of the same dry run can refer to them.
    if path == "/mozi/organization/createGovOrganization":
        return {"organizationCode": f"GO_dry_run_{number}"}
    if path == "/addressBook/employee/createComplexEmployee":
        return {"employeeCode": f"GE_dry_run_{number}", "accountId": None}
    if path == "/message/workNotification":
        return {"msgId": f"dry_run_{number}"}
    return True


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
