"""The working state of one write call (a page, an upsert, deletes): rows merged under the policy, bulk flush.

New records get time-ordered UUIDs (RFC 9562 version 7) so that their inserts append to the primary-key index
(and to the link and log indexes keyed by UDM id) instead of landing on random B-tree pages.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dynasync.udm import store_bulk, store_log
from dynasync.udm import store_codec as codec
from dynasync.udm import store_tables as t
from dynasync.udm.store_session import Session
from dynasync.udm.store_types import FieldChange, FieldPolicy, latest_update_wins, source_is_newer

L = t.links
LINK_COLUMNS = [c.name for c in L.columns]
LINK_UPDATE = ["last_read_hash", "external_version", "synced_version", "updated_at", "verified_version"]
LINK_KEY = ["synapse", "ext_table", "ext_id"]
TIMES = "_times"  # decoded udm_field_times kept on a working row until it is written


class _IdSource:
    """Time-ordered UUIDs (RFC 9562 version 7): 48-bit milliseconds, then a counter started at random."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def take(self, count: int) -> list[str]:
        """Return ``count`` new ids, each greater than every id handed out before by this process."""
        if count <= 0:
            return []
        ms = time.time_ns() // 1_000_000
        # Version 7 in bits 76-79, variant 0b10 in bits 62-63; the counter starts below 2**61, so even
        # continuing from the last id (several calls in one millisecond) never spills into the variant bits.
        fresh = (ms << 80) | (7 << 76) | (secrets.randbits(12) << 64) | (2 << 62) | secrets.randbits(61)
        with self._lock:
            start = max(fresh, self._last + 1)
            self._last = start + count - 1
        low = start & 0xFFFF_FFFF_FFFF  # the last group (12 hex digits)
        if low + count > 0x1_0000_0000_0000:
            # The counter carries into the groups before it: format each id in full.
            return [_format_uuid(value) for value in range(start, start + count)]
        prefix = _format_uuid(start)[:24]
        return [prefix + f"{value:012x}" for value in range(low, low + count)]


def _format_uuid(value: int) -> str:
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


new_ids = _IdSource().take


