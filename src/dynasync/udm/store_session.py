"""One open transaction of the UDM store: its connection, entity lookup, clock and UDM version counter."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa

from dynasync.clock import Clock
from dynasync.errors import StoreError
from dynasync.udm import store_codec as codec
from dynasync.udm import store_tables as t

# SQLite allows 32766 host parameters (3.32+), PostgreSQL 65535; 500 keeps every IN (...) far below both.
CHUNK = 500
ANALYZE_MIN_ROWS = 1000

T = TypeVar("T")


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """Yield consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass
class StoreCore:
    """What all transactions of one store share: the engine, the clock and the committed entity cache."""

    engine: sa.Engine
    clock: Clock
    entities: dict[str, t.EntityInfo] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # PostgreSQL: rows this process inserted per table since its last ANALYZE, and the size then.
    growth: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Set once the schema has ``ds_writer`` (after the migrations of open_store): write transactions raise it.
    writer_flag: bool = False

    @property
    def dialect(self) -> str:
        """The database dialect name: "sqlite" or "postgresql"."""
        return self.engine.dialect.name


class Session:
    """The state of one transaction: the connection, entity definitions changed in it, the version lock."""

    def __init__(self, conn: sa.Connection, core: StoreCore) -> None:
        self.conn = conn
        self.core = core
        self.pending: dict[str, t.EntityInfo] = {}  # entities created/changed in this transaction
        self._version: int | None = None  # current counter value once locked by this transaction
        self._now: dt.datetime | None = None

    @property
    def dialect(self) -> str:
        """The database dialect name."""
        return self.core.dialect

    def now(self) -> dt.datetime:
        """Return the store clock's current time (aware UTC)."""
        return self.core.clock.now().astimezone(dt.UTC)

    def info(self, name: str) -> t.EntityInfo:
        """Return an entity's definition and table, loading it from the catalog when not cached."""
        found = self.pending.get(name)
        if found is not None:
            return found
        with self.core.lock:
            found = self.core.entities.get(name)
        if found is not None:
            return found
        loaded = self.load_info(name)
        if loaded is None:
            raise StoreError(
                f"unknown UDM entity {name!r}",
                remedy="Create it with ensure_entity() (activating a synapse does this from its schema).",
            )
        with self.core.lock:
            self.core.entities[name] = loaded
        return loaded

    def load_info(self, name: str) -> t.EntityInfo | None:
        """Read an entity's definition from the catalog table (None when absent)."""
        row = self.conn.execute(sa.select(t.catalog.c.definition).where(t.catalog.c.entity == name)).first()
        if row is None:
            return None
        ename, fields, keys = t.decode_definition(codec.loads(row[0]))
        return t.build_info(ename, fields, keys, self.dialect)

    def lock_versions(self) -> int:
        """Lock the UDM version counter until this transaction ends and return its current value.

        Holding the lock serialises writers, so versions become visible in commit order and a reader that
        saw version N never later meets an older, newly committed version (write-back relies on this).
        """
        if self._version is None:
            stmt = (
                sa.select(t.sequence.c.value).where(t.sequence.c.name == t.VERSION_SEQUENCE).with_for_update()
            )
            value = self.conn.execute(stmt).scalar_one()
            self._version = int(value)
        return self._version

    def allocate_versions(self, count: int) -> int:
        """Reserve ``count`` consecutive versions; return the first. Call :meth:`lock_versions` first."""
        first = self.lock_versions() + 1
        if count <= 0:
            return first
        self._version = first + count - 1
        self.conn.execute(
            sa.update(t.sequence).where(t.sequence.c.name == t.VERSION_SEQUENCE).values(value=self._version)
        )
        return first

    def note_growth(self, table: str, inserted: int) -> None:
        """ANALYZE a PostgreSQL table that grew by a fifth (and 1,000 rows) since this process last did.

        A table filled within the last minute has no statistics before autovacuum gets to it, and the planner
        then filters IN-lists row by row instead of probing the index (pages become ten times slower).
        ANALYZE counts the rows this transaction inserted.
        """
        if inserted <= 0:
            return
        with self.core.lock:
            pending, size = self.core.growth.get(table, (0, 0))
            pending += inserted
            due = pending >= max(ANALYZE_MIN_ROWS, size // 5)
            self.core.growth[table] = (0, size + pending) if due else (pending, size)
        if due:
            self.conn.exec_driver_sql(f"ANALYZE {self.conn.dialect.identifier_preparer.quote(table)}")

    def select_in(
        self, stmt: sa.Select[Any], column: sa.ColumnElement[Any], values: Iterable[Any]
    ) -> list[sa.Row[Any]]:
        """Run ``stmt`` with ``column IN (...)`` over ``values`` in chunks; return all rows."""
        distinct = list(dict.fromkeys(values))
        rows: list[sa.Row[Any]] = []
        for part in chunks(distinct):
            rows.extend(self.conn.execute(stmt.where(column.in_(part))).all())
        return rows
