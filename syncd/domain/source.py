"""The contract between the engine and an HR source: raw records, read lazily, and completeness."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)


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


class ChangeDetecting(Protocol):
    """A source that can tell cheaply whether anything changed, without reading every record."""

    def change_token(self, previous: str | None) -> str | None:
        """A text that differs whenever the source's records may have changed; None when it cannot tell.

        `previous` is the token of the last complete read (a watermark to search from)."""


class Snapshotting(Protocol):
    """A source whose departments and people can be read as one consistent snapshot."""

    def reading(self) -> AbstractContextManager[None]:
        """Departments and people read inside are one snapshot; SourceError when it cannot be opened or kept."""


def one_read(source: Source) -> AbstractContextManager[None]:
    """The source's snapshot for one read of departments then people (nothing for a source without one)."""
    reading = getattr(source, "reading", None)
    return nullcontext() if reading is None else reading()  # type: ignore[no-any-return]


def change_token(source: Source, previous: str | None = None) -> str | None:
    """The source's change token, or None when it has none or could not compute it (then the cycle reads)."""
    detect = getattr(source, "change_token", None)
    if detect is None:
        return None
    try:
        token: str | None = detect(previous)
    except SourceError as exc:
        log.warning("source.change_check_failed", error=str(exc))
        return None
    return token
