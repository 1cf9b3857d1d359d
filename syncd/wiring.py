"""The composition root: configuration picks the concrete source and target.

The engine modules never import a connector; only this module does, by the configured kind.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Any

from syncd.config import Config
from syncd.domain.source import Source
from syncd.domain.target import Target
from syncd.reporting.notice import Notifier

SOURCES: dict[str, str] = {
    "csv": "connectors.sources.csv_source:CsvSource",
    "xlsx": "connectors.sources.xlsx_source:XlsxSource",
    "ldap": "connectors.sources.ldap_source:LdapSource",
    "sql": "connectors.sources.sql_source:SqlSource",
}


def _load(dotted: str) -> Any:
    module, _, name = dotted.partition(":")
    return getattr(importlib.import_module(module), name)


def build_source(config: Config) -> Source:
    """The HR source named by `source.kind`."""
    source = config.source
    cls = _load(SOURCES[source.kind])
    if source.kind == "csv":
        return cls(source.people, source.departments, source.columns.people, source.columns.departments,
                   source.encoding)
    if source.kind == "xlsx":
        return cls(source.people, source.departments, source.columns.people, source.columns.departments)
    if source.kind == "ldap":
        return cls(source.ldap)
    sql = source.sql
    assert sql is not None  # validated: kind "sql" requires [source.sql]
    password = sql.password_file.read_text(encoding="utf-8").strip() if sql.password_file else None
    return cls(sql.url, sql.people_query, sql.departments_query, sql.people_columns, sql.department_columns,
               password, sql.changed_query, sql.timeout)


def _client(config: Config, dry_run: bool = False, retry_attempts: int | None = None, retry_total: float | None = None,
            on_call: Callable[[str], None] | None = None, interrupt: threading.Event | None = None) -> Any:
    client_cls = _load("connectors.zzd.client:ContactsClient")
    retry_cls = _load("connectors.zzd.client:RetryPolicy")
    return client_cls(
        base_url=config.target.base_url,
        app_key=config.target.app_key,
        secret=config.target.secret,
        tenant_id=config.target.tenant_id,
        operator=config.unit.operator,
        timeout=config.target.timeout,
        error_codes=config.target.error_codes,
        dry_run=dry_run,
        rate_limit=config.target.rate_limit,
        retry=retry_cls(attempts=retry_attempts or config.target.retry_attempts,
                        total=retry_total or config.target.retry_total, interrupt=interrupt),
        on_call=on_call,
    )


def build_notifiers(config: Config) -> list[Notifier]:
    """The channels of `escalation.channels`, in order. Work notifications get their own client with a
    short retry policy: when the gateway is down, the notice must go out by the next channel in
    seconds, not after a minute of backoff."""
    build = _load("connectors.notify:build_notifiers")
    client = _client(config, retry_attempts=2, retry_total=10.0) if "work_notification" in config.escalation.channels \
        else None
    notifiers: list[Notifier] = build(config, client)
    return notifiers


def build_target(config: Config, dry_run: bool = False, retry_attempts: int | None = None,
                 on_call: Callable[[str], None] | None = None, interrupt: threading.Event | None = None) -> Target:
    """The Zhengzhengding contacts directory of `[target]`.

    `retry_attempts` overrides the configured attempts (check-config wants an answer now, not after a
    minute of backoff); `on_call` hears the outcome of every call (metrics); `interrupt` ends retries
    when the service stops."""
    target_cls = _load("connectors.zzd.target:ZzdTarget")
    return target_cls(_client(config, dry_run, retry_attempts, on_call=on_call, interrupt=interrupt))
