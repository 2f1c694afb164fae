"""Custom tables and columns from JSON-able specs (the control plane's "add table" / "add column")."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dynasync.emulator import table_builders as tb
from dynasync.emulator.catalog import AttributeDef, Catalog, EntityDef, RequiredLevel
from dynasync.emulator.standard_columns import (
    ACTIVE_INACTIVE_STATE,
    ACTIVE_INACTIVE_STATUS,
    audit_columns,
    owner_columns,
)

_NAME = re.compile(r"^[a-z][a-z0-9_]{1,49}$")


def _name(value: object, what: str) -> str:
    text = str(value or "")
    if not _NAME.match(text):
        raise ValueError(f"{what} {text!r} must be lower case letters, digits and underscores")
    return text


def build_table(catalog: Catalog, spec: Mapping[str, Any]) -> EntityDef:
    """A user-owned custom table with primary key, primary name, system columns and the spec's columns.

    Spec keys: ``logical_name`` (``new_project``), ``entity_set_name`` (default: logical name + ``s``),
    ``display_name``, ``primary_name`` (default ``<prefix>_name``), ``change_tracking`` (default True),
    ``columns`` (a list of column specs, see :func:`build_columns`).
    """
    logical = _name(spec.get("logical_name"), "logical_name")
    if catalog.entity(logical) is not None:
        raise ValueError(f"table {logical!r} already exists")
    set_name = str(spec.get("entity_set_name") or f"{logical}s")
    prefix = logical.split("_", 1)[0] if "_" in logical else logical
    primary_name = _name(spec.get("primary_name") or f"{prefix}_name", "primary_name")
    code = 10000 + sum(1 for e in catalog.entities.values() if e.is_custom)
    entity = EntityDef(
        logical,
        set_name,
        f"{logical}id",
        primary_name,
        code,
        display_name=str(spec.get("display_name") or logical),
        is_custom=True,
        change_tracking=bool(spec.get("change_tracking", True)),
    )
    tb.build_entity(
        entity,
        tb.uid(f"{logical}id", str(spec.get("display_name") or logical), primary=True),
        tb.string(primary_name, 100, "Name", primary_name=True, custom=True),
        audit_columns(),
        owner_columns(),
        tb.state(logical, ACTIVE_INACTIVE_STATE),
        tb.status(logical, ACTIVE_INACTIVE_STATUS),
    )
    for column in spec.get("columns", []):
        for attribute in build_columns(entity, column):
            entity.add(attribute)
    return entity


def build_columns(entity: EntityDef, spec: Mapping[str, Any]) -> list[AttributeDef]:
    """Attributes for one column spec.

    Spec keys: ``logical_name``, ``type`` (String, Memo, Integer, BigInt, Decimal, Double, Money, Boolean,
    DateTime, Picklist, MultiSelectPicklist, Lookup), ``display_name``, ``max_length``, ``precision``,
    ``min_value``/``max_value``, ``options`` (``[[value, label], ...]``), ``date_only``, and for lookups
    ``target`` (table) and ``navigation`` (defaults to the logical name).
    """
    name = _name(spec.get("logical_name"), "logical_name")
    if entity.attribute(name) is not None:
        raise ValueError(f"column {name!r} already exists on {entity.logical_name!r}")
    kind = str(spec.get("type", "String"))
    display = str(spec.get("display_name") or name)
    options = [(int(v), str(label)) for v, label in spec.get("options", [])]
    result: list[AttributeDef]
    if kind == "String":
        result = [tb.string(name, int(spec.get("max_length", 100)), display, custom=True)]
    elif kind == "Memo":
        result = [tb.memo(name, int(spec.get("max_length", 2000)), display)]
    elif kind == "Integer":
        result = [
            tb.integer(
                name, display, int(spec.get("min_value", tb.INT_MIN)), int(spec.get("max_value", tb.INT_MAX))
            )
        ]
    elif kind == "BigInt":
        result = [tb.bigint(name, display)]
    elif kind == "Decimal":
        result = [
            tb.decimal(
                name,
                display,
                int(spec.get("precision", 2)),
                float(spec.get("min_value", -1e12)),
                float(spec.get("max_value", 1e12)),
            )
        ]
    elif kind == "Double":
        result = [
            tb.double(
                name,
                display,
                int(spec.get("precision", 2)),
                float(spec.get("min_value", -1e12)),
                float(spec.get("max_value", 1e12)),
            )
        ]
    elif kind == "Money":
        result = list(tb.money(name, display))
    elif kind == "Boolean":
        result = [tb.boolean(name, display)]
    elif kind == "DateTime":
        result = [tb.datetime(name, display, date_only=bool(spec.get("date_only", False)))]
    elif kind == "Picklist":
        result = [tb.picklist(entity.logical_name, name, display, options, custom=True)]
    elif kind == "MultiSelectPicklist":
        result = [tb.multiselect(entity.logical_name, name, display, options, custom=True)]
    elif kind == "Lookup":
        target = str(spec["target"])
        navigation = str(spec.get("navigation") or name)
        result = tb.lookup(name, display, {navigation: target}, custom=True)
    else:
        raise ValueError(f"unsupported column type {kind!r}")
    for attribute in result:
        attribute.is_custom = True
        if spec.get("required"):
            attribute.required_level = RequiredLevel.APPLICATION_REQUIRED
    return result
