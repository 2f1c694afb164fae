"""Schema replication: read Dataverse table and column metadata table by table and build ``StreamSpec``s.

Large orgs have hundreds of tables and thousands of columns, so nothing is loaded in one response: the table list
is read with a narrow ``$select`` (plus alternate keys), then each table's columns, lookup targets, navigation
properties and option sets are read with one request per concern (type casts with ``$expand=OptionSet``), a few
tables at a time. Memory stays proportional to one table's metadata plus the resulting specs.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dynasync.synapses.base import ColumnSpec, ColumnType, StreamSpec
from dynasync.synapses.dynamics.client import DataverseClient
from dynasync.synapses.dynamics.errors import change_tracking_remedy
from dynasync.synapses.dynamics.odata import literal, query

__all__ = [
    "DiscoveryResult",
    "TableSummary",
    "build_column",
    "discover",
    "list_tables",
    "read_table",
    "untracked_note",
]

CAST = "Microsoft.Dynamics.CRM."
TABLE_SELECT = (
    "LogicalName",
    "EntitySetName",
    "PrimaryIdAttribute",
    "PrimaryNameAttribute",
    "ChangeTrackingEnabled",
    "IsCustomEntity",
    "IsIntersect",
    "IsPrivate",
    "TableType",
    "DisplayName",
)
ATTRIBUTE_SELECT = (
    "LogicalName",
    "AttributeType",
    "AttributeTypeName",
    "AttributeOf",
    "IsValidForRead",
    "IsValidForCreate",
    "IsValidForUpdate",
    "IsPrimaryId",
    "IsPrimaryName",
    "IsCustomAttribute",
    "IsValidODataAttribute",
    "RequiredLevel",
    "DisplayName",
)
_SIMPLE_TYPES: dict[str, ColumnType] = {
    "String": ColumnType.STRING,
    "Memo": ColumnType.TEXT,
    "Integer": ColumnType.INTEGER,
    "BigInt": ColumnType.BIGINT,
    "Decimal": ColumnType.DECIMAL,
    "Double": ColumnType.FLOAT,
    "Money": ColumnType.MONEY,
    "Boolean": ColumnType.BOOLEAN,
    "DateTime": ColumnType.DATETIME,
    "Picklist": ColumnType.CHOICE,
    "State": ColumnType.CHOICE,
    "Status": ColumnType.CHOICE,
    "Lookup": ColumnType.LOOKUP,
    "Customer": ColumnType.LOOKUP,
    "Owner": ColumnType.LOOKUP,
    "Uniqueidentifier": ColumnType.UUID,
}
# Type-specific details and the cast that exposes them (one request per cast present in the table).
_DETAIL_CASTS: dict[str, tuple[str, str]] = {
    "String": ("StringAttributeMetadata", "$select=LogicalName,MaxLength"),
    "Memo": ("MemoAttributeMetadata", "$select=LogicalName,MaxLength"),
    "Money": ("MoneyAttributeMetadata", "$select=LogicalName,Precision"),
    "Decimal": ("DecimalAttributeMetadata", "$select=LogicalName,Precision"),
    "Double": ("DoubleAttributeMetadata", "$select=LogicalName,Precision"),
    "DateTime": ("DateTimeAttributeMetadata", "$select=LogicalName,Format,DateTimeBehavior"),
    "Lookup": ("LookupAttributeMetadata", "$select=LogicalName,Targets"),
    "Picklist": ("PicklistAttributeMetadata", "$select=LogicalName&$expand=OptionSet($select=Options)"),
    "State": ("StateAttributeMetadata", "$select=LogicalName&$expand=OptionSet($select=Options)"),
    "Status": ("StatusAttributeMetadata", "$select=LogicalName&$expand=OptionSet($select=Options)"),
    "MultiSelectPicklist": (
        "MultiSelectPicklistAttributeMetadata",
        "$select=LogicalName&$expand=OptionSet($select=Options)",
    ),
}
_LOOKUP_KINDS = ("Lookup", "Customer", "Owner")
_PRINCIPALS = ("owner", "principal")


@dataclass(frozen=True, slots=True)
class TableSummary:
    """One row of the narrow table list."""

    name: str
    collection: str
    primary_id: str
    primary_name: str | None
    display_name: str
    change_tracking: bool
    is_custom: bool
    table_type: str
    alternate_keys: tuple[tuple[str, ...], ...]


@dataclass(slots=True)
class DiscoveryResult:
    """What activation found: the streams, tables without change tracking, columns left out, notes."""

    streams: list[StreamSpec]
    collections: dict[str, str] = field(default_factory=dict)  # every table's entity set, also unread ones
    untracked: list[str] = field(default_factory=list)
    skipped_columns: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A human report: table count, tables without change tracking with the remedy, skipped columns."""
        lines = [f"Discovered {len(self.streams)} tables."]
        lines += [untracked_note(table) for table in self.untracked]
        for table, columns in sorted(self.skipped_columns.items()):
            lines.append(
                f"Table '{table}': columns not replicated (unsupported types): {', '.join(columns)}."
            )
        lines += self.notes
        return "\n".join(lines)


