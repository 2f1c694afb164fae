"""The emulator's metadata surface: metadata GET requests answered as JSON bodies from the catalog (no HTTP).

Covers ``EntityDefinitions``, ``RelationshipDefinitions`` and ``GlobalOptionSetDefinitions``.

The Web API layer calls :func:`handle_metadata` for every path whose first segment is one of
:data:`METADATA_ROOTS` and serialises the returned dict with status 200; errors are raised as
:class:`~dynasync.emulator.errors.EmulatorError`. Metadata responses are never paged.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from dynasync.emulator.catalog import Catalog, EntityDef
from dynasync.emulator.errors import EmulatorError, not_implemented
from dynasync.emulator.metadata_attribute_routes import attribute_view, attributes_response
from dynasync.emulator.metadata_attributes import attribute_item
from dynasync.emulator.metadata_entities import (
    ENTITY_NAVIGATIONS,
    ENTITY_PROPERTIES,
    entity_item,
    find_entity,
    key_item,
    relationship_item,
)
from dynasync.emulator.metadata_filter import matches
from dynasync.emulator.metadata_query import (
    PARSE_ERROR_CODE,
    Segment,
    parse_expand,
    parse_key,
    segment_not_found,
    split_path,
    unsupported_option,
)
from dynasync.emulator.metadata_related_routes import (
    KEY_VIEW,
    MANY_TO_MANY_VIEW,
    ONE_TO_MANY_VIEW,
    entity_relationships_response,
    global_option_sets_response,
    keys_response,
    relationship_definitions_response,
)
from dynasync.emulator.metadata_views import Call, Options, View, nested_options, shape

METADATA_ROOTS = frozenset({"EntityDefinitions", "RelationshipDefinitions", "GlobalOptionSetDefinitions"})
# Query options a metadata request may carry; any other $-option is refused by name (never silently ignored).
SUPPORTED_OPTIONS = frozenset({"$select", "$filter", "$expand"})

# 404 for an unknown table [V-obs status; text I]; the key value is inserted as sent.
ENTITY_NOT_FOUND = "Could not find entity with name '{name}'."
ENTITY_ID_NOT_FOUND = "Could not find entity with id '{id}'."  # wording [I]

ENTITY_VIEW = View("EntityMetadata", ENTITY_PROPERTIES, ENTITY_NAVIGATIONS)
_UNIMPLEMENTED_SEGMENTS = frozenset({"$count", "$ref", "$value", "Privileges"})
_RELATED_SEGMENTS = frozenset({"OneToManyRelationships", "ManyToOneRelationships", "ManyToManyRelationships"})


def handle_metadata(
    catalog: Catalog, path: str, query: Mapping[str, str], base_url: str
) -> dict[str, object]:
    """Answer one metadata GET.

    Args:
        catalog: The org's tables.
        path: The raw path after the service root, percent-decoded, without the query string, e.g.
            ``EntityDefinitions(LogicalName='account')/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata``.
        query: The decoded query options by name: ``$select``, ``$filter``, ``$expand`` and parameter aliases
            (``@p1`` -> ``'account'``); other ``$`` options are refused with 400.
        base_url: The absolute service root, e.g. ``https://127.0.0.1:8443/api/data/v9.2/``.

    Returns:
        The JSON body (with an absolute ``@odata.context``) for a 200 response.

    Raises:
        EmulatorError: 404 for unknown tables, columns, keys, relationships or segments; 400 for unknown
            properties, unsupported query options and malformed keys; 501 for unimplemented features.
    """
    for name in query:
        if name.startswith("$") and name not in SUPPORTED_OPTIONS:
            raise unsupported_option(name)
    root = base_url if base_url.endswith("/") else base_url + "/"
    aliases = {name: value for name, value in query.items() if name.startswith("@")}
    call = Call(catalog, f"{root}$metadata#", query, aliases, parse_expand(query.get("$expand")))
    segments = split_path(path)
    for segment in segments:
        if segment.name in _UNIMPLEMENTED_SEGMENTS:
            raise not_implemented(f"'{segment.name}' on metadata paths")
    head = segments[0]
    if head.name == "EntityDefinitions":
        return _entity_definitions(call, segments)
    if head.name == "RelationshipDefinitions":
        return relationship_definitions_response(call, segments)
    if head.name == "GlobalOptionSetDefinitions":
        return global_option_sets_response(call, segments)
    raise segment_not_found(head.text)


def _resolve_entity(call: Call, segment: Segment) -> tuple[EntityDef, str]:
    """Return the addressed table and its context-URL form (``EntityDefinitions('account')`` or ``(<id>)``)."""
    key = parse_key(segment, call.aliases)
    if isinstance(key, uuid.UUID):
        for entity in call.catalog.entities.values():
            if entity.metadata_id == key:
                return entity, f"EntityDefinitions({key})"
        raise EmulatorError(404, PARSE_ERROR_CODE, ENTITY_ID_NOT_FOUND.format(id=key))
    name, value = key
    if name != "LogicalName":
        raise segment_not_found(segment.text)
    found = find_entity(call.catalog, value)
    if found is None:
        raise EmulatorError(404, PARSE_ERROR_CODE, ENTITY_NOT_FOUND.format(name=value))
    return found, f"EntityDefinitions('{found.logical_name}')"


def _entity_definitions(call: Call, segments: list[Segment]) -> dict[str, object]:
    head, rest = segments[0], segments[1:]
    if head.key is None:
        if rest:
            raise segment_not_found(rest[0].text)
        options = call.options(ENTITY_VIEW)
        expansions = _entity_expansions(call)
        value = []
        for entity in call.catalog.entities.values():
            item = entity_item(entity)
            if options.filter is not None and not matches(options.filter, item):
                continue
            value.append(_entity_body(call, entity, item, options, expansions))
        return {
            "@odata.context": f"{call.context}EntityDefinitions{call.suffix(options.select)}",
            "value": value,
        }
    entity, entity_path = _resolve_entity(call, head)
    if not rest:
        options = call.single_options(ENTITY_VIEW)
        body: dict[str, object] = {
            "@odata.context": f"{call.context}EntityDefinitions{call.suffix(options.select)}/$entity"
        }
        body.update(_entity_body(call, entity, entity_item(entity), options, _entity_expansions(call)))
        return body
    nav = rest[0]
    if nav.name == "Attributes":
        return attributes_response(call, entity, entity_path, rest)
    if nav.name == "Keys":
        return keys_response(call, entity, entity_path, rest)
    if nav.name in _RELATED_SEGMENTS:
        return entity_relationships_response(call, entity, entity_path, rest)
    if nav.name in ENTITY_PROPERTIES and nav.key is None and len(rest) == 1:
        if set(call.query) & SUPPORTED_OPTIONS:
            raise unsupported_option(next(iter(sorted(set(call.query) & SUPPORTED_OPTIONS))))
        return {
            "@odata.context": f"{call.context}{entity_path}/{nav.name}",
            "value": entity_item(entity)[nav.name],
        }
    raise segment_not_found(nav.text)


_EXPAND_VIEWS: dict[str, View] = {
    "Attributes": attribute_view("AttributeMetadata"),
    "Keys": KEY_VIEW,
    "ManyToOneRelationships": ONE_TO_MANY_VIEW,
    "OneToManyRelationships": ONE_TO_MANY_VIEW,
    "ManyToManyRelationships": MANY_TO_MANY_VIEW,
}


def _entity_expansions(call: Call) -> list[tuple[str, Options]]:
    result = []
    for spec in call.expands:
        view = _EXPAND_VIEWS.get(spec.navigation)
        if view is None:
            raise ENTITY_VIEW.unknown(spec.navigation)
        result.append((spec.navigation, nested_options(view, spec, call.aliases)))
    return result


def _related_items(call: Call, entity: EntityDef, navigation: str) -> list[dict[str, object]]:
    if navigation == "Attributes":
        return [attribute_item(entity, attribute) for attribute in entity.attributes.values()]
    if navigation == "Keys":
        return [key_item(entity, key) for key in entity.keys]
    if navigation == "OneToManyRelationships":
        return [relationship_item(r) for r in call.catalog.relationships_from(entity.logical_name)]
    if navigation == "ManyToOneRelationships":
        return [relationship_item(r) for r in call.catalog.relationships_to(entity.logical_name)]
    return []  # ManyToManyRelationships: the catalog models none


def _entity_body(
    call: Call,
    entity: EntityDef,
    item: dict[str, object],
    options: Options,
    expansions: list[tuple[str, Options]],
) -> dict[str, object]:
    body = shape(item, options.select, ENTITY_VIEW)
    for navigation, nested in expansions:
        view = _EXPAND_VIEWS[navigation]
        related = _related_items(call, entity, navigation)
        body[navigation] = [
            shape(r, nested.select, view)
            for r in related
            if nested.filter is None or matches(nested.filter, r)
        ]
    return body
