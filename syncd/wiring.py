"""The composition root: configuration picks the concrete source and target.

The engine modules never import a connector; only this module does, by the configured kind.
"""

from __future__ import annotations

import importlib
from typing import Any

from syncd.config import Config
from syncd.source import Source
from syncd.target import Target

SOURCES: dict[str, str] = {
    "csv": "connectors.sources.csv_source:CsvSource",
}


def _load(dotted: str) -> Any:
    module, _, name = dotted.partition(":")
    return getattr(importlib.import_module(module), name)


def build_source(config: Config) -> Source:
    """The HR source named by `source.kind`."""
    kind = config.source.kind
    if kind not in SOURCES:
        raise NotImplementedError(f"source.kind = {kind!r} is not available in this version")
    cls = _load(SOURCES[kind])
    if kind == "csv":
        assert config.source.people is not None and config.source.departments is not None
        return cls(config.source.people, config.source.departments, config.source.columns.people,
                   config.source.columns.departments, config.source.encoding)
    raise NotImplementedError(kind)


def build_target(config: Config, dry_run: bool = False) -> Target:
    """The Zhengzhengding contacts directory of `[target]`."""
    client_cls = _load("connectors.zzd.client:ContactsClient")
    target_cls = _load("connectors.zzd.target:ZzdTarget")
    client = client_cls(
        base_url=config.target.base_url,
        app_key=config.target.app_key,
        secret=config.target.secret,
        tenant_id=config.target.tenant_id,
        operator=config.unit.operator,
        timeout=config.target.timeout,
        error_codes=config.target.error_codes,
        dry_run=dry_run,
    )
    return target_cls(client)
