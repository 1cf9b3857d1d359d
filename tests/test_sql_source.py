"""The HR database source, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg.errors
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from connectors.sources.sql_source import SqlSource, timeout_arguments
from syncd.config import load
from syncd.domain.source import RawRecord, SourceError
from syncd.domain.validate import SOURCE_REJECTION, CodeTables, build_snapshot
from syncd.wiring import build_source
from tests.conftest import config_toml

PG_URL = os.environ.get("SYNCD_TEST_PG_URL", "postgresql+psycopg://syncd_test:syncd_test@127.0.0.1:5432/syncd_test")

SCHEMA = [
    "DROP TABLE IF EXISTS hr_person",
    "DROP TABLE IF EXISTS hr_dept",
    "CREATE TABLE hr_dept (dept_no VARCHAR(16), dept_name VARCHAR(80), parent_no VARCHAR(16), sort_no INTEGER)",
    "CREATE TABLE hr_person (emp_no VARCHAR(16), emp_name VARCHAR(80), sex VARCHAR(8), phone VARCHAR(20),"
    " dept_no VARCHAR(16), state VARCHAR(8), sort_no INTEGER)",
    "INSERT INTO hr_dept VALUES ('D1', '郑州市审计局', NULL, 1), ('D2', '办公室', 'D1', 1),"
    " ('D3', '财政审计处', 'D1', 2)",
    "INSERT INTO hr_person VALUES ('A1', '张明', '男', '13800000001', 'D2', '在职', 1),"
    " ('A2', '李华', '女', '+86 138 0000 0002', 'D3', '在职', 2), ('A3', '王芳', '女', 'none', 'D3', '在职', 3)",
]
PEOPLE_QUERY = "SELECT emp_no, emp_name, sex, phone, dept_no, state, sort_no FROM hr_person ORDER BY emp_no"
DEPTS_QUERY = "SELECT dept_no AS id, dept_name AS name, parent_no AS parent, sort_no FROM hr_dept"
PEOPLE_COLUMNS = {"employee_id": "emp_no", "name": "emp_name", "gender": "sex", "mobile": "phone",
                  "department": "dept_no", "status": "state", "order": "sort_no"}


@pytest.fixture(params=["sqlite", "postgresql"])
def hr_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The HR tables in a SQLite file (WAL, so HR may write while syncd reads) or a PostgreSQL schema of their own."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hr.db'}"
        engine = create_engine(url)
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")
        schema = None
    else:
        schema = f"syncd_hr_{uuid.uuid4().hex[:8]}"
        engine = create_engine(PG_URL)
        with engine.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        url = make_url(PG_URL).update_query_dict(
            {"options": f"-csearch_path={schema}", "application_name": schema}).render_as_string(hide_password=False)
    try:
        hr_write(url, *SCHEMA)
        yield url
    finally:
        if schema is not None:
            with engine.begin() as connection:
                connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        engine.dispose()


def test_people_and_departments_are_read_with_column_mapping(hr_database: str) -> None:
    source = SqlSource(hr_database, PEOPLE_QUERY, DEPTS_QUERY, PEOPLE_COLUMNS, {"order": "sort_no"})
    try:
        snapshot = build_snapshot(source, "D1", CodeTables.load())
    finally:
        source.close()
    assert set(snapshot.departments) == {"D1", "D2", "D3"}
    assert snapshot.departments["D3"].order == 2
    assert snapshot.people["A2"].mobile == "13800000002" and snapshot.people["A2"].gender == "2"
    assert not snapshot.people["A3"].creatable
    [mobile] = [i for i in snapshot.issues if i.field == "mobile"]
    assert (mobile.key, mobile.problem, mobile.location()) == ("A3", "invalid", "people query:3")


def test_a_failing_query_is_a_source_error_that_quotes_neither_url_nor_password() -> None:
    """The password comes from password_file, the connection succeeds, and then the query fails."""
    url = make_url(PG_URL)
    source = SqlSource(url.set(password=None).render_as_string(hide_password=False),
                       "SELECT secret_column FROM no_such_table", DEPTS_QUERY, password=url.password)
    with pytest.raises(SourceError) as info:
        list(source.people())
    source.close()
    assert str(info.value) == "people query failed: ProgrammingError"


def test_a_wrong_password_is_a_source_error_without_it() -> None:
    source = SqlSource(make_url(PG_URL).set(password=None).render_as_string(hide_password=False),
                       PEOPLE_QUERY, DEPTS_QUERY, password="not-the-password-4711")
    with pytest.raises(SourceError) as info:
        list(source.people())
    source.close()
    assert "4711" not in str(info.value) and str(info.value).startswith("people query failed:")


def test_a_mapped_column_missing_from_the_result_is_named(hr_database: str) -> None:
    source = SqlSource(hr_database, PEOPLE_QUERY, DEPTS_QUERY, {"employee_id": "staff_no"})
    with pytest.raises(SourceError, match="staff_no"):
        list(source.people())
    source.close()


def test_a_statement_that_outlives_the_configured_timeout_is_cancelled_by_the_server(tmp_path: Path) -> None:
    """A hung HR database must not hold the cycle: with `source.sql.timeout`, PostgreSQL cancels it."""
    path = tmp_path / "syncd.toml"
    path.write_text(config_toml(source={"kind": "sql", "people": None, "departments": None},
                                **{"source.sql": {"url": PG_URL, "people_query": "SELECT pg_sleep(3) AS emp_no",
                                                  "departments_query": DEPTS_QUERY, "timeout": 0.5}}),
                    encoding="utf-8")
    source = build_source(load(path))
    with pytest.raises(SourceError) as info:
        list(source.people())
    source.close()  # type: ignore[attr-defined]
    assert str(info.value) == "people query failed: OperationalError"
    assert isinstance(info.value.__cause__.orig, psycopg.errors.QueryCanceled)  # type: ignore[union-attr]


@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql+psycopg://h/db", {"connect_timeout": 3, "options": "-c statement_timeout=2500"}),
    ("postgresql+psycopg2://h/db?options=-c%20search_path%3Dhr",
     {"connect_timeout": 3, "options": "-c search_path=hr -c statement_timeout=2500"}),
    ("postgresql+pg8000://h/db", {"timeout": 3}),
    ("mysql+pymysql://h/db", {"connect_timeout": 3, "read_timeout": 3}),
    ("sqlite:///hr.db", {"timeout": 2.5}),
    ("mssql+pyodbc://h/db", {}),
])
def test_the_timeout_becomes_each_drivers_own_arguments(url: str, expected: dict[str, object]) -> None:
    assert timeout_arguments(make_url(url), 2.5) == expected


def hr_write(url: str, *statements: str) -> None:
    """HR's application commits `statements` in a transaction of its own."""
    engine = create_engine(url)
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))
    engine.dispose()


