"""Compile a validated mapping into per-table row functions (to the UDM and back) built from closures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from dynasync.errors import MappingError
from dynasync.mapping.errors import MappingValidationError, problem
from dynasync.mapping.rows import (
    Reader,
    Writer,
    compile_readers,
    constant_reader,
    constant_writer,
    lookup_reader,
    lookup_writer,
    passthrough,
    scalar_reader,
    scalar_writer,
)
from dynasync.mapping.spec import ConflictPolicy, EntityMapping, FieldMapping, MappingSpec
from dynasync.mapping.udm_schema import entity_schema
from dynasync.mapping.validate import check_mapping, lookup_target_table
from dynasync.synapses.base import ColumnType, LookupRef, SourceRecord, StreamSpec
from dynasync.udm.model import UdmEntity


class ToUdm(NamedTuple):
    """One source row in UDM shape; a non-empty ``problems`` means the record must be rejected."""

    values: dict[str, Any]
    references: dict[str, LookupRef | None]
    problems: list[str]


class FromUdm(NamedTuple):
    """One UDM record in source shape; a non-empty ``problems`` means the write must not be sent."""

    values: dict[str, Any]
    problems: list[str]


class CompiledEntity:
    """The compiled mapping of one source table to one UDM entity."""

    __slots__ = (
        "_read",
        "_readers",
        "_writers",
        "conflicts",
        "delete_from_udm",
        "delete_to_udm",
        "entity",
        "match_keys",
        "recreate_deleted",
        "reference_targets",
        "select_columns",
        "table",
        "udm",
        "write_columns",
    )

    def __init__(self, mapping: EntityMapping, stream: StreamSpec, spec: MappingSpec) -> None:
        self.table = mapping.table
        self.entity = mapping.entity
        self.udm: UdmEntity = entity_schema(mapping, stream, spec.source)
        self.match_keys = mapping.match_keys
        self.delete_to_udm = mapping.delete_to_udm
        self.delete_from_udm = mapping.delete_from_udm
        self.recreate_deleted = mapping.recreate_deleted
        self.conflicts: Mapping[str, ConflictPolicy] = {
            m.field: m.conflict for m in mapping.fields if m.field
        }
        self.reference_targets: Mapping[str, str] = {
            m.field: m.reference for m in mapping.fields if m.field and m.reference
        }
        readers: list[Reader] = []
        fast: dict[
            int, tuple[str, str, type[Any]]
        ] = {}  # reader index -> pass-through (see rows.passthrough)
        writers: list[Writer] = []
        read_lookups: dict[str, list[tuple[FieldMapping, str]]] = {}
        write_lookups: dict[str, list[tuple[FieldMapping, str]]] = {}
        select: list[str] = []
        write_columns: list[str] = []
        for field in mapping.fields:
            column = stream.columns.get(field.column) if field.column else None
            where = f"{mapping.table}.{field.column} -> {field.field}" if field.column else f"{field.field}"
            if column is None:
                if field.direction.reads and field.has_constant:
                    readers.append(constant_reader(field))
                continue
            if field.has_constant:
                writers.append(constant_writer(field, column))
                write_columns.append(column.name)
                continue
            if column.type is ColumnType.LOOKUP:
                table = lookup_target_table(spec, field, column)
                assert table is not None  # validated
                if field.direction.reads:
                    read_lookups.setdefault(column.name, []).append((field, table))
                if field.direction.writes:
                    write_lookups.setdefault(column.name, []).append((field, table))
                continue
            if field.direction.reads:
                shortcut = passthrough(field, column)
                if shortcut is not None:
                    fast[len(readers)] = shortcut
                readers.append(scalar_reader(field, column, where))
            if field.direction.writes:
                writers.append(scalar_writer(field, column, where))
        for name, group in read_lookups.items():
            readers.append(lookup_reader(stream.columns[name], group, f"{mapping.table}.{name}"))
        for name, group in write_lookups.items():
            writers.append(lookup_writer(stream.columns[name], group, f"{mapping.table}.{name}"))
        for field in mapping.fields:
            if (
                field.column
                and field.direction.reads
                and not field.has_constant
                and field.column not in select
            ):
                select.append(field.column)
            if field.column and field.direction.writes and field.column not in write_columns:
                write_columns.append(field.column)
        self._readers = tuple(readers)
        self._read = compile_readers([(r, fast.get(i)) for i, r in enumerate(readers)], mapping.table)
        self._writers = tuple(writers)
        self.select_columns: tuple[str, ...] = tuple(select)
        self.write_columns: tuple[str, ...] = tuple(write_columns)

    def to_udm(self, record: SourceRecord) -> ToUdm:
        """Map one source row to UDM values and references; absent columns leave their fields out."""
        values = record.values
        labels = record.labels
        out: dict[str, Any] = {}
        refs: dict[str, LookupRef | None] = {}
        problems: list[str] = []
        self._read(values, labels, out, refs, problems)
        return ToUdm(out, refs, problems)

    def from_udm(self, values: Mapping[str, Any], references: Mapping[str, Any] | None = None) -> FromUdm:
        """Map UDM field values (and resolved references) to source column values for a write.

        ``references`` maps each UDM reference field to the source row it resolves to: a ``LookupRef`` of the
        field's target table, a bare source id, or None to clear. Only fields present are written.
        """
        refs = references or {}
        out: dict[str, Any] = {}
        problems: list[str] = []
        for write in self._writers:
            write(values, refs, out, problems)
        return FromUdm(out, problems)

    def __repr__(self) -> str:
        return f"CompiledEntity({self.table!r} -> {self.entity!r}, {len(self._readers)} readers)"


class CompiledMapping:
    """A compiled mapping of one synapse: one :class:`CompiledEntity` per mapped table."""

    def __init__(self, spec: MappingSpec, entities: Mapping[str, CompiledEntity]) -> None:
        self.spec = spec
        self.synapse = spec.synapse
        self.entities: Mapping[str, CompiledEntity] = entities
        self._by_entity = {c.entity: c for c in entities.values()}

    def for_table(self, table: str) -> CompiledEntity:
        """Return the compiled mapping of a source table.

        Raises:
            MappingError: the table is not mapped.
        """
        try:
            return self.entities[table]
        except KeyError:
            raise MappingError(f"table '{table}' is not mapped for synapse '{self.synapse}'") from None

    def for_entity(self, entity: str) -> CompiledEntity:
        """Return the compiled mapping that feeds the UDM entity ``entity``.

        Raises:
            MappingError: no table maps to that entity.
        """
        try:
            return self._by_entity[entity]
        except KeyError:
            raise MappingError(f"UDM entity '{entity}' is not mapped for synapse '{self.synapse}'") from None

    def to_udm(self, table: str, record: SourceRecord) -> ToUdm:
        """Shortcut for ``for_table(table).to_udm(record)``."""
        return self.for_table(table).to_udm(record)

    def from_udm(
        self, entity: str, values: Mapping[str, Any], references: Mapping[str, Any] | None = None
    ) -> FromUdm:
        """Shortcut for ``for_entity(entity).from_udm(values, references)``."""
        return self.for_entity(entity).from_udm(values, references)

    def udm_entities(self) -> list[UdmEntity]:
        """Return the UDM entity of every mapped table."""
        return [c.udm for c in self.entities.values()]


def compile_mapping(spec: MappingSpec, streams: Sequence[StreamSpec]) -> CompiledMapping:
    """Validate ``spec`` against ``streams`` and compile it.

    Raises:
        MappingValidationError: every problem of the spec, located.
    """
    check_mapping(spec, streams)
    by_name = {s.name: s for s in streams}
    compiled: dict[str, CompiledEntity] = {}
    try:
        for entity in spec.entities:
            compiled[entity.table] = CompiledEntity(entity, by_name[entity.table], spec)
    except ValueError as exc:
        # A default that cannot be converted to the source shape (e.g. an option label that does not exist).
        raise MappingValidationError([problem(f"cannot compile mapping: {exc}", spec.source, None)]) from None
    return CompiledMapping(spec, compiled)
