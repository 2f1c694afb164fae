"""Applying changes to UDM records in batches: link or match or create, per-field policy, links and log."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from dynasync.errors import StoreError
from dynasync.udm import store_bulk, store_log
from dynasync.udm import store_codec as codec
from dynasync.udm import store_tables as t
from dynasync.udm.store_records import find_candidates, get_rows, match_key_of
from dynasync.udm.store_schema import coerce_values
from dynasync.udm.store_session import Session
from dynasync.udm.store_types import (
    ApplyResult,
    FieldChange,
    FieldPolicy,
    IncomingRow,
    RowAction,
    RowOutcome,
    latest_update_wins,
)

L = t.links
_LINK_COLUMNS = [c.name for c in L.columns]
_TIMES = "_times"  # decoded udm_field_times kept on a working row until it is written


@dataclass
class _Batch:
    """Working state of one apply call: rows by UDM id and links by external id, with what must be written."""

    session: Session
    info: t.EntityInfo
    policy: FieldPolicy
    now: dt.datetime
    version: int
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    new_rows: set[str] = field(default_factory=set)
    dirty_rows: set[str] = field(default_factory=set)
    links: dict[str, dict[str, Any]] = field(default_factory=dict)
    new_links: set[str] = field(default_factory=set)
    dirty_links: set[str] = field(default_factory=set)
    log: list[dict[str, Any]] = field(default_factory=list)

    def next_version(self) -> int:
        self.version += 1
        return self.version

    def new_row(self, udm_id: str) -> dict[str, Any]:
        row: dict[str, Any] = {c.name: None for c in self.info.table.columns}
        row.update(udm_id=udm_id, udm_deleted=False, udm_created_at=self.now, udm_updated_at=self.now)
        row[_TIMES] = {}
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
    ) -> tuple[list[FieldChange], bool, bool]:
        """Apply ``values`` to a working row under the policy; return (changes, applied anything, lost a field)."""
        times: dict[str, dt.datetime] = row.get(_TIMES) or codec.decode_times(row["udm_field_times"])
        row[_TIMES] = times
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
                if when < row["udm_updated_at"]:
                    decision = "latest_update_wins: udm delete newer"
                    return [FieldChange("udm_deleted", False, True, True, decision, False)], False, True
                row["udm_deleted"] = False
                decision = "latest_update_wins: source newer than delete"
                changes.append(FieldChange("udm_deleted", False, True, False, decision, True))
                applied = True
            for name, value in values.items():
                current = row.get(name)
                if current == value:
                    continue
                wins, decision = self.policy(name, current, times.get(name), value, when)
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
        """Write rows, links, log entries and the version counter with one executemany each."""
        session = self.session
        tbl = self.info.table
        names = [c.name for c in tbl.columns]
        store_bulk.insert_rows(session, tbl, names, [self._db_row(self.rows[k]) for k in self.new_rows])
        set_names = [n for n in names if n != "udm_id"]
        store_bulk.update_rows(
            session, tbl, set_names, ["udm_id"], [self._db_row(self.rows[k]) for k in self.dirty_rows]
        )
        store_bulk.insert_rows(session, L, _LINK_COLUMNS, [self.links[k] for k in self.new_links])
        store_bulk.update_rows(
            session,
            L,
            ["last_read_hash", "external_version", "synced_version", "updated_at"],
            ["synapse", "ext_table", "ext_id"],
            [self.links[k] for k in self.dirty_links - self.new_links],
        )
        store_log.insert_events(session, self.log)
        if session.dialect == "postgresql":
            session.note_growth(tbl.name, len(self.new_rows))
            session.note_growth(L.name, len(self.new_links))
        if self.version > session.lock_versions():
            session.allocate_versions(self.version - session.lock_versions())

    def _db_row(self, row: dict[str, Any]) -> dict[str, Any]:
        data = {k: v for k, v in row.items() if k != _TIMES}
        data["udm_field_times"] = codec.encode_times(row[_TIMES])
        return data


def _start(session: Session, entity: str, policy: FieldPolicy | None) -> _Batch:
    info = session.info(entity)
    version = session.lock_versions()
    return _Batch(
        session=session, info=info, policy=policy or latest_update_wins, now=session.now(), version=version
    )


def _new_link(batch: _Batch, synapse: str, table: str, external_id: str, udm_id: str) -> dict[str, Any]:
    lk = {
        "synapse": synapse,
        "ext_table": table,
        "ext_id": external_id,
        "entity": batch.info.entity.name,
        "udm_id": udm_id,
        "last_read_hash": None,
        "last_written_hash": None,
        "external_version": None,
        "synced_version": None,
        "created_at": batch.now,
        "updated_at": batch.now,
    }
    batch.links[external_id] = lk
    batch.new_links.add(external_id)
    return lk


def _prepare(batch: _Batch, row: IncomingRow) -> tuple[dict[str, Any], dt.datetime, str]:
    values = coerce_values(batch.info, row.values)
    when = row.modified_on or batch.now
    if when.tzinfo is None:
        raise StoreError(f"modified_on of {row.external_id} is a naive datetime; it must be timezone-aware")
    digest = row.hash if row.hash is not None else codec.hash_canonical(values)
    return values, when.astimezone(dt.UTC), digest


def apply_upserts(
    session: Session,
    entity: str,
    synapse: str,
    table: str,
    rows: Sequence[IncomingRow],
    *,
    run_id: str | None = None,
    policy: FieldPolicy | None = None,
) -> ApplyResult:
    """Apply one page of mapped external rows; see ``UdmStore.apply_upserts``."""
    batch = _start(session, entity, policy)
    info = batch.info
    prepared: list[tuple[IncomingRow, dict[str, Any], dt.datetime, str] | RowOutcome] = []
    for row in rows:
        try:
            values, when, digest = _prepare(batch, row)
        except StoreError as exc:
            prepared.append(RowOutcome(row.external_id, "", "failed", 0, error=exc.message))
            continue
        prepared.append((row, values, when, digest))
    ext_ids = [p[0].external_id for p in prepared if not isinstance(p, RowOutcome)]
    stmt = sa.select(L).where(L.c.synapse == synapse, L.c.ext_table == table)
    for lrow in session.select_in(stmt, L.c.ext_id, ext_ids):
        batch.links[lrow.ext_id] = dict(lrow._mapping)
    batch.rows.update(get_rows(session, info, {lk["udm_id"] for lk in batch.links.values()}))
    keys = info.entity.match_keys
    candidates: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    taken: set[str] = set()
    if keys:
        wanted = [
            k
            for p in prepared
            if not isinstance(p, RowOutcome) and p[0].external_id not in batch.links
            for k in [match_key_of(info, p[1], keys)]
            if k is not None
        ]
        if wanted:
            candidates = find_candidates(session, info, wanted, keys)
            ids = [r["udm_id"] for rows_ in candidates.values() for r in rows_]
            taken = {
                r[0]
                for r in session.select_in(
                    sa.select(L.c.udm_id).where(L.c.synapse == synapse, L.c.entity == info.entity.name),
                    L.c.udm_id,
                    ids,
                )
            }
    result = ApplyResult()
    for p in prepared:
        if isinstance(p, RowOutcome):
            lk = batch.links.get(p.external_id or "")
            result.rows.append(
                p if lk is None else RowOutcome(p.external_id, lk["udm_id"], "failed", 0, error=p.error)
            )
            continue
        result.rows.append(_apply_one(batch, synapse, table, run_id, p, candidates, taken))
    batch.flush()
    return result


def _apply_one(
    batch: _Batch,
    synapse: str,
    table: str,
    run_id: str | None,
    item: tuple[IncomingRow, dict[str, Any], dt.datetime, str],
    candidates: Mapping[tuple[Any, ...], list[dict[str, Any]]],
    taken: set[str],
) -> RowOutcome:
    row, values, when, digest = item
    ext_id = row.external_id
    lk = batch.links.get(ext_id)
    action: RowAction
    if lk is not None:
        rec = batch.rows.get(lk["udm_id"])
        version = int(rec["udm_version"]) if rec is not None else 0
        if digest == lk["last_written_hash"] or digest == lk["last_read_hash"]:
            action = "echo" if digest == lk["last_written_hash"] else "unchanged"
            lk.update(last_read_hash=digest, updated_at=batch.now)
            if row.external_version is not None:
                lk["external_version"] = row.external_version
            batch.dirty_links.add(ext_id)
            return RowOutcome(ext_id, lk["udm_id"], action, version)
        created = rec is None
        # A link whose record vanished (dropped by hand) is repaired by re-creating the record under its id.
        rec = batch.new_row(lk["udm_id"]) if rec is None else rec
        action = "created" if created else "updated"
    else:
        rec = None
        key = (
            match_key_of(batch.info, values, batch.info.entity.match_keys)
            if batch.info.entity.match_keys
            else None
        )
        for cand in candidates.get(key, []) if key is not None else []:
            if cand["udm_id"] not in taken:
                rec = batch.rows.setdefault(cand["udm_id"], cand)
                break
        created = rec is None
        if rec is None:
            rec = batch.new_row(str(uuid.uuid4()))
        action = "created" if created else "attached"
        taken.add(rec["udm_id"])
        lk = _new_link(batch, synapse, table, ext_id, rec["udm_id"])
    changes, applied, lost = batch.merge(rec, values, when, synapse, created)
    if action == "updated" and not applied:
        action = "unchanged"
    lk.update(last_read_hash=digest, updated_at=batch.now)
    if row.external_version is not None:
        lk["external_version"] = row.external_version
    if not lost:
        # Nothing of the source was refused: the external row now matches the UDM record.
        lk["synced_version"] = rec["udm_version"]
    batch.dirty_links.add(ext_id)
    if changes or created:
        batch.log.append(
            store_log.event(
                batch.session,
                run_id=run_id,
                direction="in",
                synapse=synapse,
                table=table,
                external_id=ext_id,
                entity=batch.info.entity.name,
                udm_id=rec["udm_id"],
                action=action,
                outcome=None,
                fields=store_log.created_fields(values) if created else store_log.change_fields(changes),
            )
        )
    return RowOutcome(ext_id, rec["udm_id"], action, int(rec["udm_version"] or 0), tuple(changes))


def upsert(
    session: Session,
    entity: str,
    values: Mapping[str, Any],
    *,
    udm_id: str | None = None,
    source: str = "udm",
    changed_at: dt.datetime | None = None,
    run_id: str | None = None,
    policy: FieldPolicy | None = None,
) -> RowOutcome:
    """Create or update one record directly (a UDM-side edit); see ``UdmStore.upsert``."""
    batch = _start(session, entity, policy)
    info = batch.info
    canonical = coerce_values(info, values)
    when = (changed_at or batch.now).astimezone(dt.UTC)
    rec: dict[str, Any] | None = None
    if udm_id is not None:
        rec = get_rows(session, info, [udm_id]).get(udm_id)
    elif info.entity.match_keys:
        key = match_key_of(info, canonical, info.entity.match_keys)
        if key is not None:
            found = find_candidates(session, info, [key], info.entity.match_keys).get(key, [])
            rec = found[0] if found else None
    created = rec is None
    if rec is None:
        rec = batch.new_row(udm_id or str(uuid.uuid4()))
    else:
        batch.rows[rec["udm_id"]] = rec
    changes, applied, _lost = batch.merge(rec, canonical, when, source, created)
    action: RowAction = "created" if created else ("updated" if applied else "unchanged")
    if changes or created:
        batch.log.append(
            store_log.event(
                session,
                run_id=run_id,
                direction="udm",
                synapse=source,
                table=None,
                external_id=None,
                entity=entity,
                udm_id=rec["udm_id"],
                action=action,
                outcome=None,
                fields=store_log.created_fields(canonical) if created else store_log.change_fields(changes),
            )
        )
    batch.flush()
    return RowOutcome(None, rec["udm_id"], action, int(rec["udm_version"] or 0), tuple(changes))
