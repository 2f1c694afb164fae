"""ID links between external rows and UDM records, with the hashes and versions used to recognise echoes."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from dynasync.errors import StoreError
from dynasync.udm import store_bulk, store_log
from dynasync.udm import store_tables as t
from dynasync.udm.store_schema import hash_values
from dynasync.udm.store_session import Session, chunks
from dynasync.udm.store_types import CREATED_STATE, Link, WrittenRow

L = t.links


def to_link(row: Mapping[Any, Any]) -> Link:
    """Turn a ``ds_links`` row into a :class:`Link`."""
    return Link(
        synapse=row["synapse"],
        table=row["ext_table"],
        external_id=row["ext_id"],
        entity=row["entity"],
        udm_id=row["udm_id"],
        last_read_hash=row["last_read_hash"],
        last_written_hash=row["last_written_hash"],
        external_version=row["external_version"],
        synced_version=row["synced_version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _key(synapse: str, table: str, external_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(L.c.synapse == synapse, L.c.ext_table == table, L.c.ext_id == external_id)


def get_link(session: Session, synapse: str, table: str, external_id: str) -> Link | None:
    """Return the link of one external row, or None."""
    return _one(session, _stored_link(session, synapse, table, external_id))


def _stored_link(session: Session, synapse: str, table: str, external_id: str) -> Link | None:
    """The link of one external row as stored (its read state may be ``CREATED_STATE``), by plain SQL."""
    return _stored_one(session, ("synapse", "ext_table", "ext_id"), (synapse, table, external_id))


def _stored_one(session: Session, columns: Sequence[str], values: Sequence[str]) -> Link | None:
    """The link whose ``columns`` equal ``values`` (a unique key), as stored."""
    ph = "?" if session.dialect == "sqlite" else "%s"
    where = " AND ".join(f"{name} = {ph}" for name in columns)
    rows = session.conn.exec_driver_sql(
        f"SELECT {_COLUMNS} FROM ds_links WHERE {where}", tuple(values)
    ).fetchall()
    return next(_links(session, rows), None)


# Column order of the plain-SQL link reads below (that of :class:`Link`).
_COLUMNS = (
    "synapse, ext_table, ext_id, entity, udm_id, last_read_hash, last_written_hash, external_version, "
    "synced_version, created_at, updated_at"
)


def _time_reader(session: Session) -> Callable[[Any], dt.datetime | None]:
    """Turn a driver's timestamp into an aware UTC datetime, as ``UtcDateTime`` reads it (memoised per call).

    SQLite hands back the stored text (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC); psycopg an aware datetime. The
    links of a page share a few timestamps, so each distinct one is converted once.
    """
    memo: dict[Any, dt.datetime] = {}
    utc = dt.UTC

    def read(value: Any) -> dt.datetime | None:
        if value is None:
            return None
        hit = memo.get(value)
        if hit is None:
            parsed = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
            hit = parsed.replace(tzinfo=utc) if parsed.tzinfo is None else parsed.astimezone(utc)
            memo[value] = hit
        return hit

    return read


def _links(session: Session, rows: Iterable[Sequence[Any]]) -> Iterator[Link]:
    """Turn plain ``_COLUMNS`` rows into links (what ``to_link`` does with SQLAlchemy's typed rows, faster)."""
    read = _time_reader(session)
    for r in rows:
        yield Link(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], read(r[9]), read(r[10]))


def resolved(session: Session, links: list[Link]) -> list[Link]:
    """Hand out links made by a fast create with the read state their ``created`` log event holds.

    A missing event (the log cleared by hand) leaves no state: every field then counts as changed, which costs a
    comparison and never loses a value.
    """
    made = [lk for lk in links if lk.last_read_hash == CREATED_STATE]
    if not made:
        return links
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for lk in made:
        groups.setdefault((lk.synapse, lk.entity), []).append((lk.udm_id, lk.external_id))
    found: dict[tuple[str, str, str, str], str] = {}
    for (synapse, entity), records in groups.items():
        for (udm_id, ext_id), text in store_log.created_states(session, synapse, entity, records).items():
            found[(synapse, entity, udm_id, ext_id)] = text
    return [
        dataclasses.replace(lk, last_read_hash=found.get((lk.synapse, lk.entity, lk.udm_id, lk.external_id)))
        if lk.last_read_hash == CREATED_STATE
        else lk
        for lk in links
    ]


