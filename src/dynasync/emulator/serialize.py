"""Rows to Web API JSON: value formats (section 1.4), ``@odata.etag``, and the annotations clients ask for."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from dynasync.emulator.catalog import CHOICE_TYPES, AttributeDef, AttributeType, DateTimeBehavior, EntityDef
from dynasync.emulator.errors import EmulatorError
from dynasync.emulator.paging import Preferences
from dynasync.emulator.values import LookupValue, Row

FORMATTED = "OData.Community.Display.V1.FormattedValue"
LOOKUP_NAME = "Microsoft.Dynamics.CRM.lookuplogicalname"
NAV_NAME = "Microsoft.Dynamics.CRM.associatednavigationproperty"
JSON_TYPE = "application/json; odata.metadata=minimal"

NameResolver = Callable[[str, uuid.UUID], "str | None"]


def _default(value: object) -> object:
    if isinstance(value, decimal.Decimal):
        # Decimals travel as JSON numbers with their own digits (money 20000.0000), never through float.
        if not value.is_finite():
            raise TypeError("non-finite decimal")
        return orjson.Fragment(format(value, "f").encode())
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


_JSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_OMIT_MICROSECONDS | orjson.OPT_NAIVE_UTC


def json_bytes(document: object) -> bytes:
    """Serialise a response document; Decimals keep their digits, datetimes are UTC ``Z`` to the second."""
    return orjson.dumps(document, default=_default, option=_JSON_OPTIONS)


def error_body(error: EmulatorError) -> bytes:
    """The OData error envelope of ``error``."""
    return json_bytes(error.to_json())


def odata_properties(entity: EntityDef) -> dict[str, AttributeDef]:
    """The entity's readable Web API properties by wire name (``_x_value`` for lookups)."""
    return {a.odata_name: a for a in entity.attributes.values() if a.is_odata_property and a.valid_for_read}


def unknown_property(entity: EntityDef, name: str) -> EmulatorError:
    """The service's 400 for a property name the type does not have."""
    return EmulatorError(
        400,
        "0x80060888",
        f"Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{entity.logical_name}'.",
    )


def resolve_select(entity: EntityDef, select: Iterable[str] | None) -> list[AttributeDef] | None:
    """Map ``$select`` names to columns (None = all); 400 for unknown names."""
    if select is None:
        return None
    props = odata_properties(entity)
    chosen: list[AttributeDef] = []
    for name in select:
        if name == "*":
            return None
        attribute = props.get(name)
        if attribute is None:
            raise unknown_property(entity, name)
        if attribute not in chosen:
            chosen.append(attribute)
    return chosen


def output_columns(entity: EntityDef, selected: list[AttributeDef] | None) -> list[AttributeDef]:
    """Columns a row shows: the selection plus the service's side effects, primary key last when not selected."""
    props = odata_properties(entity)
    if selected is None:
        return list(props.values())
    columns = list(selected)
    names = {a.logical_name for a in columns}
    extra: list[AttributeDef] = []
    if any(a.type == AttributeType.MONEY for a in columns):
        currency = entity.attribute("transactioncurrencyid")
        if currency is not None and currency.logical_name not in names:
            extra.append(currency)
    for a in columns:
        prefix = a.logical_name.split("_", 1)[0]
        if prefix.startswith("address") and "_" in a.logical_name:
            composite = entity.attribute(f"{prefix}_composite")
            if composite is not None and composite.logical_name not in names and composite not in extra:
                extra.append(composite)
    columns.extend(extra)
    pk = entity.attribute(entity.primary_id)
    if pk is not None and pk not in columns:
        columns.append(pk)
    return columns


