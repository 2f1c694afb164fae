"""JSON form of custom table, column and relationship definitions, so they survive a store restart."""

from __future__ import annotations

import uuid
from typing import Any

from dynasync.emulator.catalog import (
    AttributeDef,
    AttributeType,
    DateTimeBehavior,
    EntityDef,
    KeyDef,
    OptionDef,
    RelationshipDef,
    RequiredLevel,
)

_ATTRIBUTE_FIELDS = (
    "logical_name", "schema_name", "display_name", "type_name", "max_length", "min_value", "max_value",
    "precision", "format", "option_set_name", "is_global_option_set", "valid_for_create", "valid_for_update",
    "valid_for_read", "is_primary_id", "is_primary_name", "is_custom", "attribute_of", "is_odata_property",
    "default_value",
)  # fmt: skip
_ENTITY_FIELDS = (
    "logical_name", "entity_set_name", "primary_id", "primary_name", "object_type_code", "schema_name",
    "display_name", "display_collection_name", "ownership", "change_tracking", "can_change_tracking_be_enabled",
    "is_custom", "is_activity", "supports_multiple",
)  # fmt: skip
_RELATIONSHIP_FIELDS = (
    "schema_name", "referenced_entity", "referenced_attribute", "referencing_entity", "referencing_attribute",
    "referenced_navigation", "referencing_navigation", "cascade_delete", "is_custom",
)  # fmt: skip


def attribute_to_json(attribute: AttributeDef) -> dict[str, Any]:
    """A JSON-safe dict of a column definition."""
    data: dict[str, Any] = {name: getattr(attribute, name) for name in _ATTRIBUTE_FIELDS}
    data["type"] = attribute.type.value
    data["required_level"] = attribute.required_level.value
    data["date_behavior"] = attribute.date_behavior.value if attribute.date_behavior else None
    data["options"] = [
        {
            "value": o.value,
            "label": o.label,
            "state": o.state,
            "default_status": o.default_status,
            "invariant_name": o.invariant_name,
        }
        for o in attribute.options
    ]
    data["targets"] = list(attribute.targets)
    data["navigation"] = dict(attribute.navigation)
    data["metadata_id"] = str(attribute.metadata_id)
    return data


def attribute_from_json(data: dict[str, Any]) -> AttributeDef:
    """Rebuild a column definition from :func:`attribute_to_json` output."""
    kwargs: dict[str, Any] = {name: data[name] for name in _ATTRIBUTE_FIELDS if name in data}
    return AttributeDef(
        type=AttributeType(data["type"]),
        required_level=RequiredLevel(data["required_level"]),
        date_behavior=DateTimeBehavior(data["date_behavior"]) if data.get("date_behavior") else None,
        options=tuple(OptionDef(**o) for o in data.get("options", [])),
        targets=tuple(data.get("targets", [])),
        navigation=dict(data.get("navigation", {})),
        metadata_id=uuid.UUID(data["metadata_id"]),
        **kwargs,
    )


def entity_to_json(entity: EntityDef) -> dict[str, Any]:
    """A JSON-safe dict of a table definition with its columns and keys."""
    data: dict[str, Any] = {name: getattr(entity, name) for name in _ENTITY_FIELDS}
    data["attributes"] = [attribute_to_json(a) for a in entity.attributes.values()]
    data["keys"] = [
        {"logical_name": k.logical_name, "attributes": list(k.attributes), "schema_name": k.schema_name}
        for k in entity.keys
    ]
    data["metadata_id"] = str(entity.metadata_id)
    return data


def entity_from_json(data: dict[str, Any]) -> EntityDef:
    """Rebuild a table definition from :func:`entity_to_json` output."""
    entity = EntityDef(
        **{name: data[name] for name in _ENTITY_FIELDS}, metadata_id=uuid.UUID(data["metadata_id"])
    )
    for attribute in data.get("attributes", []):
        entity.add(attribute_from_json(attribute))
    entity.keys = [
        KeyDef(k["logical_name"], tuple(k["attributes"]), k.get("schema_name", ""))
        for k in data.get("keys", [])
    ]
    return entity


def key_to_json(key: KeyDef) -> dict[str, Any]:
    """A JSON-safe dict of an alternate key."""
    return {
        "logical_name": key.logical_name,
        "attributes": list(key.attributes),
        "schema_name": key.schema_name,
    }


def key_from_json(data: dict[str, Any]) -> KeyDef:
    """Rebuild an alternate key."""
    return KeyDef(data["logical_name"], tuple(data["attributes"]), data.get("schema_name", ""))


def relationship_to_json(relationship: RelationshipDef) -> dict[str, Any]:
    """A JSON-safe dict of a relationship."""
    data: dict[str, Any] = {name: getattr(relationship, name) for name in _RELATIONSHIP_FIELDS}
    data["metadata_id"] = str(relationship.metadata_id)
    return data


def relationship_from_json(data: dict[str, Any]) -> RelationshipDef:
    """Rebuild a relationship."""
    return RelationshipDef(
        **{name: data[name] for name in _RELATIONSHIP_FIELDS}, metadata_id=uuid.UUID(data["metadata_id"])
    )
