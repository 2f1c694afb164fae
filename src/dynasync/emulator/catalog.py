"""Table and column definitions of an emulated Dataverse org (the metadata model, no data, no HTTP).

The standard tables themselves are declared in :mod:`dynasync.emulator.standard_tables`; this module only
holds the types. Names follow Dataverse: ``logical_name`` is lower case, ``schema_name`` is Pascal case,
``entity_set_name`` is the Web API collection name.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field


class AttributeType(enum.StrEnum):
    """Dataverse ``AttributeTypeCode`` names, as the Web API spells them."""

    BOOLEAN = "Boolean"
    CUSTOMER = "Customer"
    DATETIME = "DateTime"
    DECIMAL = "Decimal"
    DOUBLE = "Double"
    INTEGER = "Integer"
    LOOKUP = "Lookup"
    MEMO = "Memo"
    MONEY = "Money"
    OWNER = "Owner"
    PICKLIST = "Picklist"
    STATE = "State"
    STATUS = "Status"
    STRING = "String"
    UNIQUEIDENTIFIER = "Uniqueidentifier"
    VIRTUAL = "Virtual"  # multi-select choices are Virtual with AttributeTypeName MultiSelectPicklistType
    BIGINT = "BigInt"
    ENTITYNAME = "EntityName"


LOOKUP_TYPES = frozenset({AttributeType.LOOKUP, AttributeType.CUSTOMER, AttributeType.OWNER})
CHOICE_TYPES = frozenset({AttributeType.PICKLIST, AttributeType.STATE, AttributeType.STATUS})


class RequiredLevel(enum.StrEnum):
    """``AttributeRequiredLevel`` values."""

    NONE = "None"
    SYSTEM_REQUIRED = "SystemRequired"
    APPLICATION_REQUIRED = "ApplicationRequired"
    RECOMMENDED = "Recommended"


class DateTimeBehavior(enum.StrEnum):
    """``DateTimeBehavior`` values; DateOnly columns travel as ``Edm.Date`` (``"2023-04-07"``)."""

    USER_LOCAL = "UserLocal"
    DATE_ONLY = "DateOnly"
    TIMEZONE_INDEPENDENT = "TimeZoneIndependent"


@dataclass(frozen=True, slots=True)
class OptionDef:
    """One choice option.

    ``state`` is set on Status options (the state they belong to); ``default_status`` and
    ``invariant_name`` on State options.
    """

    value: int
    label: str
    state: int | None = None
    default_status: int | None = None
    invariant_name: str | None = None


@dataclass(slots=True)
class AttributeDef:
    """One column.

    ``navigation`` maps each single-valued navigation property of a lookup to its target table
    (``{"parentcustomerid_account": "account", "parentcustomerid_contact": "contact"}``; for a simple lookup
    ``{"primarycontactid": "contact"}``; for owner ``{"ownerid": "systemuser"}`` with targets systemuser+team).
    """

    logical_name: str
    type: AttributeType
    schema_name: str = ""
    display_name: str = ""
    type_name: str = ""  # AttributeTypeName.Value; derived from type when empty ("StringType", "MultiSelectPicklistType"...)
    required_level: RequiredLevel = RequiredLevel.NONE
    max_length: int | None = None
    min_value: float | None = None
    max_value: float | None = None
    precision: int | None = None
    format: str | None = None  # String: Email/Text/Url/Phone/TextArea; DateTime: DateOnly/DateAndTime
    date_behavior: DateTimeBehavior | None = None
    options: tuple[OptionDef, ...] = ()
    option_set_name: str | None = None
    is_global_option_set: bool = False
    targets: tuple[str, ...] = ()
    navigation: dict[str, str] = field(default_factory=dict)
    valid_for_create: bool = True
    valid_for_update: bool = True
    valid_for_read: bool = True
    is_primary_id: bool = False
    is_primary_name: bool = False
    is_custom: bool = False
    attribute_of: str | None = (
        None  # e.g. "revenue" for revenue_base, "parentcustomerid" for parentcustomeridname
    )
    is_odata_property: bool = True  # False for xxxname / xxxtype helper attributes
    default_value: object | None = None
    metadata_id: uuid.UUID = field(default_factory=uuid.uuid4)

    def __post_init__(self) -> None:
        if not self.schema_name:
            self.schema_name = "".join(part.capitalize() for part in self.logical_name.split("_"))
        if not self.display_name:
            self.display_name = self.schema_name

    @property
    def is_lookup(self) -> bool:
        """True for Lookup, Customer and Owner columns."""
        return self.type in LOOKUP_TYPES

    @property
    def is_multiselect(self) -> bool:
        """True for multi-select choice columns."""
        return self.type_name == "MultiSelectPicklistType"

    @property
    def odata_name(self) -> str:
        """The property name on the wire: ``_x_value`` for lookups, the logical name otherwise."""
        return f"_{self.logical_name}_value" if self.is_lookup else self.logical_name


@dataclass(frozen=True, slots=True)
class KeyDef:
    """An alternate key (``EntityKeyMetadata``)."""

    logical_name: str
    attributes: tuple[str, ...]
    schema_name: str = ""


@dataclass(frozen=True, slots=True)
class RelationshipDef:
    """A one-to-many relationship, derived from a lookup column of the referencing (many) side."""

    schema_name: str
    referenced_entity: str  # the "one" side, e.g. account
    referenced_attribute: str  # its primary id, e.g. accountid
    referencing_entity: str  # the "many" side, e.g. contact
    referencing_attribute: str  # the lookup column, e.g. parentcustomerid
    referenced_navigation: str  # collection-valued nav on the one side, e.g. contact_customer_accounts
    referencing_navigation: str  # single-valued nav on the many side, e.g. parentcustomerid_account
    cascade_delete: str = "RemoveLink"  # Cascade | RemoveLink | Restrict
    is_custom: bool = False
    metadata_id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass(slots=True)
class EntityDef:
    """One table."""

    logical_name: str
    entity_set_name: str
    primary_id: str
    primary_name: str | None
    object_type_code: int
    schema_name: str = ""
    display_name: str = ""
    display_collection_name: str = ""
    ownership: str = "UserOwned"  # UserOwned | OrganizationOwned | BusinessOwned | None
    change_tracking: bool = True
    can_change_tracking_be_enabled: bool = True
    is_custom: bool = False
    is_activity: bool = False
    supports_multiple: bool = True  # CreateMultiple / UpdateMultiple / UpsertMultiple
    attributes: dict[str, AttributeDef] = field(default_factory=dict)
    keys: list[KeyDef] = field(default_factory=list)
    metadata_id: uuid.UUID = field(default_factory=uuid.uuid4)

    def __post_init__(self) -> None:
        if not self.schema_name:
            self.schema_name = "".join(part.capitalize() for part in self.logical_name.split("_"))
        if not self.display_name:
            self.display_name = self.schema_name
        if not self.display_collection_name:
            self.display_collection_name = self.display_name + "s"

    def attribute(self, logical_name: str) -> AttributeDef | None:
        """Return the column with this logical name, or None."""
        return self.attributes.get(logical_name)

    def add(self, attribute: AttributeDef) -> AttributeDef:
        """Add a column; raise ValueError when the name is taken."""
        if attribute.logical_name in self.attributes:
            raise ValueError(f"column {attribute.logical_name!r} already exists on {self.logical_name!r}")
        self.attributes[attribute.logical_name] = attribute
        return attribute


@dataclass(slots=True)
class Catalog:
    """All tables of one org, addressable by logical name and by entity set name."""

    entities: dict[str, EntityDef] = field(default_factory=dict)
    relationships: list[RelationshipDef] = field(default_factory=list)
    # Bumped on every schema change; served as Microsoft.Dynamics.CRM.globalmetadataversion.
    metadata_version: int = 1

    def add_entity(self, entity: EntityDef) -> EntityDef:
        """Register a table; raise ValueError when the logical or entity set name is taken."""
        if entity.logical_name in self.entities:
            raise ValueError(f"table {entity.logical_name!r} already exists")
        if self.by_set_name(entity.entity_set_name) is not None:
            raise ValueError(f"entity set {entity.entity_set_name!r} already exists")
        self.entities[entity.logical_name] = entity
        self.metadata_version += 1
        return entity

    def entity(self, logical_name: str) -> EntityDef | None:
        """Return the table with this logical name, or None."""
        return self.entities.get(logical_name)

    def by_set_name(self, entity_set_name: str) -> EntityDef | None:
        """Return the table whose entity set (collection) name this is, or None. Case-sensitive, as the service."""
        for entity in self.entities.values():
            if entity.entity_set_name == entity_set_name:
                return entity
        return None

    def relationships_from(self, entity: str) -> list[RelationshipDef]:
        """One-to-many relationships where ``entity`` is the referenced (one) side."""
        return [r for r in self.relationships if r.referenced_entity == entity]

    def relationships_to(self, entity: str) -> list[RelationshipDef]:
        """Many-to-one relationships where ``entity`` holds the lookup."""
        return [r for r in self.relationships if r.referencing_entity == entity]
