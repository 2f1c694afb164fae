"""``AttributeMetadata`` JSON items (all derived types) and their option sets, built from catalog columns."""

from __future__ import annotations

import uuid

from dynasync.emulator.catalog import AttributeDef, AttributeType, EntityDef, OptionDef
from dynasync.emulator.metadata_shapes import derived_id, label, managed

NAMESPACE = "Microsoft.Dynamics.CRM"
BASE_CLASS = "AttributeMetadata"

# Abstract types of the service's metadata model: a cast to them is refused [V for EnumAttributeMetadata].
ABSTRACT_CLASSES = frozenset({"EnumAttributeMetadata"})

_CLASS_BY_TYPE: dict[AttributeType, str] = {
    AttributeType.BOOLEAN: "BooleanAttributeMetadata",
    AttributeType.CUSTOMER: "LookupAttributeMetadata",
    AttributeType.DATETIME: "DateTimeAttributeMetadata",
    AttributeType.DECIMAL: "DecimalAttributeMetadata",
    AttributeType.DOUBLE: "DoubleAttributeMetadata",
    AttributeType.INTEGER: "IntegerAttributeMetadata",
    AttributeType.LOOKUP: "LookupAttributeMetadata",
    AttributeType.MEMO: "MemoAttributeMetadata",
    AttributeType.MONEY: "MoneyAttributeMetadata",
    AttributeType.OWNER: "LookupAttributeMetadata",
    AttributeType.PICKLIST: "PicklistAttributeMetadata",
    AttributeType.STATE: "StateAttributeMetadata",
    AttributeType.STATUS: "StatusAttributeMetadata",
    AttributeType.STRING: "StringAttributeMetadata",
    AttributeType.UNIQUEIDENTIFIER: "UniqueIdentifierAttributeMetadata",
    AttributeType.BIGINT: "BigIntAttributeMetadata",
    AttributeType.ENTITYNAME: "EntityNameAttributeMetadata",
}
_VIRTUAL_CLASS_BY_TYPE_NAME = {
    "MultiSelectPicklistType": "MultiSelectPicklistAttributeMetadata",
    "ImageType": "ImageAttributeMetadata",
    "FileType": "FileAttributeMetadata",
}

_IME = ("ImeMode",)
# Type-specific properties per concrete class, in the order they are emitted (after the common ones).
TYPE_PROPERTIES: dict[str, tuple[str, ...]] = {
    BASE_CLASS: (),
    "StringAttributeMetadata": (
        "MaxLength",
        "DatabaseLength",
        "Format",
        "FormatName",
        *_IME,
        "IsLocalizable",
        "YomiOf",
        "AutoNumberFormat",
    ),
    "MemoAttributeMetadata": ("MaxLength", "Format", *_IME, "IsLocalizable"),
    "IntegerAttributeMetadata": ("MinValue", "MaxValue", "Format"),
    "BigIntAttributeMetadata": ("MinValue", "MaxValue"),
    "DecimalAttributeMetadata": ("MinValue", "MaxValue", "Precision", *_IME),
    "DoubleAttributeMetadata": ("MinValue", "MaxValue", "Precision", *_IME),
    "MoneyAttributeMetadata": (
        "MinValue",
        "MaxValue",
        "Precision",
        "PrecisionSource",
        "IsBaseCurrency",
        "CalculationOf",
        *_IME,
    ),
    "BooleanAttributeMetadata": ("DefaultValue",),
    "DateTimeAttributeMetadata": (
        "Format",
        "DateTimeBehavior",
        "CanChangeDateTimeBehavior",
        "MinSupportedValue",
        "MaxSupportedValue",
        *_IME,
    ),
    "LookupAttributeMetadata": ("Targets", "Format"),
    "PicklistAttributeMetadata": ("DefaultFormValue", "OptionSetName"),
    "MultiSelectPicklistAttributeMetadata": ("DefaultFormValue", "OptionSetName"),
    "StateAttributeMetadata": ("DefaultFormValue", "OptionSetName"),
    "StatusAttributeMetadata": ("DefaultFormValue", "OptionSetName"),
    "EntityNameAttributeMetadata": ("DefaultFormValue", "OptionSetName", "IsEntityReferenceStored"),
    "UniqueIdentifierAttributeMetadata": (),
    "ImageAttributeMetadata": ("MaxHeight", "MaxWidth", "MaxSizeInKB", "IsPrimaryImage", "CanStoreFullImage"),
    "FileAttributeMetadata": ("MaxSizeInKB",),
}
CONCRETE_CLASSES = frozenset(TYPE_PROPERTIES)

