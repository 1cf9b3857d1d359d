"""Fixtures of the daemon's tests: a bureau (HR export, simulator, tokens) whose daemons are killed afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.service.daemon_harness import Bureau, bureau_on
from tests.test_sql_source import PG_URL


@pytest.fixture
def bureau(tmp_path: Path) -> Iterator[Bureau]:
    """The small bureau of tests/conftest.py, a simulator, and SQLite state beside the configuration."""
    with bureau_on(tmp_path, f"sqlite:///{tmp_path / 'state.db'}") as bureau:
        yield bureau


@pytest.fixture
def pg_state() -> Iterator[str]:
    """The URL of an empty schema of its own in the test PostgreSQL (SYNCD_TEST_PG_URL), dropped afterwards."""
    schema = f"syncd_daemon_{uuid.uuid4().hex[:8]}"
    engine = create_engine(PG_URL, pool_pre_ping=True)  # a test may restart PostgreSQL meanwhile
    with engine.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False)
    finally:
        with engine.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        engine.dispose()


@pytest.fixture
def pg_bureau(tmp_path: Path, pg_state: str) -> Iterator[Bureau]:
    """The small bureau with its state in PostgreSQL, where several daemons may share it."""
    with bureau_on(tmp_path, pg_state) as bureau:
        yield bureau
