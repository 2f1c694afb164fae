"""Value conversion between Web API JSON and the plain Python values of the synapse seam, per column type.

Reading many rows goes through :class:`~.row_reader.RowReader`, which compiles the per-type converters below once
per stream; :func:`from_json` converts a single value the same way.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from dynasync.errors import FatalSourceError
from dynasync.synapses.base import ColumnSpec, ColumnType, LookupRef, SourceRecord, StreamSpec

__all__ = [
    "ANNOTATIONS",
    "CONVERTERS",
    "FORMATTED",
    "LABELLED",
    "LABEL_MODES",
    "LOOKUP_TABLE",
    "from_json",
    "missing_target_error",
    "parse_datetime",
    "parse_version",
    "read_columns",
    "record_from_row",
    "wire_name",
    "wire_value",
]

FORMATTED = "OData.Community.Display.V1.FormattedValue"
LOOKUP_TABLE = "Microsoft.Dynamics.CRM.lookuplogicalname"
ANNOTATIONS = f"{FORMATTED},{LOOKUP_TABLE}"
LABELLED = frozenset({ColumnType.CHOICE, ColumnType.MULTICHOICE, ColumnType.BOOLEAN, ColumnType.LOOKUP})
"""Column types whose labels are worth keeping: choice labels and lookup primary names (money or date
formatting is per-user noise)."""
LABEL_MODES = ("service", "metadata")
"""Where record labels come from; see :class:`~.row_reader.RowReader`."""
_UTC = dt.UTC
# Multi-select values repeat a lot (a few option combinations): one shared tuple per text, up to this many.
_MULTI_LIMIT = 10_000
_MULTI_SEEN: dict[str, tuple[int, ...]] = {}


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


def parse_datetime(text: str) -> dt.datetime:
    """An ISO 8601 timestamp as an aware UTC datetime (a naive one is taken as UTC)."""
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
    found = _MULTI_SEEN.get(raw) if type(raw) is str else None
    if found is not None:
        return found
    text = str(raw).strip()
    value = tuple(int(part) for part in text.split(",") if part.strip()) if text else ()
    if type(raw) is str and len(_MULTI_SEEN) < _MULTI_LIMIT:
        _MULTI_SEEN[raw] = value
    return value


def _lower(raw: Any) -> str:
    return str(raw).lower()


CONVERTERS: dict[ColumnType, Callable[[Any], Any] | None] = {
    ColumnType.STRING: None,
    ColumnType.TEXT: None,
    ColumnType.INTEGER: None,
    ColumnType.CHOICE: None,
    ColumnType.BOOLEAN: None,
    ColumnType.BIGINT: int,
    ColumnType.FLOAT: float,
    ColumnType.MONEY: _decimal,
    ColumnType.DECIMAL: _decimal,
    ColumnType.DATETIME: parse_datetime,
    ColumnType.DATE: _date,
    ColumnType.MULTICHOICE: _multi,
    ColumnType.UUID: _lower,
    ColumnType.LOOKUP: None,  # needs its table annotation too, see RowReader
}
"""JSON value -> Python value per column type; None = the JSON value already is the Python value (the service's
Edm types guarantee str for strings, int for Int32 and choices, bool for booleans)."""


def missing_target_error(column: ColumnSpec, raw: Any) -> FatalSourceError:
    """The error for a polymorphic lookup value that came without its target table annotation."""
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
            raise missing_target_error(column, raw)
        return LookupRef(table, str(raw).lower())
    if kind in (ColumnType.INTEGER, ColumnType.CHOICE):
        return int(raw)
    if kind is ColumnType.BOOLEAN:
        return bool(raw)
    convert = CONVERTERS.get(kind)
    return convert(raw) if convert is not None else str(raw)


def record_from_row(
    stream: StreamSpec, row: Mapping[str, Any], columns: Iterable[ColumnSpec]
) -> SourceRecord:
    """Turn one Web API row (with FormattedValue/lookuplogicalname annotations) into a :class:`SourceRecord`.

    For many rows build one :class:`~.row_reader.RowReader` and call its ``record`` or ``split``.
    """
    from dynasync.synapses.dynamics.row_reader import RowReader  # deferred: row_reader builds on this module

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
                value = parse_datetime(str(value))
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