class HrSource(SqlSource):
    """The SQL source, remembering its URL for the test's own connections."""

    def __init__(self, url: str, *args: object, **kwargs: object) -> None:
        super().__init__(url, *args, **kwargs)  # type: ignore[arg-type]
        self.url = url


class HrMovesSomeoneBetweenTheQueries(HrSource):
    """The SQL source, while HR creates a department and moves 王芳 into it after the departments were read."""

    def people(self) -> Iterator[RawRecord]:
        hr_write(self.url, "INSERT INTO hr_dept VALUES ('D4', '新设处室', 'D1', 3)",
                 "UPDATE hr_person SET dept_no = 'D4' WHERE emp_no = 'A3'")
        yield from super().people()


def test_departments_and_people_are_one_snapshot_though_hr_commits_between_the_queries(hr_database: str) -> None:
    """Two reads would see 王芳 in a department they never read: rejected, so missing, so deactivated."""
    source = HrMovesSomeoneBetweenTheQueries(hr_database, PEOPLE_QUERY, DEPTS_QUERY, PEOPLE_COLUMNS)
    try:
        snapshot = build_snapshot(source, "D1", CodeTables.load())
    finally:
        source.close()
    assert snapshot.complete and not snapshot.rejections
    assert set(snapshot.departments) == {"D1", "D2", "D3"}
    assert snapshot.people["A3"].department == "D3"  # as of the departments' read, not HR's later commit
    again = SqlSource(hr_database, PEOPLE_QUERY, DEPTS_QUERY, PEOPLE_COLUMNS)
    try:
        assert build_snapshot(again, "D1", CodeTables.load()).people["A3"].department == "D4"  # the next read
    finally:
        again.close()


def many_people(url: str, count: int) -> None:
    """`count` more people in 办公室, so the people query streams in several batches."""
    hr_write(url, f"WITH RECURSIVE numbers(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM numbers WHERE n < {count})"
                  " INSERT INTO hr_person SELECT 'B' || CAST(n AS VARCHAR(8)), '测试人员', '男', NULL, 'D2', '在职',"
                  " 100 + n FROM numbers")