def _one(session: Session, link: Link | None) -> Link | None:
    return None if link is None else resolved(session, [link])[0]


def get_links(
    session: Session, synapse: str, table: str, external_ids: Iterable[str], *, read_state: bool = True
) -> dict[str, Link]:
    """Return the links of many external rows (by external id), looked up with one plain IN query per chunk.

    Read states are resolved (see :func:`resolved`) unless ``read_state`` is False.
    """
    ph = "?" if session.dialect == "sqlite" else "%s"
    sql = f"SELECT {_COLUMNS} FROM ds_links WHERE synapse = {ph} AND ext_table = {ph} AND ext_id IN ({{in}})"
    rows = store_bulk.select_in(session, sql, (synapse, table), external_ids)
    links = list(_links(session, rows))
    return {lk.external_id: lk for lk in (resolved(session, links) if read_state else links)}


LinkState = tuple[str, str | None, str | None, str | None, int | None, int | None, int | None]
"""What a page apply needs of a link: (udm_id, last_read_hash, last_written_hash, external_version,
synced_version, the linked record's udm_version in the entity's table or None when it has no such record,
verified_version)."""


def page_link_states(
    session: Session,
    synapse: str,
    table: str,
    entity: str,
    record_table: sa.Table,
    external_ids: Iterable[str],
    resolve: Container[str] | None = None,
) -> dict[str, LinkState]:
    """Return the links of a page's external rows with their records' versions, by external id (plain SQL).

    Read states are handed out as :func:`resolved` does, for the external ids in ``resolve`` (all when None); the
    others may keep ``CREATED_STATE``, which equals no hash.
    """
    quote = session.conn.dialect.identifier_preparer.quote
    ph = "?" if session.dialect == "sqlite" else "%s"
    sql = (
        "SELECT l.ext_id, l.udm_id, l.last_read_hash, l.last_written_hash, l.external_version, "
        f"l.synced_version, r.udm_version, l.verified_version FROM ds_links AS l "
        f"LEFT JOIN {quote(record_table.name)} AS r "
        f"ON r.udm_id = l.udm_id WHERE l.synapse = {ph} AND l.ext_table = {ph} AND l.ext_id IN ({{in}})"
    )
    states: dict[str, LinkState] = {
        row[0]: (row[1], row[2], row[3], row[4], row[5], row[6], row[7])
        for row in store_bulk.select_in(session, sql, (synapse, table), external_ids)
    }
    made = [
        (state[0], ext_id)
        for ext_id, state in states.items()
        if state[1] == CREATED_STATE and (resolve is None or ext_id in resolve)
    ]
    if made:
        found = store_log.created_states(session, synapse, entity, made)
        for udm_id, ext_id in made:
            state = states[ext_id]
            states[ext_id] = (udm_id, found.get((udm_id, ext_id)), *state[2:])
    return states


def link_for_record(session: Session, synapse: str, entity: str, udm_id: str) -> Link | None:
    """Return the link of a UDM record to one synapse, or None."""
    return _one(session, _stored_record_link(session, synapse, entity, udm_id))


def _stored_record_link(session: Session, synapse: str, entity: str, udm_id: str) -> Link | None:
    """The link of a UDM record to one synapse as stored (see :func:`_stored_link`)."""
    return _stored_one(session, ("entity", "udm_id", "synapse"), (entity, udm_id, synapse))


