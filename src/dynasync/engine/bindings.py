"""Bind published mappings to live synapses: discover streams, compile, and list each UDM entity's sides."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from dynasync.errors import ConfigError
from dynasync.mapping.compile import CompiledEntity, CompiledMapping, compile_mapping
from dynasync.mapping.spec import EntityMapping, MappingSpec
from dynasync.mapping.udm_schema import udm_entities
from dynasync.synapses.base import StreamSpec, Synapse
from dynasync.udm.model import UdmEntity


@dataclass(frozen=True, slots=True)
class Binding:
    """One source table of one synapse bound to one UDM entity through its compiled mapping."""

    synapse_name: str
    synapse: Synapse
    stream: StreamSpec
    mapping: CompiledEntity
    # UDM fields whose values flow to this table, and each written column's UDM fields.
    write_fields: frozenset[str] = frozenset()
    column_fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # The stream narrowed to the columns read (None: all of ``stream``).
    read_stream: StreamSpec | None = None
    # UDM fields read only from columns the source maintains itself (modifiedon...): see ``incoming``.
    server_fields: frozenset[str] = frozenset()
    # Every written field is also read, so a record created from this table holds what the table holds: the
    # write-back may skip it while it is unchanged.
    synced_on_create: bool = False

    @property
    def entity(self) -> str:
        """The UDM entity."""
        return self.mapping.entity

    @property
    def table(self) -> str:
        """The source table (stream name)."""
        return self.stream.name

    @property
    def reading(self) -> StreamSpec:
        """The stream to read: only the mapped columns plus what change detection needs."""
        return self.read_stream if self.read_stream is not None else self.stream

    @property
    def reads(self) -> bool:
        """True when some field flows from this table into the UDM."""
        return bool(self.mapping.select_columns)

    @property
    def writes(self) -> bool:
        """True when some field (or the delete) flows from the UDM into this table."""
        return bool(self.mapping.write_columns) or self.mapping.delete_from_udm


@dataclass(frozen=True, slots=True)
class Bindings:
    """Every binding of a run plus the UDM entities they need."""

    items: tuple[Binding, ...]
    entities: Mapping[str, UdmEntity]

    def for_entity(self, entity: str) -> list[Binding]:
        """Return the bindings of one UDM entity (in synapse order)."""
        return [b for b in self.items if b.entity == entity]


async def bind(
    synapses: Mapping[str, Synapse],
    mappings: Sequence[MappingSpec | CompiledMapping],
) -> Bindings:
    """Discover each mapped synapse's streams, compile its mapping and return the bindings.

    Args:
        synapses: live synapses by name (the name a mapping's ``synapse`` refers to).
        mappings: published mapping specs (compiled here) or already compiled mappings.

    Raises:
        ConfigError: a mapping names a synapse that is not given.
        MappingValidationError: a spec does not fit the discovered streams.
    """
    items: list[Binding] = []
    specs: list[MappingSpec] = []
    all_streams: list[StreamSpec] = []
    for mapping in mappings:
        name = mapping.synapse
        synapse = synapses.get(name)
        if synapse is None:
            raise ConfigError(
                f"the mapping of synapse '{name}' has no configured synapse of that name",
                remedy=f"Configure and activate synapse '{name}', or remove its mapping.",
            )
        if isinstance(mapping, CompiledMapping):
            compiled = mapping
            streams = await synapse.discover()
        else:
            streams = await synapse.discover()
            compiled = compile_mapping(mapping, streams)
        by_name = {s.name: s for s in streams}
        specs.append(compiled.spec)
        all_streams.extend(streams)
        for table, entity in compiled.entities.items():
            stream = by_name.get(table)
            if stream is None:
                raise ConfigError(
                    f"table '{table}' mapped for synapse '{name}' is not offered by it any more",
                    remedy="Refresh the schema and fix the mapping.",
                )
            spec_entity = compiled.spec.entity_for_table(table)
            write_fields = write_fields_of(spec_entity)
            items.append(
                Binding(
                    name,
                    synapse,
                    stream,
                    entity,
                    write_fields,
                    _column_fields(spec_entity),
                    read_stream=narrow_stream(stream, entity.select_columns),
                    server_fields=_server_fields(spec_entity, stream),
                    synced_on_create=write_fields <= _read_fields(spec_entity, stream),
                )
            )
    entities = {e.name: e for e in udm_entities(specs, all_streams)}
    return Bindings(tuple(items), entities)


# Read with the mapped columns: the row's modification time and version drive the conflict policy, If-Match and
# the modifiedon watermark of tables without change tracking (names as Dataverse has them; absent ones are skipped).
BOOKKEEPING_COLUMNS = ("modifiedon", "versionnumber")


def narrow_stream(stream: StreamSpec, columns: Sequence[str]) -> StreamSpec:
    """Return ``stream`` limited to ``columns``, its primary id and the bookkeeping columns it has.

    Columns keep the stream's own order, so the same mapping always gives the same column set and order (a
    synapse may reload a table in full when the columns it reads change).
    """
    wanted = {*columns, stream.primary_id, *BOOKKEEPING_COLUMNS}
    kept = {name: spec for name, spec in stream.columns.items() if name in wanted}
    return dataclasses.replace(stream, columns=kept)


def _read_fields(entity: EntityMapping | None, stream: StreamSpec) -> frozenset[str]:
    if entity is None:
        return frozenset()
    return frozenset(
        f.field
        for f in entity.fields
        if f.field and f.column and f.direction.reads and not f.has_constant and f.column in stream.columns
    )


def _server_fields(entity: EntityMapping | None, stream: StreamSpec) -> frozenset[str]:
    """UDM fields whose every source column is maintained by the source (neither creatable nor updatable).

    A write of ours moves such columns (modifiedon, versionnumber, a full name built from the parts...), so when
    they are all that differs on the next read, the row is our own write coming back.
    """
    if entity is None:
        return frozenset()
    verdict: dict[str, bool] = {}
    for f in entity.fields:
        if not (f.field and f.column and f.direction.reads) or f.has_constant:
            continue
        column = stream.columns.get(f.column)
        server = (
            column is not None and not column.creatable and not column.updatable and not column.is_primary_id
        )
        verdict[f.field] = verdict.get(f.field, True) and server
    return frozenset(name for name, server in verdict.items() if server)


def write_fields_of(entity: EntityMapping | None) -> frozenset[str]:
    """The UDM fields a table mapping writes to its table (none for no mapping)."""
    if entity is None:
        return frozenset()
    return frozenset(
        f.field for f in entity.fields if f.field and f.column and f.direction.writes and not f.has_constant
    )


def _column_fields(entity: EntityMapping | None) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for f in entity.fields if entity is not None else ():
        if f.field and f.column and f.direction.writes and not f.has_constant:
            out[f.column] = (*out.get(f.column, ()), f.field)
    return out
