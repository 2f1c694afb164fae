"""The ``$metadata`` CSDL (EDMX 4.0 XML) document and the service document, rendered from the catalog."""

from __future__ import annotations

from dynasync.emulator.catalog import AttributeDef, AttributeType, Catalog, DateTimeBehavior, EntityDef
from dynasync.emulator.csdl_static import (
    ALIAS,
    EDM_NS,
    EDMX_NS,
    NAMESPACE,
    base_types,
    complex_types,
    element,
    function_imports,
    operations,
    references,
)

_EDM_TYPES: dict[AttributeType, str] = {
    AttributeType.BOOLEAN: "Edm.Boolean",
    AttributeType.DATETIME: "Edm.DateTimeOffset",
    AttributeType.DECIMAL: "Edm.Decimal",
    AttributeType.MONEY: "Edm.Decimal",
    AttributeType.DOUBLE: "Edm.Double",
    AttributeType.INTEGER: "Edm.Int32",
    AttributeType.PICKLIST: "Edm.Int32",
    AttributeType.STATE: "Edm.Int32",
    AttributeType.STATUS: "Edm.Int32",
    AttributeType.BIGINT: "Edm.Int64",
    AttributeType.STRING: "Edm.String",
    AttributeType.MEMO: "Edm.String",
    AttributeType.ENTITYNAME: "Edm.String",
    AttributeType.UNIQUEIDENTIFIER: "Edm.Guid",
}
_PRINCIPALS = ("systemuser", "team")


def edm_type(attribute: AttributeDef) -> str | None:
    """Return the Edm type of a column's Web API property, or None when the column is no property."""
    if attribute.is_lookup:
        return "Edm.Guid"
    if attribute.type is AttributeType.DATETIME and attribute.date_behavior is DateTimeBehavior.DATE_ONLY:
        return "Edm.Date"
    if attribute.type is AttributeType.VIRTUAL:
        return "Edm.String" if attribute.is_multiselect else None
    return _EDM_TYPES.get(attribute.type)


def _property(attribute: AttributeDef, *, annotations: bool) -> str | None:
    type_name = edm_type(attribute)
    if type_name is None or not attribute.is_odata_property:
        return None
    attributes = {"Name": attribute.odata_name, "Type": type_name}
    if type_name == "Edm.String":
        attributes["Unicode"] = "false"
    elif type_name == "Edm.Decimal":
        attributes["Scale"] = "Variable"
    children: list[str] = []
    if annotations and not (attribute.valid_for_create or attribute.valid_for_update):
        children.append(element("Annotation", {"Term": "Org.OData.Core.V1.Computed", "Bool": "true"}))
    return element("Property", attributes, children)


def _uses_principal(catalog: Catalog, attribute: AttributeDef) -> bool:
    return attribute.type is AttributeType.OWNER and all(catalog.entity(name) for name in _PRINCIPALS)


def _single_navigations(catalog: Catalog, entity: EntityDef) -> list[tuple[str, str, str | None, str]]:
    """(navigation, target type, partner, lookup property) for every single-valued navigation of ``entity``."""
    partners = {
        (r.referencing_attribute, r.referencing_navigation): r.referenced_navigation
        for r in catalog.relationships_to(entity.logical_name)
    }
    result: list[tuple[str, str, str | None, str]] = []
    for attribute in entity.attributes.values():
        if not attribute.is_lookup:
            continue
        for navigation, target in attribute.navigation.items():
            if _uses_principal(catalog, attribute):
                result.append((navigation, "principal", None, attribute.odata_name))
            elif catalog.entity(target) is not None:
                partner = partners.get((attribute.logical_name, navigation))
                result.append((navigation, target, partner, attribute.odata_name))
    return result


def _referenced_key(catalog: Catalog, target: str) -> str:
    if target == "principal":
        return "ownerid"
    entity = catalog.entity(target)
    assert entity is not None  # callers only pass targets that exist
    return entity.primary_id


def _alternate_keys(entity: EntityDef) -> str:
    keys = []
    for key in entity.keys:
        refs = [
            element(
                "Record",
                {"Type": "OData.Community.Keys.V1.PropertyRef"},
                [
                    element("PropertyValue", {"Property": "Alias", "String": name}),
                    element("PropertyValue", {"Property": "Name", "PropertyPath": name}),
                ],
            )
            for name in key.attributes
        ]
        keys.append(
            element(
                "Record",
                {"Type": "OData.Community.Keys.V1.AlternateKey"},
                [element("PropertyValue", {"Property": "Key"}, [element("Collection", None, refs)])],
            )
        )
    return element(
        "Annotation", {"Term": "OData.Community.Keys.V1.AlternateKeys"}, [element("Collection", None, keys)]
    )


