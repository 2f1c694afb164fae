"""Shared pieces of the ``$filter`` compiler: compiled operands, the context, column resolution, LIKE."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass

from dynasync.emulator.catalog import AttributeDef, Catalog, EntityDef
from dynasync.emulator.errors import EmulatorError
from dynasync.emulator.store_schema import edm_type


def property_not_found(entity: EntityDef, name: str) -> EmulatorError:
    """The service's 400 for an unknown name in ``$select``/``$filter``/``$orderby``."""
    return EmulatorError(
        400,
        "0x80060888",
        f"Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{entity.logical_name}'.",
    )


def resolve_column(entity: EntityDef, name: str) -> AttributeDef:
    """A stored column by logical name or by ``_x_value`` (lookups); 400 when unknown."""
    attribute = entity.attributes.get(name)
    if attribute is not None and attribute.is_odata_property and not attribute.is_lookup:
        return attribute
    if name.startswith("_") and name.endswith("_value"):
        attribute = entity.attributes.get(name[1:-6])
        if attribute is not None and attribute.is_lookup:
            return attribute
    raise property_not_found(entity, name)


def resolve_stored(entity: EntityDef, name: str) -> AttributeDef:
    """Like :func:`resolve_column` but also accepting a lookup's logical name (store API callers use those)."""
    attribute = entity.attributes.get(name)
    if attribute is not None and attribute.is_odata_property:
        return attribute
    return resolve_column(entity, name)


@dataclass(slots=True)
class Expr:
    """A compiled operand: SQL text and the storage kind (and column, when it is one)."""

    sql: str
    kind: str
    attribute: AttributeDef | None


@dataclass(slots=True)
class FilterContext:
    """What the compiler needs beyond the tree: the catalog, the caller and the store's clock reading."""

    catalog: Catalog
    caller: uuid.UUID | None
    caller_business_unit: uuid.UUID | None
    now: dt.datetime


def edm_of(expr: Expr) -> str:
    """The Edm type name of a compiled operand (for the service's type-mismatch message)."""
    return edm_type(expr.attribute) if expr.attribute is not None else "Edm.String"


def sql_server_like(pattern: str, value: str | None) -> int | None:
    """SQL Server ``LIKE`` (``%``, ``_``, ``[abc]``, ``[^abc]``, case-insensitive) for patterns with brackets."""
    if value is None:
        return None
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        elif ch == "[":
            close = pattern.find("]", i + 1)
            if close < 0:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1 : close]
                negate = body.startswith("^")
                body = body[1:] if negate else body
                out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
                i = close
        else:
            out.append(re.escape(ch))
        i += 1
    return 1 if re.fullmatch("".join(out), value, re.IGNORECASE | re.DOTALL) else 0