@dataclass
class Batch:
    """Working state of one write call: rows by UDM id and links by external id, with what must be written."""

    session: Session
    info: t.EntityInfo
    policy: FieldPolicy
    now: dt.datetime
    version: int
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    new_rows: set[str] = field(default_factory=set)
    dirty_rows: set[str] = field(default_factory=set)
    created: list[tuple[Any, ...]] = field(default_factory=list)  # fast creates: column order, driver form
    links: dict[str, dict[str, Any]] = field(default_factory=dict)
    new_links: set[str] = field(default_factory=set)
    dirty_links: set[str] = field(default_factory=set)
    link_rows: list[tuple[Any, ...]] = field(default_factory=list)  # fast-created links, driver form
    log: list[store_log.LogRow] = field(default_factory=list)  # in row order (fast creates in driver form)
    spare_ids: list[str] = field(default_factory=list)
    # Hashes a UDM value like IncomingRow.synced entries (None: every change is treated as contested).
    hash_value: Callable[[Any], str] | None = None

    def next_version(self) -> int:
        """Hand out the next UDM version (allocated in the counter at flush)."""
        self.version += 1
        return self.version

    def new_id(self) -> str:
        """Return a new, time-ordered UDM id (drawn from the id source 256 at a time)."""
        if not self.spare_ids:
            self.spare_ids = new_ids(256)
            self.spare_ids.reverse()
        return self.spare_ids.pop()

    def new_row(self, udm_id: str) -> dict[str, Any]:
        """Start a working row for a new record (written by :meth:`flush`)."""
        row: dict[str, Any] = {c.name: None for c in self.info.table.columns}
        row.update(udm_id=udm_id, udm_deleted=False, udm_created_at=self.now, udm_updated_at=self.now)
        row[TIMES] = {}
        self.rows[udm_id] = row
        self.new_rows.add(udm_id)
        return row

    def merge(
        self,
        row: dict[str, Any],
        values: Mapping[str, Any],
        when: dt.datetime,
        source: str | None,
        created: bool,
        synced: Mapping[str, str] | None = None,
        *,
        attaching: bool = False,
    ) -> tuple[list[FieldChange], bool, bool]:
        """Apply ``values`` to a working row under the policy; return (changes, applied anything, lost a field).

        ``synced``: see ``IncomingRow.synced``. ``attaching``: the row was just matched to this record (by its
        match key); its empty values are not changes it made, so they never replace the record's values.
        """
        times: dict[str, dt.datetime] = row.get(TIMES) or codec.decode_times(row["udm_field_times"])
        row[TIMES] = times
        changes: list[FieldChange] = []
        applied = created
        lost = False
        if created:
            row.update(values)
            times.update(dict.fromkeys(values, when))
            # A created record's changes are its values; the caller has them, so no FieldChange per field
            # (that alone cost more than the insert). The log still gets every field.
        else:
            if row["udm_deleted"]:
                if not source_is_newer(when, row["udm_updated_at"]):
                    decision = "latest_update_wins: udm delete newer"
                    return [FieldChange("udm_deleted", False, True, True, decision, False)], False, True
                row["udm_deleted"] = False
                decision = "latest_update_wins: source newer than delete"
                changes.append(FieldChange("udm_deleted", False, True, False, decision, True))
                applied = True
            hash_value = self.hash_value
            for name, value in values.items():
                current = row.get(name)
                if current == value:
                    continue
                if attaching and (value is None or value == "") and current not in (None, ""):
                    # The attached row never held a value of this record: its blank is no change to apply, and
                    # the record's value is written to it instead (a refused value is written back).
                    decision = "kept: a blank of a row being attached never replaces a value"
                    changes.append(FieldChange(name, value, current, current, decision, False))
                    lost = True
                    continue
                held = synced.get(name) if synced is not None and hash_value is not None else None
                contested = held is None or hash_value is None or hash_value(current) != held
                wins, decision = self.policy(
                    name, current, codec.field_time(times, name, current), value, when, contested=contested
                )
                changes.append(FieldChange(name, value, current, value if wins else current, decision, wins))
                if wins:
                    row[name] = value
                    times[name] = when
                    applied = True
                else:
                    lost = True
        if applied:
            row["udm_version"] = self.next_version()
            row["udm_updated_at"] = self.now
            row["udm_source"] = source
            if row["udm_id"] not in self.new_rows:
                self.dirty_rows.add(row["udm_id"])
        return changes, applied, lost

    def flush(self) -> None:
        """Write rows, links, log entries and the version counter with one bulk statement each."""
        session = self.session
        tbl = self.info.table
        names = [c.name for c in tbl.columns]
        new = store_bulk.as_tuples([self._db_row(self.rows[k]) for k in self.new_rows], names)
        store_bulk.insert_tuples(session, tbl, names, new + self.created)
        set_names = [n for n in names if n != "udm_id"]
        store_bulk.update_rows(
            session, tbl, set_names, ["udm_id"], [self._db_row(self.rows[k]) for k in self.dirty_rows]
        )
        new_links = store_bulk.as_tuples([self.links[k] for k in self.new_links], LINK_COLUMNS)
        store_bulk.insert_tuples(session, L, LINK_COLUMNS, new_links + self.link_rows)
        store_bulk.update_rows(
            session, L, LINK_UPDATE, LINK_KEY, [self.links[k] for k in self.dirty_links - self.new_links]
        )
        store_log.insert_events(session, self.log)
        if session.dialect == "postgresql":
            session.note_growth(tbl.name, len(self.new_rows) + len(self.created))
            session.note_growth(L.name, len(self.new_links) + len(self.link_rows))
        if self.version > session.lock_versions():
            session.allocate_versions(self.version - session.lock_versions())

    def _db_row(self, row: dict[str, Any]) -> dict[str, Any]:
        data = {k: v for k, v in row.items() if k != TIMES}
        data["udm_field_times"] = codec.encode_times(row[TIMES])
        return data


def start(session: Session, entity: str, policy: FieldPolicy | None) -> Batch:
    """Lock the version counter and open a batch for one entity."""
    info = session.info(entity)
    version = session.lock_versions()
    return Batch(
        session=session, info=info, policy=policy or latest_update_wins, now=session.now(), version=version
    )