def untracked_note(table: str) -> str:
    """The activation warning for a table without change tracking, with the guide's remedy."""
    return (
        f"Table '{table}' does not have change tracking enabled: dynasync reads its changes by the modifiedon "
        "watermark and finds deleted rows only by periodic id reconciliation. "
        + change_tracking_remedy(table)
    )


def _label(value: Any) -> str:
    if not isinstance(value, Mapping):
        return ""
    user = value.get("UserLocalizedLabel")
    if isinstance(user, Mapping) and user.get("Label"):
        return str(user["Label"])
    for item in value.get("LocalizedLabels") or ():
        if isinstance(item, Mapping) and item.get("Label"):
            return str(item["Label"])
    return ""


def _managed_value(value: Any) -> Any:
    return value.get("Value") if isinstance(value, Mapping) else value


def _table_summary(row: Mapping[str, Any]) -> TableSummary:
    keys: list[tuple[str, ...]] = []
    for key in row.get("Keys") or ():
        status = key.get("EntityKeyIndexStatus", "Active")
        if status in (None, "Active") and key.get("KeyAttributes"):
            keys.append(tuple(str(a) for a in key["KeyAttributes"]))
    return TableSummary(
        name=str(row["LogicalName"]),
        collection=str(row.get("EntitySetName") or ""),
        primary_id=str(row.get("PrimaryIdAttribute") or ""),
        primary_name=row.get("PrimaryNameAttribute") or None,
        display_name=_label(row.get("DisplayName")),
        change_tracking=bool(row.get("ChangeTrackingEnabled")),
        is_custom=bool(row.get("IsCustomEntity")),
        table_type=str(row.get("TableType") or "Standard"),
        alternate_keys=tuple(keys),
    )


async def list_tables(client: DataverseClient) -> list[TableSummary]:
    """Read every table with a narrow ``$select`` and its active alternate keys (metadata is never paged)."""
    text = query(select_=TABLE_SELECT, expand="Keys($select=LogicalName,KeyAttributes,EntityKeyIndexStatus)")
    body = await client.get_json(f"EntityDefinitions?{text}", headers={"Consistency": "Strong"})
    return [_table_summary(row) for row in body.get("value", [])]


def _type_key(row: Mapping[str, Any]) -> str:
    kind = str(row.get("AttributeType") or "")
    type_name = str(_managed_value(row.get("AttributeTypeName")) or "")
    if kind == "Virtual" and type_name == "MultiSelectPicklistType":
        return "MultiSelectPicklist"
    return kind


def _options(option_set: Any) -> tuple[tuple[int, str], ...]:
    if not isinstance(option_set, Mapping):
        return ()
    result = [(int(o["Value"]), _label(o.get("Label"))) for o in option_set.get("Options") or ()]
    return tuple(sorted(result))


