"""Bulk SQL for pages of rows: DB-API ``executemany`` on SQLite, binary COPY on PostgreSQL, and IN lookups.

SQLAlchemy's per-value bind processing costs more than the database itself on pages of 5,000 wide rows; these
helpers take rows as tuples, convert only the column types the driver cannot take as they are, and keep the SQL
text of each (table, columns) pair once built.
"""

from __future__ import annotations

import datetime as dt
import itertools
import operator
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from dynasync.udm.store_codec import UdmDecimal, UtcDateTime
from dynasync.udm.store_session import CHUNK, Session, chunks

Converter = Callable[[Any], Any]

# Values per IN (...) statement on SQLite, which allows 32,766 parameters since 3.32 (999 before);
# PostgreSQL takes one array parameter instead.
SQLITE_IN_CHUNK = 5000 if sqlite3.sqlite_version_info >= (3, 32) else CHUNK


SQLITE_DATETIME_TEXT = "%04d-%02d-%02d %02d:%02d:%02d.%06d"
"""The text SQLAlchemy's SQLite DATETIME type writes (``isoformat(" ", "microseconds")``, formatted faster)."""


def sqlite_datetime_text(value: dt.datetime) -> str:
    """Return the text SQLAlchemy's SQLite DATETIME type writes for an aware datetime: its UTC wall time.

    Both write paths use it, so that rows read back alike. Generated row code inlines its first branch.
    """
    if value.tzinfo is not dt.UTC:
        value = value.astimezone(dt.UTC)
    return SQLITE_DATETIME_TEXT % (
        value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond
    )  # fmt: skip


def _sqlite_datetime() -> Converter:
    # Rows of a page share a few timestamp objects (the page's "now"), so each distinct object is formatted
    # once per call.
    memo: dict[int, tuple[dt.datetime, str]] = {}

    def convert(value: dt.datetime) -> str:
        hit = memo.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
        text = sqlite_datetime_text(value)
        memo[id(value)] = (value, text)
        return text

    return convert


def _sqlite_date() -> Converter:
    return dt.date.isoformat


def _sqlite_float() -> Converter:
    return float


def _sqlite_int() -> Converter:
    return int


# (what makes the conversion, the types a value already in the driver's form has)
_Factory = tuple[Callable[[], Converter], tuple[type[Any], ...]]
_TEXT_OR_FLOAT = (str, float)


def _converter_factory(column: sa.Column[Any], dialect: str) -> _Factory | None:
    """Return what makes the conversion a column's values need before the driver sees them (None: none)."""
    if dialect != "sqlite":
        return None  # psycopg adapts aware datetimes, Decimal, date and bool natively
    type_ = column.type
    if isinstance(type_, UtcDateTime):
        return _sqlite_datetime, _TEXT_OR_FLOAT
    if isinstance(type_, UdmDecimal):
        return _sqlite_float, _TEXT_OR_FLOAT
    if isinstance(type_, sa.Date):
        return _sqlite_date, _TEXT_OR_FLOAT
    if isinstance(type_, sa.Boolean):
        # sqlite3 binds a bool as the integer it is, but only after looking for an adapter (several times the
        # cost of binding an int); the stored value is the same 0 or 1.
        return _sqlite_int, (int,)
    return None


def plain_converter(column: sa.Column[Any], dialect: str) -> Converter | None:
    """Return the conversion a column's values need before the driver sees them, without a memo (None: none).

    It gives the same results as the converters of :func:`driver_converters`; generated row code binds it once
    per entity definition, so it must hold no state.
    """
    found = _converter_factory(column, dialect)
    if found is None:
        return None
    if found[0] is _sqlite_datetime:
        return sqlite_datetime_text
    return found[0]()


def _pg_type(type_: Any) -> str | None:
    """PostgreSQL type name for binary COPY (text for every character type: same wire format)."""
    if isinstance(type_, UtcDateTime):
        return "timestamptz"
    if isinstance(type_, UdmDecimal):
        return "numeric"
    checks: list[tuple[type[Any], str]] = [
        (sa.Boolean, "bool"),
        (sa.BigInteger, "int8"),
        (sa.SmallInteger, "int2"),
        (sa.Integer, "int4"),
        (sa.Double, "float8"),
        (sa.Date, "date"),
        (sa.String, "text"),  # Text and VARCHAR too
    ]
    for kind, name in checks:
        if isinstance(type_, kind) and not isinstance(type_, sa.DateTime):
            return name
    return None


