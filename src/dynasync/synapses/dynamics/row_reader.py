"""Compiled conversion of one stream's Web API rows into :class:`SourceRecord` values (the read hot path).

A :class:`RowReader` works out once per stream and column set which wire keys to take, which values need
converting (and with what), where each lookup's table annotation and each label live, and generates one
straight-line function doing exactly that. A row then costs a few C-level dict operations plus one call per
non-null typed value, instead of a type dispatch per column.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from dynasync.synapses.base import ColumnSpec, ColumnType, LookupRef, SourceRecord, StreamSpec
from dynasync.synapses.dynamics.values import (
    CONVERTERS,
    FORMATTED,
    LABEL_MODES,
    LABELLED,
    LOOKUP_TABLE,
    missing_target_error,
    parse_datetime,
    parse_version,
    read_columns,
    wire_name,
)

__all__ = ["RowReader"]

_ETAG = "@odata.etag"
_DELETED = "$deletedEntity"
# Lookup references are immutable and repeat a lot (owner, currency, business unit): one shared object per
# distinct value, up to this many per reader (also the bound of the multi-select label cache).
_CACHE_LIMIT = 100_000

Fill = Callable[[dict[str, Any], Mapping[str, Any], dict[str, str]], None]
"""Converts a record's values in place and adds its labels: ``fill(values, row, labels)``."""