class BackendTerminatedAfterFirstPerson(HrSource):
    """The SQL source, whose PostgreSQL backend is terminated (a dropped connection) after the first person."""

    def people(self) -> Iterator[RawRecord]:
        for number, record in enumerate(super().people()):
            yield record
            if number == 0:
                name = make_url(self.url).query["application_name"]
                admin: Engine = create_engine(PG_URL)
                with admin.begin() as connection:
                    killed = connection.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                                     " WHERE application_name = :name"), {"name": name}).scalar()
                admin.dispose()
                assert killed == 1


@pytest.mark.parametrize("hr_database", ["postgresql"], indirect=True)
def test_a_connection_dropped_mid_read_is_an_incomplete_read_not_a_shorter_list(hr_database: str) -> None:
    many_people(hr_database, 3000)
    source = BackendTerminatedAfterFirstPerson(hr_database, PEOPLE_QUERY, DEPTS_QUERY, PEOPLE_COLUMNS)
    try:
        snapshot = build_snapshot(source, "D1", CodeTables.load())
    finally:
        source.close()
    assert snapshot.complete is False
    [rejection] = snapshot.rejections
    assert (rejection.kind, rejection.code) == (SOURCE_REJECTION, "source.broke_off")
    assert rejection.reason == "read broke off: people query failed: OperationalError"
    assert snapshot.people == {}


@pytest.mark.parametrize("hr_database", ["postgresql"], indirect=True)
def test_postgresql_reads_in_one_repeatable_read_read_only_transaction(hr_database: str) -> None:
    probe = ("SELECT current_setting('transaction_isolation') AS emp_no, current_setting('transaction_read_only')"
             " AS emp_name, txid_current_if_assigned() AS phone, pg_current_snapshot()::text AS dept_no")
    source = SqlSource(hr_database, probe, probe, {"employee_id": "emp_no", "name": "emp_name", "mobile": "phone",
                                                   "department": "dept_no"}, {"id": "emp_no", "name": "dept_no"})
    try:
        with source.reading():
            [first] = list(source.departments())
            [second] = list(source.people())
    finally:
        source.close()
    assert (second.fields["employee_id"], second.fields["name"]) == ("repeatable read", "on")
    assert second.fields["mobile"] == ""  # no transaction id: nothing was written
    assert first.fields["name"] == second.fields["department"]  # both queries saw the same snapshot


@pytest.mark.parametrize("hr_database", ["postgresql"], indirect=True)
def test_a_query_that_would_lock_hr_rows_is_refused_by_the_read_only_transaction(hr_database: str) -> None:
    source = SqlSource(hr_database, PEOPLE_QUERY + " FOR UPDATE", DEPTS_QUERY, PEOPLE_COLUMNS)
    try:
        with pytest.raises(SourceError) as info, source.reading():
            list(source.people())
    finally:
        source.close()
    assert isinstance(info.value.__cause__.orig, psycopg.errors.ReadOnlySqlTransaction)  # type: ignore[union-attr]


# A value the database cannot compute in one row far into the table (B2500, sort_no 2600): the statement fails
# mid-stream.
FAILS_AT_PERSON_B2500 = {"sqlite": "CASE WHEN sort_no = 2600 THEN json(emp_name) END",
                     "postgresql": "CASE WHEN sort_no = 2600 THEN CAST(emp_name AS INTEGER) END"}


def test_a_query_that_fails_after_thousands_of_rows_is_an_incomplete_read(hr_database: str) -> None:
    many_people(hr_database, 3000)
    failing = FAILS_AT_PERSON_B2500[make_url(hr_database).get_backend_name()]
    query = f"SELECT emp_no, emp_name, sex, phone, dept_no, state, {failing} AS sort_no FROM hr_person"
    source = SqlSource(hr_database, query, DEPTS_QUERY, PEOPLE_COLUMNS)
    read = 0
    try:
        with pytest.raises(SourceError, match=r"^people query failed: "), source.reading():
            for _ in source.people():
                read += 1
        assert 1000 <= read < 2503  # streamed: rows arrived before the failure, none after it
        snapshot = build_snapshot(source, "D1", CodeTables.load())
    finally:
        source.close()
    assert snapshot.complete is False and snapshot.people == {}
    assert snapshot.rejections[-1].code == "source.broke_off"
