"""Every HR source implements the `syncd.domain.source.Source` contract, checked in one place."""

from __future__ import annotations

import importlib
import inspect
import typing

import pytest

from connectors.sources.csv_source import CsvSource
from connectors.sources.ldap_source import LdapSource
from connectors.sources.sql_source import SqlSource
from connectors.sources.xlsx_source import XlsxSource
from syncd.config import SourceConfig
from syncd.domain.source import Source
from syncd.wiring import SOURCES

PROTOCOL_METHODS = [name for name, _ in inspect.getmembers(Source, inspect.isfunction) if not name.startswith("_")]


@pytest.mark.parametrize("source", [CsvSource, XlsxSource, SqlSource, LdapSource], ids=lambda c: c.__name__)
@pytest.mark.parametrize("method", PROTOCOL_METHODS)
def test_each_source_offers_the_contract_methods_with_the_same_parameters(source: type, method: str) -> None:
    expected = list(inspect.signature(getattr(Source, method)).parameters)
    assert list(inspect.signature(getattr(source, method)).parameters) == expected


def test_every_kind_the_configuration_accepts_is_wired_to_a_class_that_loads() -> None:
    kinds = typing.get_args(SourceConfig.model_fields["kind"].annotation)
    assert set(SOURCES) == set(kinds)
    for dotted in SOURCES.values():
        module, _, name = dotted.partition(":")
        assert inspect.isclass(getattr(importlib.import_module(module), name))
