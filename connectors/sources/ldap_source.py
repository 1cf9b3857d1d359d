"""HR records from an LDAP directory: simple paged results, TLS with CA verification, read-only.

A read is complete only when every page arrived. ldap3 reports `sizeLimitExceeded`,
`timeLimitExceeded` and referrals as a normal end of a search, so every page's result code and
paged-results control are checked here, and anything short of "success, and the server says this
was the last page" raises SourceError.

A dropped connection costs one reconnect per read. The paged-results cookie belongs to the
connection it came from (OpenLDAP answers "paged results cookie is invalid" on another), so the
search starts over on the new connection and the entries already handed out are skipped by DN:
the consumer sees the read go on from the page that failed, with nothing twice and nothing missed
even if entries were added or deleted meanwhile. A second failure in the same read raises
SourceError; the next cycle reads again.

Logs carry counts, page numbers, durations and error classes: never DNs, names, mobiles or the
bind password.
"""

from __future__ import annotations

import contextlib
import math
import re
import ssl
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import structlog
from ldap3 import AUTO_BIND_NONE, NONE, SIMPLE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import (
    LDAPBusyResult,
    LDAPCommunicationError,
    LDAPException,
    LDAPOperationResult,
    LDAPResponseTimeoutError,
    LDAPUnavailableResult,
)
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn

from syncd.config import LdapConfig
from syncd.domain.source import RawRecord, SourceError
from syncd.domain.validate import normalise_mobile

log = structlog.get_logger(__name__)

PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"  # RFC 2696
MAX_RECONNECTS = 1  # per read
_MOBILE = re.compile(r"^1[3-9]\d{9}$")  # the shape validate.parse_person accepts
_GENERALIZED_TIME = re.compile(r"^(\d{14})(?:[.,](\d+))?(Z|[+-]\d{4})$")
# Worth a reconnect: the connection dropped, or could not be opened, or the server said "try again".
_TRANSIENT: tuple[type[Exception], ...] = (
    LDAPCommunicationError, LDAPResponseTimeoutError, LDAPBusyResult, LDAPUnavailableResult,
)


@dataclass(frozen=True, slots=True)
class Entry:
    """One search result: its DN and its values by lower-cased attribute name (never an empty list)."""

    dn: str
    values: dict[str, list[str]]


def changed_since_filter(people_filter: str, watermark: str) -> str:
    """`(&<people_filter>(modifyTimestamp>=<watermark>))`, the watermark escaped as filter data."""
    return f"(&{people_filter}(modifyTimestamp>={escape_filter_chars(watermark)}))"


def parse_generalized_time(text: str) -> datetime | None:
    """A GeneralizedTime (`20240102030405Z`, `20240102030405.0Z`, `…+0800`) as an aware datetime, else None."""
    match = _GENERALIZED_TIME.match(text)
    if match is None:
        return None
    digits, fraction, zone = match.groups()
    try:
        moment = datetime.strptime(digits, "%Y%m%d%H%M%S")
    except ValueError:
        return None
    if fraction:
        moment += timedelta(microseconds=int(fraction[:6].ljust(6, "0")))
    if zone == "Z":
        return moment.replace(tzinfo=UTC)
    offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5]))
    return moment.replace(tzinfo=timezone(offset if zone[0] == "+" else -offset))


def _stamp_key(text: str) -> str | None:
    """A GeneralizedTime as sortable UTC text (`YYYYMMDDHHMMSS.ffffff`), else None.

    OpenLDAP's own form (`20240102030405Z`) takes a fast path: the key is built for every entry read.
    """
    if len(text) == 15 and text[14] == "Z" and text[:14].isdigit():
        return text[:14] + ".000000"
    moment = parse_generalized_time(text)
    return None if moment is None else moment.astimezone(UTC).strftime("%Y%m%d%H%M%S.%f")


def pick_mobile(values: list[str]) -> str:
    """The first value that looks like a mainland mobile once normalised, else the first value.

    "First" is the order the server returns the values in; OpenLDAP keeps the order in which they
    were added, so the choice is stable across reads until someone edits the attribute. With no
    valid-looking value the first is passed on, for validation to report with its reason.
    """
    for value in values:
        if _MOBILE.match(normalise_mobile(value)):
            return value
    return values[0]


