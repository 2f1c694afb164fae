"""Schema snapshots (``StreamSpec`` lists to and from JSON) and the drift report between two snapshots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from dynasync.synapses.base import ColumnSpec, ColumnType, StreamSpec

__all__ = [
    "ColumnChange",
    "SchemaDrift",
    "TableDrift",
    "diff_schemas",
    "stream_from_dict",
    "stream_to_dict",
    "streams_from_json",
    "streams_to_json",
]

SNAPSHOT_FORMAT = 1


def _column_to_dict(column: ColumnSpec) -> dict[str, Any]:
    return {
        "name": column.name,
        "type": column.type.value,
        "source_type": column.source_type,
        "display_name": column.display_name,
        "max_length": column.max_length,
        "precision": column.precision,
        "options": [[value, label] for value, label in column.options],
        "targets": list(column.targets),
        "navigation": dict(sorted(column.navigation.items())),
        "required": column.required,
        "readable": column.readable,
        "creatable": column.creatable,
        "updatable": column.updatable,
        "is_primary_id": column.is_primary_id,
        "is_primary_name": column.is_primary_name,
        "is_custom": column.is_custom,
        "depends_on": column.depends_on,
    }


def _column_from_dict(data: Mapping[str, Any]) -> ColumnSpec:
    return ColumnSpec(
        name=str(data["name"]),
        type=ColumnType(data["type"]),
        source_type=str(data.get("source_type", "")),
        display_name=str(data.get("display_name", "")),
        max_length=data.get("max_length"),
        precision=data.get("precision"),
        options=tuple((int(v), str(label)) for v, label in data.get("options", ())),
        targets=tuple(str(t) for t in data.get("targets", ())),
        navigation={str(k): str(v) for k, v in dict(data.get("navigation", {})).items()},
        required=bool(data.get("required", False)),
        readable=bool(data.get("readable", True)),
        creatable=bool(data.get("creatable", True)),
        updatable=bool(data.get("updatable", True)),
        is_primary_id=bool(data.get("is_primary_id", False)),
        is_primary_name=bool(data.get("is_primary_name", False)),
        is_custom=bool(data.get("is_custom", False)),
        depends_on=data.get("depends_on"),
    )


def stream_to_dict(stream: StreamSpec) -> dict[str, Any]:
    """A JSON-able dict of one stream (columns sorted by name, so snapshots diff cleanly)."""
    return {
        "name": stream.name,
        "collection": stream.collection,
        "primary_id": stream.primary_id,
        "primary_name": stream.primary_name,
        "display_name": stream.display_name,
        "alternate_keys": [list(key) for key in stream.alternate_keys],
        "change_tracking": stream.change_tracking,
        "supports_bulk": stream.supports_bulk,
        "is_custom": stream.is_custom,
        "columns": [_column_to_dict(stream.columns[name]) for name in sorted(stream.columns)],
    }


def stream_from_dict(data: Mapping[str, Any]) -> StreamSpec:
    """Rebuild a stream from :func:`stream_to_dict` output."""
    columns = [_column_from_dict(c) for c in data.get("columns", ())]
    return StreamSpec(
        name=str(data["name"]),
        collection=str(data["collection"]),
        primary_id=str(data["primary_id"]),
        primary_name=data.get("primary_name"),
        columns={c.name: c for c in columns},
        display_name=str(data.get("display_name", "")),
        alternate_keys=tuple(tuple(str(a) for a in key) for key in data.get("alternate_keys", ())),
        change_tracking=bool(data.get("change_tracking", True)),
        supports_bulk=bool(data.get("supports_bulk", True)),
        is_custom=bool(data.get("is_custom", False)),
    )


def streams_to_json(streams: Sequence[StreamSpec]) -> str:
    """Serialise a schema snapshot (streams sorted by name) as indented JSON text."""
    document = {
        "format": SNAPSHOT_FORMAT,
        "streams": [stream_to_dict(s) for s in sorted(streams, key=lambda s: s.name)],
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode()


def streams_from_json(text: str | bytes) -> list[StreamSpec]:
    """Parse a snapshot written by :func:`streams_to_json`.

    Raises:
        ValueError: When the text is not a snapshot of a known format.
    """
    document = orjson.loads(text)
    if not isinstance(document, dict) or document.get("format") != SNAPSHOT_FORMAT:
        raise ValueError(f"not a dynasync schema snapshot (format {SNAPSHOT_FORMAT} expected)")
    return [stream_from_dict(s) for s in document.get("streams", ())]


@dataclass(frozen=True, slots=True)
class ColumnChange:
    """One column that exists in both snapshots but changed."""

    column: str
    changes: tuple[str, ...]  # human phrases, e.g. "type string -> integer", "option 3 'Gold' added"
    retyped: bool = False


@dataclass(slots=True)
class TableDrift:
    """Differences of one table present in both snapshots."""

    table: str
    added_columns: list[str] = field(default_factory=list)
    removed_columns: list[str] = field(default_factory=list)
    changed_columns: list[ColumnChange] = field(default_factory=list)
    table_changes: list[str] = field(default_factory=list)  # change tracking, keys, primary columns

    @property
    def is_empty(self) -> bool:
        """True when nothing changed."""
        return not (self.added_columns or self.removed_columns or self.changed_columns or self.table_changes)


@dataclass(slots=True)
class SchemaDrift:
    """What changed between two schema snapshots ("refresh schema")."""

    added_tables: list[str] = field(default_factory=list)
    removed_tables: list[str] = field(default_factory=list)
    tables: list[TableDrift] = field(default_factory=list)
    # Tables the org has gained since the last look that are not replicated (added only on request)
    new_in_org: list[str] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        """True when the snapshots describe the same schema."""
        return not (self.added_tables or self.removed_tables or self.tables)

    @property
    def breaking(self) -> list[str]:
        """Changes that can break a mapping: removed tables/columns and retyped columns (``table.column``)."""
        found = list(self.removed_tables)
        for table in self.tables:
            found += [f"{table.table}.{c}" for c in table.removed_columns]
            found += [f"{table.table}.{c.column}" for c in table.changed_columns if c.retyped]
        return found

    def summary(self) -> str:
        """One line per change, for people."""
        lines: list[str] = []
        if self.new_in_org:
            lines.append(
                f"New in the org, not replicated: {', '.join(self.new_in_org)} (add with `dynasync schema refresh "
                + " ".join(f"--add-table {name}" for name in self.new_in_org)
                + "`)"
            )
        if self.is_empty:
            return "\n".join([*lines, "No schema changes."])
        lines += [f"Table added: {name}" for name in self.added_tables]
        lines += [f"Table removed: {name}" for name in self.removed_tables]
        for table in self.tables:
            lines += [f"{table.table}: {text}" for text in table.table_changes]
            lines += [f"{table.table}: column added: {c}" for c in table.added_columns]
            lines += [f"{table.table}: column removed: {c}" for c in table.removed_columns]
            for change in table.changed_columns:
                lines += [f"{table.table}.{change.column}: {text}" for text in change.changes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form of the report."""
        return {
            "added_tables": self.added_tables,
            "removed_tables": self.removed_tables,
            "new_in_org": self.new_in_org,
            "tables": [
                {
                    "table": t.table,
                    "added_columns": t.added_columns,
                    "removed_columns": t.removed_columns,
                    "changed_columns": [
                        {"column": c.column, "changes": list(c.changes), "retyped": c.retyped}
                        for c in t.changed_columns
                    ],
                    "table_changes": t.table_changes,
                }
                for t in self.tables
            ],
            "breaking": self.breaking,
        }