# Navigation properties (expandable, never in the default property set) per class.
NAVIGATIONS: dict[str, tuple[str, ...]] = {
    "PicklistAttributeMetadata": ("OptionSet", "GlobalOptionSet"),
    "MultiSelectPicklistAttributeMetadata": ("OptionSet", "GlobalOptionSet"),
    "StateAttributeMetadata": ("OptionSet", "GlobalOptionSet"),
    "StatusAttributeMetadata": ("OptionSet", "GlobalOptionSet"),
    "EntityNameAttributeMetadata": ("OptionSet", "GlobalOptionSet"),
    "BooleanAttributeMetadata": ("OptionSet", "GlobalOptionSet"),
}

COMMON_PROPERTIES: tuple[str, ...] = (
    "MetadataId",
    "HasChanged",
    "AttributeOf",
    "AttributeType",
    "AttributeTypeName",
    "ColumnNumber",
    "Description",
    "DisplayName",
    "EntityLogicalName",
    "ExternalName",
    "IntroducedVersion",
    "IsAuditEnabled",
    "IsCustomAttribute",
    "IsCustomizable",
    "IsFilterable",
    "IsLogical",
    "IsManaged",
    "IsPrimaryId",
    "IsPrimaryName",
    "IsRenameable",
    "IsRequiredForForm",
    "IsRetrievable",
    "IsSearchable",
    "IsSecured",
    "IsSortableEnabled",
    "IsValidForAdvancedFind",
    "IsValidForCreate",
    "IsValidForForm",
    "IsValidForGrid",
    "IsValidForRead",
    "IsValidForUpdate",
    "IsValidODataAttribute",
    "LogicalName",
    "RequiredLevel",
    "SchemaName",
    "SourceType",
)

_GLOBAL_OPTION_SETS = uuid.UUID("0d7c2a61-5e0b-4c39-8f8e-3b9a4f6d2c10")
_INT32 = (-2147483648, 2147483647)
_BIGINT = (-9223372036854775808, 9223372036854775807)
_MONEY = (-922337203685477.0, 922337203685477.0)
_DECIMAL = (-100000000000.0, 100000000000.0)
_DOUBLE = (-100000000000.0, 100000000000.0)


def attribute_class(attribute: AttributeDef) -> str:
    """Return the concrete metadata class name (``StringAttributeMetadata``...) of a column."""
    if attribute.type is AttributeType.VIRTUAL:
        return _VIRTUAL_CLASS_BY_TYPE_NAME.get(type_name(attribute), BASE_CLASS)
    return _CLASS_BY_TYPE.get(attribute.type, BASE_CLASS)


def type_name(attribute: AttributeDef) -> str:
    """Return ``AttributeTypeName.Value`` (``StringType``, ``MultiSelectPicklistType``...)."""
    return attribute.type_name or f"{attribute.type.value}Type"


def properties_of(class_name: str) -> tuple[str, ...]:
    """Return the structural property names of an attribute metadata class (common ones first)."""
    return COMMON_PROPERTIES + TYPE_PROPERTIES.get(class_name, ())


def option_set_name(entity: EntityDef, attribute: AttributeDef) -> str:
    """Return the option set name; local option sets are named ``<entity>_<attribute>``."""
    return attribute.option_set_name or f"{entity.logical_name}_{attribute.logical_name}"


def _common(entity: EntityDef, attribute: AttributeDef, column_number: int) -> dict[str, object]:
    read_only = not (attribute.valid_for_create or attribute.valid_for_update)
    return {
        "MetadataId": str(attribute.metadata_id),
        "HasChanged": None,
        "AttributeOf": attribute.attribute_of,
        "AttributeType": attribute.type.value,
        "AttributeTypeName": {"Value": type_name(attribute)},
        "ColumnNumber": column_number,
        "Description": label(None, attribute.metadata_id, "description"),
        "DisplayName": label(attribute.display_name, attribute.metadata_id, "displayname"),
        "EntityLogicalName": entity.logical_name,
        "ExternalName": None,
        "IntroducedVersion": "1.0" if attribute.is_custom else "5.0.0.0",
        "IsAuditEnabled": managed(True, "canmodifyauditsettings"),
        "IsCustomAttribute": attribute.is_custom,
        "IsCustomizable": managed(True, "iscustomizable"),
        "IsFilterable": attribute.valid_for_read,
        "IsLogical": not attribute.is_odata_property,
        "IsManaged": not attribute.is_custom,
        "IsPrimaryId": attribute.is_primary_id,
        "IsPrimaryName": attribute.is_primary_name,
        "IsRenameable": managed(True, "isrenameable"),
        "IsRequiredForForm": attribute.is_primary_name,
        "IsRetrievable": attribute.valid_for_read,
        "IsSearchable": attribute.valid_for_read and not read_only,
        "IsSecured": False,
        "IsSortableEnabled": managed(False, "issortableenabled"),
        "IsValidForAdvancedFind": managed(attribute.valid_for_read, "isvalidforadvancedfind"),
        "IsValidForCreate": attribute.valid_for_create,
        "IsValidForForm": attribute.valid_for_read,
        "IsValidForGrid": attribute.valid_for_read,
        "IsValidForRead": attribute.valid_for_read,
        "IsValidForUpdate": attribute.valid_for_update,
        "IsValidODataAttribute": attribute.is_odata_property,
        "LogicalName": attribute.logical_name,
        "RequiredLevel": managed(attribute.required_level.value, "canmodifyrequirementlevelsettings"),
        "SchemaName": attribute.schema_name,
        "SourceType": 0,
    }