def links_for_record(session: Session, entity: str, udm_id: str) -> list[Link]:
    """Return every link of a UDM record (one per synapse at most), ordered by synapse."""
    stmt = sa.select(L).where(L.c.entity == entity, L.c.udm_id == udm_id).order_by(L.c.synapse)
    return resolved(session, [to_link(row) for row in session.conn.execute(stmt).mappings()])


def get_links_for_records(
    session: Session, synapse: str, entity: str, udm_ids: Iterable[str]
) -> dict[str, Link]:
    """Return the links of many UDM records to one synapse (by UDM id), one plain IN query per chunk."""
    ph = "?" if session.dialect == "sqlite" else "%s"
    sql = f"SELECT {_COLUMNS} FROM ds_links WHERE synapse = {ph} AND entity = {ph} AND udm_id IN ({{in}})"
    rows = store_bulk.select_in(session, sql, (synapse, entity), udm_ids)
    return {lk.udm_id: lk for lk in resolved(session, list(_links(session, rows)))}


def taken_records(session: Session, synapse: str, entity: str, udm_ids: Iterable[str]) -> set[str]:
    """Return which of ``udm_ids`` already link to a row of ``synapse``."""
    stmt = sa.select(L.c.udm_id).where(L.c.synapse == synapse, L.c.entity == entity)
    return {row[0] for row in session.select_in(stmt, L.c.udm_id, udm_ids)}


def iter_links(session: Session, synapse: str, table: str, batch_size: int = 5000) -> Iterator[Link]:
    """Stream every link of one external table (for delete reconciliation after a full load)."""
    ph = "?" if session.dialect == "sqlite" else "%s"
    sql = f"SELECT {_COLUMNS} FROM ds_links WHERE synapse = {ph} AND ext_table = {ph} ORDER BY ext_id"
    # yield_per streams: a server-side cursor on PostgreSQL, chunked fetches on SQLite.
    result = session.conn.exec_driver_sql(sql, (synapse, table), execution_options={"yield_per": batch_size})
    try:
        for part in result.partitions(batch_size):
            yield from resolved(session, list(_links(session, part)))
    finally:
        result.close()


def _check_free(
    session: Session, synapse: str, table: str, external_id: str, entity: str, udm_id: str
) -> None:
    # Checked before inserting: a failed INSERT would abort the whole PostgreSQL transaction.
    # (Read states are not needed here, so links are taken as stored.)
    existing = _stored_link(session, synapse, table, external_id)
    if existing is not None:
        raise StoreError(
            f"{synapse} {table} {external_id} is already linked to {existing.entity} {existing.udm_id}",
            remedy="Unlink it first.",
        )
    other = _stored_record_link(session, synapse, entity, udm_id)
    if other is not None:
        raise StoreError(
            f"{entity} {udm_id} is already linked to {synapse} {other.table} {other.external_id}; "
            "a UDM record links to at most one row per synapse",
            remedy="Unlink it first.",
        )


def link(
    session: Session,
    synapse: str,
    table: str,
    external_id: str,
    entity: str,
    udm_id: str,
    *,
    external_version: str | None = None,
    read_hash: str | None = None,
    synced_version: int | None = None,
) -> Link:
    """Create a link; StoreError when the external row or the (synapse, UDM record) pair is already linked."""
    session.info(entity)  # the entity must exist
    _check_free(session, synapse, table, external_id, entity, udm_id)
    now = session.now()
    values = {
        "synapse": synapse,
        "ext_table": table,
        "ext_id": external_id,
        "entity": entity,
        "udm_id": udm_id,
        "last_read_hash": read_hash,
        "last_written_hash": None,
        "external_version": external_version,
        "synced_version": synced_version,
        "created_at": now,
        "updated_at": now,
    }
    session.conn.execute(sa.insert(L).values(**values))
    return to_link(values)


def unlink(session: Session, synapse: str, table: str, external_id: str) -> bool:
    """Remove a link; return whether one existed."""
    return bool(session.conn.execute(sa.delete(L).where(_key(synapse, table, external_id))).rowcount)