def _option_changes(old: ColumnSpec, new: ColumnSpec) -> list[str]:
    before, after = dict(old.options), dict(new.options)
    changes = [f"option {v} '{after[v]}' added" for v in sorted(set(after) - set(before))]
    changes += [f"option {v} '{before[v]}' removed" for v in sorted(set(before) - set(after))]
    changes += [
        f"option {v} relabelled '{before[v]}' -> '{after[v]}'"
        for v in sorted(set(before) & set(after))
        if before[v] != after[v]
    ]
    return changes


def _column_change(old: ColumnSpec, new: ColumnSpec) -> ColumnChange | None:
    changes: list[str] = []
    retyped = old.type is not new.type
    if retyped:
        changes.append(f"type {old.type.value} -> {new.type.value}")
    changes += _option_changes(old, new)
    if set(old.targets) != set(new.targets):
        changes.append(f"lookup targets {sorted(old.targets)} -> {sorted(new.targets)}")
    if dict(old.navigation) != dict(new.navigation) and set(old.targets) == set(new.targets):
        changes.append("lookup navigation properties changed")
    if old.max_length != new.max_length:
        changes.append(f"max length {old.max_length} -> {new.max_length}")
    for flag in ("readable", "creatable", "updatable"):
        if getattr(old, flag) != getattr(new, flag):
            changes.append(f"{flag} {getattr(old, flag)} -> {getattr(new, flag)}")
    return ColumnChange(old.name, tuple(changes), retyped) if changes else None


def _table_drift(old: StreamSpec, new: StreamSpec) -> TableDrift:
    drift = TableDrift(old.name)
    drift.added_columns = sorted(set(new.columns) - set(old.columns))
    drift.removed_columns = sorted(set(old.columns) - set(new.columns))
    for name in sorted(set(old.columns) & set(new.columns)):
        change = _column_change(old.columns[name], new.columns[name])
        if change is not None:
            drift.changed_columns.append(change)
    if old.change_tracking != new.change_tracking:
        drift.table_changes.append(
            "change tracking enabled" if new.change_tracking else "change tracking disabled"
        )
    if set(old.alternate_keys) != set(new.alternate_keys):
        drift.table_changes.append(
            f"alternate keys {[list(k) for k in old.alternate_keys]} -> {[list(k) for k in new.alternate_keys]}"
        )
    if (old.primary_id, old.primary_name, old.collection) != (
        new.primary_id,
        new.primary_name,
        new.collection,
    ):
        drift.table_changes.append("primary id, primary name or entity set name changed")
    return drift


def diff_schemas(old: Sequence[StreamSpec], new: Sequence[StreamSpec]) -> SchemaDrift:
    """Compare two snapshots: tables and columns added, removed or retyped, option and lookup changes."""
    before = {s.name: s for s in old}
    after = {s.name: s for s in new}
    drift = SchemaDrift(
        added_tables=sorted(set(after) - set(before)),
        removed_tables=sorted(set(before) - set(after)),
    )
    for name in sorted(set(before) & set(after)):
        table = _table_drift(before[name], after[name])
        if not table.is_empty:
            drift.tables.append(table)
    return drift