def build_column(
    row: Mapping[str, Any],
    details: Mapping[str, Any] | None = None,
    navigation: Mapping[str, str] | None = None,
) -> ColumnSpec | None:
    """Build one column from its ``AttributeMetadata`` row (and the cast details); None when not replicated.

    Args:
        row: The attribute row (common properties).
        details: The same attribute read through its type cast (MaxLength, Precision, Targets, OptionSet...).
        navigation: Write-side navigation property per target table (lookups).
    """
    key = _type_key(row)
    if key == "MultiSelectPicklist":
        column_type = ColumnType.MULTICHOICE
    elif key in _SIMPLE_TYPES:
        column_type = _SIMPLE_TYPES[key]
    else:
        return None
    details = details or {}
    if column_type is ColumnType.DATETIME:
        behavior = _managed_value(details.get("DateTimeBehavior"))
        if behavior == "DateOnly":
            column_type = ColumnType.DATE
    targets = tuple(str(t) for t in details.get("Targets") or ())
    nav = dict(navigation or {})
    if key == "Owner":
        # The owner lookup's partner is the abstract principal: one navigation property for every target.
        for target in targets:
            nav.setdefault(target, "ownerid" if row["LogicalName"] == "ownerid" else row["LogicalName"])
    level = _managed_value(row.get("RequiredLevel"))
    creatable = bool(row.get("IsValidForCreate"))
    precision = details.get("Precision")
    max_length = details.get("MaxLength")
    return ColumnSpec(
        name=str(row["LogicalName"]),
        type=column_type,
        source_type=key,
        display_name=_label(row.get("DisplayName")),
        max_length=int(max_length) if isinstance(max_length, int) else None,
        precision=int(precision) if isinstance(precision, int) else None,
        options=_options(details.get("OptionSet")),
        targets=targets,
        navigation=nav,
        required=level in ("SystemRequired", "ApplicationRequired")
        and creatable
        and not row.get("IsPrimaryId"),
        readable=bool(row.get("IsValidForRead", True)),
        creatable=creatable,
        updatable=bool(row.get("IsValidForUpdate")),
        is_primary_id=bool(row.get("IsPrimaryId")),
        is_primary_name=bool(row.get("IsPrimaryName")),
        is_custom=bool(row.get("IsCustomAttribute")),
    )


def _replicated(row: Mapping[str, Any]) -> bool:
    # Helper attributes (xname, xtype, xidtype) are not Web API properties of their own.
    return row.get("IsValidODataAttribute", True) is not False and not row.get("AttributeOf")


async def _cast_rows(client: DataverseClient, base: str, cast: str, options: str) -> dict[str, Any]:
    body = await client.get_json(
        f"{base}/Attributes/{CAST}{cast}?{options}", headers={"Consistency": "Strong"}
    )
    return {str(item["LogicalName"]): item for item in body.get("value", [])}


async def _navigations(client: DataverseClient, base: str) -> dict[str, dict[str, str]]:
    select = "ReferencingAttribute,ReferencedEntity,ReferencingEntityNavigationPropertyName"
    body = await client.get_json(
        f"{base}/ManyToOneRelationships?$select={select}", headers={"Consistency": "Strong"}
    )
    result: dict[str, dict[str, str]] = {}
    for item in body.get("value", []):
        column = str(item.get("ReferencingAttribute") or "")
        target = str(item.get("ReferencedEntity") or "")
        nav = item.get("ReferencingEntityNavigationPropertyName")
        if column and target and nav:
            result.setdefault(column, {})[target] = str(nav)
    return result


