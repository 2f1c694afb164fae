"""Value conversion between Web API JSON and the plain Python values of the synapse seam, per column type.

Reading goes through a :class:`RowReader` compiled once per stream and column set: which wire keys to take, which
of them need converting (and how), where each lookup's table annotation and each label live. A row then costs a
few C-level dict operations plus one call per non-null typed value, instead of a type dispatch per column.
"""

from __future__ import annotations

import datetime as dt
import decimal
import operator
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from dynasync.errors import FatalSourceError
from dynasync.synapses.base import ColumnSpec, ColumnType, LookupRef, SourceRecord, StreamSpec

__all__ = [
    "ANNOTATIONS",
    "FORMATTED",
    "LOOKUP_TABLE",
    "RowReader",
    "from_json",
    "parse_version",
    "read_columns",
    "record_from_row",
    "wire_name",
    "wire_value",
]

FORMATTED = "OData.Community.Display.V1.FormattedValue"
LOOKUP_TABLE = "Microsoft.Dynamics.CRM.lookuplogicalname"
ANNOTATIONS = f"{FORMATTED},{LOOKUP_TABLE}"
# Labels worth keeping: choice labels and lookup primary names (money/date formatting is per-user noise).
_LABELLED = frozenset({ColumnType.CHOICE, ColumnType.MULTICHOICE, ColumnType.BOOLEAN, ColumnType.LOOKUP})
_UTC = dt.UTC
_DELETED = "$deletedEntity"
# Lookup references are immutable and repeat a lot (owner, currency, business unit): one object per target.
_LOOKUP_CACHE_LIMIT = 100_000


def wire_name(column: ColumnSpec) -> str:
    """The property name on the wire: ``_x_value`` for lookups, the logical name otherwise."""
    return f"_{column.name}_value" if column.type is ColumnType.LOOKUP else column.name


def read_columns(stream: StreamSpec) -> list[ColumnSpec]:
    """The readable columns of a stream (primary id first), in a stable order."""
    columns = [c for c in stream.columns.values() if c.readable]
    return sorted(columns, key=lambda c: (not c.is_primary_id, c.name))


def parse_version(row: Mapping[str, Any]) -> str | None:
    """The row version: ``versionnumber`` or the number inside ``@odata.etag`` (``W/"123"``)."""
    version = row.get("versionnumber")
    if version is not None:
        return str(version)
    etag = row.get("@odata.etag")
    if isinstance(etag, str):
        return etag.removeprefix("W/").strip('"') or None
    return None


def _datetime(text: str) -> dt.datetime:
    # Python 3.11 reads the "Z" suffix itself; the service always sends UTC, so the common case returns at once.
    value = dt.datetime.fromisoformat(text if type(text) is str else str(text))
    zone = value.tzinfo
    if zone is _UTC:
        return value
    if zone is None:
        return value.replace(tzinfo=_UTC)
    return value.astimezone(_UTC)


def _date(text: str) -> dt.date:
    # Date-only columns are Edm.Date ("2023-04-07"); tolerate a midnight timestamp from older endpoints.
    return dt.date.fromisoformat(str(text)[:10])


def _decimal(raw: Any) -> decimal.Decimal:
    # Through the shortest text form: 20000.1 stays 20000.1, not its binary expansion.
    return decimal.Decimal(str(raw))


def _multi(raw: Any) -> tuple[int, ...]:
    text = str(raw).strip()
    return tuple(int(part) for part in text.split(",") if part.strip()) if text else ()


def _lower(raw: Any) -> str:
    return str(raw).lower()


# JSON value -> Python value per column type; None = the JSON value already is the Python value (the service's
# Edm types guarantee str for strings, int for Int32 and choices, bool for booleans).
_CONVERTERS: dict[ColumnType, Callable[[Any], Any] | None] = {
    ColumnType.STRING: None,
    ColumnType.TEXT: None,
    ColumnType.INTEGER: None,
    ColumnType.CHOICE: None,
    ColumnType.BOOLEAN: None,
    ColumnType.BIGINT: int,
    ColumnType.FLOAT: float,
    ColumnType.MONEY: _decimal,
    ColumnType.DECIMAL: _decimal,
    ColumnType.DATETIME: _datetime,
    ColumnType.DATE: _date,
    ColumnType.MULTICHOICE: _multi,
    ColumnType.UUID: _lower,
    ColumnType.LOOKUP: None,  # handled with its table annotation, see RowReader
}