def _unescape_dn_value(value: str) -> str:
    """An attribute value of a DN string with its RFC 4514 escapes (`\\,`, `\\5C`, UTF-8 `\\E5\\BC…`) undone."""
    if "\\" not in value:
        return value
    out = bytearray()
    i = 0
    while i < len(value):
        char = value[i]
        if char == "\\" and i + 1 < len(value):
            pair = value[i + 1:i + 3]
            if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
                out.append(int(pair, 16))
                i += 3
                continue
            char = value[i + 1]
            i += 1
        out.extend(char.encode("utf-8"))
        i += 1
    return out.decode("utf-8", errors="replace")


def split_dn(dn: str) -> list[tuple[tuple[str, str], ...]]:
    """The RDNs of a DN, leaf first, each a tuple of (lower-cased attribute, unescaped value)."""
    rdns: list[tuple[tuple[str, str], ...]] = []
    current: list[tuple[str, str]] = []
    for attribute, value, separator in parse_dn(dn):
        current.append((attribute.lower(), _unescape_dn_value(value)))
        if separator != "+":  # "+" joins the AVAs of one multi-valued RDN
            rdns.append(tuple(current))
            current = []
    return rdns


def parent_rdn_value(dn: str) -> str | None:
    """The first value of the parent's RDN, unescaped (`uid=x,ou=D0003,…` → `D0003`); None for a one-RDN DN.

    `split_dn(dn)[1][0][1]` without parsing the whole DN: it runs for every person read, and
    ldap3's parser costs a fifth of a 100,000-person read.
    """
    bounds: list[int] = []  # where the parent RDN's first AVA starts and ends
    i = 0
    while i < len(dn):
        char = dn[i]
        if char == "\\":
            i += 2  # an escaped character, or the first of a hex pair: never a separator
            continue
        if char == "," or (char == "+" and len(bounds) == 1):
            bounds.append(i)
            if len(bounds) == 2:
                break
        i += 1
    if not bounds:
        return None
    ava = dn[bounds[0] + 1:bounds[1] if len(bounds) == 2 else len(dn)]
    _attribute, _, value = ava.partition("=")
    return _unescape_dn_value(value)


def _dn_key(rdns: Iterable[tuple[tuple[str, str], ...]]) -> tuple[tuple[tuple[str, str], ...], ...]:
    # DN comparison ignores case: `ou` and `dc` match case-insensitively.
    return tuple(tuple((a, v.casefold()) for a, v in rdn) for rdn in rdns)


def _decode(raw: Mapping[str, list[bytes]]) -> dict[str, list[str]]:
    # LDAP strings are UTF-8 (RFC 4511); a stray byte shows as U+FFFD rather than ending the read.
    return {name.lower(): [v.decode("utf-8", errors="replace") for v in values]
            for name, values in raw.items() if values}


