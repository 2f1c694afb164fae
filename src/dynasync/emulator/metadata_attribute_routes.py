"""Answers for ``EntityDefinitions(...)/Attributes`` paths: collection, single, type casts and OptionSet expansion."""

from __future__ import annotations

from dynasync.emulator.catalog import AttributeDef, AttributeType, EntityDef
from dynasync.emulator.errors import EmulatorError
from dynasync.emulator.metadata_attributes import (
    ABSTRACT_CLASSES,
    BASE_CLASS,
    CONCRETE_CLASSES,
    NAMESPACE,
    NAVIGATIONS,
    attribute_class,
    attribute_item,
    global_option_set,
    option_set,
    properties_of,
)
from dynasync.emulator.metadata_filter import matches
from dynasync.emulator.metadata_query import (
    PARSE_ERROR_CODE,
    ExpandSpec,
    Segment,
    parse_key,
    segment_not_found,
    unsupported_option,
)
from dynasync.emulator.metadata_views import Call, Options, View, nested_options, shape

CAST_PREFIX = f"{NAMESPACE}."
ATTRIBUTE_NOT_FOUND = "Could not find attribute with name '{name}' on entity '{entity}'."  # wording [I]
ATTRIBUTE_ID_NOT_FOUND = "Could not find attribute with id '{id}' on entity '{entity}'."  # wording [I]
ABSTRACT_CAST = "The type '{type}' is abstract; a cast segment cannot name it."  # [V] refused, wording [I]
WRONG_CAST = "The attribute '{name}' is not of type '{type}'."  # [I]: status 404 as for a missing resource

_OPTION_SET_PROPERTIES = (
    "MetadataId",
    "HasChanged",
    "IsCustomOptionSet",
    "IsGlobal",
    "IsManaged",
    "Name",
    "ExternalTypeName",
    "OptionSetType",
    "IntroducedVersion",
    "ParentOptionSetName",
    "Description",
    "DisplayName",
    "IsCustomizable",
    "Options",
    "TrueOption",
    "FalseOption",
)
OPTION_SET_VIEW = View("OptionSetMetadataBase", _OPTION_SET_PROPERTIES)


def attribute_view(class_name: str) -> View:
    """The query view of an attribute metadata class (``AttributeMetadata`` when not cast)."""
    return View(class_name, properties_of(class_name), NAVIGATIONS.get(class_name, ()))


def parse_cast(segment: Segment) -> str | None:
    """Return the attribute class a ``Microsoft.Dynamics.CRM.X`` segment casts to, or None if it is no cast."""
    if not segment.name.startswith(CAST_PREFIX) or segment.key is not None:
        return None
    class_name = segment.name[len(CAST_PREFIX) :]
    if class_name in ABSTRACT_CLASSES:
        raise EmulatorError(400, PARSE_ERROR_CODE, ABSTRACT_CAST.format(type=segment.name))
    if class_name not in CONCRETE_CLASSES:
        raise segment_not_found(segment.text)
    return class_name


def _find(call: Call, entity: EntityDef, segment: Segment) -> AttributeDef:
    key = parse_key(segment, call.aliases)
    if isinstance(key, tuple):
        name, value = key
        if name != "LogicalName":
            raise segment_not_found(segment.text)
        found = entity.attribute(value) or entity.attribute(value.lower())
        if found is None:
            raise EmulatorError(
                404, PARSE_ERROR_CODE, ATTRIBUTE_NOT_FOUND.format(name=value, entity=entity.logical_name)
            )
        return found
    for attribute in entity.attributes.values():
        if attribute.metadata_id == key:
            return attribute
    raise EmulatorError(
        404, PARSE_ERROR_CODE, ATTRIBUTE_ID_NOT_FOUND.format(id=key, entity=entity.logical_name)
    )


def _expansions(call: Call, view: View) -> list[tuple[ExpandSpec, Options]]:
    result = []
    for spec in call.expands:
        if spec.navigation not in view.navigations:
            raise view.unknown(spec.navigation)
        result.append((spec, nested_options(OPTION_SET_VIEW, spec, call.aliases)))
    return result


