"""An in-memory (optionally file-backed) external system implementing the Synapse protocol for engine tests.

It behaves like Dataverse where the engine can tell: a global row version that every write bumps, change
tracking by version (upserts and delete tombstones after a cursor version, paged, in version order), a full load
that pages by id and ends with a version cursor, a modification time per row, writes that come back in the next
read (echoes), If-Match conflicts, and injectable per-record write failures. With ``path`` the state lives in a
JSON file (atomically replaced after every change), so a child process killed mid-sync leaves a consistent system.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from dynasync.clock import Clock, SystemClock
from dynasync.errors import CursorExpiredError, RetriableError
from dynasync.synapses.base import (
    ChangeBatch,
    ColumnSpec,
    ColumnType,
    LookupRef,
    SourceRecord,
    StreamSpec,
    WriteKind,
    WriteOp,
    WriteResult,
)


def make_stream(
    name: str, columns: Mapping[str, ColumnType | tuple[ColumnType, str] | ColumnSpec]
) -> StreamSpec:
    """Build a StreamSpec; a lookup column is given as ``(ColumnType.LOOKUP, "target_table")``.

    A column named ``modifiedon`` is maintained by the fake itself (the row's modification time, as Dataverse
    does): give it as a read-only ``ColumnSpec``.
    """
    primary = f"{name}id"
    specs: dict[str, ColumnSpec] = {primary: ColumnSpec(primary, ColumnType.UUID, is_primary_id=True)}
    for col, kind in columns.items():
        if isinstance(kind, ColumnSpec):
            specs[col] = kind
        elif isinstance(kind, tuple):
            specs[col] = ColumnSpec(col, kind[0], targets=(kind[1],), navigation={kind[1]: col})
        else:
            specs[col] = ColumnSpec(col, kind)
    return StreamSpec(
        name=name, collection=name + "s", primary_id=primary, primary_name="name", columns=specs
    )


def _enc(value: Any) -> Any:
    if isinstance(value, LookupRef):
        return {"$ref": [value.table, value.id]}
    if isinstance(value, Decimal):
        return {"$dec": str(value)}
    if isinstance(value, dt.datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, tuple):
        return {"$tuple": [_enc(v) for v in value]}
    return value


def _dec(value: Any) -> Any:
    if isinstance(value, dict):
        if "$ref" in value:
            return LookupRef(value["$ref"][0], value["$ref"][1])
        if "$dec" in value:
            return Decimal(value["$dec"])
        if "$dt" in value:
            return dt.datetime.fromisoformat(value["$dt"])
        if "$tuple" in value:
            return tuple(_dec(v) for v in value["$tuple"])
    return value


@dataclass
class Row:
    """One external row."""

    values: dict[str, Any]
    version: int
    modified_on: dt.datetime


@dataclass
class FakeState:
    """Everything the fake system holds."""

    version: int = 0
    rows: dict[str, dict[str, Row]] = field(default_factory=dict)
    tombstones: dict[str, list[tuple[str, int]]] = field(default_factory=dict)


class FakeSynapse:
    """A fake external system; see the module docstring.

    Args:
        name: the synapse name.
        streams: the tables it has.
        path: a JSON file holding the state (shared across processes); None keeps it in memory.
        clock: the source of modification times.
        page_size: records (and tombstones) per change batch.
        reconcile: send ``reconcile_ids`` on the last batch of a full load.
    """

    def __init__(
        self,
        name: str,
        streams: Sequence[StreamSpec],
        *,
        path: str | Path | None = None,
        clock: Clock | None = None,
        page_size: int = 50,
        reconcile: bool = True,
    ) -> None:
        self.name = name
        self.streams = {s.name: s for s in streams}
        self.path = Path(path) if path is not None else None
        self.clock = clock or SystemClock()
        self.page_size = page_size
        self.reconcile = reconcile
        self.state = FakeState()
        self.write_failures: dict[str, str] = {}  # record id -> error text
        self.throttle_reads = 0  # the next N read requests raise RetriableError
        self.throttle_retry_after: float | None = None  # the Retry-After those errors carry
        self.read_error: Exception | None = None  # every read raises it (auth failure, refused source...)
        self.discover_error: BaseException | None = (
            None  # discover raises it (a sign-in refused before any read)
        )
        self.expired: set[str] = set()  # tables whose next incremental read fails like an expired token
        self.reads = 0  # pages served
        self.read_streams: list[StreamSpec] = []  # the stream given to each read() call
        self.write_calls = 0
        self.write_ops: list[WriteOp] = []
        self.on_page: Callable[[str, int], None] | None = (
            None  # hook(stream, page_no) before a page is yielded
        )
        self.on_write: Callable[[str, int], None] | None = None  # hook(stream, op_index) before each op
        if self.path is not None and self.path.exists():
            self.load()
        for s in self.streams:
            self.state.rows.setdefault(s, {})
            self.state.tombstones.setdefault(s, [])

    # -- persistence --------------------------------------------------------------------------------------
    def load(self) -> None:
        """Reload the state from the file."""
        assert self.path is not None
        raw = json.loads(self.path.read_text())
        state = FakeState(version=raw["version"])
        for table, rows in raw["rows"].items():
            state.rows[table] = {
                rid: Row(
                    {k: _dec(v) for k, v in r["values"].items()},
                    r["version"],
                    dt.datetime.fromisoformat(r["m"]),
                )
                for rid, r in rows.items()
            }
        state.tombstones = {t: [(i, v) for i, v in ts] for t, ts in raw["tombstones"].items()}
        self.state = state
        self.write_failures = dict(raw.get("write_failures", {}))

    def save(self) -> None:
        """Write the state to the file atomically (no-op in memory)."""
        if self.path is None:
            return
        raw = {
            "version": self.state.version,
            "rows": {
                table: {
                    rid: {
                        "values": {k: _enc(v) for k, v in r.values.items()},
                        "version": r.version,
                        "m": r.modified_on.isoformat(),
                    }
                    for rid, r in rows.items()
                }
                for table, rows in self.state.rows.items()
            },
            "tombstones": self.state.tombstones,
            "write_failures": self.write_failures,
        }
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(raw))
        os.replace(tmp, self.path)

    # -- direct edits (what a Dynamics user does) ------------------------------------------------------------
    def _bump(self) -> int:
        self.state.version += 1
        return self.state.version

    def insert(self, table: str, values: Mapping[str, Any], *, id: str | None = None) -> str:
        """Create a row as a user of the external system would; returns its id."""
        rid = id or str(uuid.uuid4())
        self.state.rows[table][rid] = Row(dict(values), self._bump(), self.clock.now())
        self.save()
        return rid

    def update(self, table: str, rid: str, values: Mapping[str, Any]) -> None:
        """Change some columns of a row."""
        row = self.state.rows[table][rid]
        row.values.update(values)
        row.version = self._bump()
        row.modified_on = self.clock.now()
        self.save()

    def delete(self, table: str, rid: str) -> None:
        """Delete a row (a tombstone is kept for change tracking)."""
        del self.state.rows[table][rid]
        self.state.tombstones[table].append((rid, self._bump()))
        self.save()

    def rows(self, table: str) -> dict[str, dict[str, Any]]:
        """Return id -> values of every row of a table (with ``modifiedon`` when the table has that column)."""
        stamped = "modifiedon" in self.streams[table].columns
        return {
            rid: {**r.values, "modifiedon": r.modified_on} if stamped else dict(r.values)
            for rid, r in self.state.rows[table].items()
        }

    # -- Synapse protocol -----------------------------------------------------------------------------------
    async def discover(self) -> list[StreamSpec]:
        """Return the tables (or raise ``discover_error``, as a refused sign-in would)."""
        if self.discover_error is not None:
            raise self.discover_error
        return list(self.streams.values())

    def _record(self, rid: str, row: Row, stream: StreamSpec) -> SourceRecord:
        # Like Dataverse's $select: every column of the stream asked for, null when the row has no value.
        columns = stream.columns
        values = {k: row.values.get(k) for k in columns if k != "modifiedon"}
        if "modifiedon" in columns:
            values["modifiedon"] = row.modified_on
        return SourceRecord(id=rid, values=values, version=str(row.version), modified_on=row.modified_on)

    def _serve(self, stream: str) -> None:
        if self.read_error is not None:
            raise self.read_error
        if self.throttle_reads > 0:
            self.throttle_reads -= 1
            raise RetriableError("throttled by the fake", retry_after=self.throttle_retry_after)
        self.reads += 1
        if self.on_page is not None:
            self.on_page(stream, self.reads)

    async def read(self, stream: StreamSpec, cursor: Mapping[str, Any] | None) -> AsyncIterator[ChangeBatch]:
        """Yield change batches from ``cursor`` (None: full load)."""
        table = stream.name
        self.read_streams.append(stream)
        if cursor is None or cursor.get("phase") == "full":
            start_version = int(cursor["start_version"]) if cursor else self.state.version
            after = str(cursor["after"]) if cursor else ""
            while True:
                ids = sorted(i for i in self.state.rows[table] if i > after)
                page = ids[: self.page_size]
                last = len(ids) <= self.page_size
                self._serve(table)
                records = [self._record(i, self.state.rows[table][i], stream) for i in page]
                if last:
                    yield ChangeBatch(
                        stream=table,
                        upserts=records,
                        deletes=(),
                        cursor={"version": start_version},
                        full_load=True,
                        last=True,
                        reconcile_ids=frozenset(self.state.rows[table]) if self.reconcile else None,
                    )
                    return
                after = page[-1]
                yield ChangeBatch(
                    stream=table,
                    upserts=records,
                    deletes=(),
                    cursor={"phase": "full", "after": after, "start_version": start_version},
                    full_load=True,
                )
            return
        if table in self.expired:
            self.expired.discard(table)
            raise CursorExpiredError(
                "Version stamp associated with the client has expired. Please perform a full sync."
            )
        since = int(cursor["version"])
        while True:
            events: list[tuple[int, str, Row | None]] = [
                (r.version, rid, r) for rid, r in self.state.rows[table].items() if r.version > since
            ]
            events += [(v, rid, None) for rid, v in self.state.tombstones[table] if v > since]
            events.sort(key=lambda e: e[0])
            chunk = events[: self.page_size]
            last = len(events) <= self.page_size
            self._serve(table)
            upto = chunk[-1][0] if chunk else since
            yield ChangeBatch(
                stream=table,
                upserts=[self._record(rid, row, stream) for _, rid, row in chunk if row is not None],
                deletes=[rid for _, rid, row in chunk if row is None],
                cursor={"version": upto if not last else max(upto, since)},
                last=last,
            )
            if last:
                return
            since = upto

    def change_column(self, table: str, column: str, **facts: Any) -> None:
        """Change what the schema says of a column (before the engine first discovers it)."""
        stream = self.streams[table]
        columns = dict(stream.columns)
        columns[column] = dataclasses.replace(columns[column], **facts)
        self.streams[table] = dataclasses.replace(stream, columns=columns)

    def reload_cursor(self, stream: StreamSpec) -> Mapping[str, Any] | None:
        """A full load from the start; it reconciles on its last batch when ``reconcile`` is on."""
        return None

    async def write(self, stream: StreamSpec, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Apply writes; each op succeeds or fails on its own."""
        self.write_calls += 1
        table = stream.name
        results: list[WriteResult] = []
        for index, op in enumerate(ops):
            if self.on_write is not None:
                self.on_write(table, index)
            self.write_ops.append(op)
            results.append(self._write_one(table, op))
            self.save()
        return results

    def _write_one(self, table: str, op: WriteOp) -> WriteResult:
        rows = self.state.rows[table]
        rid = op.id
        if rid is not None and rid in self.write_failures:
            return WriteResult(False, rid, error_code="0x80040265", error=self.write_failures[rid])
        if op.kind is WriteKind.DELETE:
            if rid is None or rid not in rows:
                return WriteResult(False, rid, error_code="0x80040217", error="record does not exist")
            if op.if_match is not None and str(rows[rid].version) != op.if_match:
                return WriteResult(False, rid, error_code="412", error="version mismatch", conflict=True)
            del rows[rid]
            self.state.tombstones[table].append((rid, self._bump()))
            return WriteResult(True, rid)
        values = {k: v for k, v in op.values.items() if k != self.streams[table].primary_id}
        creating = op.kind is WriteKind.CREATE or (
            op.kind is WriteKind.UPSERT and (rid is None or rid not in rows)
        )
        columns = self.streams[table].columns
        refused = [
            k
            for k in values
            if k not in columns or not (columns[k].creatable if creating else columns[k].updatable)
        ]
        if refused:  # as Dataverse: unknown and read-only columns fail the record
            return WriteResult(False, rid, error_code="invalid", error=f"cannot write {', '.join(refused)}")
        if creating:
            if rid is not None and rid in rows:
                return WriteResult(False, rid, error_code="0x80040237", error="duplicate id")
            rid = rid or str(uuid.uuid4())
            if rid in self.write_failures:
                return WriteResult(False, rid, error_code="0x80040265", error=self.write_failures[rid])
            rows[rid] = Row(dict(values), self._bump(), self.clock.now())
            return WriteResult(True, rid, version=str(rows[rid].version))
        if rid is None or rid not in rows:
            return WriteResult(False, rid, error_code="0x80040217", error="record does not exist")
        row = rows[rid]
        if op.if_match is not None and str(row.version) != op.if_match:
            return WriteResult(False, rid, error_code="412", error="version mismatch", conflict=True)
        row.values.update(values)
        row.version = self._bump()
        row.modified_on = self.clock.now()
        return WriteResult(True, rid, version=str(row.version))
