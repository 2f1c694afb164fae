"""The transactions log: one compact row per record event (fields JSON-encoded), bulk-inserted and searchable."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from dynasync.errors import StoreError
from dynasync.udm import store_bulk
from dynasync.udm import store_codec as codec
from dynasync.udm import store_tables as t
from dynasync.udm.store_session import Session
from dynasync.udm.store_types import FieldChange, FieldLog, LogEvent, WriteLogEntry

G = t.log
_COLUMNS = [c.name for c in G.columns if c.name != "id"]


def event(
    session: Session,
    *,
    run_id: str | None,
    direction: str,
    synapse: str | None,
    table: str | None,
    external_id: str | None,
    entity: str,
    udm_id: str,
    action: str,
    outcome: str | None,
    fields: Sequence[Sequence[Any]],
) -> dict[str, Any]:
    """Build one log row; ``fields`` items are ``[field, source, old, new, decision]``."""
    return {
        "run_id": run_id,
        "at": session.now(),
        "direction": direction,
        "synapse": synapse,
        "ext_table": table,
        "ext_id": external_id,
        "entity": entity,
        "udm_id": udm_id,
        "action": action,
        "outcome": outcome,
        "fields": codec.dumps_lenient(fields),
    }


def change_fields(changes: Sequence[FieldChange]) -> list[list[Any]]:
    """Encode field changes as log field items."""
    return [[c.field, c.source, c.old, c.new, c.decision] for c in changes]


def created_fields(values: Mapping[str, Any]) -> list[list[Any]]:
    """Encode the non-null values of a created record as log field items."""
    return [[k, v, None, v, "create"] for k, v in values.items() if v is not None]


def insert_events(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Bulk-insert log rows (one executemany)."""
    store_bulk.insert_rows(session, G, _COLUMNS, rows)


def log_writes(session: Session, run_id: str | None, entries: Sequence[WriteLogEntry]) -> None:
    """Log write-backs: per record, the values written to the destination and the outcome."""
    rows = []
    for e in entries:
        info = session.info(e.entity)
        values = {k: _loggable(info, k, v) for k, v in e.values.items()}
        fields = [[k, None, None, v, "write"] for k, v in sorted(values.items())]
        rows.append(
            event(
                session,
                run_id=run_id,
                direction="out",
                synapse=e.synapse,
                table=e.table,
                external_id=e.external_id,
                entity=e.entity,
                udm_id=e.udm_id,
                action=e.action,
                outcome=e.outcome,
                fields=fields,
            )
        )
    insert_events(session, rows)


def _loggable(info: t.EntityInfo, name: str, value: Any) -> Any:
    # Written values are logged in UDM form when they fit the field, as given otherwise (the log never fails).
    fn = info.coercers.get(name)
    if fn is None:
        return value
    try:
        return fn(value)
    except (ValueError, TypeError, ArithmeticError):
        return value


def _to_event(row: Mapping[Any, Any]) -> LogEvent:
    items = codec.loads(row["fields"]) or []
    fields = tuple(
        FieldLog(field=f, source=src, old=old, new=new, winning=new, decision=decision)
        for f, src, old, new, decision in items
    )
    return LogEvent(
        id=int(row["id"]),
        run_id=row["run_id"],
        at=row["at"],
        direction=row["direction"],
        synapse=row["synapse"],
        table=row["ext_table"],
        external_id=row["ext_id"],
        entity=row["entity"],
        udm_id=row["udm_id"],
        action=row["action"],
        outcome=row["outcome"],
        fields=fields,
    )


def search_log(
    session: Session,
    *,
    entity: str | None = None,
    udm_id: str | None = None,
    synapse: str | None = None,
    external_id: str | None = None,
    run_id: str | None = None,
    limit: int = 100,
) -> list[LogEvent]:
    """Return log events newest first, filtered by UDM record, (synapse, external id) and/or run."""
    if udm_id is not None and entity is None:
        raise StoreError("search_log by udm_id needs the entity too (it is part of the index)")
    if limit <= 0:
        raise StoreError("search_log limit must be positive")
    stmt = sa.select(G).order_by(G.c.id.desc()).limit(limit)
    if entity is not None:
        stmt = stmt.where(G.c.entity == entity)
    if udm_id is not None:
        stmt = stmt.where(G.c.udm_id == udm_id)
    if synapse is not None:
        stmt = stmt.where(G.c.synapse == synapse)
    if external_id is not None:
        stmt = stmt.where(G.c.ext_id == external_id)
    if run_id is not None:
        stmt = stmt.where(G.c.run_id == run_id)
    return [_to_event(row) for row in session.conn.execute(stmt).mappings()]