def _expanded(
    entity: EntityDef,
    attribute: AttributeDef,
    expansions: list[tuple[ExpandSpec, Options]],
    context_of: str | None,
) -> dict[str, object]:
    """The expanded OptionSet/GlobalOptionSet values; with ``context_of`` also their nested context URLs."""
    values: dict[str, object] = {}
    for spec, options in expansions:
        if attribute.type is AttributeType.ENTITYNAME:
            value = None  # entity-name columns have no option list of their own
        elif spec.navigation == "OptionSet":
            value = option_set(entity, attribute)
        else:
            value = global_option_set(entity, attribute)
        if value is not None and options.filter is not None:
            raise EmulatorError(400, PARSE_ERROR_CODE, "The query parameter '$filter' is not supported.")
        if value is not None and context_of is not None:
            nested = spec.options.get("$select")
            values[f"{spec.navigation}@odata.context"] = (
                f"{context_of}/{spec.navigation}{f'({nested})' if nested else ''}/$entity"
            )
        values[spec.navigation] = None if value is None else shape(value, options.select, OPTION_SET_VIEW)
    return values


def attributes_response(
    call: Call, entity: EntityDef, entity_path: str, rest: list[Segment]
) -> dict[str, object]:
    """Answer ``<entity_path>/Attributes[(key)][/Microsoft.Dynamics.CRM.X][/Property]``.

    Args:
        call: The request.
        entity: The table addressed by the EntityDefinitions key.
        entity_path: The context form of that key, e.g. ``EntityDefinitions('account')``.
        rest: The path segments from ``Attributes`` on.
    """
    head = rest[0]
    single = _find(call, entity, head) if head.key is not None else None
    tail = rest[1:]
    cast = parse_cast(tail[0]) if tail else None
    if cast is not None:
        tail = tail[1:]
    view = attribute_view(cast or BASE_CLASS)
    cast_path = f"/{CAST_PREFIX}{cast}" if cast else ""
    if single is not None and cast not in (None, BASE_CLASS) and attribute_class(single) != cast:
        raise EmulatorError(404, PARSE_ERROR_CODE, WRONG_CAST.format(name=single.logical_name, type=cast))
    if tail:
        key = f"'{single.logical_name}'" if single is not None and "=" in (head.key or "") else head.key
        return _property_value(
            call, entity, view, single, tail, f"{entity_path}/Attributes({key}){cast_path}"
        )
    if single is not None:
        options = call.single_options(view)
        expansions = _expansions(call, view)
        body: dict[str, object] = {
            "@odata.context": f"{call.context}{entity_path}/Attributes{cast_path}{call.suffix(options.select)}/$entity"
        }
        body.update(shape(attribute_item(entity, single), options.select, view))
        nested_context = f"{call.context}{entity_path}/Attributes({single.metadata_id}){cast_path}"
        body.update(_expanded(entity, single, expansions, nested_context))
        return body
    options = call.options(view)
    expansions = _expansions(call, view)
    value: list[dict[str, object]] = []
    for attribute in entity.attributes.values():
        if cast not in (None, BASE_CLASS) and attribute_class(attribute) != cast:
            continue
        item = attribute_item(entity, attribute)
        if options.filter is not None and not matches(options.filter, item):
            continue
        shaped = shape(item, options.select, view)
        shaped.update(_expanded(entity, attribute, expansions, None))
        value.append(shaped)
    return {
        "@odata.context": f"{call.context}{entity_path}/Attributes{cast_path}{call.suffix(options.select)}",
        "value": value,
    }


def _property_value(
    call: Call, entity: EntityDef, view: View, single: AttributeDef | None, tail: list[Segment], path: str
) -> dict[str, object]:
    """Answer ``.../Attributes(key)/Property`` with ``{"value": ...}`` (no further segments exist)."""
    segment = tail[0]
    if single is None or len(tail) != 1 or segment.key is not None or segment.name not in view.properties:
        raise segment_not_found(segment.text)
    if call.query.get("$select") or call.expands or "$filter" in call.query:
        raise unsupported_option(
            "$select" if call.query.get("$select") else "$expand" if call.expands else "$filter"
        )
    return {
        "@odata.context": f"{call.context}{path}/{segment.name}",
        "value": attribute_item(entity, single).get(segment.name),
    }