def unlink_many(session: Session, synapse: str, table: str, external_ids: Iterable[str]) -> int:
    """Remove the links of these external ids (a few statements, however many); return how many existed."""
    removed = 0
    for part in chunks(list(dict.fromkeys(external_ids))):
        stmt = sa.delete(L).where(L.c.synapse == synapse, L.c.ext_table == table, L.c.ext_id.in_(part))
        removed += int(session.conn.execute(stmt).rowcount)
    return removed


def mark_written(
    session: Session,
    synapse: str,
    table: str,
    external_id: str,
    *,
    entity: str,
    udm_id: str,
    values: Mapping[str, Any],
    udm_version: int,
    external_version: str | None = None,
    hash: str | None = None,
    read_hash: str | None = None,
) -> Link:
    """Record a successful write-back: link (created when absent), written hash, external and synced version.

    ``read_hash``, when given, also replaces ``last_read_hash`` (the caller now knows the external row's state).
    """
    digest = hash if hash is not None else hash_values(session, entity, values)
    row = WrittenRow(
        external_id, udm_id, udm_version, digest, external_version=external_version, read_hash=read_hash
    )
    mark_written_many(session, synapse, table, entity, [row])
    found = get_link(session, synapse, table, external_id)
    assert found is not None  # written just above in this transaction
    return found


def mark_written_many(
    session: Session, synapse: str, table: str, entity: str, rows: Sequence[WrittenRow]
) -> None:
    """Record many successful write-backs at once: what :func:`mark_written` does per row, in a few statements.

    Links still missing (rows the write-back created) are made one by one, with their checks; the rest are
    updated by one bulk statement.
    """
    if not rows:
        return
    ph = "?" if session.dialect == "sqlite" else "%s"
    sql = f"SELECT ext_id, entity, udm_id FROM ds_links WHERE synapse = {ph} AND ext_table = {ph} AND ext_id IN ({{in}})"
    stored = {
        r[0]: (r[1], r[2])
        for r in store_bulk.select_in(session, sql, (synapse, table), [w.external_id for w in rows])
    }
    for w in rows:
        found = stored.get(w.external_id)
        if found is None:
            link(session, synapse, table, w.external_id, entity, w.udm_id)
            stored[w.external_id] = (entity, w.udm_id)
        elif found != (entity, w.udm_id):
            raise StoreError(
                f"{synapse} {table} {w.external_id} is linked to {found[0]} {found[1]}, not {entity} {w.udm_id}"
            )
    now: Any = session.now()
    for _name, conv in store_bulk.driver_converters(session, L, ["updated_at"]):
        now = conv(now)
    # COALESCE keeps the stored external version, read state and verified version where the write did not tell
    # them (only a complete write verifies the row).
    update = (
        f"UPDATE ds_links SET last_written_hash = {ph}, synced_version = {ph}, updated_at = {ph}, "
        f"external_version = COALESCE({ph}, external_version), last_read_hash = COALESCE({ph}, last_read_hash), "
        f"verified_version = COALESCE({ph}, verified_version) "
        f"WHERE synapse = {ph} AND ext_table = {ph} AND ext_id = {ph}"
    )
    params = [
        (w.hash, w.udm_version, now, w.external_version, w.read_hash, w.udm_version if w.complete else None,
         synapse, table, w.external_id)
        for w in rows
    ]  # fmt: skip
    session.conn.exec_driver_sql(update, params)


def mark_verified(session: Session, synapse: str, entity: str, versions: Mapping[str, int]) -> None:
    """Set ``verified_version`` of the records' links to one synapse (one bulk statement)."""
    if not versions:
        return
    ph = "?" if session.dialect == "sqlite" else "%s"
    session.conn.exec_driver_sql(
        f"UPDATE ds_links SET verified_version = {ph} WHERE synapse = {ph} AND entity = {ph} AND udm_id = {ph}",
        [(version, synapse, entity, udm_id) for udm_id, version in versions.items()],
    )