async def read_table(client: DataverseClient, table: TableSummary) -> tuple[StreamSpec, list[str]]:
    """Read one table's columns and build its stream; also return the columns left out (``name (Type)``)."""
    base = f"EntityDefinitions(LogicalName={literal(table.name)})"
    body = await client.get_json(
        f"{base}/Attributes?{query(select_=ATTRIBUTE_SELECT)}", headers={"Consistency": "Strong"}
    )
    rows = [row for row in body.get("value", []) if _replicated(row)]
    kinds = {_type_key(row) for row in rows}
    wanted = {"Lookup" if k in _LOOKUP_KINDS else k for k in kinds}
    casts = sorted(_DETAIL_CASTS[k] for k in wanted if k in _DETAIL_CASTS)
    tasks = [_cast_rows(client, base, cast, options) for cast, options in casts]
    needs_nav = bool(kinds & set(_LOOKUP_KINDS))
    results = await asyncio.gather(*tasks, _navigations(client, base) if needs_nav else _no_navigations())
    navs: dict[str, dict[str, str]] = results[-1]
    details: dict[str, dict[str, Any]] = {}
    for found in results[:-1]:
        for name, item in found.items():
            details.setdefault(name, {}).update(item)
    columns: dict[str, ColumnSpec] = {}
    skipped: list[str] = []
    for row in rows:
        name = str(row["LogicalName"])
        nav = navs.get(name, {})
        if _type_key(row) in _LOOKUP_KINDS:
            nav = _principal_navigation(nav, details.get(name, {}))
        column = build_column(row, details.get(name), nav)
        if column is None:
            skipped.append(f"{name} ({_type_key(row) or 'unknown'})")
            continue
        columns[name] = column
    state = next((c.name for c in columns.values() if c.source_type == "State"), None)
    if state is not None:
        # Which status reasons are valid depends on the state (a status of Inactive needs state Inactive).
        for name, column in list(columns.items()):
            if column.source_type == "Status":
                columns[name] = dataclasses.replace(column, depends_on=state)
    stream = StreamSpec(
        name=table.name,
        collection=table.collection,
        primary_id=table.primary_id,
        primary_name=table.primary_name,
        columns=columns,
        display_name=table.display_name,
        alternate_keys=table.alternate_keys,
        change_tracking=table.change_tracking,
        supports_bulk=table.table_type in ("Standard", "Elastic"),
        is_custom=table.is_custom,
    )
    return stream, skipped


async def _no_navigations() -> dict[str, dict[str, str]]:
    return {}


def _principal_navigation(nav: Mapping[str, str], details: Mapping[str, Any]) -> dict[str, str]:
    """Targets reached through a relationship to the abstract owner/principal share its navigation property."""
    result = {t: n for t, n in nav.items() if t not in _PRINCIPALS}
    shared = next((nav[p] for p in _PRINCIPALS if p in nav), None)
    if shared is not None:
        for target in details.get("Targets") or ():
            result.setdefault(str(target), shared)
    return result


def _selected(tables: Iterable[TableSummary], wanted: Sequence[str] | None) -> list[TableSummary]:
    usable = [t for t in tables if t.collection and t.primary_id]
    if wanted is None:
        return sorted(usable, key=lambda t: t.name)
    by_name = {t.name: t for t in usable}
    return [by_name[name] for name in wanted if name in by_name]


async def discover(
    client: DataverseClient, *, tables: Sequence[str] | None = None, concurrency: int = 4
) -> DiscoveryResult:
    """Discover tables (all readable ones, or the named ones) and build their streams.

    Args:
        client: The Web API client.
        tables: Logical names to replicate (None: every table with an entity set). Names the org does not have
            are reported in ``notes``.
        concurrency: Tables read at the same time (each table's own requests run together).
    """
    summaries = await list_tables(client)
    chosen = _selected(summaries, tables)
    result = DiscoveryResult(
        streams=[], collections={t.name: t.collection for t in summaries if t.collection}
    )
    if tables is not None:
        missing = sorted(set(tables) - {t.name for t in chosen})
        if missing:
            result.notes.append(
                f"Tables not found in the org (or without an entity set): {', '.join(missing)}."
            )
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(table: TableSummary) -> tuple[StreamSpec, list[str]]:
        async with gate:
            return await read_table(client, table)

    for stream, skipped in await asyncio.gather(*(one(t) for t in chosen)):
        result.streams.append(stream)
        if skipped:
            result.skipped_columns[stream.name] = skipped
        if not stream.change_tracking:
            result.untracked.append(stream.name)
    return result