def _missing_target(column: ColumnSpec, raw: Any) -> FatalSourceError:
    return FatalSourceError(
        f"Dataverse returned lookup '{column.name}' = {raw} without its target table annotation.",
        remedy="The polymorphic lookup's target cannot be told; this is unexpected from the service.",
    )


def from_json(column: ColumnSpec, raw: Any, lookup_table: str | None = None) -> Any:
    """Convert one JSON value of ``column`` to its Python value (``None`` stays ``None``)."""
    if raw is None:
        return None
    kind = column.type
    if kind is ColumnType.LOOKUP:
        table = lookup_table or (column.targets[0] if len(column.targets) == 1 else None)
        if table is None:
            raise _missing_target(column, raw)
        return LookupRef(table, str(raw).lower())
    if kind in (ColumnType.INTEGER, ColumnType.CHOICE):
        return int(raw)
    if kind is ColumnType.BOOLEAN:
        return bool(raw)
    convert = _CONVERTERS.get(kind)
    return convert(raw) if convert is not None else str(raw)


class RowReader:
    """Turns Web API rows of one stream into :class:`SourceRecord` values; build it once per read.

    Args:
        stream: The table.
        columns: The columns selected (default: every readable column, see :func:`read_columns`).
        labels: Keep the ``FormattedValue`` labels of choices and lookups (when the rows carry them).
    """

    def __init__(
        self, stream: StreamSpec, columns: Sequence[ColumnSpec] | None = None, *, labels: bool = True
    ) -> None:
        self.stream = stream
        self.columns = list(columns) if columns is not None else read_columns(stream)
        keys = [wire_name(c) for c in self.columns]
        self.select = keys
        self._pairs = tuple((key, c.name) for key, c in zip(keys, self.columns, strict=True))
        self._names = tuple(c.name for c in self.columns)
        # itemgetter returns a bare value for one key: keep the tuple shape.
        self._take: Callable[[Mapping[str, Any]], Any] = (
            operator.itemgetter(*keys) if len(keys) > 1 else (lambda row: tuple(row[k] for k in keys))
        )
        self._convert = tuple(
            (c.name, convert) for c in self.columns if (convert := _CONVERTERS[c.type]) is not None
        )
        self._lookups = tuple(
            (c.name, f"{key}@{LOOKUP_TABLE}", c.targets[0] if len(c.targets) == 1 else None, c)
            for key, c in zip(keys, self.columns, strict=True)
            if c.type is ColumnType.LOOKUP
        )
        self._labels = (
            tuple(
                (f"{key}@{FORMATTED}", c.name)
                for key, c in zip(keys, self.columns, strict=True)
                if c.type in _LABELLED
            )
            if labels
            else ()
        )
        self._refs: dict[tuple[str, str], LookupRef] = {}
        self._pk = stream.primary_id
        modified = next((c for c in self.columns if c.name == "modifiedon"), None)
        self._modified_in_values = modified is not None and modified.type is ColumnType.DATETIME

    def __repr__(self) -> str:
        return f"RowReader({self.stream.name!r}, {len(self.columns)} columns)"

    def record(self, row: Mapping[str, Any]) -> SourceRecord:
        """Convert one row (with or without annotations) into a :class:`SourceRecord`."""
        try:
            values = dict(zip(self._names, self._take(row), strict=True))
        except KeyError:  # a partial row: only the properties it has
            values = {name: row[key] for key, name in self._pairs if key in row}
        for name, convert in self._convert:
            raw = values.get(name)
            if raw is not None:
                values[name] = convert(raw)
        if self._lookups:
            self._read_lookups(row, values)
        labels: dict[str, str] = {}
        if self._labels:
            get = row.get
            for key, name in self._labels:
                label = get(key)
                if label is not None and name in values:
                    labels[name] = label if type(label) is str else str(label)
        if self._modified_in_values:
            modified_on = values.get("modifiedon")
        else:
            modified = row.get("modifiedon")
            modified_on = _datetime(str(modified)) if modified else None
        version = row.get("versionnumber")
        return SourceRecord(
            id=str(row[self._pk]).lower(),
            values=values,
            version=str(version) if version is not None else parse_version(row),
            modified_on=modified_on,
            labels=labels,
        )

    def _read_lookups(self, row: Mapping[str, Any], values: dict[str, Any]) -> None:
        refs = self._refs
        for name, table_key, only_target, column in self._lookups:
            raw = values.get(name)
            if raw is None:
                continue
            table = row.get(table_key) or only_target
            if table is None:
                raise _missing_target(column, raw)
            key = (table, raw)
            ref = refs.get(key)
            if ref is None:
                if len(refs) >= _LOOKUP_CACHE_LIMIT:
                    refs.clear()
                ref = refs[key] = LookupRef(str(table), str(raw).lower())
            values[name] = ref

    def split(self, rows: Iterable[Mapping[str, Any]]) -> tuple[list[SourceRecord], list[str]]:
        """Convert a page's rows: (upserted records, ids of deleted rows) in page order."""
        upserts: list[SourceRecord] = []
        deletes: list[str] = []
        pk = self._pk
        record = self.record
        for row in rows:
            if pk in row and "@odata.context" not in row:
                upserts.append(record(row))
                continue
            context = str(row.get("@odata.context") or "")
            if context.endswith(_DELETED) or ("reason" in row and "id" in row and pk not in row):
                deletes.append(str(row["id"]).lower())
            else:
                upserts.append(record(row))
        return upserts, deletes


