"""``EntityMetadata``, ``EntityKeyMetadata`` and ``OneToManyRelationshipMetadata`` JSON items from the catalog."""

from __future__ import annotations

from dynasync.emulator.catalog import Catalog, EntityDef, KeyDef, RelationshipDef
from dynasync.emulator.metadata_shapes import derived_id, label, managed

# Collection-valued navigation properties of EntityMetadata that the emulator can expand.
ENTITY_NAVIGATIONS = (
    "Attributes",
    "Keys",
    "ManyToOneRelationships",
    "OneToManyRelationships",
    "ManyToManyRelationships",
)


def collection_schema_name(entity: EntityDef) -> str:
    """Return ``CollectionSchemaName`` (``Accounts``, ``Opportunities``), derived from the entity set name."""
    logical, plural = entity.logical_name, entity.entity_set_name
    common = 0
    while common < min(len(logical), len(plural)) and logical[common] == plural[common]:
        common += 1
    return entity.schema_name[:common] + plural[common:]


def entity_item(entity: EntityDef) -> dict[str, object]:
    """Return the full ``EntityMetadata`` JSON item of a table (structural properties, no navigations)."""
    owner = entity.metadata_id
    custom = entity.is_custom
    return {
        "MetadataId": str(entity.metadata_id),
        "HasChanged": None,
        "ActivityTypeMask": 1 if entity.is_activity else 0,
        "AutoRouteToOwnerQueue": False,
        "CanBeInManyToMany": managed(True, "canbeinmanytomany"),
        "CanBePrimaryEntityInRelationship": managed(True, "canbeprimaryentityinrelationship"),
        "CanBeRelatedEntityInRelationship": managed(True, "canberelatedentityinrelationship"),
        "CanChangeHierarchicalRelationship": managed(True, "canchangehierarchicalrelationship"),
        "CanChangeTrackingBeEnabled": managed(
            entity.can_change_tracking_be_enabled, "canchangetrackingbeenabled"
        ),
        "CanCreateAttributes": managed(True, "cancreateattributes"),
        "CanCreateCharts": managed(True, "cancreatecharts"),
        "CanCreateForms": managed(True, "cancreateforms"),
        "CanCreateViews": managed(True, "cancreateviews"),
        "CanEnableSyncToExternalSearchIndex": managed(True, "canenablesynctoexternalsearchindex"),
        "CanModifyAdditionalSettings": managed(True, "canmodifyadditionalsettings"),
        "ChangeTrackingEnabled": entity.change_tracking,
        "CollectionSchemaName": collection_schema_name(entity),
        "DataProviderId": None,
        "Description": label(None, owner, "description"),
        "DisplayCollectionName": label(entity.display_collection_name, owner, "displaycollectionname"),
        "DisplayName": label(entity.display_name, owner, "displayname"),
        "EntitySetName": entity.entity_set_name,
        "ExternalCollectionName": None,
        "ExternalName": None,
        "HasActivities": not entity.is_activity,
        "HasNotes": True,
        "IconVectorName": None,
        "IntroducedVersion": "1.0" if custom else "5.0.0.0",
        "IsActivity": entity.is_activity,
        "IsActivityParty": False,
        "IsAuditEnabled": managed(False, "canmodifyauditsettings"),
        "IsAvailableOffline": True,
        "IsBusinessProcessEnabled": False,
        "IsCustomEntity": custom,
        "IsCustomizable": managed(True, "iscustomizable"),
        "IsIntersect": False,
        "IsLogicalEntity": False,
        "IsManaged": not custom,
        "IsPrivate": False,
        "IsRenameable": managed(True, "isrenameable"),
        "IsValidForAdvancedFind": True,
        "IsValidForQueue": managed(False, "canenablequeue"),
        "IsVisibleInMobile": managed(True, "canmodifymobilevisibility"),
        "LogicalCollectionName": entity.entity_set_name,
        "LogicalName": entity.logical_name,
        "ObjectTypeCode": entity.object_type_code,
        "OwnershipType": entity.ownership,
        "PrimaryIdAttribute": entity.primary_id,
        "PrimaryImageAttribute": None,
        "PrimaryNameAttribute": entity.primary_name,
        "SchemaName": entity.schema_name,
        "SyncToExternalSearchIndex": False,
        "TableType": "Standard",
    }


