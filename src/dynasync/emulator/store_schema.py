"""How catalog columns map to SQLite columns: storage kinds, DDL, value encoding and row-decoding plans.

Storage choices (chosen for speed and exact comparisons): GUIDs as lower-case text, money as integers scaled
by 10^4 (Dataverse stores money with 4 decimals), DateTime as integer Unix seconds, DateOnly as ISO text,
multi-select as sorted comma-separated text, booleans as 0/1, strings with ``COLLATE NOCASE`` (the service
compares strings case-insensitively). A lookup ``x`` is two columns: ``x`` (target id) and ``x__t`` (target table).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from dynasync.emulator.catalog import AttributeDef, AttributeType, DateTimeBehavior, EntityDef
from dynasync.emulator.values import LookupValue, Row

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
    K_DATETIME: "INTEGER",
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


def encode_datetime(value: object) -> int | None:
    """An aware datetime as whole Unix seconds (the service keeps second precision)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_UTC)
        return int(value.timestamp() // 1)
    if isinstance(value, dt.date):
        return int(dt.datetime(value.year, value.month, value.day, tzinfo=_UTC).timestamp())
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


# -- decoding (SQLite rows -> Python rows), generated per column set for speed ----------------------------

_uuid_cache: dict[str, uuid.UUID] = {}
_lookup_cache: dict[str, LookupValue] = {}
_CACHE_LIMIT = 200_000


def _lk(target: str, text: str) -> LookupValue:
    """A cached LookupValue: lookup ids repeat a lot (owners, currency, business unit)."""
    value = _lookup_cache.get(text)
    if value is None or value[0] != target:
        if len(_lookup_cache) > _CACHE_LIMIT:
            _lookup_cache.clear()
        value = LookupValue(target, uuid.UUID(text))
        _lookup_cache[text] = value
    return value


def _multi(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(","))


def _money(value: int) -> Decimal:
    return Decimal(value).scaleb(-4)


def _decimal(value: float) -> Decimal:
    return Decimal(repr(value))


def _datetime(value: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(value, _UTC)


_DECODE_ENV: dict[str, object] = {
    "U": uuid.UUID,
    "LK": _lk,
    "MU": _multi,
    "MO": _money,
    "DE": _decimal,
    "DT": _datetime,
    "DA": dt.date.fromisoformat,
}
_DECODE_EXPR = {
    K_UUID: "U({v})",
    K_MONEY: "MO({v})",
    K_DECIMAL: "DE({v})",
    K_DATETIME: "DT({v})",
    K_DATE: "DA({v})",
    K_MULTI: "MU({v})",
    K_BOOL: "{v} != 0",
}


@dataclass(slots=True)
class SelectPlan:
    """The SQL column list for a set of attributes and the generated function decoding fetched tuples."""

    names: tuple[str, ...]
    sql_columns: str
    decode: Callable[[list[tuple[Any, ...]]], list[Row]]
    width: int


def build_select_plan(entity: EntityDef, attributes: Sequence[AttributeDef], alias: str = "t0") -> SelectPlan:
    """Generate the decoder for exactly these columns (called once per entity and column set, then cached)."""
    sql: list[str] = []
    items: list[str] = []
    for attribute in attributes:
        kind = storage_kind(attribute)
        i = len(sql)
        sql.append(f"{alias}.{q(attribute.logical_name)}")
        key = repr(attribute.logical_name)
        if kind == K_LOOKUP:
            sql.append(f"{alias}.{q(attribute.logical_name + '__t')}")
            items.append(f"{key}: None if (v := r[{i}]) is None else LK(r[{i + 1}], v)")
        elif kind in _DECODE_EXPR:
            expr = _DECODE_EXPR[kind].format(v="v")
            items.append(f"{key}: None if (v := r[{i}]) is None else {expr}")
        else:
            items.append(f"{key}: r[{i}]")
    source = "def decode(rows):\n    return [{" + ", ".join(items) + "} for r in rows]\n"
    namespace: dict[str, Any] = dict(_DECODE_ENV)
    exec(
        compile(source, f"<decoder {entity.logical_name}>", "exec"), namespace
    )  # generated from catalog names only
    return SelectPlan(
        names=tuple(a.logical_name for a in attributes),
        sql_columns=", ".join(sql),
        decode=namespace["decode"],
        width=len(sql),
    )


@dataclass(slots=True)
class TablePlan:
    """Everything the store needs to read and write one table; rebuilt when columns are added."""

    entity: EntityDef
    table: str
    pk: str
    attributes: dict[str, AttributeDef]
    kinds: dict[str, str]
    encoders: dict[str, Callable[[object], Any]]
    select_plans: dict[tuple[str, ...], SelectPlan] = field(default_factory=dict)

    @classmethod
    def of(cls, entity: EntityDef) -> TablePlan:
        """Build the plan of an entity from its catalog definition."""
        attributes = {a.logical_name: a for a in stored_attributes(entity)}
        return cls(
            entity=entity,
            table=table_name(entity.logical_name),
            pk=entity.primary_id,
            attributes=attributes,
            kinds={n: storage_kind(a) for n, a in attributes.items()},
            encoders={n: encoder_for(a) for n, a in attributes.items() if not a.is_lookup},
        )

    def select_plan(self, names: tuple[str, ...]) -> SelectPlan:
        """The cached select plan for these logical names (in this order)."""
        plan = self.select_plans.get(names)
        if plan is None:
            plan = build_select_plan(self.entity, [self.attributes[n] for n in names])
            self.select_plans[names] = plan
        return plan

    def encode(self, values: Mapping[str, object]) -> dict[str, object]:
        """Encode store values into SQL column values (lookups become ``x`` and ``x__t``)."""
        out: dict[str, object] = {}
        for name, value in values.items():
            if self.kinds[name] == K_LOOKUP:
                if value is None:
                    out[name] = None
                    out[name + "__t"] = None
                else:
                    assert isinstance(value, LookupValue)
                    out[name] = encode_uuid(value.id)
                    out[name + "__t"] = value.entity
            else:
                out[name] = self.encoders[name](value)
        return out
