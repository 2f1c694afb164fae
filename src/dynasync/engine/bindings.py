"""Bind published mappings to live synapses: discover streams, compile, and list each UDM entity's sides."""

from __future__ import annotations

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
    write_fields: frozenset[str] = frozenset()  # UDM fields whose values flow to this table
    column_fields: Mapping[str, tuple[str, ...]] = field(
        default_factory=dict
    )  # written column -> its UDM fields

    @property
    def entity(self) -> str:
        """The UDM entity."""
        return self.mapping.entity

    @property
    def table(self) -> str:
        """The source table (stream name)."""
        return self.stream.name

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
            items.append(
                Binding(
                    name, synapse, stream, entity, _write_fields(spec_entity), _column_fields(spec_entity)
                )
            )
    entities = {e.name: e for e in udm_entities(specs, all_streams)}
    return Bindings(tuple(items), entities)


def _write_fields(entity: EntityMapping | None) -> frozenset[str]:
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
