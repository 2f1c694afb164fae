"""Soft deletes of UDM records: one record (a UDM-side delete) or those linked to deleted external rows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from dynasync.udm import store_codec as codec
from dynasync.udm import store_log
from dynasync.udm.store_apply import _TIMES, L, _Batch, _start
from dynasync.udm.store_records import get_rows
from dynasync.udm.store_session import Session


def _delete_rows(
    batch: _Batch,
    rows: Iterable[dict[str, Any]],
    source: str,
    run_id: str | None,
    ext: Mapping[str, tuple[str, str]],
) -> list[str]:
    deleted: list[str] = []
    for rec in rows:
        if rec["udm_deleted"]:
            continue
        rec["udm_deleted"] = True
        rec["udm_version"] = batch.next_version()
        rec["udm_updated_at"] = batch.now
        rec["udm_source"] = source
        rec[_TIMES] = codec.decode_times(rec["udm_field_times"])
        batch.rows[rec["udm_id"]] = rec
        batch.dirty_rows.add(rec["udm_id"])
        deleted.append(rec["udm_id"])
        table, ext_id = ext.get(rec["udm_id"], (None, None))
        batch.log.append(
            store_log.event(
                batch.session,
                run_id=run_id,
                direction="in" if ext_id is not None else "udm",
                synapse=source,
                table=table,
                external_id=ext_id,
                entity=batch.info.entity.name,
                udm_id=rec["udm_id"],
                action="deleted",
                outcome=None,
                fields=[["udm_deleted", True, False, True, "delete"]],
            )
        )
    return deleted


def mark_deleted(
    session: Session, entity: str, udm_id: str, *, source: str = "udm", run_id: str | None = None
) -> bool:
    """Soft-delete one record; return False when it is absent or already deleted."""
    batch = _start(session, entity, None)
    deleted = _delete_rows(batch, get_rows(session, batch.info, [udm_id]).values(), source, run_id, {})
    batch.flush()
    if deleted:
        _sync_links(session, source, entity, {udm_id: batch.rows[udm_id]["udm_version"]})
    return bool(deleted)


def apply_deletes(
    session: Session,
    entity: str,
    synapse: str,
    table: str,
    external_ids: Iterable[str],
    *,
    run_id: str | None = None,
) -> list[str]:
    """Soft-delete the records linked to deleted external rows; unknown ids are ignored. Return UDM ids deleted."""
    batch = _start(session, entity, None)
    # The entity is checked on the rows found, not in the WHERE clause: given it there, SQLite's planner picks the
    # (synapse, entity, udm_id) index and scans every link of the entity instead of probing the external ids.
    stmt = sa.select(L.c.ext_id, L.c.udm_id, L.c.entity).where(L.c.synapse == synapse, L.c.ext_table == table)
    found = session.select_in(stmt, L.c.ext_id, list(external_ids))
    ext = {r.udm_id: (table, r.ext_id) for r in found if r.entity == entity}
    rows = get_rows(session, batch.info, ext.keys()).values()
    deleted = _delete_rows(batch, rows, synapse, run_id, ext)
    batch.flush()
    _sync_links(session, synapse, entity, {k: batch.rows[k]["udm_version"] for k in deleted})
    return deleted


def _sync_links(session: Session, synapse: str, entity: str, versions: Mapping[str, int]) -> None:
    # The delete came from this synapse, so its row is in sync with the (deleted) record.
    if not versions:
        return
    stmt = (
        sa.update(L)
        .where(L.c.synapse == synapse, L.c.entity == entity, L.c.udm_id == sa.bindparam("b_udm_id"))
        .values(synced_version=sa.bindparam("b_version"), verified_version=sa.bindparam("b_version"))
    )
    session.conn.execute(stmt, [{"b_udm_id": k, "b_version": v} for k, v in versions.items()])