def format_datetime(value: dt.datetime) -> str:
    """``Edm.DateTimeOffset`` as the service writes it: UTC, second precision, ``Z``."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def wire_value(attribute: AttributeDef, value: object) -> object:
    """A stored value in its JSON form (section 1.4)."""
    if value is None:
        return None
    if isinstance(value, LookupValue):
        return str(value.id)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        if attribute.date_behavior == DateTimeBehavior.DATE_ONLY:
            return value.date().isoformat()
        return format_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value)
    if attribute.type == AttributeType.DOUBLE and isinstance(value, int | decimal.Decimal):
        return float(value)
    return value


def _option_label(attribute: AttributeDef, value: int) -> str | None:
    for option in attribute.options:
        if option.value == value:
            return option.label
    return None


def _number(value: float | int | decimal.Decimal, places: int) -> str:
    return f"{value:,.{places}f}"


def formatted_value(attribute: AttributeDef, value: object, names: NameResolver) -> str | None:
    """The ``FormattedValue`` annotation text for a non-null value, or None when the type has none."""
    if value is None:
        return None
    if isinstance(value, LookupValue):
        return names(value.entity, value.id)
    kind = attribute.type
    if kind == AttributeType.BOOLEAN and isinstance(value, bool):
        label = _option_label(attribute, int(value))
        return label if label is not None else ("Yes" if value else "No")
    if kind in CHOICE_TYPES and isinstance(value, int):
        return _option_label(attribute, value)
    if attribute.is_multiselect and isinstance(value, tuple | list):
        labels = [_option_label(attribute, int(v)) or str(v) for v in value]
        return "; ".join(labels)
    if kind == AttributeType.MONEY and isinstance(value, int | float | decimal.Decimal):
        amount = decimal.Decimal(str(value))
        text = _number(abs(amount), attribute.precision if attribute.precision is not None else 2)
        return f"-${text}" if amount < 0 else f"${text}"
    if kind in (AttributeType.INTEGER, AttributeType.BIGINT) and isinstance(value, int):
        return f"{value:,}"
    if kind in (AttributeType.DECIMAL, AttributeType.DOUBLE) and isinstance(
        value, int | float | decimal.Decimal
    ):
        return _number(value, attribute.precision if attribute.precision is not None else 2)
    if isinstance(value, dt.datetime):
        value = value.astimezone(dt.UTC)
        date_text = f"{value.month}/{value.day}/{value.year}"
        if attribute.date_behavior == DateTimeBehavior.DATE_ONLY:
            return date_text
        hour = value.hour % 12 or 12
        return f"{date_text} {hour}:{value.minute:02d} {'AM' if value.hour < 12 else 'PM'}"
    if isinstance(value, dt.date):
        return f"{value.month}/{value.day}/{value.year}"
    return None


def navigation_for(attribute: AttributeDef, target: str) -> str | None:
    """The single-valued navigation property of a lookup that points at ``target``."""
    for nav, entity in attribute.navigation.items():
        if entity == target:
            return nav
    return None


def put_property(
    out: dict[str, Any],
    attribute: AttributeDef,
    value: object,
    prefs: Preferences,
    names: NameResolver,
) -> None:
    """Add one property to ``out`` with the requested annotations placed immediately before it."""
    name = attribute.odata_name
    if value is not None and prefs.annotation_patterns:
        if isinstance(value, LookupValue):
            if prefs.wants(NAV_NAME):
                nav = navigation_for(attribute, value.entity)
                if nav is not None:
                    out[f"{name}@{NAV_NAME}"] = nav
            if prefs.wants(LOOKUP_NAME):
                out[f"{name}@{LOOKUP_NAME}"] = value.entity
        if prefs.wants(FORMATTED):
            text = formatted_value(attribute, value, names)
            if text is not None:
                out[f"{name}@{FORMATTED}"] = text
    out[name] = wire_value(attribute, value)


def etag_of(row: Mapping[str, object]) -> str:
    """The weak ETag of a row: ``W/"<versionnumber>"``."""
    return f'W/"{row.get("versionnumber", 0)}"'


Converter = Callable[[Any], object] | None


def _lookup_id(value: Any) -> object:
    return value.id if isinstance(value, LookupValue) else value


def _date_part(value: Any) -> object:
    return value.date() if isinstance(value, dt.datetime) else value


def _joined(value: Any) -> object:
    return ",".join(str(v) for v in value) if isinstance(value, tuple | list) else value


def _as_float(value: Any) -> object:
    return float(value) if isinstance(value, int | decimal.Decimal) and not isinstance(value, bool) else value


def converter(attribute: AttributeDef) -> Converter:
    """A fast stored-value-to-JSON function for one column (None: the value serialises as it is).

    Relies on :func:`json_bytes` for UUIDs (lower case), datetimes (UTC ``Z``) and Decimals.
    """
    if attribute.is_lookup:
        return _lookup_id
    if attribute.type == AttributeType.DATETIME and attribute.date_behavior == DateTimeBehavior.DATE_ONLY:
        return _date_part
    if attribute.is_multiselect:
        return _joined
    if attribute.type == AttributeType.DOUBLE:
        return _as_float
    return None


Annotator = Callable[[dict[str, Any], Any, NameResolver], None]
ColumnPlan = list[tuple[str, str, Converter, Annotator | None]]


def _formatter(attribute: AttributeDef) -> Callable[[Any, NameResolver], str | None]:
    """:func:`formatted_value` for one column, with choice and Yes/No labels looked up in a prepared table."""

    def general(value: Any, names: NameResolver) -> str | None:
        if value.__class__ is str:  # text has no formatted value, whatever the column type
            return None
        return formatted_value(attribute, value, names)

    labels: dict[int, str | None] = {}
    for option in attribute.options:
        labels.setdefault(option.value, option.label)  # the first option of a value wins, as in _option_label
    if attribute.type == AttributeType.BOOLEAN:
        yes_no: dict[bool, str] = {}
        for flag in (True, False):
            label = labels.get(int(flag))
            yes_no[flag] = label if label is not None else ("Yes" if flag else "No")

        def boolean(value: Any, names: NameResolver) -> str | None:
            return yes_no[value] if value.__class__ is bool else general(value, names)

        return boolean
    if attribute.type in CHOICE_TYPES:

        def choice(value: Any, names: NameResolver) -> str | None:
            return labels.get(value) if isinstance(value, int) else general(value, names)

        return choice
    return general


def _annotator(attribute: AttributeDef, prefs: Preferences) -> Annotator | None:
    """The function adding the annotations ``prefs`` asks for of one non-null value of ``attribute``.

    It writes what :func:`put_property` writes before the property, with the patterns matched once per
    response instead of once per value.
    """
    name = attribute.odata_name
    nav_key = f"{name}@{NAV_NAME}" if prefs.wants(NAV_NAME) else None
    lookup_key = f"{name}@{LOOKUP_NAME}" if prefs.wants(LOOKUP_NAME) else None
    formatted_key = f"{name}@{FORMATTED}" if prefs.wants(FORMATTED) else None
    if nav_key is None and lookup_key is None and formatted_key is None:
        return None
    fmt = _formatter(attribute)

    def annotate(out: dict[str, Any], value: Any, names: NameResolver) -> None:
        if isinstance(value, LookupValue):
            if nav_key is not None:
                nav = navigation_for(attribute, value.entity)
                if nav is not None:
                    out[nav_key] = nav
            if lookup_key is not None:
                out[lookup_key] = value.entity
        if formatted_key is not None:
            text = fmt(value, names)
            if text is not None:
                out[formatted_key] = text

    return annotate


def column_plan(columns: list[AttributeDef], prefs: Preferences | None = None) -> ColumnPlan:
    """(logical name, wire name, converter, annotator) per column, computed once per response.

    The annotator (None when ``prefs`` asks for no annotation of the column) adds the column's annotations.
    """
    patterns = prefs is not None and bool(prefs.annotation_patterns)
    return [
        (a.logical_name, a.odata_name, converter(a), _annotator(a, prefs) if patterns and prefs else None)
        for a in columns
    ]


def row_json(
    entity: EntityDef,
    row: Row,
    columns: list[AttributeDef],
    prefs: Preferences,
    names: NameResolver,
    plan: ColumnPlan | None = None,
) -> dict[str, Any]:
    """One entity object: ``@odata.etag`` first, then the columns (annotated as asked).

    ``plan``: :func:`column_plan` of ``columns`` built with these ``prefs`` (built here when not given).
    """
    out: dict[str, Any] = {"@odata.etag": etag_of(row)}
    for logical, wire, convert, annotate in plan if plan is not None else column_plan(columns, prefs):
        value = row.get(logical)
        if value is None:
            out[wire] = None
            continue
        if annotate is not None:
            annotate(out, value, names)
        out[wire] = value if convert is None else convert(value)
    return out
