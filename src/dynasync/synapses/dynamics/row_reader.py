"""Compiled conversion of one stream's Web API rows into :class:`SourceRecord` values (the read hot path).

A :class:`RowReader` works out once per stream and column set which wire keys to take, which values need
converting (and with what), where each lookup's table annotation and each label live. A row then costs a few
C-level dict operations plus one call per non-null typed value, instead of a type dispatch per column.
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
# distinct value, up to this many per reader.
_REF_LIMIT = 100_000


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
        self._convert = tuple((c.name, f) for c in self.columns if (f := CONVERTERS[c.type]) is not None)
        lookups = [(key, c) for key, c in pairs if c.type is ColumnType.LOOKUP]
        self._lookups = tuple(
            (c.name, f"{key}@{LOOKUP_TABLE}", c.targets[0] if len(c.targets) == 1 else None, c)
            for key, c in lookups
        )
        service = labels == "service"
        self._service_labels = tuple(
            (f"{key}@{FORMATTED}", c.name) for key, c in pairs if service and c.type in LABELLED
        )
        self._option_labels = tuple(
            (c.name, dict(c.options))
            for c in self.columns
            if not service and c.options and c.type is ColumnType.CHOICE
        )
        self._multi_labels = tuple(
            (c.name, dict(c.options), dict[tuple[int, ...], str | None]())
            for c in self.columns
            if not service and c.options and c.type is ColumnType.MULTICHOICE
        )
        wanted = [FORMATTED] if self._service_labels else []
        if any(len(c.targets) != 1 for _, c in lookups):
            wanted.append(LOOKUP_TABLE)  # only a polymorphic lookup's target needs telling
        self.annotations: str | None = ",".join(wanted) or None
        """The ``odata.include-annotations`` value the rows need (None: none)."""
        self._refs: dict[tuple[str, str], LookupRef] = {}
        self._pk = stream.primary_id
        modified = next((c for c in self.columns if c.name == "modifiedon"), None)
        self._modified_in_values = modified is not None and modified.type is ColumnType.DATETIME

    def __repr__(self) -> str:
        return f"RowReader({self.stream.name!r}, {len(self.columns)} columns, labels={self.labels!r})"

    def record(self, row: Mapping[str, Any]) -> SourceRecord:
        """Convert one row (with or without annotations) into a :class:`SourceRecord`."""
        plain = self._plain is not None and type(row) is dict and row.keys() == self._plain
        values: dict[str, Any]
        if plain:
            assert isinstance(row, dict)
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
        for name, convert in self._convert:
            raw = values.get(name)
            if raw is not None:
                values[name] = convert(raw)
        if self._lookups:
            self._read_lookups(row, values)
        labels: dict[str, str] = {}
        if self._service_labels and not plain:
            get = row.get
            for key, name in self._service_labels:
                label = get(key)
                if label is not None and name in values:
                    labels[name] = label if type(label) is str else str(label)
        elif self._option_labels or self._multi_labels:
            self._read_option_labels(values, labels)
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

    def _read_lookups(self, row: Mapping[str, Any], values: dict[str, Any]) -> None:
        refs = self._refs
        for name, table_key, only_target, column in self._lookups:
            raw = values.get(name)
            if raw is None:
                continue
            table = row.get(table_key) or only_target
            if table is None:
                raise missing_target_error(column, raw)
            key = (table, raw)
            ref = refs.get(key)
            if ref is None:
                if len(refs) >= _REF_LIMIT:
                    refs.clear()
                ref = refs[key] = LookupRef(str(table), str(raw).lower())
            values[name] = ref

    def _read_option_labels(self, values: Mapping[str, Any], labels: dict[str, str]) -> None:
        for name, options in self._option_labels:
            value = values.get(name)
            label = options.get(value) if value is not None else None
            if label is not None:
                labels[name] = label
        for name, options, seen in self._multi_labels:
            chosen = values.get(name)
            if not chosen:
                continue
            if chosen in seen:
                label = seen[chosen]
            else:
                # The service joins the labels of a multi-select this way; one unknown option: no label.
                label = "; ".join(options[v] for v in chosen) if all(v in options for v in chosen) else None
                if len(seen) < _REF_LIMIT:
                    seen[chosen] = label
            if label is not None:
                labels[name] = label

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