class RowReader:
    """Turns Web API rows of one stream into :class:`SourceRecord` values; build it once per read.

    Args:
        stream: The table.
        columns: The columns selected (default: every readable column, see :func:`~.values.read_columns`).
        labels: Where ``SourceRecord.labels`` come from: ``"service"`` = the ``FormattedValue`` annotations
            (choice, boolean and lookup labels as the service words them; needs that annotation on every
            value), ``"metadata"`` = the discovered option sets (choices and multi-selects only, no annotation
            needed; a value the option set does not list gets no label).
        reuse_rows: The rows handed in are this reader's to keep: a row carrying exactly the selected
            properties (no annotations) becomes the record's ``values`` dict itself instead of being copied.

    Raises:
        ValueError: An unknown ``labels`` mode.
    """

    def __init__(
        self,
        stream: StreamSpec,
        columns: Sequence[ColumnSpec] | None = None,
        *,
        labels: str = "service",
        reuse_rows: bool = False,
    ) -> None:
        if labels not in LABEL_MODES:
            raise ValueError(f"labels must be one of {', '.join(LABEL_MODES)}, not {labels!r}")
        self.stream = stream
        self.columns = list(columns) if columns is not None else read_columns(stream)
        self.labels = labels
        keys = [wire_name(c) for c in self.columns]
        self.select = keys
        """The wire names to ``$select``, in column order."""
        pairs = list(zip(keys, self.columns, strict=True))
        self._pairs = tuple((key, c.name) for key, c in pairs)
        self._names = tuple(c.name for c in self.columns)
        # itemgetter returns a bare value for one key: keep the tuple shape.
        self._take: Callable[[Mapping[str, Any]], Any] = (
            operator.itemgetter(*keys) if len(keys) > 1 else (lambda row: tuple(row[k] for k in keys))
        )
        self._plain = frozenset([*keys, _ETAG]) if reuse_rows else None
        self._renames = tuple((key, c.name) for key, c in pairs if key != c.name)
        self._refs: dict[tuple[str, str], LookupRef] = {}
        self._fill, wanted = self._compile(pairs, service=labels == "service")
        self.annotations: str | None = ",".join(wanted) or None
        """The ``odata.include-annotations`` value the rows need (None: none)."""
        self._pk = stream.primary_id
        modified = next((c for c in self.columns if c.name == "modifiedon"), None)
        self._modified_in_values = modified is not None and modified.type is ColumnType.DATETIME

    def __repr__(self) -> str:
        return f"RowReader({self.stream.name!r}, {len(self.columns)} columns, labels={self.labels!r})"

    def _compile(self, pairs: list[tuple[str, ColumnSpec]], *, service: bool) -> tuple[Fill, list[str]]:
        """Generate ``fill`` for these columns; also return the annotations the rows must carry.

        Names from the service's metadata enter the source only as ``repr`` string literals; converters, option
        tables and columns are bound by generated variable names.
        """
        space: dict[str, Any] = {"ref": self._lookup_ref, "multi_label": _multi_label}
        lines = ["def fill(values, row, labels):", "    get = values.get", "    row_get = row.get"]
        wanted: list[str] = []
        for i, (key, column) in enumerate(pairs):
            name, kind = column.name, column.type
            convert = CONVERTERS[kind]
            if convert is not None or kind is ColumnType.LOOKUP or (not service and column.options):
                lines.append(f"    v = get({name!r})")  # a plain string, number or flag needs nothing
            if kind is ColumnType.LOOKUP:
                only_target = column.targets[0] if len(column.targets) == 1 else None
                if only_target is None and LOOKUP_TABLE not in wanted:
                    wanted.append(LOOKUP_TABLE)  # only a polymorphic lookup's target needs telling
                space[f"col{i}"], space[f"only{i}"] = column, only_target
                table_key = f"{key}@{LOOKUP_TABLE}"
                lines += ["    if v is not None:", f"        values[{name!r}] = ref(row_get({table_key!r}), only{i}, v, col{i})"]  # fmt: skip
            elif convert is not None:
                space[f"conv{i}"] = convert
                lines += ["    if v is not None:", f"        values[{name!r}] = conv{i}(v)"]
            if service and kind in LABELLED:
                if FORMATTED not in wanted:
                    wanted.insert(0, FORMATTED)
                label_key = f"{key}@{FORMATTED}"
                lines += [f"    v = row_get({label_key!r})", f"    if v is not None and {name!r} in values:",
                          f"        labels[{name!r}] = v if type(v) is str else str(v)"]  # fmt: skip
            elif not service and column.options and kind is ColumnType.CHOICE:
                space[f"opts{i}"] = dict(column.options)
                lines += ["    if v is not None:", f"        v = opts{i}.get(v)", "        if v is not None:",
                          f"            labels[{name!r}] = v"]  # fmt: skip
            elif not service and column.options and kind is ColumnType.MULTICHOICE:
                space[f"opts{i}"], space[f"seen{i}"] = dict(column.options), {}
                lines += [f"    v = get({name!r})", "    if v:", f"        v = multi_label(v, opts{i}, seen{i})",
                          "        if v is not None:", f"            labels[{name!r}] = v"]  # fmt: skip
        exec(compile("\n".join(lines), f"<row reader of {self.stream.name}>", "exec"), space)
        fill: Fill = space["fill"]
        return fill, wanted

    def _lookup_ref(self, table: Any, only_target: str | None, raw: Any, column: ColumnSpec) -> LookupRef:
        table = table or only_target
        if table is None:
            raise missing_target_error(column, raw)
        key = (table, raw)
        ref = self._refs.get(key)
        if ref is None:
            if len(self._refs) >= _CACHE_LIMIT:
                self._refs.clear()
            ref = self._refs[key] = LookupRef(str(table), str(raw).lower())
        return ref

    def record(self, row: Mapping[str, Any]) -> SourceRecord:
        """Convert one row (with or without annotations) into a :class:`SourceRecord`."""
        values: dict[str, Any]
        if self._plain is not None and type(row) is dict and row.keys() == self._plain:
            values = row  # exactly the selected properties plus the etag: no copy needed
            etag = values.pop(_ETAG)
            for key, name in self._renames:
                values[name] = values.pop(key)
        else:
            etag = row.get(_ETAG)
            try:
                values = dict(zip(self._names, self._take(row), strict=True))
            except KeyError:  # a partial row: only the properties it has
                values = {name: row[key] for key, name in self._pairs if key in row}
        version = row.get("versionnumber")
        labels: dict[str, str] = {}
        self._fill(values, row, labels)
        if self._modified_in_values:
            modified_on = values.get("modifiedon")
        else:
            modified = row.get("modifiedon")
            modified_on = parse_datetime(str(modified)) if modified else None
        return SourceRecord(
            id=str(row[self._pk]).lower(),
            values=values,
            version=str(version) if version is not None else parse_version({_ETAG: etag}),
            modified_on=modified_on,
            labels=labels,
        )

    def split(self, rows: Iterable[Mapping[str, Any]]) -> tuple[list[SourceRecord], list[str]]:
        """Convert a page's rows: (upserted records, ids of deleted rows) in page order."""
        upserts: list[SourceRecord] = []
        deletes: list[str] = []
        pk = self._pk
        record = self.record
        for row in rows:
            if pk in row and "@odata.context" not in row:
                upserts.append(record(row))
                continue
            context = str(row.get("@odata.context") or "")
            if context.endswith(_DELETED) or ("reason" in row and "id" in row and pk not in row):
                deletes.append(str(row["id"]).lower())
            else:
                upserts.append(record(row))
        return upserts, deletes


def _multi_label(
    chosen: tuple[int, ...], options: Mapping[int, str], seen: dict[tuple[int, ...], str | None]
) -> str | None:
    """The label of a multi-select value the way the service words it; None when an option is not listed."""
    if chosen in seen:
        return seen[chosen]
    label = "; ".join(options[v] for v in chosen) if all(v in options for v in chosen) else None
    if len(seen) < _CACHE_LIMIT:
        seen[chosen] = label
    return label