@dataclass(frozen=True, slots=True)
class _Plan:
    """What one (table, columns) write needs, built once: quoted names, SQL text, conversions, COPY types."""

    table: sa.Table  # kept so that the id() key below is never reused by another table
    quoted_table: str
    quoted_names: tuple[str, ...]
    insert_sql: str
    factories: tuple[tuple[int, _Factory], ...]
    pg_types: tuple[str, ...] | None

    def converters(self) -> list[tuple[int, Converter, tuple[type[Any], ...]]]:
        """Fresh converters (their memo lives for one call), each with the types that need no conversion."""
        return [(i, make(), done) for i, (make, done) in self.factories]


_PLANS: dict[tuple[int, str, tuple[str, ...]], _Plan] = {}


def _plan(session: Session, table: sa.Table, names: Sequence[str]) -> _Plan:
    key = (id(table), session.dialect, tuple(names))
    plan = _PLANS.get(key)
    if plan is not None and plan.table is table:
        return plan
    quote = session.conn.dialect.identifier_preparer.quote
    cols = [table.c[n] for n in names]
    ph = "?" if session.dialect == "sqlite" else "%s"
    quoted = tuple(quote(n) for n in names)
    factories = tuple(
        (i, f) for i, f in ((i, _converter_factory(c, session.dialect)) for i, c in enumerate(cols)) if f
    )
    pg_types: tuple[str, ...] | None = None
    if session.dialect == "postgresql":
        found = [_pg_type(c.type) for c in cols]
        pg_types = tuple(t for t in found if t is not None) if all(found) else None
    plan = _Plan(
        table=table,
        quoted_table=quote(table.name),
        quoted_names=quoted,
        insert_sql=f"INSERT INTO {quote(table.name)} ({', '.join(quoted)}) VALUES ({', '.join(ph for _ in names)})",
        factories=factories,
        pg_types=pg_types,
    )
    if len(_PLANS) > 512:  # entities are redefined rarely; drop stale plans rather than grow forever
        _PLANS.clear()
    _PLANS[key] = plan
    return plan


def _convert(
    rows: Iterable[Sequence[Any]], converting: Sequence[tuple[int, Converter, tuple[type[Any], ...]]]
) -> list[Sequence[Any]]:
    # A value already in the driver's form (text for dates and datetimes, float for decimals, int for flags)
    # passes as is: callers may build rows that way themselves, and such rows are then passed on without a copy.
    if not converting:
        return rows if isinstance(rows, list) else list(rows)
    out: list[Sequence[Any]] = []
    append = out.append
    for row in rows:
        values: list[Any] | None = None
        for i, conv, done in converting:
            value = row[i]
            if value is not None and type(value) not in done:
                if values is None:
                    values = list(row)
                values[i] = conv(value)
        append(row if values is None else tuple(values))
    return out


