"""A sync that changes nothing: what a run would read into the UDM and write to each synapse, shown first.

Users must be able to see the effect before anything is written to a CRM. A dry run is a real engine run with
two things swapped out: the UDM is a private copy of the store (SQLite's online backup, a consistent snapshot
taken while other readers and writers go on), and every synapse writes into a list instead of its system,
answering each write as a success (a create gets a placeholder id) so the run plays out as it would. Reads
still go to the systems: they are how the run learns what changed there. The copy is deleted afterwards, so
the store, its cursors and the systems' rows are exactly as before.

Only SQLite stores can be copied this way; on PostgreSQL a dry run is refused with that reason.
"""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from dynasync.errors import ConfigError
from dynasync.synapses.base import ChangeBatch, StreamSpec, Synapse, WriteKind, WriteOp, WriteResult

PLACEHOLDER_ID = "dry-run-{n}"
"""The id a create is answered with (the row does not exist)."""


@dataclass(frozen=True, slots=True)
class PlannedWrite:
    """One write a real run would send: to which synapse and table, what kind, which row, which values."""

    synapse: str
    table: str
    kind: str
    external_id: str | None
    values: Mapping[str, Any] = field(default_factory=dict)


class RecordingSynapse:
    """A synapse that reads through to the real one and records its writes instead of sending them."""

    def __init__(self, inner: Synapse, planned: list[PlannedWrite]) -> None:
        self._inner = inner
        self._planned = planned
        self.name = inner.name

    async def discover(self) -> list[StreamSpec]:
        """The real synapse's tables."""
        return await self._inner.discover()

    def read(self, stream: StreamSpec, cursor: Mapping[str, Any] | None) -> AsyncIterator[ChangeBatch]:
        """The real synapse's changes."""
        return self._inner.read(stream, cursor)

    def reload_cursor(self, stream: StreamSpec) -> Mapping[str, Any] | None:
        """The real synapse's resync cursor."""
        return self._inner.reload_cursor(stream)

    async def write(self, stream: StreamSpec, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Record every op and answer it as written; a create gets a placeholder id."""
        results: list[WriteResult] = []
        for op in ops:
            self._planned.append(PlannedWrite(self.name, op.table, op.kind.value, op.id, dict(op.values)))
            new_id = op.id
            if new_id is None and op.kind is WriteKind.CREATE:
                new_id = PLACEHOLDER_ID.format(n=len(self._planned))
            results.append(WriteResult(True, id=new_id))
        return results


@contextlib.contextmanager
def store_copy(url: str) -> Iterator[str]:
    """A private copy of a SQLite UDM store (consistent snapshot); yields its URL and deletes it after.

    Raises:
        ConfigError: the store is not a SQLite file (PostgreSQL, or an in-memory database).
    """
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        raise ConfigError(
            "A dry run needs a private copy of the UDM, which only a SQLite file store can give "
            f"({parsed.get_backend_name()} store in use).",
            remedy="Run the dry run against a SQLite copy (--udm-url sqlite:///copy.db after copying the data), "
            "or run without --dry-run.",
        )
    source_path = Path(str(parsed.database))
    with tempfile.TemporaryDirectory(prefix="dynasync-dry-run-") as tmp:
        target = Path(tmp) / "udm.db"
        if source_path.exists():
            with (
                contextlib.closing(sqlite3.connect(source_path)) as source,
                contextlib.closing(sqlite3.connect(target)) as copy,
            ):
                source.backup(copy)
        yield f"sqlite:///{target}"