def _example_entity() -> EntityDef:
    return EntityDef("x", "xs", "xid", None, 0)


ENTITY_PROPERTIES: tuple[str, ...] = tuple(entity_item(_example_entity()))


def key_item(entity: EntityDef, key: KeyDef) -> dict[str, object]:
    """Return the ``EntityKeyMetadata`` JSON item of an alternate key."""
    key_id = derived_id(entity.metadata_id, f"key:{key.logical_name}")
    schema = key.schema_name or key.logical_name
    return {
        "MetadataId": str(key_id),
        "HasChanged": None,
        "AsyncJob": None,
        "DisplayName": label(schema, key_id, "displayname"),
        "EntityKeyIndexStatus": "Active",
        "EntityLogicalName": entity.logical_name,
        "IntroducedVersion": "1.0",
        "IsCustomizable": managed(True, "iscustomizable"),
        "IsExportKey": False,
        "IsManaged": False,
        "IsSecondaryKey": False,
        "IsSynchronous": True,
        "KeyAttributes": list(key.attributes),
        "LogicalName": key.logical_name,
        "SchemaName": schema,
    }


KEY_PROPERTIES: tuple[str, ...] = tuple(key_item(_example_entity(), KeyDef("k", ("a",))))


def _no_cascade(delete: str) -> dict[str, object]:
    return {
        "Assign": "NoCascade",
        "Delete": delete,
        "Archive": "NoCascade",
        "Merge": "NoCascade",
        "Reparent": "NoCascade",
        "Share": "NoCascade",
        "Unshare": "NoCascade",
        "RollupView": "NoCascade",
    }


def relationship_item(relationship: RelationshipDef) -> dict[str, object]:
    """Return the ``OneToManyRelationshipMetadata`` JSON item of a relationship (no ``@odata.type``)."""
    custom = relationship.is_custom
    return {
        "MetadataId": str(relationship.metadata_id),
        "HasChanged": None,
        "SchemaName": relationship.schema_name,
        "RelationshipType": "OneToManyRelationship",
        "SecurityTypes": "Append",
        "IsCustomRelationship": custom,
        "IsManaged": not custom,
        "IsValidForAdvancedFind": True,
        "IsCustomizable": managed(True, "iscustomizable"),
        "IntroducedVersion": "1.0" if custom else "5.0.0.0",
        "IsHierarchical": relationship.referenced_entity == relationship.referencing_entity,
        "ReferencedAttribute": relationship.referenced_attribute,
        "ReferencedEntity": relationship.referenced_entity,
        "ReferencingAttribute": relationship.referencing_attribute,
        "ReferencingEntity": relationship.referencing_entity,
        "ReferencedEntityNavigationPropertyName": relationship.referenced_navigation,
        "ReferencingEntityNavigationPropertyName": relationship.referencing_navigation,
        "RelationshipBehavior": 0,
        "CascadeConfiguration": _no_cascade(relationship.cascade_delete),
        "AssociatedMenuConfiguration": {
            "Behavior": "UseCollectionName",
            "Group": "Details",
            "Label": label(None, relationship.metadata_id, "menulabel"),
            "Order": 10000,
            "IsCustomizable": True,
            "Icon": None,
            "ViewId": "00000000-0000-0000-0000-000000000000",
            "AvailableOffline": True,
            "MenuId": None,
            "QueryApi": None,
        },
    }


RELATIONSHIP_PROPERTIES: tuple[str, ...] = tuple(
    relationship_item(RelationshipDef("r", "a", "aid", "b", "bid", "n1", "n2"))
)


def find_entity(catalog: Catalog, logical_name: str) -> EntityDef | None:
    """Return the table with this logical name; the service matches metadata names case-insensitively [I]."""
    entity = catalog.entity(logical_name)
    if entity is not None:
        return entity
    wanted = logical_name.lower()
    return next((e for e in catalog.entities.values() if e.logical_name.lower() == wanted), None)
