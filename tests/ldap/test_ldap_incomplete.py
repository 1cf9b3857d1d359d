"""A read that does not get every page is incomplete, and an incomplete snapshot deactivates nobody."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from structlog.testing import capture_logs

from connectors.sources.ldap_source import LdapSource
from syncd.config import LdapConfig
from syncd.domain.model import ChangeKind, LinkedPerson, LinkState
from syncd.domain.reconcile import reconcile
from syncd.domain.source import RawRecord, SourceError
from syncd.domain.validate import CodeTables, build_snapshot
from tests.ldap.slapd import LIMITED_DN, LIMITED_TOTAL, Slapd, free_port

MakeConfig = Callable[..., LdapConfig]
PAGE_SIZE = 5  # 23 people: pages of 5, 5, 5, 5, 3


class Interrupted:
    """A Source around an LdapSource that does something to the server after the n-th person handed out."""

    def __init__(self, source: LdapSource, actions: dict[int, Callable[[], None]]) -> None:
        self.source = source
        self.actions = actions

    def departments(self) -> Iterator[RawRecord]:
        """The wrapped departments, untouched."""
        return self.source.departments()

    def people(self) -> Iterator[RawRecord]:
        """The wrapped people; the action for n runs after the n-th is consumed, before the next is asked for."""
        for count, record in enumerate(self.source.people(), 1):
            yield record
            if count in self.actions:
                self.actions[count]()


def links_for(*employee_ids: str) -> LinkState:
    """Active links for the given people, in D0003, with nothing pushed yet."""
    return LinkState(people={e: LinkedPerson(f"E{e}", None, "D0003", "GO_D0003", {}) for e in employee_ids})


# Pages 3 to 5 of the fixture, and someone HR no longer has at all.
UNREAD_AND_GONE = ("A000012", "A000015", "A000021", "A000999")


def test_read_stopped_after_page_2_of_5_is_incomplete_and_plans_no_leave(fresh_slapd: Slapd,
                                                                          ldap_config: MakeConfig) -> None:
    source = Interrupted(LdapSource(ldap_config(fresh_slapd, page_size=PAGE_SIZE)), {2 * PAGE_SIZE: fresh_slapd.stop})
    with capture_logs() as logs:
        snapshot = build_snapshot(source, "D0001", CodeTables.load())
    assert snapshot.complete is False
    [reason] = [r.reason for r in snapshot.rejections if r.kind == "source"]
    assert reason.startswith("read broke off: LDAP people read broke off at page 3 after 10 entries: "
                             "LDAPSocketOpenError")  # the reconnect found nobody listening
    assert [(e["event"], e["page"]) for e in logs if e["event"] in ("ldap.reconnect", "ldap.read.failed")] == [
        ("ldap.reconnect", 3), ("ldap.read.failed", 3)]
    plan = reconcile(snapshot, links_for(*UNREAD_AND_GONE), "D0001")
    assert [c for c in plan.changes if c.kind is ChangeKind.LEAVE] == []


def test_complete_read_plans_a_leave_for_someone_absent(slapd: Slapd, ldap_config: MakeConfig) -> None:
    """The control for the test above: the same links, every page read."""
    snapshot = build_snapshot(LdapSource(ldap_config(slapd, page_size=PAGE_SIZE)), "D0001", CodeTables.load())
    assert snapshot.complete
    plan = reconcile(snapshot, links_for(*UNREAD_AND_GONE), "D0001")
    assert [c.subject for c in plan.changes if c.kind is ChangeKind.LEAVE] == ["A000999"]


def test_dropped_connection_resumes_at_the_failed_page(fresh_slapd: Slapd, ldap_config: MakeConfig) -> None:
    source = Interrupted(LdapSource(ldap_config(fresh_slapd, page_size=PAGE_SIZE)),
                         {2 * PAGE_SIZE: fresh_slapd.restart})
    with capture_logs() as logs:
        records = list(source.people())
    assert len(records) == len({r.source for r in records}) == 23
    assert [(e["event"], e["page"], e["entries"]) for e in logs if e["event"] == "ldap.reconnect"] == [
        ("ldap.reconnect", 3, 10)]
    finished = [e for e in logs if e["event"] == "ldap.read.finished"]
    assert [(e["entries"], e["reconnects"]) for e in finished] == [(23, 1)]


def test_a_second_drop_in_one_read_is_incomplete(fresh_slapd: Slapd, ldap_config: MakeConfig) -> None:
    source = Interrupted(LdapSource(ldap_config(fresh_slapd, page_size=PAGE_SIZE)),
                         {PAGE_SIZE: fresh_slapd.restart, 3 * PAGE_SIZE: fresh_slapd.restart})
    snapshot = build_snapshot(source, "D0001", CodeTables.load())
    assert snapshot.complete is False
    # Which error a dropped socket raises (EOF, reset, broken pipe) depends on timing; the page does not.
    assert "LDAP people read broke off at page 4 after 15 entries" in snapshot.rejections[-1].reason


def test_server_size_limit_part_way_is_incomplete(slapd: Slapd, ldap_config: MakeConfig) -> None:
    # ldap3 treats sizeLimitExceeded as a normal end of the search; the source must not.
    source = LdapSource(ldap_config(slapd, bind_dn=LIMITED_DN, page_size=PAGE_SIZE))
    read: list[RawRecord] = []
    with pytest.raises(SourceError, match=r"page 3 after 10 entries: sizeLimitExceeded \(4\)"):
        read.extend(source.people())
    assert len(read) == 2 * PAGE_SIZE < LIMITED_TOTAL
    assert build_snapshot(source, "D0001", CodeTables.load()).complete is False
    assert source.watermark is None


def test_missing_base_is_incomplete(slapd: Slapd, ldap_config: MakeConfig) -> None:
    source = LdapSource(ldap_config(slapd, people_base="ou=nowhere,dc=audit,dc=example"))
    with pytest.raises(SourceError, match=r"page 1 after 0 entries: noSuchObject \(32\)"):
        list(source.people())


def test_unreachable_server_is_incomplete_after_one_reconnect(slapd: Slapd, ldap_config: MakeConfig) -> None:
    source = LdapSource(ldap_config(slapd, url=f"ldap://127.0.0.1:{free_port()}"))
    with capture_logs() as logs:
        snapshot = build_snapshot(source, "D0001", CodeTables.load())
    assert snapshot.complete is False
    assert "LDAP departments read broke off at page 1 after 0 entries" in snapshot.rejections[0].reason
    assert [e["event"] for e in logs if e["event"].startswith("ldap.")] == ["ldap.read.started", "ldap.reconnect",
                                                                            "ldap.read.failed"]