def _entity_type(catalog: Catalog, entity: EntityDef, *, annotations: bool) -> str:
    children: list[str] = []
    is_principal = entity.logical_name in _PRINCIPALS and all(catalog.entity(n) for n in _PRINCIPALS)
    if not is_principal:
        # principal-derived tables inherit the key ``ownerid``; the others declare their own primary key.
        children.append(element("Key", None, [element("PropertyRef", {"Name": entity.primary_id})]))
    names: set[str] = set()
    for attribute in entity.attributes.values():
        prop = _property(attribute, annotations=annotations)
        if prop is not None and attribute.odata_name not in names:
            names.add(attribute.odata_name)
            children.append(prop)
    for navigation, target, partner, lookup in _single_navigations(catalog, entity):
        if navigation in names:
            continue
        names.add(navigation)
        attributes = {"Name": navigation, "Type": f"{ALIAS}.{target}", "Nullable": "false"}
        if partner:
            attributes["Partner"] = partner
        constraint = element(
            "ReferentialConstraint",
            {"Property": lookup, "ReferencedProperty": _referenced_key(catalog, target)},
        )
        children.append(element("NavigationProperty", attributes, [constraint]))
    for relationship in catalog.relationships_from(entity.logical_name):
        if (
            relationship.referenced_navigation in names
            or catalog.entity(relationship.referencing_entity) is None
        ):
            continue
        names.add(relationship.referenced_navigation)
        attributes = {
            "Name": relationship.referenced_navigation,
            "Type": f"Collection({ALIAS}.{relationship.referencing_entity})",
            "Partner": relationship.referencing_navigation,
        }
        children.append(element("NavigationProperty", attributes))
    if annotations and entity.keys:
        children.append(_alternate_keys(entity))
    base = f"{ALIAS}.principal" if is_principal else f"{ALIAS}.crmbaseentity"
    return element("EntityType", {"Name": entity.logical_name, "BaseType": base}, children)


def _entity_set(catalog: Catalog, entity: EntityDef, *, annotations: bool) -> str:
    children: list[str] = []
    bound: set[str] = set()
    for navigation, target, _, _ in _single_navigations(catalog, entity):
        target_entity = catalog.entity(target)
        if target_entity is not None and navigation not in bound:
            bound.add(navigation)
            children.append(
                element(
                    "NavigationPropertyBinding", {"Path": navigation, "Target": target_entity.entity_set_name}
                )
            )
    for relationship in catalog.relationships_from(entity.logical_name):
        target_entity = catalog.entity(relationship.referencing_entity)
        if target_entity is not None and relationship.referenced_navigation not in bound:
            bound.add(relationship.referenced_navigation)
            children.append(
                element(
                    "NavigationPropertyBinding",
                    {"Path": relationship.referenced_navigation, "Target": target_entity.entity_set_name},
                )
            )
    if annotations and entity.change_tracking:
        supported = element("PropertyValue", {"Property": "Supported", "Bool": "true"})
        record = element("Record", None, [supported])
        children.append(element("Annotation", {"Term": "Org.OData.Capabilities.V1.ChangeTracking"}, [record]))
    return element(
        "EntitySet",
        {"Name": entity.entity_set_name, "EntityType": f"{NAMESPACE}.{entity.logical_name}"},
        children,
    )


def render_csdl(catalog: Catalog, *, annotations: bool) -> str:
    """Return the ``$metadata`` EDMX document.

    Args:
        catalog: The org's tables.
        annotations: True for ``$metadata?annotations=true``: adds change-tracking capability annotations on
            tracked entity sets, alternate keys and ``Core.Computed`` on read-only properties.

    Returns:
        The XML text (UTF-8 declared), served as ``application/xml``.
    """
    entities = list(catalog.entities.values())
    schema_children = [
        *base_types(),
        *(_entity_type(catalog, entity, annotations=annotations) for entity in entities),
        *complex_types(),
        *operations(),
        element(
            "EntityContainer",
            {"Name": "System"},
            [
                *(_entity_set(catalog, entity, annotations=annotations) for entity in entities),
                *function_imports(),
            ],
        ),
    ]
    schema = element("Schema", {"Namespace": NAMESPACE, "Alias": ALIAS, "xmlns": EDM_NS}, schema_children)
    body = element(
        "edmx:Edmx",
        {"Version": "4.0", "xmlns:edmx": EDMX_NS},
        [*references(), element("edmx:DataServices", None, [schema])],
    )
    return '<?xml version="1.0" encoding="utf-8"?>' + body


def service_document(catalog: Catalog, base_url: str) -> dict[str, object]:
    """Return the service document (``GET <service root>``): one entry per entity set.

    Args:
        catalog: The org's tables.
        base_url: The absolute service root, e.g. ``https://127.0.0.1:8443/api/data/v9.2/``.
    """
    root = base_url if base_url.endswith("/") else base_url + "/"
    return {
        "@odata.context": f"{root}$metadata",
        "value": [
            {"name": entity.entity_set_name, "kind": "EntitySet", "url": entity.entity_set_name}
            for entity in catalog.entities.values()
        ],
    }