def _range(attribute: AttributeDef, default: tuple[float, float], *, whole: bool) -> dict[str, object]:
    low = attribute.min_value if attribute.min_value is not None else default[0]
    high = attribute.max_value if attribute.max_value is not None else default[1]
    if whole:
        return {"MinValue": int(low), "MaxValue": int(high)}
    return {"MinValue": float(low), "MaxValue": float(high)}


def _string_format(attribute: AttributeDef) -> str:
    return attribute.format or "Text"


def _specific(entity: EntityDef, attribute: AttributeDef, class_name: str) -> dict[str, object]:
    ime = {"ImeMode": "Auto"}
    if class_name == "StringAttributeMetadata":
        max_length = attribute.max_length or 100
        fmt = _string_format(attribute)
        return {
            "MaxLength": max_length,
            "DatabaseLength": max_length * 2,
            "Format": fmt,
            "FormatName": {"Value": fmt},
            **ime,
            "IsLocalizable": False,
            "YomiOf": None,
            "AutoNumberFormat": None,
        }
    if class_name == "MemoAttributeMetadata":
        return {
            "MaxLength": attribute.max_length or 2000,
            "Format": attribute.format or "TextArea",
            **ime,
            "IsLocalizable": False,
        }
    if class_name == "IntegerAttributeMetadata":
        return {**_range(attribute, _INT32, whole=True), "Format": attribute.format or "None"}
    if class_name == "BigIntAttributeMetadata":
        return _range(attribute, _BIGINT, whole=True)
    if class_name in ("DecimalAttributeMetadata", "DoubleAttributeMetadata"):
        default = _DECIMAL if class_name == "DecimalAttributeMetadata" else _DOUBLE
        precision = attribute.precision if attribute.precision is not None else 2
        return {**_range(attribute, default, whole=False), "Precision": precision, **ime}
    if class_name == "MoneyAttributeMetadata":
        return {
            **_range(attribute, _MONEY, whole=False),
            "Precision": attribute.precision if attribute.precision is not None else 4,
            "PrecisionSource": 2,
            "IsBaseCurrency": attribute.logical_name.endswith("_base"),
            "CalculationOf": None,
            **ime,
        }
    if class_name == "BooleanAttributeMetadata":
        return {
            "DefaultValue": bool(attribute.default_value) if attribute.default_value is not None else False
        }
    if class_name == "DateTimeAttributeMetadata":
        behavior = attribute.date_behavior.value if attribute.date_behavior else "UserLocal"
        fmt = attribute.format or ("DateOnly" if behavior == "DateOnly" else "DateAndTime")
        return {
            "Format": fmt,
            "DateTimeBehavior": {"Value": behavior},
            "CanChangeDateTimeBehavior": managed(behavior == "UserLocal", "canchangedatetimebehavior"),
            "MinSupportedValue": "1753-01-01T00:00:00Z",
            "MaxSupportedValue": "9999-12-30T23:59:59Z",
            **ime,
        }
    if class_name == "LookupAttributeMetadata":
        targets = list(attribute.targets) or sorted(set(attribute.navigation.values()))
        return {"Targets": targets, "Format": "None"}
    if class_name in (
        "PicklistAttributeMetadata",
        "MultiSelectPicklistAttributeMetadata",
        "StateAttributeMetadata",
        "StatusAttributeMetadata",
        "EntityNameAttributeMetadata",
    ):
        form_default = attribute.default_value if isinstance(attribute.default_value, int) else None
        values: dict[str, object] = {
            "DefaultFormValue": form_default,
            "OptionSetName": option_set_name(entity, attribute),
        }
        if class_name == "EntityNameAttributeMetadata":
            values["IsEntityReferenceStored"] = False
        return values
    if class_name == "ImageAttributeMetadata":
        return {
            "MaxHeight": 144,
            "MaxWidth": 144,
            "MaxSizeInKB": 10240,
            "IsPrimaryImage": False,
            "CanStoreFullImage": False,
        }
    if class_name == "FileAttributeMetadata":
        return {"MaxSizeInKB": 32768}
    return {}


