"""The contract between the engine and an HR source: raw records, read lazily, and completeness."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record as the source found it, keyed by field name (`employee_id`, `name`, …)."""

    fields: dict[str, str]
    source: str  # file name, DN, query name: where an HR user finds it
    line: int | None = None


class SourceError(Exception):
    """The source could not be read to the end: the snapshot is incomplete."""


class Source(Protocol):
    """An HR source. Iterators raise SourceError when the read breaks off part-way."""

    def departments(self) -> Iterator[RawRecord]:
        """Every department record."""

    def people(self) -> Iterator[RawRecord]:
        """Every person record."""
