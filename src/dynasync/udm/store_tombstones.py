"""Tombstones: which synapse deleted the row of which UDM record, so the write-back does not bring it back.

A source delete removes the row's link; when the UDM record lives on (another synapse still has it and edits
it), nothing else would remember that this synapse deleted it, and the write-back would create the row again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from dynasync.udm import store_tables as t
from dynasync.udm.store_session import Session, chunks

T = t.tombstones


def add_tombstones(
    session: Session, synapse: str, table: str, entity: str, deleted: Iterable[tuple[str, str]]
) -> int:
    """Remember that ``synapse`` deleted these (udm_id, external id) rows of ``table``; return how many.

    A record deleted again (after a re-create) gets its tombstone renewed.
    """
    pairs = dict(deleted)  # udm_id -> external id; one tombstone per record and table
    if not pairs:
        return 0
    now = session.now()
    drop_tombstones(session, synapse, table, entity, list(pairs))
    rows: list[dict[str, Any]] = [
        {"synapse": synapse, "ext_table": table, "entity": entity, "udm_id": udm_id, "ext_id": ext_id,
         "deleted_at": now}
        for udm_id, ext_id in pairs.items()
    ]  # fmt: skip
    session.conn.execute(sa.insert(T), rows)
    return len(rows)


def tombstoned(
    session: Session, synapse: str, table: str, entity: str, udm_ids: Iterable[str]
) -> dict[str, str]:
    """Return udm_id -> deleted external id for the given records ``synapse`` deleted from ``table``."""
    stmt = sa.select(T.c.udm_id, T.c.ext_id).where(
        T.c.synapse == synapse, T.c.ext_table == table, T.c.entity == entity
    )
    return {r.udm_id: r.ext_id for r in session.select_in(stmt, T.c.udm_id, udm_ids)}


def drop_tombstones(session: Session, synapse: str, table: str, entity: str, udm_ids: Sequence[str]) -> int:
    """Forget tombstones (the row is re-created, or the record was deleted for good); return how many."""
    removed = 0
    for part in chunks(list(dict.fromkeys(udm_ids))):
        stmt = sa.delete(T).where(
            T.c.synapse == synapse, T.c.ext_table == table, T.c.entity == entity, T.c.udm_id.in_(part)
        )
        removed += int(session.conn.execute(stmt).rowcount)
    return removed
