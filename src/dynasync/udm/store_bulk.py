"""Bulk writes straight to the DB-API ``executemany`` with per-column conversions computed once per call.

SQLAlchemy's per-value bind processing costs more than the database itself on pages of 5,000 wide rows;
these helpers convert only the column types the driver cannot take as they are.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from dynasync.udm.store_codec import UdmDecimal, UtcDateTime
from dynasync.udm.store_session import Session

Converter = Callable[[Any], Any] | None


def _sqlite_datetime() -> Callable[[Any], Any]:
    # The same text SQLAlchemy's SQLite DATETIME type writes, so both paths read back alike. Rows of a page
    # share a few timestamp objects (the page's "now"), so each distinct object is formatted once.
    memo: dict[int, tuple[dt.datetime, str]] = {}

    def convert(value: dt.datetime) -> str:
        hit = memo.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
        text = value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
        memo[id(value)] = (value, text)
        return text

    return convert


def _sqlite_date(value: dt.date) -> str:
    return value.isoformat()


def converter(column: sa.Column[Any], dialect: str) -> Converter:
    """Return the conversion a column's values need before the driver sees them (None: none)."""
    if dialect != "sqlite":
        return None  # psycopg adapts aware datetimes, Decimal, date and bool natively
    type_ = column.type
    if isinstance(type_, UtcDateTime):
        return _sqlite_datetime()
    if isinstance(type_, UdmDecimal):
        return float
    if isinstance(type_, sa.Date):
        return _sqlite_date
    return None


def _placeholder(session: Session) -> str:
    return "?" if session.dialect == "sqlite" else "%s"


def _quote(session: Session, name: str) -> str:
    return session.conn.dialect.identifier_preparer.quote(name)


def _tuples(
    rows: Sequence[Mapping[str, Any]], names: Sequence[str], convs: Sequence[Converter]
) -> list[Sequence[Any]]:
    getter = operator.itemgetter(*names)
    if len(names) == 1:
        return [(getter(row),) for row in rows]
    converting = [(i, c) for i, c in enumerate(convs) if c is not None]
    if not converting:
        return [getter(row) for row in rows]
    out: list[Sequence[Any]] = []
    for row in rows:
        values = list(getter(row))
        for i, conv in converting:
            value = values[i]
            if value is not None:
                values[i] = conv(value)
        out.append(tuple(values))
    return out


def insert_rows(
    session: Session, table: sa.Table, names: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert ``rows`` (mappings holding at least ``names``) with one executemany."""
    if not rows:
        return
    cols = [table.c[n] for n in names]
    convs = [converter(c, session.dialect) for c in cols]
    if session.dialect == "postgresql":
        _copy(session, table.name, names, _tuples(rows, names, convs))
        return
    ph = _placeholder(session)
    sql = (
        f"INSERT INTO {_quote(session, table.name)} ({', '.join(_quote(session, n) for n in names)}) "
        f"VALUES ({', '.join(ph for _ in names)})"
    )
    session.conn.exec_driver_sql(sql, _tuples(rows, names, convs))


def update_rows(
    session: Session,
    table: sa.Table,
    names: Sequence[str],
    keys: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
) -> None:
    """Update columns ``names`` of the rows identified by ``keys`` with one executemany."""
    if not rows:
        return
    ph = _placeholder(session)
    all_names = [*names, *keys]
    convs = [converter(table.c[n], session.dialect) for n in all_names]
    if session.dialect == "postgresql":
        _update_via_copy(session, table, names, keys, _tuples(rows, all_names, convs))
        return
    sql = (
        f"UPDATE {_quote(session, table.name)} SET {', '.join(f'{_quote(session, n)} = {ph}' for n in names)} "
        f"WHERE {' AND '.join(f'{_quote(session, k)} = {ph}' for k in keys)}"
    )
    session.conn.exec_driver_sql(sql, _tuples(rows, all_names, convs))


def _copy(session: Session, table_name: str, names: Sequence[str], data: Sequence[Sequence[Any]]) -> None:
    # COPY is several times faster than pipelined INSERTs; it runs on this transaction's own connection.
    raw = session.conn.connection.driver_connection
    assert raw is not None  # an open SQLAlchemy connection always holds its driver connection
    columns = ", ".join(_quote(session, n) for n in names)
    with raw.cursor() as cur, cur.copy(f"COPY {_quote(session, table_name)} ({columns}) FROM STDIN") as copy:
        for row in data:
            copy.write_row(row)


def _update_via_copy(
    session: Session,
    table: sa.Table,
    names: Sequence[str],
    keys: Sequence[str],
    data: Sequence[Sequence[Any]],
) -> None:
    # COPY the new values into a temporary table typed like the target, then one UPDATE ... FROM joins them.
    global _temp_counter
    _temp_counter += 1
    temp = f"ds_bulk_{_temp_counter}"
    target = _quote(session, table.name)
    all_names = [*names, *keys]
    cols = ", ".join(_quote(session, n) for n in all_names)
    session.conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {temp} ON COMMIT DROP AS SELECT {cols} FROM {target} WITH NO DATA"
    )
    _copy(session, temp, all_names, data)
    sets = ", ".join(f"{_quote(session, n)} = s.{_quote(session, n)}" for n in names)
    where = " AND ".join(f"t.{_quote(session, k)} = s.{_quote(session, k)}" for k in keys)
    session.conn.exec_driver_sql(f"UPDATE {target} AS t SET {sets} FROM {temp} AS s WHERE {where}")
    session.conn.exec_driver_sql(f"DROP TABLE {temp}")


_temp_counter = 0
