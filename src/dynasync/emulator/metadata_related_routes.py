"""Answers for metadata keys, relationships and global option sets.

Paths: ``.../Keys``, ``.../OneToManyRelationships`` (and siblings), ``RelationshipDefinitions``,
``GlobalOptionSetDefinitions``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dynasync.emulator.catalog import AttributeDef, EntityDef, RelationshipDef
from dynasync.emulator.errors import EmulatorError
from dynasync.emulator.metadata_attribute_routes import CAST_PREFIX, OPTION_SET_VIEW
from dynasync.emulator.metadata_attributes import global_option_set_id, option_set
from dynasync.emulator.metadata_entities import (
    KEY_PROPERTIES,
    RELATIONSHIP_PROPERTIES,
    key_item,
    relationship_item,
)
from dynasync.emulator.metadata_query import (
    PARSE_ERROR_CODE,
    Segment,
    parse_key,
    segment_not_found,
    unsupported_option,
)
from dynasync.emulator.metadata_views import Call, View, select_items, shape

KEY_NOT_FOUND = "Could not find key with name '{name}' on entity '{entity}'."  # wording [I]
RELATIONSHIP_NOT_FOUND = "Could not find relationship with name '{name}'."  # wording [I]
OPTION_SET_NOT_FOUND = "Could not find optionset with name '{name}'."  # wording [I]

KEY_VIEW = View("EntityKeyMetadata", KEY_PROPERTIES)
ONE_TO_MANY_VIEW = View("OneToManyRelationshipMetadata", RELATIONSHIP_PROPERTIES)
_BASE_RELATIONSHIP_PROPERTIES = (
    "MetadataId",
    "HasChanged",
    "SchemaName",
    "RelationshipType",
    "SecurityTypes",
    "IsCustomRelationship",
    "IsManaged",
    "IsValidForAdvancedFind",
    "IsCustomizable",
    "IntroducedVersion",
    "IsHierarchical",
    "RelationshipBehavior",
)
RELATIONSHIP_BASE_VIEW = View("RelationshipMetadataBase", _BASE_RELATIONSHIP_PROPERTIES)
MANY_TO_MANY_VIEW = View(
    "ManyToManyRelationshipMetadata",
    (
        *_BASE_RELATIONSHIP_PROPERTIES,
        "Entity1LogicalName",
        "Entity2LogicalName",
        "IntersectEntityName",
        "Entity1IntersectAttribute",
        "Entity2IntersectAttribute",
        "Entity1NavigationPropertyName",
        "Entity2NavigationPropertyName",
    ),
)
_RELATIONSHIP_CASTS = {
    "OneToManyRelationshipMetadata": ONE_TO_MANY_VIEW,
    "ManyToManyRelationshipMetadata": MANY_TO_MANY_VIEW,
    "RelationshipMetadataBase": RELATIONSHIP_BASE_VIEW,
}
_OPTION_SET_CASTS = ("OptionSetMetadataBase", "OptionSetMetadata", "BooleanOptionSetMetadata")


def _collection_or_single(
    call: Call,
    view: View,
    items: Sequence[tuple[str, str, dict[str, object]]],
    segment: Segment,
    path: str,
    not_found: Callable[[str], EmulatorError],
    key_name: str,
) -> dict[str, object]:
    """Serve a keyed metadata collection; ``items`` are (name, MetadataId, JSON item), named by ``key_name``."""
    if call.expands:
        raise view.unknown(call.expands[0].navigation)
    if segment.key is None:
        options = call.options(view)
        value = select_items((item for _, _, item in items), options, view)
        return {"@odata.context": f"{call.context}{path}{call.suffix(options.select)}", "value": value}
    key = parse_key(segment, call.aliases)
    if isinstance(key, tuple):
        if key[0] != key_name:
            raise segment_not_found(segment.text)
        wanted = key[1].lower()
        match = next((item for name, _, item in items if name.lower() == wanted), None)
        missing = key[1]
    else:
        match = next((item for _, metadata_id, item in items if metadata_id == str(key)), None)
        missing = str(key)
    if match is None:
        raise not_found(missing)
    options = call.single_options(view)
    body: dict[str, object] = {"@odata.context": f"{call.context}{path}{call.suffix(options.select)}/$entity"}
    body.update(shape(match, options.select, view))
    return body


def keys_response(call: Call, entity: EntityDef, entity_path: str, rest: list[Segment]) -> dict[str, object]:
    """Answer ``<entity_path>/Keys[(LogicalName='x')|(id)]``."""
    if len(rest) > 1:
        raise segment_not_found(rest[1].text)
    items = [
        (k.logical_name, str(key_item(entity, k)["MetadataId"]), key_item(entity, k)) for k in entity.keys
    ]

    def missing(name: str) -> EmulatorError:
        return EmulatorError(
            404, PARSE_ERROR_CODE, KEY_NOT_FOUND.format(name=name, entity=entity.logical_name)
        )

    return _collection_or_single(
        call, KEY_VIEW, items, rest[0], f"{entity_path}/Keys", missing, "LogicalName"
    )


def _relationship_missing(name: str) -> EmulatorError:
    return EmulatorError(404, PARSE_ERROR_CODE, RELATIONSHIP_NOT_FOUND.format(name=name))


def _relationship_rows(
    relationships: list[RelationshipDef], *, typed: bool
) -> list[tuple[str, str, dict[str, object]]]:
    rows = []
    for relationship in relationships:
        item = relationship_item(relationship)
        if typed:
            item = {"@odata.type": f"#{CAST_PREFIX}OneToManyRelationshipMetadata", **item}
        rows.append((relationship.schema_name, str(relationship.metadata_id), item))
    return rows


def entity_relationships_response(
    call: Call, entity: EntityDef, entity_path: str, rest: list[Segment]
) -> dict[str, object]:
    """Answer ``<entity_path>/OneToManyRelationships``, ``/ManyToOneRelationships``, ``/ManyToManyRelationships``."""
    if len(rest) > 1:
        raise segment_not_found(rest[1].text)
    segment = rest[0]
    path = f"{entity_path}/{segment.name}"
    if segment.name == "ManyToManyRelationships":
        # The catalog models one-to-many relationships only, so every table has no N:N relationship.
        return _collection_or_single(
            call, MANY_TO_MANY_VIEW, [], segment, path, _relationship_missing, "SchemaName"
        )
    if segment.name == "OneToManyRelationships":
        relationships = call.catalog.relationships_from(entity.logical_name)
    else:
        relationships = call.catalog.relationships_to(entity.logical_name)
    rows = _relationship_rows(relationships, typed=False)
    return _collection_or_single(
        call, ONE_TO_MANY_VIEW, rows, segment, path, _relationship_missing, "SchemaName"
    )


def relationship_definitions_response(call: Call, rest: list[Segment]) -> dict[str, object]:
    """Answer ``RelationshipDefinitions[(key)][/Microsoft.Dynamics.CRM.<Type>]``."""
    head, tail = rest[0], rest[1:]
    view = RELATIONSHIP_BASE_VIEW
    cast_path = ""
    if tail:
        cast = tail[0].name[len(CAST_PREFIX) :] if tail[0].name.startswith(CAST_PREFIX) else ""
        if cast not in _RELATIONSHIP_CASTS or len(tail) > 1 or tail[0].key is not None:
            raise segment_not_found(tail[0].text)
        view = _RELATIONSHIP_CASTS[cast]
        cast_path = f"/{tail[0].name}"
    relationships = call.catalog.relationships if view is not MANY_TO_MANY_VIEW else []
    # Items carry @odata.type unless the request cast to their exact type.
    rows = _relationship_rows(relationships, typed=view is not ONE_TO_MANY_VIEW)
    return _collection_or_single(
        call, view, rows, head, f"RelationshipDefinitions{cast_path}", _relationship_missing, "SchemaName"
    )


def global_option_sets(call: Call) -> dict[str, tuple[EntityDef, AttributeDef]]:
    """Every global option set of the catalog by name, with the first column that uses it."""
    found: dict[str, tuple[EntityDef, AttributeDef]] = {}
    for entity in call.catalog.entities.values():
        for attribute in entity.attributes.values():
            if attribute.is_global_option_set and attribute.option_set_name:
                found.setdefault(attribute.option_set_name, (entity, attribute))
    return found


def global_option_sets_response(call: Call, rest: list[Segment]) -> dict[str, object]:
    """Answer ``GlobalOptionSetDefinitions[(Name='x')|(id)][/Microsoft.Dynamics.CRM.OptionSetMetadata]``."""
    if "$filter" in call.query:
        raise unsupported_option("$filter")  # [V]: this set supports no $filter
    head, tail = rest[0], rest[1:]
    cast = ""
    if tail:
        cast = tail[0].name[len(CAST_PREFIX) :] if tail[0].name.startswith(CAST_PREFIX) else ""
        if cast not in _OPTION_SET_CASTS or len(tail) > 1 or tail[0].key is not None:
            raise segment_not_found(tail[0].text)
    rows = []
    for name, (entity, attribute) in global_option_sets(call).items():
        item = option_set(entity, attribute)
        item_type = "BooleanOptionSetMetadata" if "TrueOption" in item else "OptionSetMetadata"
        if cast not in ("", "OptionSetMetadataBase") and cast != item_type:
            continue
        if cast != item_type:
            item = {"@odata.type": f"#{CAST_PREFIX}{item_type}", **item}
        rows.append((name, str(global_option_set_id(name)), item))

    def missing(name: str) -> EmulatorError:
        return EmulatorError(404, PARSE_ERROR_CODE, OPTION_SET_NOT_FOUND.format(name=name))

    path = f"GlobalOptionSetDefinitions{f'/{CAST_PREFIX}{cast}' if cast else ''}"
    return _collection_or_single(call, OPTION_SET_VIEW, rows, head, path, missing, "Name")
