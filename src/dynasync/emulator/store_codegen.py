"""Generated per-table functions converting between SQLite tuples and rows (the hot path of paging and seeding).

A function is generated once per (table, column list) from catalog names only, then cached by the table plan.
Three shapes: typed rows (``dict`` of Python values), wire rows (JSON-ready dicts keyed by Web API property
names with ``@odata.etag`` first) and insert tuples.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from dynasync.emulator.catalog import AttributeDef, EntityDef
from dynasync.emulator.store_schema import (
    K_BOOL,
    K_DATE,
    K_DATETIME,
    K_DECIMAL,
    K_FLOAT,
    K_LOOKUP,
    K_MONEY,
    K_MULTI,
    K_UUID,
    encode_date,
    encode_datetime,
    encode_decimal,
    encode_money,
    encode_multi,
    q,
    storage_kind,
)
from dynasync.emulator.values import LookupValue, Row

_UTC = dt.UTC
_CACHE_LIMIT = 200_000
_lookup_cache: dict[str, LookupValue] = {}


def _lk(target: str, text: str) -> LookupValue:
    """A cached LookupValue: lookup ids repeat a lot (owners, currency, business unit, parents)."""
    value = _lookup_cache.get(text)
    if value is None or value[0] != target:
        if len(_lookup_cache) > _CACHE_LIMIT:
            _lookup_cache.clear()
        value = LookupValue(target, uuid.UUID(text))
        _lookup_cache[text] = value
    return value


_ref_text: dict[int, tuple[LookupValue, str]] = {}


def _ref_id_text(ref: LookupValue) -> str:
    """The id text of a lookup value, cached by object identity.

    Seeds and pages reuse the same few objects (owner, business unit, currency); the cache holds the object,
    so its id cannot be recycled while cached.
    """
    hit = _ref_text.get(id(ref))
    if hit is not None and hit[0] is ref:
        return hit[1]
    if len(_ref_text) > _CACHE_LIMIT:
        _ref_text.clear()
    text = _uuid_text(ref[1])
    _ref_text[id(ref)] = (ref, text)
    return text


def _uuid_text(value: object) -> str:
    """A GUID (UUID or text) as lower-case text."""
    if value.__class__ is uuid.UUID:
        return str(value)
    return str(uuid.UUID(str(value)))


def _multi(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(","))


def _money(value: int) -> Decimal:
    return Decimal(value).scaleb(-4)


def _money_wire(value: int) -> orjson.Fragment:
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10_000)
    return orjson.Fragment(f"{sign}{whole}.{frac:04d}".encode())


def _decimal(value: float) -> Decimal:
    return Decimal(repr(value))


_ENV: dict[str, object] = {
    "U": uuid.UUID,
    "LK": _lk,
    "MU": _multi,
    "MO": _money,
    "MW": _money_wire,
    "DE": _decimal,
    "DT": dt.datetime.fromisoformat,
    "DA": dt.date.fromisoformat,
    "SU": _uuid_text,
    "SR": _ref_id_text,
    "EDT": encode_datetime,
    "EDA": encode_date,
    "EMU": encode_multi,
    "EMO": encode_money,
    "EDE": encode_decimal,
}
_TYPED = {
    K_UUID: "U(v)",
    K_MONEY: "MO(v)",
    K_DECIMAL: "DE(v)",
    K_DATETIME: "DT(v)",
    K_DATE: "DA(v)",
    K_MULTI: "MU(v)",
    K_BOOL: "v != 0",
}
_WIRE = {K_MONEY: "MW(v)", K_BOOL: "v != 0"}


def _compile(source: str, name: str, entity: EntityDef) -> Callable[..., Any]:
    namespace: dict[str, Any] = dict(_ENV)
    exec(compile(source, f"<{name} {entity.logical_name}>", "exec"), namespace)  # names come from the catalog
    return namespace[name]  # type: ignore[no-any-return]


@dataclass(slots=True)
class SelectPlan:
    """The SQL column list for a set of attributes and the generated function decoding fetched tuples."""

    names: tuple[str, ...]
    sql_columns: str
    decode: Callable[[list[tuple[Any, ...]]], list[Row]]
    width: int


def _sql_columns(
    attributes: Sequence[AttributeDef], alias: str, *, targets: int | None = None
) -> tuple[list[str], list[int]]:
    """SQL columns of these attributes; lookups also fetch ``x__t`` (only from index ``targets`` on, if given)."""
    sql: list[str] = []
    starts: list[int] = []
    for n, attribute in enumerate(attributes):
        starts.append(len(sql))
        sql.append(f"{alias}.{q(attribute.logical_name)}")
        if storage_kind(attribute) == K_LOOKUP and (targets is None or n >= targets):
            sql.append(f"{alias}.{q(attribute.logical_name + '__t')}")
    return sql, starts


def build_select_plan(entity: EntityDef, attributes: Sequence[AttributeDef], alias: str = "t0") -> SelectPlan:
    """Generate the typed-row decoder for exactly these columns."""
    sql, starts = _sql_columns(attributes, alias)
    items: list[str] = []
    for attribute, i in zip(attributes, starts, strict=True):
        kind = storage_kind(attribute)
        key = repr(attribute.logical_name)
        if kind == K_LOOKUP:
            items.append(f"{key}: None if (v := r[{i}]) is None else LK(r[{i + 1}], v)")
        elif kind in _TYPED:
            items.append(f"{key}: None if (v := r[{i}]) is None else {_TYPED[kind]}")
        else:
            items.append(f"{key}: r[{i}]")
    source = "def decode(rows):\n    return [{" + ", ".join(items) + "} for r in rows]\n"
    return SelectPlan(
        tuple(a.logical_name for a in attributes),
        ", ".join(sql),
        _compile(source, "decode", entity),
        len(sql),
    )


@dataclass(slots=True)
class WirePlan:
    """Like :class:`SelectPlan` for wire rows; hidden trailing columns carry the version and order keys."""

    sql_columns: str
    decode: Callable[[list[tuple[Any, ...]]], list[dict[str, Any]]]
    hidden: dict[str, int]  # logical name -> index in the fetched tuple


def build_wire_plan(
    entity: EntityDef, shown: Sequence[AttributeDef], hidden: Sequence[AttributeDef], alias: str = "t0"
) -> WirePlan:
    """Generate the wire-row decoder: ``{"@odata.etag": 'W/"n"', <odata name>: <JSON value>, ...}``.

    ``hidden`` columns (version, order keys, primary id) are fetched after the shown ones but not output; only
    hidden lookups fetch their target table column (shown ones are output as the bare id).
    """
    sql, starts = _sql_columns([*shown, *hidden], alias, targets=len(shown))
    positions = {a.logical_name: i for a, i in zip([*shown, *hidden], starts, strict=True)}
    version = positions.get("versionnumber")
    items = [f"'@odata.etag': 'W/\"%s\"' % r[{version}]"] if version is not None else []
    for attribute, i in zip(shown, starts, strict=False):
        kind = storage_kind(attribute)
        key = repr(attribute.odata_name)
        if kind in _WIRE:
            items.append(f"{key}: None if (v := r[{i}]) is None else {_WIRE[kind]}")
        else:
            items.append(f"{key}: r[{i}]")
    source = "def decode(rows):\n    return [{" + ", ".join(items) + "} for r in rows]\n"
    return WirePlan(", ".join(sql), _compile(source, "decode", entity), positions)


def build_insert_encoder(
    entity: EntityDef, attributes: Sequence[AttributeDef]
) -> tuple[list[str], Callable[[dict[str, object]], tuple[Any, ...]]]:
    """Generate the function turning a full row of store values into the INSERT parameter tuple.

    Returns the quoted SQL column names (lookups contribute ``x`` and ``x__t``) and the encoder.
    """
    columns: list[str] = []
    items: list[str] = []
    for attribute in attributes:
        name = attribute.logical_name
        kind = storage_kind(attribute)
        get = f"(v := g({name!r}))"
        columns.append(q(name))
        if kind == K_LOOKUP:
            columns.append(q(name + "__t"))
            items.append(f"None if {get} is None else SR(v)")
            items.append("None if v is None else v[0]")
        elif kind == K_UUID:
            items.append(f"None if {get} is None else SU(v)")
        elif kind == K_BOOL:
            items.append(f"None if {get} is None else (1 if v else 0)")
        elif kind == K_MONEY:
            items.append(f"EMO(g({name!r}), {attribute.precision!r})")
        elif kind == K_DECIMAL:
            items.append(f"EDE(g({name!r}), {attribute.precision!r})")
        elif kind == K_FLOAT:
            items.append(f"None if {get} is None else float(v)")
        elif kind == K_DATETIME:
            items.append(f"EDT(g({name!r}))")
        elif kind == K_DATE:
            items.append(f"EDA(g({name!r}))")
        elif kind == K_MULTI:
            items.append(f"EMU(g({name!r}))")
        else:
            items.append(f"g({name!r})")
    source = "def encode(d):\n    g = d.get\n    return (" + ", ".join(items) + ",)\n"
    return columns, _compile(source, "encode", entity)