def record_from_row(
    stream: StreamSpec, row: Mapping[str, Any], columns: Iterable[ColumnSpec]
) -> SourceRecord:
    """Turn one Web API row (with FormattedValue/lookuplogicalname annotations) into a :class:`SourceRecord`.

    For many rows build one :class:`RowReader` and call :meth:`RowReader.record`.
    """
    return RowReader(stream, list(columns)).record(row)


def wire_value(column: ColumnSpec, value: Any) -> Any:
    """Convert a Python value to the JSON value Dataverse expects for ``column`` (not for lookups).

    Raises:
        ValueError: When the value does not fit the column (the message names column and type).
    """
    if value is None:
        return None
    kind = column.type
    try:
        if kind is ColumnType.DATETIME:
            if not isinstance(value, dt.datetime):
                value = _datetime(str(value))
            if value.tzinfo is None:
                raise ValueError("a naive datetime has no time zone; give an aware (UTC) datetime")
            return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if kind is ColumnType.DATE:
            if isinstance(value, dt.datetime):
                return value.date().isoformat()
            return value.isoformat() if isinstance(value, dt.date) else _date(str(value)).isoformat()
        if kind is ColumnType.MULTICHOICE:
            if isinstance(value, str):
                parts = [p for p in value.replace(";", ",").split(",") if p.strip()]
            else:
                parts = list(value)
            return ",".join(str(int(p)) for p in parts)
        if kind in (ColumnType.MONEY, ColumnType.DECIMAL):
            number = decimal.Decimal(str(value))
            if not number.is_finite():
                raise ValueError("not a finite number")
            return number
        if kind is ColumnType.FLOAT:
            return float(value)
        if kind in (ColumnType.INTEGER, ColumnType.BIGINT, ColumnType.CHOICE):
            if isinstance(value, bool) or int(value) != value:
                raise ValueError("not a whole number")
            return int(value)
        if kind is ColumnType.BOOLEAN:
            if not isinstance(value, bool):
                raise ValueError("not true/false")
            return value
        if kind is ColumnType.UUID:
            return str(uuid.UUID(str(value)))
        return str(value)
    except (ValueError, TypeError, decimal.InvalidOperation) as exc:
        raise ValueError(f"column '{column.name}' ({kind.value}): cannot write {value!r}: {exc}") from None
