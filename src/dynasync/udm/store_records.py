"""Reading UDM records: by id, by match key, counts, and streamed iteration (all records or changed since a version)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from dynasync.errors import StoreError
from dynasync.udm import store_bulk
from dynasync.udm import store_codec as codec
from dynasync.udm import store_tables as t
from dynasync.udm.model import UdmRecord
from dynasync.udm.store_schema import coerce_values
from dynasync.udm.store_session import Session


def to_record(info: t.EntityInfo, row: Mapping[Any, Any]) -> UdmRecord:
    """Turn a table row (mapping by column) into a :class:`UdmRecord` with the entity's current fields."""
    values = {name: row[name] for name in info.entity.fields}
    return UdmRecord(
        entity=info.entity.name,
        id=row["udm_id"],
        values=values,
        deleted=bool(row["udm_deleted"]),
        version=int(row["udm_version"]),
        created_at=row["udm_created_at"],
        updated_at=row["udm_updated_at"],
        field_updated_at=codec.LazyFieldTimes(row["udm_field_times"], values),
    )


def get(session: Session, entity: str, udm_id: str) -> UdmRecord | None:
    """Return one record (deleted ones too) or None."""
    info = session.info(entity)
    row = session.conn.execute(sa.select(info.table).where(info.table.c.udm_id == udm_id)).mappings().first()
    return None if row is None else to_record(info, row)


def get_rows(session: Session, info: t.EntityInfo, udm_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Return raw rows (as mutable dicts by column) for the given ids, fetched in IN (...) chunks."""
    out: dict[str, dict[str, Any]] = {}
    for row in session.select_in(sa.select(info.table), info.table.c.udm_id, udm_ids):
        data = dict(row._mapping)
        out[data["udm_id"]] = data
    return out


def get_many(session: Session, entity: str, udm_ids: Iterable[str]) -> dict[str, UdmRecord]:
    """Return the records found among ``udm_ids``, by id."""
    info = session.info(entity)
    return {k: to_record(info, v) for k, v in get_rows(session, info, udm_ids).items()}


def match_key_of(
    info: t.EntityInfo, values: Mapping[str, Any], fields: Sequence[str]
) -> tuple[Any, ...] | None:
    """Return the normalised match key of canonical ``values`` (None when a key field is missing or empty)."""
    key: list[Any] = []
    for name in fields:
        value = values.get(name)
        if value is None or value == "":
            return None
        key.append(
            value.lower() if isinstance(value, str) and t.is_textual(info.entity.fields[name]) else value
        )
    return tuple(key)


def find_candidates(
    session: Session, info: t.EntityInfo, keys: Iterable[tuple[Any, ...]], fields: Sequence[str]
) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    """Return live rows per match key among ``keys``; each list is ordered oldest record first.

    One plain query finds the ids of live records whose first key field matches (lower() for text, served by
    the match-key index; on SQLite the store registers a Unicode-aware lower()); only those rows are loaded,
    and Python checks the full key. A first load, where nothing matches, costs that one query.
    """
    wanted = set(keys)
    if not wanted:
        return {}
    first = fields[0]
    quote = session.conn.dialect.identifier_preparer.quote
    column = quote(first)
    expr = f"lower({column})" if t.is_textual(info.entity.fields[first]) else column
    firsts = [k[0] for k in wanted]
    converters = store_bulk.driver_converters(session, info.table, [first])
    if converters:
        conv = converters[0][1]
        firsts = [conv(v) for v in firsts]
    sql = f"SELECT udm_id FROM {quote(info.table.name)} WHERE NOT udm_deleted AND {expr} IN ({{in}})"
    ids = [row[0] for row in store_bulk.select_in(session, sql, (), firsts)]
    found: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for data in get_rows(session, info, ids).values():
        key = match_key_of(info, data, fields)
        if key is not None and key in wanted and not data["udm_deleted"]:
            found.setdefault(key, []).append(data)
    for rows in found.values():
        rows.sort(key=lambda r: (r["udm_created_at"], r["udm_version"]))
    return found


def find_by_match_key(
    session: Session, entity: str, values: Mapping[str, Any], fields: Sequence[str] | None = None
) -> UdmRecord | None:
    """Return the oldest live record whose match-key fields equal ``values`` (text case-insensitively)."""
    info = session.info(entity)
    keys = tuple(fields) if fields is not None else info.entity.match_keys
    if not keys:
        raise StoreError(
            f"UDM entity {entity} has no match keys", remedy="Pass fields= or configure match_keys."
        )
    for name in keys:
        if name not in info.entity.fields:
            raise StoreError(f"UDM entity {entity} has no field {name!r}")
    canonical = coerce_values(info, {k: values.get(k) for k in keys})
    key = match_key_of(info, canonical, keys)
    if key is None:
        return None
    rows = find_candidates(session, info, [key], keys).get(key, [])
    return to_record(info, rows[0]) if rows else None


def count(session: Session, entity: str, *, include_deleted: bool = False) -> int:
    """Return how many records the entity holds (live only unless ``include_deleted``)."""
    info = session.info(entity)
    stmt = sa.select(sa.func.count()).select_from(info.table)
    if not include_deleted:
        stmt = stmt.where(info.table.c.udm_deleted.is_(False))
    return int(session.conn.execute(stmt).scalar_one())


def max_version(session: Session) -> int:
    """Return the highest UDM version handed out so far (store-wide)."""
    stmt = sa.select(t.sequence.c.value).where(t.sequence.c.name == t.VERSION_SEQUENCE)
    return int(session.conn.execute(stmt).scalar_one())


def _stream(
    session: Session, info: t.EntityInfo, stmt: sa.Select[Any], batch_size: int
) -> Iterator[UdmRecord]:
    # yield_per streams: a server-side cursor on PostgreSQL, chunked fetches on SQLite.
    result = session.conn.execute(stmt.execution_options(yield_per=batch_size))
    try:
        for part in result.mappings().partitions(batch_size):
            for row in part:
                yield to_record(info, row)
    finally:
        result.close()


def iter_records(
    session: Session, entity: str, *, include_deleted: bool = False, batch_size: int = 1000
) -> Iterator[UdmRecord]:
    """Stream every record of an entity ordered by UDM id."""
    info = session.info(entity)
    stmt = sa.select(info.table).order_by(info.table.c.udm_id)
    if not include_deleted:
        stmt = stmt.where(info.table.c.udm_deleted.is_(False))
    return _stream(session, info, stmt, batch_size)


def iter_changed(
    session: Session,
    entity: str,
    *,
    after_version: int,
    destination: str | None = None,
    batch_size: int = 1000,
) -> Iterator[UdmRecord]:
    """Stream records (deleted ones too) with ``udm_version > after_version``, ordered by version.

    With ``destination``, skip records whose link to that synapse has ``verified_version = udm_version``: at
    this very version the synapse's row was known to hold every value its mapping writes (a record created from
    the row, a change read from it onto a verified record, a complete write, a delete it made, or a check).
    """
    info = session.info(entity)
    tbl = info.table
    stmt = sa.select(tbl).where(tbl.c.udm_version > after_version).order_by(tbl.c.udm_version)
    if destination is not None:
        lk = t.links
        stmt = stmt.outerjoin(
            lk,
            sa.and_(
                lk.c.synapse == destination, lk.c.entity == info.entity.name, lk.c.udm_id == tbl.c.udm_id
            ),
        ).where(sa.or_(lk.c.verified_version.is_(None), lk.c.verified_version != tbl.c.udm_version))
    return _stream(session, info, stmt, batch_size)
