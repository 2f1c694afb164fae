"""How catalog columns map to SQLite columns: storage kinds, DDL, value encoding and row-decoding plans.

Storage choices (chosen for speed and exact comparisons): GUIDs as lower-case text, money as integers scaled
by 10^4 (Dataverse stores money with 4 decimals), DateTime as UTC ISO text with ``Z`` and second precision
(sorts correctly and is already the wire form), DateOnly as ISO text,
multi-select as sorted comma-separated text, booleans as 0/1, strings with ``COLLATE NOCASE`` (the service
compares strings case-insensitively). A lookup ``x`` is two columns: ``x`` (target id) and ``x__t`` (target table).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from dynasync.emulator.catalog import AttributeDef, AttributeType, DateTimeBehavior, EntityDef

MONEY_SCALE = 10_000
_UTC = dt.UTC

# Storage kinds.
K_UUID, K_TEXT, K_INT, K_BOOL, K_MONEY, K_DECIMAL, K_FLOAT = (
    "uuid",
    "text",
    "int",
    "bool",
    "money",
    "decimal",
    "float",
)
K_DATETIME, K_DATE, K_MULTI, K_LOOKUP = "datetime", "date", "multi", "lookup"

EDM_TYPES = {
    K_UUID: "Edm.Guid",
    K_TEXT: "Edm.String",
    K_INT: "Edm.Int32",
    K_BOOL: "Edm.Boolean",
    K_MONEY: "Edm.Decimal",
    K_DECIMAL: "Edm.Decimal",
    K_FLOAT: "Edm.Double",
    K_DATETIME: "Edm.DateTimeOffset",
    K_DATE: "Edm.Date",
    K_MULTI: "Edm.String",
    K_LOOKUP: "Edm.Guid",
}


def storage_kind(attribute: AttributeDef) -> str:
    """The storage kind of a column."""
    t = attribute.type
    if attribute.is_lookup:
        return K_LOOKUP
    if attribute.is_multiselect:
        return K_MULTI
    if t == AttributeType.UNIQUEIDENTIFIER:
        return K_UUID
    if t in (AttributeType.STRING, AttributeType.MEMO, AttributeType.ENTITYNAME, AttributeType.VIRTUAL):
        return K_TEXT
    if t in (
        AttributeType.INTEGER,
        AttributeType.BIGINT,
        AttributeType.PICKLIST,
        AttributeType.STATE,
        AttributeType.STATUS,
    ):
        return K_INT
    if t == AttributeType.BOOLEAN:
        return K_BOOL
    if t == AttributeType.MONEY:
        return K_MONEY
    if t == AttributeType.DECIMAL:
        return K_DECIMAL
    if t == AttributeType.DOUBLE:
        return K_FLOAT
    if t == AttributeType.DATETIME:
        return K_DATE if attribute.date_behavior == DateTimeBehavior.DATE_ONLY else K_DATETIME
    raise ValueError(f"no storage for attribute type {t}")


def edm_type(attribute: AttributeDef) -> str:
    """The Edm type name of a column (``Edm.Int64`` for BigInt)."""
    if attribute.type == AttributeType.BIGINT:
        return "Edm.Int64"
    return EDM_TYPES[storage_kind(attribute)]


def q(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def table_name(entity: str) -> str:
    """The quoted SQL table holding rows of ``entity``."""
    return q(f"e_{entity}")


_DDL_TYPES = {
    K_UUID: "TEXT",
    K_TEXT: "TEXT COLLATE NOCASE",
    K_INT: "INTEGER",
    K_BOOL: "INTEGER",
    K_MONEY: "INTEGER",
    K_DECIMAL: "REAL",
    K_FLOAT: "REAL",
    K_DATETIME: "TEXT",
    K_DATE: "TEXT",
    K_MULTI: "TEXT",
    K_LOOKUP: "TEXT",
}


def stored_attributes(entity: EntityDef) -> list[AttributeDef]:
    """Columns that have storage: every OData property (helper ``xname``/``xtype`` attributes are derived)."""
    return [a for a in entity.attributes.values() if a.is_odata_property]


def column_ddl(attribute: AttributeDef) -> list[str]:
    """Column definitions (``"name" TYPE``) for one attribute; lookups get a second ``__t`` column."""
    kind = storage_kind(attribute)
    defs = [f"{q(attribute.logical_name)} {_DDL_TYPES[kind]}"]
    if kind == K_LOOKUP:
        defs.append(f"{q(attribute.logical_name + '__t')} TEXT")
    if attribute.is_primary_id:
        defs[0] += " NOT NULL PRIMARY KEY"
    return defs


# -- encoding (Python store values -> SQLite values) ------------------------------------------------------


def encode_uuid(value: object) -> str | None:
    """A GUID as lower-case hyphenated text."""
    if value is None:
        return None
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))


def encode_money(value: object, precision: int | None = 4) -> int | None:
    """Money rounded to the column precision, as an integer count of 1/10,000."""
    if value is None:
        return None
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    d = d.quantize(Decimal(1).scaleb(-(precision if precision is not None else 4)), rounding=ROUND_HALF_UP)
    return int(d * MONEY_SCALE)


def encode_decimal(value: object, precision: int | None = 10) -> float | None:
    """A decimal rounded to the column precision, stored as REAL."""
    if value is None:
        return None
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    return float(round(d, precision if precision is not None else 10))


def encode_datetime(value: object) -> str | None:
    """An aware datetime as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC (second precision, the service's wire form)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_UTC)
        elif value.utcoffset():
            value = value.astimezone(_UTC)
        return f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:{value.second:02d}Z"
    if isinstance(value, dt.date):
        return f"{value.isoformat()}T00:00:00Z"
    raise TypeError(f"not a datetime: {value!r}")


def encode_date(value: object) -> str | None:
    """A date (or the date part of a datetime) as ISO text."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(_UTC).date().isoformat() if value.tzinfo else value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return dt.date.fromisoformat(str(value)).isoformat()


def encode_multi(value: object) -> str | None:
    """Multi-select values as sorted, de-duplicated, comma-separated text (None when empty)."""
    if value is None:
        return None
    items: Sequence[object] = value.split(",") if isinstance(value, str) else tuple(value)  # type: ignore[arg-type]
    ints = sorted({int(str(v)) for v in items if str(v).strip() != ""})
    return ",".join(str(v) for v in ints) if ints else None


def encode_bool(value: object) -> int | None:
    """True/False as 1/0."""
    return None if value is None else (1 if value else 0)


def encoder_for(attribute: AttributeDef) -> Callable[[object], Any]:
    """The function that turns one store value of this (non-lookup) column into its SQLite value."""
    kind = storage_kind(attribute)
    precision = attribute.precision
    if kind == K_UUID:
        return encode_uuid
    if kind == K_MONEY:
        return lambda v: encode_money(v, precision)
    if kind == K_DECIMAL:
        return lambda v: encode_decimal(v, precision)
    if kind == K_DATETIME:
        return encode_datetime
    if kind == K_DATE:
        return encode_date
    if kind == K_MULTI:
        return encode_multi
    if kind == K_BOOL:
        return encode_bool
    if kind == K_FLOAT:
        return lambda v: None if v is None else float(v)  # type: ignore[arg-type]
    return lambda v: v