def attribute_item(entity: EntityDef, attribute: AttributeDef) -> dict[str, object]:
    """Return the full JSON item of one column: ``@odata.type``, common and type-specific properties."""
    class_name = attribute_class(attribute)
    column_number = list(entity.attributes).index(attribute.logical_name) + 1
    item: dict[str, object] = {"@odata.type": f"#{NAMESPACE}.{class_name}"}
    item.update(_common(entity, attribute, column_number))
    item.update(_specific(entity, attribute, class_name))
    return item


def _option(attribute: AttributeDef, option: OptionDef) -> dict[str, object]:
    item: dict[str, object] = {}
    if attribute.type is AttributeType.STATE:
        item["@odata.type"] = f"#{NAMESPACE}.StateOptionMetadata"
    elif attribute.type is AttributeType.STATUS:
        item["@odata.type"] = f"#{NAMESPACE}.StatusOptionMetadata"
    item.update(
        {
            "Value": option.value,
            "Color": None,
            "IsManaged": not attribute.is_custom,
            "ExternalValue": "",
            "ParentValues": [],
            "Tag": None,
            "IsHidden": False,
            "MetadataId": None,
            "HasChanged": None,
            "Label": label(option.label, attribute.metadata_id, f"option:{option.value}"),
            "Description": label(None, attribute.metadata_id, f"option-description:{option.value}"),
        }
    )
    if attribute.type is AttributeType.STATE:
        item["DefaultStatus"] = option.default_status
        item["InvariantName"] = option.invariant_name or option.label.replace(" ", "")
    elif attribute.type is AttributeType.STATUS:
        item["State"] = option.state
        item["TransitionData"] = None
    return item


def global_option_set_id(name: str) -> uuid.UUID:
    """Return the MetadataId of a global option set: one id per name, shared by every column using it."""
    return derived_id(_GLOBAL_OPTION_SETS, name)


def _option_set_type(attribute: AttributeDef) -> str:
    if attribute.type is AttributeType.STATE:
        return "State"
    if attribute.type is AttributeType.STATUS:
        return "Status"
    if attribute.type is AttributeType.BOOLEAN:
        return "Boolean"
    return "Picklist"


def option_set(entity: EntityDef, attribute: AttributeDef) -> dict[str, object]:
    """Return the ``OptionSet`` value of a choice/boolean column (``BooleanOptionSetMetadata`` for booleans)."""
    name = option_set_name(entity, attribute)
    set_id = (
        global_option_set_id(name)
        if attribute.is_global_option_set
        else derived_id(attribute.metadata_id, "optionset")
    )
    item: dict[str, object] = {
        "MetadataId": str(set_id),
        "HasChanged": None,
        "IsCustomOptionSet": attribute.is_custom,
        "IsGlobal": attribute.is_global_option_set,
        "IsManaged": not attribute.is_custom,
        "Name": name,
        "ExternalTypeName": None,
        "OptionSetType": _option_set_type(attribute),
        "IntroducedVersion": "5.0.0.0",
        "ParentOptionSetName": None,
        "Description": label(None, set_id, "description"),
        "DisplayName": label(attribute.display_name, set_id, "displayname"),
        "IsCustomizable": managed(True, "iscustomizable"),
    }
    if attribute.type is AttributeType.BOOLEAN:
        by_value = {option.value: option for option in attribute.options}
        true_option = by_value.get(1, OptionDef(1, "Yes"))
        false_option = by_value.get(0, OptionDef(0, "No"))
        item["TrueOption"] = _option(attribute, true_option)
        item["FalseOption"] = _option(attribute, false_option)
    else:
        item["Options"] = [_option(attribute, option) for option in attribute.options]
    return item


def global_option_set(entity: EntityDef, attribute: AttributeDef) -> dict[str, object] | None:
    """Return the ``GlobalOptionSet`` value: the option set when it is global, else None (as the service)."""
    return option_set(entity, attribute) if attribute.is_global_option_set else None
