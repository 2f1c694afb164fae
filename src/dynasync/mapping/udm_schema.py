"""Derive the UDM entities (and each field's type) a mapping needs, so the store can create their tables."""

from __future__ import annotations

from collections.abc import Sequence

from dynasync.errors import MappingError
from dynasync.mapping.errors import located
from dynasync.mapping.spec import EntityMapping, MappingSpec
from dynasync.synapses.base import StreamSpec
from dynasync.udm.model import FieldType, UdmEntity, UdmField

_SIZED = (FieldType.STRING, FieldType.TEXT)


def entity_schema(entity: EntityMapping, stream: StreamSpec | None, source: str | None = None) -> UdmEntity:
    """Return the UDM entity one entity mapping produces.

    Raises:
        MappingError: a mapped field has no type, or one field name is given two different types.
    """
    fields: dict[str, UdmField] = {}
    for mapping in entity.fields:
        if not mapping.field:
            continue  # a from_udm constant written to the source has no UDM field
        if mapping.type is None:
            line = mapping.loc.line if mapping.loc else None
            raise MappingError(
                f"UDM field '{entity.entity}.{mapping.field}' has no type", location=located(source, line)
            )
        column = stream.columns.get(mapping.column) if stream is not None and mapping.column else None
        max_length = mapping.max_length
        if max_length is None and column is not None and mapping.type in _SIZED:
            max_length = column.max_length
        new = UdmField(
            name=mapping.field,
            type=mapping.type,
            reference=mapping.reference if mapping.type is FieldType.REFERENCE else None,
            max_length=max_length,
            description=mapping.description or (column.display_name if column is not None else ""),
        )
        old = fields.get(mapping.field)
        if old is not None and (old.type, old.reference) != (new.type, new.reference):
            line = mapping.loc.line if mapping.loc else None
            raise MappingError(
                f"UDM field '{entity.entity}.{mapping.field}' is mapped as {old.type.value} and as {new.type.value}",
                location=located(source, line),
            )
        if old is None or (new.max_length or 0) > (old.max_length or 0):
            fields[mapping.field] = new
    return UdmEntity(name=entity.entity, fields=fields, match_keys=entity.match_keys)


def udm_entities(
    spec: MappingSpec | Sequence[MappingSpec], streams: Sequence[StreamSpec] | None = None
) -> list[UdmEntity]:
    """Return every UDM entity the mapping(s) need, merged across synapses, in first-mapped order.

    ``streams`` (optional) supplies column lengths and display names for string fields.

    Raises:
        MappingError: a field has no type, or two mappings give one UDM field different types.
    """
    specs = [spec] if isinstance(spec, MappingSpec) else list(spec)
    by_name = {s.name: s for s in streams or ()}
    merged: dict[str, UdmEntity] = {}
    for one in specs:
        for entity in one.entities:
            built = entity_schema(entity, by_name.get(entity.table), one.source)
            previous = merged.get(built.name)
            merged[built.name] = built if previous is None else _merge(previous, built)
    return list(merged.values())


def _merge(first: UdmEntity, second: UdmEntity) -> UdmEntity:
    fields = dict(first.fields)
    for name, new in second.fields.items():
        old = fields.get(name)
        if old is not None and (old.type, old.reference) != (new.type, new.reference):
            raise MappingError(
                f"UDM field '{first.name}.{name}' is {old.type.value} in one synapse mapping "
                f"and {new.type.value} in another"
            )
        if old is None or (new.max_length or 0) > (old.max_length or 0):
            fields[name] = new
    keys = first.match_keys + tuple(k for k in second.match_keys if k not in first.match_keys)
    return UdmEntity(name=first.name, fields=fields, match_keys=keys)
