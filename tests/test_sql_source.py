"""The HR database source, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg.errors
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from connectors.sources.sql_source import SqlSource, timeout_arguments
from syncd.config import load
from syncd.source import SourceError
from syncd.validate import CodeTables, build_snapshot
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
    url = f"sqlite:///{tmp_path / 'hr.db'}" if request.param == "sqlite" else PG_URL
    engine = create_engine(url)
    with engine.begin() as connection:
        for statement in SCHEMA:
            connection.execute(text(statement))
    engine.dispose()
    yield url


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