class LdapSource:
    """Departments and people from `[source.ldap]`, mapped to field names; `people_changed_since` for increments."""

    def __init__(self, config: LdapConfig) -> None:
        self._config = config
        self._people_attributes = {f: a for f, a in config.people_attributes.items() if a}
        self._department_attributes = {f: a for f, a in config.department_attributes.items() if a}
        self._secure = config.url.startswith("ldaps://")
        self._start_tls = config.start_tls and not self._secure
        self._watermark: str | None = None

    @property
    def watermark(self) -> str | None:
        """The highest `modifyTimestamp` of the last people read that ran to the end, else None.

        Store it only after the read's records were processed; pass it to `people_changed_since`
        next time. Timestamps have whole seconds, so the next read asks for `>=` it: entries of
        that second come again (reconcile finds them unchanged) rather than a change made later
        in the same second being missed.
        """
        return self._watermark

    def change_token(self, previous: str | None = None) -> str | None:
        """`<newest modifyTimestamp>|<people>|<departments>` of the entries the reads would return.

        The newest stamp comes from a search for entries stamped at or after the previous token's
        (a handful when little changed); the entry counts from a DN-only search, because a deleted
        entry leaves no newer stamp behind.
        """
        floor = previous.split("|", 1)[0] if previous else ""
        newest = _stamp_key(floor) if floor else None
        newest_text = floor
        counts = []
        for kind, base, search_filter in (("people", self._config.people_base, self._config.people_filter),
                                          ("departments", self._config.departments_base,
                                           self._config.departments_filter)):
            if floor:
                counts.append(sum(1 for _ in self._search(kind, base, search_filter, [], quiet=True)))
                stamped = self._search(kind, base, changed_since_filter(search_filter, floor), ["modifyTimestamp"],
                                       quiet=True)
            else:
                entries = list(self._search(kind, base, search_filter, ["modifyTimestamp"], quiet=True))
                counts.append(len(entries))
                stamped = iter(entries)
            for entry in stamped:
                text = (entry.values.get("modifytimestamp") or [""])[0]
                stamp = _stamp_key(text)
                if stamp is not None and (newest is None or stamp > newest):
                    newest, newest_text = stamp, text
        return f"{newest_text}|{counts[0]}|{counts[1]}"

    def departments(self) -> Iterator[RawRecord]:
        """Every department entry under `departments_base` matching `departments_filter`."""
        attributes = sorted(set(self._department_attributes.values()))
        entries = list(self._search("departments", self._config.departments_base,
                                    self._config.departments_filter, attributes))
        parent_from_dn = "parent" not in self._department_attributes
        ids: dict[tuple[tuple[tuple[str, str], ...], ...], str] = {}
        records = []
        for entry in entries:
            fields = self._fields(entry, self._department_attributes)
            rdns = split_dn(entry.dn)
            if fields.get("id"):
                ids[_dn_key(rdns)] = fields["id"]
            records.append((entry, fields, rdns))
        for entry, fields, rdns in records:
            if parent_from_dn:
                # The parent entry's id when it is a department read here; the root's parent is not.
                fields["parent"] = ids.get(_dn_key(rdns[1:]), "")
            yield RawRecord(fields, entry.dn)

    def people(self) -> Iterator[RawRecord]:
        """Every person entry under `people_base` matching `people_filter`: a full read."""
        return self._people(self._config.people_filter, floor=None)

    def people_changed_since(self, watermark: str) -> Iterator[RawRecord]:
        """People whose `modifyTimestamp` is at or after the watermark (a GeneralizedTime).

        Deletions leave no entry to find; the daily full read notices those.
        """
        if parse_generalized_time(watermark) is None:
            raise ValueError(f"watermark: a GeneralizedTime such as 20240102030405Z, not {watermark!r}")
        return self._people(changed_since_filter(self._config.people_filter, watermark), floor=watermark)

    def _people(self, search_filter: str, floor: str | None) -> Iterator[RawRecord]:
        self._watermark = None
        attributes = sorted({*self._people_attributes.values(), "modifyTimestamp"})
        from_dn = self._config.department_from == "dn"
        newest, newest_text = (_stamp_key(floor), floor) if floor else (None, None)
        for entry in self._search("people", self._config.people_base, search_filter, attributes):
            stamp_text = (entry.values.get("modifytimestamp") or [""])[0]
            stamp = _stamp_key(stamp_text)
            if stamp is not None and (newest is None or stamp > newest):
                newest, newest_text = stamp, stamp_text
            fields = self._fields(entry, self._people_attributes)
            if from_dn:
                department = parent_rdn_value(entry.dn)
                if department is None:
                    fields.pop("department", None)
                else:
                    fields["department"] = department
            yield RawRecord(fields, entry.dn)
        self._watermark = newest_text

    @staticmethod
    def _fields(entry: Entry, mapping: Mapping[str, str]) -> dict[str, str]:
        """Field → first value of its attribute; `mobile` → the first valid-looking value; absent → no field."""
        fields = {}
        for field, attribute in mapping.items():
            values = entry.values.get(attribute.lower())
            if values:
                fields[field] = pick_mobile(values) if field == "mobile" else values[0]
        return fields

    def _connect(self) -> Connection:
        """A bound connection; the password is read from its file now, so a rotation needs no restart."""
        try:
            password = self._config.password()
        except OSError as exc:
            raise SourceError(f"source.ldap.password_file: {type(exc).__name__}") from exc
        tls = None
        if self._secure or self._start_tls:
            ca_file = str(self._config.ca_file) if self._config.ca_file else None  # None: the system's trust store
            tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=ca_file)
        # A new Server each time: ldap3 marks an address that failed once as unavailable and then
        # refuses it with "invalid server address", hiding why the reconnect failed.
        server = Server(self._config.url, use_ssl=self._secure, tls=tls, get_info=NONE,
                        connect_timeout=self._config.timeout)
        connection = Connection(
            server, user=self._config.bind_dn, password=password, authentication=SIMPLE,
            auto_bind=AUTO_BIND_NONE, raise_exceptions=True, read_only=True, auto_referrals=False,
            # ldap3 packs the receive timeout into SO_RCVTIMEO as whole seconds: a float breaks it.
            receive_timeout=max(1, math.ceil(self._config.timeout)), return_empty_attributes=False,
        )
        try:
            connection.open(read_server_info=False)
            if self._start_tls and not connection.start_tls(read_server_info=False):
                raise SourceError("StartTLS was not accepted")
            if not connection.bind(read_server_info=False):
                raise SourceError(f"bind as {self._config.bind_dn} failed")
        except BaseException:
            _close(connection)
            raise
        return connection

    def _page(self, connection: Connection, base: str, search_filter: str, attributes: list[str],
              cookie: bytes) -> tuple[list[Entry], bytes]:
        """One page of a paged search and the cookie for the next ("" after the last), or SourceError."""
        connection.search(base, search_filter, SUBTREE, attributes=attributes or ["1.1"],
                          paged_size=self._config.page_size, paged_cookie=cookie or None, paged_criticality=True)
        result = connection.result
        if result["result"] != 0:  # sizeLimitExceeded, timeLimitExceeded, referral: ldap3 does not raise
            raise SourceError(f"{result['description']} ({result['result']}) {result.get('message') or ''}".strip())
        control = (result.get("controls") or {}).get(PAGED_RESULTS_OID)
        if control is None:
            raise SourceError("the server returned no paged-results control: cannot tell whether every page arrived")
        entries = []
        for item in connection.response or []:
            if item["type"] == "searchResRef":
                raise SourceError("a continuation reference: part of the subtree is held by another server")
            if item["type"] == "searchResEntry":
                entries.append(Entry(item["dn"], _decode(item["raw_attributes"])))
        return entries, control["value"]["cookie"] or b""

    def _search(self, kind: str, base: str, search_filter: str, attributes: list[str],
                quiet: bool = False) -> Iterator[Entry]:
        """Every entry of a paged subtree search, page by page; SourceError unless every page arrived.

        `quiet` searches (the change check every incremental cycle) log their end at debug: a day
        when nothing changes must not fill the journal."""
        started = time.monotonic()
        handed_out: set[str] = set()  # DNs already yielded, so a search started over yields none twice
        connection: Connection | None = None
        cookie = b""
        page = 0  # pages of this pass; a pass starts over after a reconnect
        failed_page = 0
        reconnects = 0
        log.debug("ldap.read.started", kind=kind, page_size=self._config.page_size)
        try:
            while True:
                page_started = time.monotonic()
                try:
                    if connection is None:
                        connection = self._connect()
                    entries, cookie = self._page(connection, base, search_filter, attributes, cookie)
                except _TRANSIENT as exc:
                    # A pass started over numbers its pages as the first pass did.
                    failed_page = max(failed_page, page + 1)
                    if reconnects >= MAX_RECONNECTS:
                        raise self._broke_off(kind, failed_page, len(handed_out), started, exc) from exc
                    reconnects += 1
                    log.warning("ldap.reconnect", kind=kind, page=failed_page, entries=len(handed_out),
                                error=type(exc).__name__)
                    _close(connection)
                    connection, cookie, page = None, b"", 0
                    continue
                except (SourceError, LDAPException) as exc:  # another try would get the same answer
                    raise self._broke_off(kind, max(failed_page, page + 1), len(handed_out), started, exc) from exc
                page += 1
                fresh = [entry for entry in entries if entry.dn not in handed_out]
                log.debug("ldap.page", kind=kind, page=page, entries=len(fresh), skipped=len(entries) - len(fresh),
                          duration_ms=round((time.monotonic() - page_started) * 1000, 1))
                for entry in fresh:
                    handed_out.add(entry.dn)
                    yield entry
                if not cookie:
                    break
        finally:
            _close(connection)
        (log.debug if quiet else log.info)("ldap.read.finished", kind=kind, entries=len(handed_out), pages=page,
                                           reconnects=reconnects, duration_s=round(time.monotonic() - started, 3))

    @staticmethod
    def _broke_off(kind: str, page: int, entries: int, started: float, exc: Exception) -> SourceError:
        """The SourceError that ends a read, logged once."""
        reason = _describe(exc)
        log.error("ldap.read.failed", kind=kind, page=page, entries=entries, error=type(exc).__name__,
                  duration_s=round(time.monotonic() - started, 3))
        return SourceError(f"LDAP {kind} read broke off at page {page} after {entries} entries: {reason}")


def _describe(exc: Exception) -> str:
    """What went wrong: the result code and the server's message, never the matched DN."""
    if isinstance(exc, SourceError):
        return str(exc)
    if isinstance(exc, LDAPOperationResult):
        return f"{exc.description} ({exc.result}) {exc.message or ''}".strip()
    return f"{type(exc).__name__}: {exc}"


def _close(connection: Connection | None) -> None:
    """Unbind, or drop the socket of a connection that is already gone."""
    if connection is None:
        return
    # The connection is being discarded: an unbind that fails has nothing left to tidy.
    with contextlib.suppress(LDAPException):
        connection.unbind()