def insert_tuples(
    session: Session, table: sa.Table, names: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert rows given as tuples in ``names`` order with one bulk statement.

    Values are plain Python values, or already in the driver's form (see :func:`driver_converters`).
    """
    if not rows:
        return
    plan = _plan(session, table, names)
    if session.dialect == "postgresql":
        _copy(session, plan, plan.quoted_table, rows)
        return
    session.conn.exec_driver_sql(plan.insert_sql, _convert(rows, plan.converters()))


def driver_converters(session: Session, table: sa.Table, names: Sequence[str]) -> list[tuple[str, Converter]]:
    """Return (column, conversion) for the columns whose values the driver cannot take as they are."""
    return [(names[i], conv) for i, conv, _done in _plan(session, table, names).converters()]


def insert_rows(
    session: Session, table: sa.Table, names: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert ``rows`` (mappings holding at least ``names``) with one bulk statement."""
    if not rows:
        return
    insert_tuples(session, table, names, as_tuples(rows, names))


def as_tuples(rows: Iterable[Mapping[str, Any]], names: Sequence[str]) -> list[tuple[Any, ...]]:
    """Return the ``names`` values of each mapping as a tuple."""
    getter = operator.itemgetter(*names)
    if len(names) == 1:
        return [(getter(row),) for row in rows]
    return [getter(row) for row in rows]


def update_rows(
    session: Session,
    table: sa.Table,
    names: Sequence[str],
    keys: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
) -> None:
    """Update columns ``names`` of the rows identified by ``keys`` with one bulk statement."""
    if not rows:
        return
    all_names = [*names, *keys]
    plan = _plan(session, table, all_names)
    data = as_tuples(rows, all_names)
    quote = session.conn.dialect.identifier_preparer.quote
    if session.dialect == "postgresql":
        _update_via_copy(session, plan, names, keys, data)
        return
    sql = (
        f"UPDATE {plan.quoted_table} SET {', '.join(f'{quote(n)} = ?' for n in names)} "
        f"WHERE {' AND '.join(f'{quote(k)} = ?' for k in keys)}"
    )
    session.conn.exec_driver_sql(sql, _convert(data, plan.converters()))


def _copy(session: Session, plan: _Plan, target: str, data: Sequence[Sequence[Any]]) -> None:
    # COPY is several times faster than pipelined INSERTs, and binary COPY (when every column type is known)
    # skips formatting and parsing datetimes and numerics; it runs on this transaction's own connection.
    raw = session.conn.connection.driver_connection
    assert raw is not None  # an open SQLAlchemy connection always holds its driver connection
    columns = ", ".join(plan.quoted_names)
    binary = " (FORMAT BINARY)" if plan.pg_types is not None else ""
    sql = f"COPY {target} ({columns}) FROM STDIN{binary}"
    with raw.cursor() as cur, cur.copy(sql) as copy:
        if plan.pg_types is not None:
            copy.set_types(list(plan.pg_types))
        write = copy.write_row
        for row in data:
            write(row)


_temp_names = itertools.count(1)


def _update_via_copy(
    session: Session,
    plan: _Plan,
    names: Sequence[str],
    keys: Sequence[str],
    data: Sequence[Sequence[Any]],
) -> None:
    # COPY the new values into a temporary table typed like the target, then one UPDATE ... FROM joins them.
    temp = f"ds_bulk_{next(_temp_names)}"
    quote = session.conn.dialect.identifier_preparer.quote
    cols = ", ".join(plan.quoted_names)
    session.conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {temp} ON COMMIT DROP AS SELECT {cols} FROM {plan.quoted_table} WITH NO DATA"
    )
    _copy(session, plan, temp, data)
    sets = ", ".join(f"{quote(n)} = s.{quote(n)}" for n in names)
    where = " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in keys)
    session.conn.exec_driver_sql(f"UPDATE {plan.quoted_table} AS t SET {sets} FROM {temp} AS s WHERE {where}")
    session.conn.exec_driver_sql(f"DROP TABLE {temp}")


def select_in(
    session: Session, sql: str, params: Sequence[Any], values: Iterable[Any]
) -> list[Sequence[Any]]:
    """Run ``sql`` (ending in ``column IN ({in})``) for distinct ``values``; return plain row tuples.

    ``sql`` has the dialect's placeholders for ``params`` and one ``{in}`` slot: ``?, ?, ...`` chunks on
    SQLite, ``ANY(%s)`` with one array on PostgreSQL (so the statement text never changes there).
    """
    distinct = list(dict.fromkeys(values))
    if not distinct:
        return []
    rows: list[Sequence[Any]] = []
    if session.dialect == "postgresql":
        text = sql.replace("IN ({in})", "= ANY(%s)")
        rows.extend(session.conn.exec_driver_sql(text, (*params, distinct)).fetchall())
        return rows
    for part in chunks(distinct, SQLITE_IN_CHUNK):
        text = sql.replace("{in}", ", ".join("?" * len(part)))
        rows.extend(session.conn.exec_driver_sql(text, (*params, *part)).fetchall())
    return rows
