"""The LDAP source against a real slapd: mapping, paging, DNs, watermarks, escaping, TLS, configuration."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError
from structlog.testing import capture_logs

from connectors.sources.ldap_source import (
    LdapSource,
    changed_since_filter,
    parent_rdn_value,
    pick_mobile,
    split_dn,
)
from syncd.config import DEFAULT_LDAP_PEOPLE_ATTRIBUTES, LdapConfig
from syncd.domain.model import ChangeKind, LinkedPerson, LinkState
from syncd.domain.reconcile import reconcile
from syncd.domain.source import RawRecord, SourceError
from syncd.domain.validate import CodeTables, build_snapshot
from tests.ldap.conftest import ROOT_DN, SEED
from tests.ldap.slapd import SEED_TIMESTAMP, SERVICE_DN, SUFFIX, Slapd

MakeConfig = Callable[..., LdapConfig]
DEPARTMENT_MAPPING = {"id": "ou", "name": "description", "short_name": "businessCategory", "order": "postalCode"}
SPECIAL_ID = "D0007*(x)\\"
SPECIAL_DN = f"ou=D0007*(x)\\5C,{ROOT_DN}"


def person_dn(uid: str, *departments: str) -> str:
    """`uid=…,ou=D…,…,ou=D0001,ou=departments,dc=…`, departments leaf first, below D0001."""
    return ",".join([f"uid={uid}", *(f"ou={d}" for d in departments), ROOT_DN])


def by_id(records: list[RawRecord]) -> dict[str, RawRecord]:
    """Records by employee id (the fixture's one duplicate id keeps its last record)."""
    return {r.fields["employee_id"]: r for r in records}


def test_full_read_yields_every_person_with_the_default_mapping(slapd: Slapd, ldap_config: MakeConfig) -> None:
    records = list(LdapSource(ldap_config(slapd)).people())
    assert len(records) == 23
    first = by_id(records)["A000001"]
    assert first.fields == {
        "employee_id": "A000001", "name": "张明", "mobile": "13800000001", "department": "D0002",
        "post": "主任", "office_phone": "0371-67180001", "status": "在职",
    }
    assert (first.source, first.line) == (person_dn("p01", "D0002"), None)


def test_people_filter_leaves_out_entries_that_are_no_people(slapd: Slapd, ldap_config: MakeConfig) -> None:
    sources = {r.source for r in LdapSource(ldap_config(slapd)).people()}
    assert not any(dn.startswith("cn=printer") for dn in sources)


@pytest.mark.parametrize(("page_size", "pages"), [(1, 23), (5, 5), (22, 2), (500, 1)])
def test_paged_read_fetches_every_page(slapd: Slapd, ldap_config: MakeConfig, page_size: int, pages: int) -> None:
    with capture_logs() as logs:
        records = list(LdapSource(ldap_config(slapd, page_size=page_size)).people())
    assert len({r.source for r in records}) == len(records) == 23
    finished = [e for e in logs if e["event"] == "ldap.read.finished"]
    assert [(e["pages"], e["entries"], e["reconnects"]) for e in finished] == [(pages, 23, 0)]


def test_missing_attributes_leave_their_fields_absent(slapd: Slapd, ldap_config: MakeConfig) -> None:
    record = by_id(list(LdapSource(ldap_config(slapd)).people()))["A000002"]
    assert record.fields == {"employee_id": "A000002", "name": "李华", "department": "D0002"}


def test_multi_valued_mobile_takes_the_first_valid_looking_value(slapd: Slapd, ldap_config: MakeConfig) -> None:
    people = by_id(list(LdapSource(ldap_config(slapd)).people()))
    assert people["A000003"].fields["mobile"] == "+86 139 0000 0003"  # after the landline, before 138…
    assert people["A000004"].fields["mobile"] == "12345"  # none valid: the first, for validation to report


def test_multi_valued_attribute_takes_the_first_value(slapd: Slapd, ldap_config: MakeConfig) -> None:
    assert by_id(list(LdapSource(ldap_config(slapd)).people()))["A000003"].fields["name"] == "王芳"


def test_pick_mobile_keeps_the_server_order() -> None:
    assert pick_mobile(["0371-1", "139 0000 0002", "13800000001"]) == "139 0000 0002"
    assert pick_mobile(["13800000001", "139 0000 0002"]) == "13800000001"
    assert pick_mobile(["0371-1", "12345"]) == "0371-1"


def test_attribute_mapping_is_configurable_and_an_empty_name_is_unmapped(slapd: Slapd,
                                                                          ldap_config: MakeConfig) -> None:
    mapping = {**DEFAULT_LDAP_PEOPLE_ATTRIBUTES, "rank": "businessCategory", "post": "", "office_phone": ""}
    record = by_id(list(LdapSource(ldap_config(slapd, people_attributes=mapping)).people()))["A000001"]
    assert record.fields["rank"] == "一级调研员"
    assert "post" not in record.fields and "office_phone" not in record.fields


def test_departments_read_the_tree_with_parents_from_the_dn(slapd: Slapd, ldap_config: MakeConfig) -> None:
    records = list(LdapSource(ldap_config(slapd, department_attributes=DEPARTMENT_MAPPING)).departments())
    fields = {r.fields["id"]: r.fields for r in records}
    assert fields == {
        "D0001": {"id": "D0001", "name": "郑州市审计局", "short_name": "市审计局", "order": "1", "parent": ""},
        "D0002": {"id": "D0002", "name": "办公室", "order": "1", "parent": "D0001"},
        "D0003": {"id": "D0003", "name": "财政审计处", "short_name": "财政处", "order": "2", "parent": "D0001"},
        "D0004": {"id": "D0004", "name": "局属单位", "order": "9", "parent": "D0001"},
        "D0005": {"id": "D0005", "name": "审计信息中心", "short_name": "信息中心", "order": "1", "parent": "D0004"},
        SPECIAL_ID: {"id": SPECIAL_ID, "name": "特殊字符处", "order": "7", "parent": "D0001"},
    }
    assert {r.source for r in records} >= {ROOT_DN, f"ou=D0005,ou=D0004,{ROOT_DN}"}


def test_department_parent_comes_from_its_attribute_when_mapped(slapd: Slapd, ldap_config: MakeConfig) -> None:
    # `ou` as the parent attribute is nonsense, but shows the mapped attribute wins over the DN.
    config = ldap_config(slapd, department_attributes={**DEPARTMENT_MAPPING, "parent": "ou"})
    assert {r.fields["id"]: r.fields["parent"] for r in LdapSource(config).departments()}["D0005"] == "D0005"


def test_department_from_dn_uses_the_parent_rdn_value(slapd: Slapd, ldap_config: MakeConfig) -> None:
    from_dn = by_id(list(LdapSource(ldap_config(slapd, department_from="dn")).people()))
    from_attribute = by_id(list(LdapSource(ldap_config(slapd)).people()))
    # The moved entry: under D0003 in the tree, departmentNumber still D0002.
    assert (from_dn["A000006"].fields["department"], from_attribute["A000006"].fields["department"]) == (
        "D0003", "D0002")
    assert from_dn["A000009"].fields["department"] == "D0005"
    assert from_dn["A000022"].fields["department"] == SPECIAL_ID


def test_moved_entry_is_planned_as_a_transfer_with_department_from_dn(slapd: Slapd,
                                                                       ldap_config: MakeConfig) -> None:
    source = LdapSource(ldap_config(slapd, department_from="dn"))
    snapshot = build_snapshot(source, "D0001", CodeTables.load())
    moved = snapshot.people["A000006"]
    links = LinkState(people={"A000006": LinkedPerson("E6", 6, "D0002", "GO_D0002", moved.pushed_fields())})
    plan = reconcile(snapshot, links, "D0001")
    transfers = [c for c in plan.changes if c.subject == "A000006"]
    assert [(c.kind, c.from_department, c.department) for c in transfers] == [
        (ChangeKind.TRANSFER, "D0002", "D0003")]


def test_snapshot_from_ldap_rejects_duplicate_ids_and_reports_bad_mobiles(slapd: Slapd,
                                                                            ldap_config: MakeConfig) -> None:
    source = LdapSource(ldap_config(slapd, department_attributes=DEPARTMENT_MAPPING))
    snapshot = build_snapshot(source, "D0001", CodeTables.load())
    assert snapshot.complete
    assert set(snapshot.departments) == {"D0001", "D0002", "D0003", "D0004", "D0005", SPECIAL_ID}
    assert sorted((r.key, r.field, r.source) for r in snapshot.rejections) == [
        ("A000005", "employee_id", person_dn("p05a", "D0003")),
        ("A000005", "employee_id", person_dn("p05b", "D0005", "D0004"))]
    assert len(snapshot.people) == 21
    mobile_issues = {(i.key, i.problem, i.source) for i in snapshot.issues if i.field == "mobile"}
    assert mobile_issues == {("A000002", "missing", person_dn("p02", "D0002")),
                             ("A000004", "invalid", person_dn("p04", "D0002"))}
    assert snapshot.people["A000003"].mobile == "13900000003"


def test_full_read_sets_the_watermark_to_the_newest_modify_timestamp(slapd: Slapd, ldap_config: MakeConfig) -> None:
    source = LdapSource(ldap_config(slapd))
    assert source.watermark is None
    list(source.people())
    assert source.watermark == "20240601000000Z"


def test_watermark_stays_unset_until_a_read_runs_to_the_end(slapd: Slapd, ldap_config: MakeConfig) -> None:
    source = LdapSource(ldap_config(slapd))
    people = source.people()
    next(people)
    people.close()
    assert source.watermark is None


def test_changed_since_returns_only_entries_modified_at_or_after_the_watermark(slapd: Slapd,
                                                                                ldap_config: MakeConfig) -> None:
    source = LdapSource(ldap_config(slapd))
    assert [r.fields["employee_id"] for r in source.people_changed_since("20240301000000Z")] == ["A000007"]
    assert source.watermark == "20240601000000Z"
    assert len(list(source.people_changed_since(SEED_TIMESTAMP))) == 23  # `>=`: the watermark's own second


def test_changed_since_with_nothing_new_keeps_the_watermark(slapd: Slapd, ldap_config: MakeConfig) -> None:
    source = LdapSource(ldap_config(slapd))
    assert list(source.people_changed_since("20250101000000Z")) == []
    assert source.watermark == "20250101000000Z"


def test_modified_entry_is_read_since_the_watermark(fresh_slapd: Slapd, ldap_config: MakeConfig) -> None:
    source = LdapSource(ldap_config(fresh_slapd))
    list(source.people())
    watermark = source.watermark
    assert watermark == "20240601000000Z"
    with fresh_slapd.admin() as admin:
        admin.modify(person_dn("p10", "D0003"), {"title": [("MODIFY_REPLACE", ["副处长"])]})
    changed = by_id(list(source.people_changed_since(watermark)))
    # A000007 carries the watermark itself and comes again by design (`>=`); nothing else unchanged does.
    assert set(changed) == {"A000010", "A000007"}
    assert changed["A000010"].fields["post"] == "副处长"
    assert source.watermark is not None and source.watermark > watermark
    assert [r.fields["employee_id"] for r in source.people_changed_since(source.watermark)] == ["A000010"]


def test_entry_moved_while_running_transfers_and_counts_as_changed(fresh_slapd: Slapd,
                                                                   ldap_config: MakeConfig) -> None:
    source = LdapSource(ldap_config(fresh_slapd, department_from="dn"))
    list(source.people())
    watermark = source.watermark
    assert watermark is not None
    with fresh_slapd.admin() as admin:
        admin.modify_dn(person_dn("p01", "D0002"), "uid=p01", new_superior=f"ou=D0005,ou=D0004,{ROOT_DN}")
    changed = by_id(list(source.people_changed_since(watermark)))
    assert changed["A000001"].fields["department"] == "D0005"
    assert changed["A000001"].source == person_dn("p01", "D0005", "D0004")


def test_changed_since_filter_escapes_the_watermark() -> None:
    assert changed_since_filter("(objectClass=inetOrgPerson)", "2024*)(uid=*\\") == (
        "(&(objectClass=inetOrgPerson)(modifyTimestamp>=2024\\2a\\29\\28uid=\\2a\\5c))")


@pytest.mark.parametrize("watermark", ["2024*)(uid=*", "*", "20240101000000Z)(objectClass=*", "", "yesterday"])
def test_changed_since_refuses_a_watermark_that_is_no_generalized_time(slapd: Slapd, ldap_config: MakeConfig,
                                                                       watermark: str) -> None:
    with pytest.raises(ValueError, match="GeneralizedTime"):
        LdapSource(ldap_config(slapd)).people_changed_since(watermark)


@pytest.mark.parametrize("watermark", ["20240301000000Z", "20240301000000.0Z", "20240301080000+0800"])
def test_changed_since_accepts_generalized_time_forms(slapd: Slapd, ldap_config: MakeConfig, watermark: str) -> None:
    source = LdapSource(ldap_config(slapd))
    assert [r.fields["employee_id"] for r in source.people_changed_since(watermark)] == ["A000007"]
    assert source.watermark == "20240601000000Z"


def test_base_dn_with_filter_metacharacters_reads_only_that_subtree(slapd: Slapd, ldap_config: MakeConfig) -> None:
    source = LdapSource(ldap_config(slapd, people_base=SPECIAL_DN, departments_base=SPECIAL_DN,
                                    department_from="dn"))
    assert [r.fields for r in source.people()] == [{
        "employee_id": "A000022", "name": "郭磊", "mobile": "13800000022", "department": SPECIAL_ID, "status": "在职"}]
    assert [(r.fields["id"], r.fields["parent"]) for r in source.departments()] == [(SPECIAL_ID, "")]


def test_split_dn_undoes_escapes_and_keeps_multi_valued_rdns() -> None:
    assert split_dn(r"uid=a+cn=B\2C C,ou=D0007*(x)\5C,ou=\E5\8A\9E,dc=example") == [
        (("uid", "a"), ("cn", "B, C")), (("ou", SPECIAL_ID),), (("ou", "办"),), (("dc", "example"),)]


@pytest.mark.parametrize("dn", [
    person_dn("p01", "D0002"), f"uid=p22,{SPECIAL_DN}", r"uid=a+cn=B\2C C,ou=\E5\8A\9E+l=x,dc=example",
    r"cn=x\,y,ou=a\\\,b,dc=example", r"uid=x\+y,ou=\2B1,dc=example", "dc=example"])
def test_parent_rdn_value_agrees_with_split_dn(dn: str) -> None:
    rdns = split_dn(dn)
    assert parent_rdn_value(dn) == (rdns[1][0][1] if len(rdns) > 1 else None)


def test_ldaps_with_the_ca_reads(slapd: Slapd, ldap_config: MakeConfig) -> None:
    assert slapd.tls is not None
    config = ldap_config(slapd, url=slapd.ldaps_url, allow_plaintext=False, ca_file=slapd.tls.ca_file)
    assert len(list(LdapSource(config).people())) == 23


@pytest.mark.parametrize("ca", ["none", "other"])
def test_ldaps_with_a_certificate_not_from_the_ca_is_refused(slapd: Slapd, ldap_config: MakeConfig, ca: str) -> None:
    assert slapd.tls is not None
    ca_file = slapd.tls.other_ca_file if ca == "other" else None  # none: the system's trust store
    config = ldap_config(slapd, url=slapd.ldaps_url, allow_plaintext=False, ca_file=ca_file)
    with pytest.raises(SourceError, match="CERTIFICATE_VERIFY_FAILED"):
        list(LdapSource(config).people())


def test_ldaps_with_a_certificate_for_another_name_is_refused(tmp_path: Path, slapd: Slapd,
                                                              ldap_config: MakeConfig) -> None:
    assert slapd.tls is not None
    tls = dataclasses.replace(slapd.tls, cert_file=slapd.tls.elsewhere_cert_file)  # same CA, same key
    with Slapd(tmp_path / "elsewhere", tls) as elsewhere:
        elsewhere.load(SEED)
        elsewhere.start()
        config = ldap_config(elsewhere, url=elsewhere.ldaps_url, allow_plaintext=False, ca_file=tls.ca_file)
        with pytest.raises(SourceError, match=r"doesn't match any name"):
            list(LdapSource(config).people())


def test_start_tls_with_the_ca_reads_and_without_it_is_refused(slapd: Slapd, ldap_config: MakeConfig) -> None:
    assert slapd.tls is not None
    good = ldap_config(slapd, start_tls=True, allow_plaintext=False, ca_file=slapd.tls.ca_file)
    assert len(list(LdapSource(good).people())) == 23
    bad = ldap_config(slapd, start_tls=True, allow_plaintext=False, ca_file=slapd.tls.other_ca_file)
    with pytest.raises(SourceError, match="CERTIFICATE_VERIFY_FAILED"):
        list(LdapSource(bad).people())


def test_plain_ldap_is_refused_unless_allowed_in_config(password_file: Path) -> None:
    values = {"url": "ldap://127.0.0.1:389", "bind_dn": SERVICE_DN, "password_file": password_file,
              "people_base": ROOT_DN, "departments_base": ROOT_DN}
    with pytest.raises(ValidationError, match="allow_plaintext"):
        LdapConfig(**values)
    assert LdapConfig(**values, allow_plaintext=True).allow_plaintext
    assert LdapConfig(**values, start_tls=True).start_tls


def test_password_is_re_read_on_every_bind_and_never_logged(slapd: Slapd, ldap_config: MakeConfig,
                                                            password_file: Path) -> None:
    source = LdapSource(ldap_config(slapd))
    password_file.write_text("rotated-wrong-secret\n", encoding="utf-8")
    with capture_logs() as logs, pytest.raises(SourceError, match="invalidCredentials") as failure:
        list(source.people())
    assert "rotated-wrong-secret" not in repr(logs) + str(failure.value)
    password_file.write_text("synthetic-bind-secret\n", encoding="utf-8")
    assert len(list(source.people())) == 23


def test_logs_carry_counts_not_dns_names_or_mobiles(slapd: Slapd, ldap_config: MakeConfig) -> None:
    with capture_logs() as logs:
        list(LdapSource(ldap_config(slapd, department_from="dn")).people())
    text = repr(logs)
    assert logs and all(e["event"].startswith("ldap.") for e in logs)
    assert not any(secret in text for secret in ("张明", "13800000001", "uid=", SUFFIX, "synthetic-bind-secret"))


def test_change_token_is_stable_until_an_entry_changes_or_goes(fresh_slapd: Slapd, ldap_config: MakeConfig) -> None:
    source = LdapSource(ldap_config(fresh_slapd))
    first = source.change_token(None)
    assert first is not None
    assert source.change_token(first) == first  # nothing changed: the same token from the watermark search
    with fresh_slapd.admin() as admin:
        admin.modify(person_dn("p10", "D0003"), {"title": [("MODIFY_REPLACE", ["副处长"])]})
    edited = source.change_token(first)
    assert edited != first
    assert source.change_token(edited) == edited
    with fresh_slapd.admin() as admin:
        admin.delete(person_dn("p10", "D0003"))  # a deletion leaves no newer stamp: the count tells
    gone = source.change_token(edited)
    assert gone != edited
    assert gone.split("|")[1] == str(int(edited.split("|")[1]) - 1)
