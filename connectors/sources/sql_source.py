"""An HR database: any SQLAlchemy URL, a people query and a departments query, columns mapped to fields.

A read is complete only when both queries ran to their last row in one snapshot. Inside `reading()`
both run in one read-only transaction (PostgreSQL `REPEATABLE READ READ ONLY`, MySQL/MariaDB
`REPEATABLE READ`, SQLite one deferred transaction), so a department HR creates and fills between
the two queries is seen by both or by neither. Any database error, at the start, during the rows
or at the end, is a SourceError: the snapshot is incomplete, never a shorter list.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import SQLAlchemyError

from connectors.sources.xlsx_source import cell_text
from syncd.domain.model import DEPARTMENT_FIELDS, PERSON_FIELDS
from syncd.domain.source import RawRecord, SourceError

_BATCH = 1000
DEFAULT_TIMEOUT = 300.0  # seconds; generous, because one batch of a sorted HR query may wait for the whole sort


class SqlSource:
    """HR records from two configured queries; a column is mapped by name (default: the field's name)."""

    def __init__(self, url: str, people_query: str, departments_query: str,
                 people_columns: Mapping[str, str] | None = None,
                 department_columns: Mapping[str, str] | None = None, password: str | None = None,
                 changed_query: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        parsed = make_url(url)
        if password is not None and parsed.get_backend_name() != "sqlite":
            parsed = parsed.set(password=password)
        self._engine = create_engine(parsed, connect_args=timeout_arguments(parsed, timeout))
        self._queries = {"people": people_query, "departments": departments_query}
        self._columns = {"people": dict(people_columns or {}), "departments": dict(department_columns or {})}
        self._changed_query = changed_query
        self._snapshot: Connection | None = None  # the connection of the read under way (`reading`)

    def change_token(self, previous: str | None = None) -> str | None:
        """The first row of `changed_query` as text (None without one: every cycle reads)."""
        if self._changed_query is None:
            return None
        try:
            with self._engine.connect() as connection:
                row = connection.execute(text(self._changed_query)).first()
        except SQLAlchemyError as exc:
            raise SourceError(f"changed query failed: {type(exc).__name__}") from exc
        return "|".join(cell_text(cell) for cell in (row or ()))

    def departments(self) -> Iterator[RawRecord]:
        """Every row of the departments query."""
        return self._rows("departments")

    def people(self) -> Iterator[RawRecord]:
        """Every row of the people query."""
        return self._rows("people")

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Departments and people read inside are one snapshot: one read-only transaction on one connection."""
        try:
            with self._engine.connect() as connection:
                connection.execution_options(**snapshot_options(self._engine.url))
                with connection.begin():  # nothing is written: its commit only ends the snapshot
                    if self._engine.url.get_backend_name() == "sqlite":
                        # pysqlite opens a transaction before writes only; reads would each see the latest.
                        connection.exec_driver_sql("BEGIN")
                    self._snapshot = connection
                    try:
                        yield
                    finally:
                        self._snapshot = None
        except SQLAlchemyError as exc:
            raise SourceError(f"the read's transaction failed: {type(exc).__name__}") from exc

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """The read's connection inside `reading()`, else one of its own."""
        if self._snapshot is not None:
            yield self._snapshot
            return
        with self._engine.connect() as connection:
            yield connection

    def _rows(self, which: str) -> Iterator[RawRecord]:
        try:
            with self._connection() as connection:
                # Streamed in batches, so a million-row HR table never sits in memory at once.
                result = connection.execute(text(self._queries[which]),
                                            execution_options={"stream_results": True, "yield_per": _BATCH})
                names = list(result.keys())
                fields_of = PERSON_FIELDS if which == "people" else DEPARTMENT_FIELDS
                mapping = _mapping(names, self._columns[which], fields_of)
                for number, row in enumerate(result, start=1):
                    fields = {field: cell_text(row[i]).strip() for field, i in mapping.items()}
                    yield RawRecord(fields, f"{which} query", number)
        except SQLAlchemyError as exc:
            # The driver's message can quote the URL (with its password) or row data: keep the class only.
            raise SourceError(f"{which} query failed: {type(exc).__name__}") from exc

    def close(self) -> None:
        """Release the connection pool."""
        self._engine.dispose()


def timeout_arguments(url: URL, seconds: float) -> dict[str, Any]:
    """The driver's own arguments that bound connecting and each statement (or read) to `seconds`.

    Without them a hung HR database holds the cycle, and the cycle lock, for as long as the TCP
    connection lives; the daemon's watchdog is fed by another thread and would not notice. Drivers
    not listed here get no bound (README, `source.sql.timeout`).
    """
    whole = max(1, math.ceil(seconds))
    backend, driver = url.get_backend_name(), url.get_driver_name()
    if backend == "postgresql" and driver in ("psycopg", "psycopg2"):
        # statement_timeout bounds each statement; a streamed query is one FETCH per batch.
        options = " ".join(filter(None, (str(url.query.get("options", "")),
                                         f"-c statement_timeout={max(1, round(seconds * 1000))}")))
        return {"connect_timeout": whole, "options": options}
    if backend == "postgresql" and driver == "pg8000":
        return {"timeout": whole}
    if backend in ("mysql", "mariadb") and driver in ("pymysql", "mysqldb"):
        return {"connect_timeout": whole, "read_timeout": whole}
    if backend == "sqlite":
        return {"timeout": seconds}  # how long to wait for a writer's lock
    return {}


def snapshot_options(url: URL) -> dict[str, Any]:
    """The execution options that make one transaction a consistent, read-only snapshot on this database.

    PostgreSQL's REPEATABLE READ sees the database as of the transaction's first query, and READ
    ONLY refuses a query that would write. MySQL's (InnoDB's) REPEATABLE READ is a snapshot too.
    SQLite needs none: one transaction is one snapshot. Other databases get one transaction at
    their default isolation (README, `source.sql`).
    """
    backend = url.get_backend_name()
    if backend == "postgresql":
        return {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    if backend in ("mysql", "mariadb"):
        return {"isolation_level": "REPEATABLE READ"}
    return {}


def _mapping(names: list[str], columns: Mapping[str, str], fields: tuple[str, ...]) -> dict[str, int]:
    """field → result column index: the configured column, else a column named like the field."""
    index = {name.lower(): i for i, name in enumerate(names)}
    mapping = {field: index[field] for field in fields if field in index}
    for field, column in columns.items():
        if column.lower() not in index:
            raise SourceError(f"query result has no column {column!r} (mapped to field {field!r})")
        mapping[field] = index[column.lower()]
    return mapping
