"""Value conversion between Web API JSON and the plain Python values of the synapse seam, per column type."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from dynasync.errors import FatalSourceError
from dynasync.synapses.base import ColumnSpec, ColumnType, LookupRef, SourceRecord, StreamSpec

__all__ = [
    "ANNOTATIONS",
    "FORMATTED",
    "LOOKUP_TABLE",
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
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _date(text: str) -> dt.date:
    # Date-only columns are Edm.Date ("2023-04-07"); tolerate a midnight timestamp from older endpoints.
    return dt.date.fromisoformat(text[:10])


def from_json(column: ColumnSpec, raw: Any, lookup_table: str | None = None) -> Any:
    """Convert one JSON value of ``column`` to its Python value (``None`` stays ``None``)."""
    if raw is None:
        return None
    kind = column.type
    if kind in (ColumnType.MONEY, ColumnType.DECIMAL):
        return decimal.Decimal(str(raw))
    if kind is ColumnType.FLOAT:
        return float(raw)
    if kind in (ColumnType.INTEGER, ColumnType.BIGINT, ColumnType.CHOICE):
        return int(raw)
    if kind is ColumnType.BOOLEAN:
        return bool(raw)
    if kind is ColumnType.DATETIME:
        return _datetime(str(raw))
    if kind is ColumnType.DATE:
        return _date(str(raw))
    if kind is ColumnType.MULTICHOICE:
        text = str(raw).strip()
        return tuple(int(part) for part in text.split(",") if part.strip()) if text else ()
    if kind is ColumnType.LOOKUP:
        table = lookup_table or (column.targets[0] if len(column.targets) == 1 else None)
        if table is None:
            raise FatalSourceError(
                f"Dataverse returned lookup '{column.name}' = {raw} without its target table annotation.",
                remedy="The polymorphic lookup's target cannot be told; this is unexpected from the service.",
            )
        return LookupRef(table, str(raw).lower())
    if kind is ColumnType.UUID:
        return str(raw).lower()
    return str(raw)


def record_from_row(
    stream: StreamSpec, row: Mapping[str, Any], columns: Iterable[ColumnSpec]
) -> SourceRecord:
    """Turn one Web API row (with FormattedValue/lookuplogicalname annotations) into a :class:`SourceRecord`."""
    values: dict[str, Any] = {}
    labels: dict[str, str] = {}
    for column in columns:
        name = wire_name(column)
        if name not in row:
            continue
        table = row.get(f"{name}@{LOOKUP_TABLE}")
        values[column.name] = from_json(column, row[name], str(table) if table else None)
        label = row.get(f"{name}@{FORMATTED}")
        if label is not None and column.type in _LABELLED:
            labels[column.name] = str(label)
    modified = row.get("modifiedon")
    return SourceRecord(
        id=str(row[stream.primary_id]).lower(),
        values=values,
        version=parse_version(row),
        modified_on=_datetime(str(modified)) if modified else None,
        labels=labels,
    )


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
