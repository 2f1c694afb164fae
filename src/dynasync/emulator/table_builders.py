"""Small constructors for column definitions, so table declarations read like the Dataverse column list."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dynasync.emulator.catalog import (
    AttributeDef,
    AttributeType,
    DateTimeBehavior,
    EntityDef,
    OptionDef,
    RelationshipDef,
    RequiredLevel,
)

INT_MIN = -2_147_483_648
INT_MAX = 2_147_483_647
MONEY_MIN = -922_337_203_685_477.0
MONEY_MAX = 922_337_203_685_477.0

_TYPE_NAMES = {
    AttributeType.BOOLEAN: "BooleanType",
    AttributeType.CUSTOMER: "CustomerType",
    AttributeType.DATETIME: "DateTimeType",
    AttributeType.DECIMAL: "DecimalType",
    AttributeType.DOUBLE: "DoubleType",
    AttributeType.INTEGER: "IntegerType",
    AttributeType.LOOKUP: "LookupType",
    AttributeType.MEMO: "MemoType",
    AttributeType.MONEY: "MoneyType",
    AttributeType.OWNER: "OwnerType",
    AttributeType.PICKLIST: "PicklistType",
    AttributeType.STATE: "StateType",
    AttributeType.STATUS: "StatusType",
    AttributeType.STRING: "StringType",
    AttributeType.UNIQUEIDENTIFIER: "UniqueidentifierType",
    AttributeType.VIRTUAL: "VirtualType",
    AttributeType.BIGINT: "BigIntType",
    AttributeType.ENTITYNAME: "EntityNameType",
}


def type_name_of(attribute_type: AttributeType) -> str:
    """Return the default ``AttributeTypeName`` value for an attribute type (``"StringType"``...)."""
    return _TYPE_NAMES[attribute_type]


def _attr(
    name: str, attribute_type: AttributeType, display: str, *, readonly: bool = False, **kw: object
) -> AttributeDef:
    attribute = AttributeDef(
        logical_name=name,
        type=attribute_type,
        display_name=display,
        **kw,  # type: ignore[arg-type]
    )
    if not attribute.type_name:
        attribute.type_name = type_name_of(attribute_type)
    if readonly:
        attribute.valid_for_create = False
        attribute.valid_for_update = False
    return attribute


def uid(name: str, display: str, *, primary: bool = False, readonly: bool = False) -> AttributeDef:
    """A Uniqueidentifier column (the primary key when ``primary``)."""
    attribute = _attr(
        name,
        AttributeType.UNIQUEIDENTIFIER,
        display,
        is_primary_id=primary,
        readonly=readonly,
        required_level=RequiredLevel.SYSTEM_REQUIRED if primary else RequiredLevel.NONE,
    )
    if primary:
        attribute.valid_for_update = False
    return attribute


def string(
    name: str,
    length: int,
    display: str,
    *,
    fmt: str = "Text",
    required: RequiredLevel = RequiredLevel.NONE,
    primary_name: bool = False,
    readonly: bool = False,
    custom: bool = False,
) -> AttributeDef:
    """A single-line text column."""
    return _attr(
        name,
        AttributeType.STRING,
        display,
        max_length=length,
        format=fmt,
        required_level=required,
        is_primary_name=primary_name,
        readonly=readonly,
        is_custom=custom,
    )


def memo(name: str, length: int, display: str, *, readonly: bool = False) -> AttributeDef:
    """A multi-line text column."""
    return _attr(name, AttributeType.MEMO, display, max_length=length, format="TextArea", readonly=readonly)


def integer(
    name: str,
    display: str,
    lo: int = INT_MIN,
    hi: int = INT_MAX,
    *,
    readonly: bool = False,
    create_only: bool = False,
) -> AttributeDef:
    """A whole-number column."""
    attribute = _attr(
        name, AttributeType.INTEGER, display, min_value=lo, max_value=hi, format="None", readonly=readonly
    )
    if create_only:
        attribute.valid_for_update = False
    return attribute


def bigint(name: str, display: str, *, readonly: bool = False) -> AttributeDef:
    """A 64-bit integer column (``versionnumber``)."""
    return _attr(
        name,
        AttributeType.BIGINT,
        display,
        min_value=-9_223_372_036_854_775_808,
        max_value=9_223_372_036_854_775_807,
        readonly=readonly,
    )


def decimal(
    name: str, display: str, precision: int, lo: float, hi: float, *, readonly: bool = False
) -> AttributeDef:
    """A fixed-point decimal column."""
    return _attr(
        name,
        AttributeType.DECIMAL,
        display,
        precision=precision,
        min_value=lo,
        max_value=hi,
        readonly=readonly,
    )


def double(name: str, display: str, precision: int, lo: float, hi: float) -> AttributeDef:
    """A floating-point column."""
    return _attr(name, AttributeType.DOUBLE, display, precision=precision, min_value=lo, max_value=hi)


def money(name: str, display: str, lo: float = MONEY_MIN, hi: float = MONEY_MAX) -> list[AttributeDef]:
    """A currency column plus its read-only ``<name>_base`` twin (value in the base currency)."""
    value = _attr(name, AttributeType.MONEY, display, precision=2, min_value=lo, max_value=hi)
    base = _attr(
        f"{name}_base",
        AttributeType.MONEY,
        f"{display} (Base)",
        precision=4,
        min_value=lo,
        max_value=hi,
        attribute_of=name,
        readonly=True,
    )
    return [value, base]


def boolean(
    name: str, display: str, *, default: bool = False, true_label: str = "Yes", false_label: str = "No"
) -> AttributeDef:
    """A two-option (yes/no) column."""
    return _attr(
        name,
        AttributeType.BOOLEAN,
        display,
        options=(OptionDef(0, false_label), OptionDef(1, true_label)),
        default_value=default,
    )


def datetime(
    name: str,
    display: str,
    *,
    date_only: bool = False,
    readonly: bool = False,
    create_only: bool = False,
) -> AttributeDef:
    """A date-and-time column; ``date_only`` ones travel as ``Edm.Date``."""
    attribute = _attr(
        name,
        AttributeType.DATETIME,
        display,
        format="DateOnly" if date_only else "DateAndTime",
        date_behavior=DateTimeBehavior.DATE_ONLY if date_only else DateTimeBehavior.USER_LOCAL,
        readonly=readonly,
    )
    if create_only:
        attribute.valid_for_update = False
    return attribute


def picklist(
    entity: str, name: str, display: str, options: Sequence[tuple[int, str]], *, custom: bool = False
) -> AttributeDef:
    """A single-choice column with a local option set named ``<entity>_<name>``."""
    return _attr(
        name,
        AttributeType.PICKLIST,
        display,
        options=tuple(OptionDef(value, label) for value, label in options),
        option_set_name=f"{entity}_{name}",
        is_custom=custom,
    )


def multiselect(
    entity: str, name: str, display: str, options: Sequence[tuple[int, str]], *, custom: bool = False
) -> AttributeDef:
    """A multi-select choice column (``AttributeType`` Virtual, type name MultiSelectPicklistType)."""
    return _attr(
        name,
        AttributeType.VIRTUAL,
        display,
        type_name="MultiSelectPicklistType",
        options=tuple(OptionDef(value, label) for value, label in options),
        option_set_name=f"{entity}_{name}",
        is_custom=custom,
    )


def state(entity: str, options: Sequence[tuple[int, str, int]]) -> AttributeDef:
    """The ``statecode`` column; options are (value, label, default status); not valid for create."""
    return _attr(
        "statecode",
        AttributeType.STATE,
        "Status",
        options=tuple(
            OptionDef(value, label, default_status=default, invariant_name=label.replace(" ", ""))
            for value, label, default in options
        ),
        option_set_name=f"{entity}_statecode",
        required_level=RequiredLevel.SYSTEM_REQUIRED,
        valid_for_create=False,
    )


def status(entity: str, options: Sequence[tuple[int, str, int]]) -> AttributeDef:
    """The ``statuscode`` column; options are (value, label, owning state)."""
    return _attr(
        "statuscode",
        AttributeType.STATUS,
        "Status Reason",
        options=tuple(OptionDef(value, label, state=st) for value, label, st in options),
        option_set_name=f"{entity}_statuscode",
    )


def lookup(
    name: str,
    display: str,
    navigation: Mapping[str, str],
    *,
    kind: AttributeType = AttributeType.LOOKUP,
    readonly: bool = False,
    required: RequiredLevel = RequiredLevel.NONE,
    custom: bool = False,
) -> list[AttributeDef]:
    """A lookup column plus its helper ``<name>name`` (and ``<name>type`` for polymorphic) attributes.

    ``navigation`` maps each single-valued navigation property to its target table. For the owner column pass
    ``{"ownerid": "systemuser"}`` and ``kind=OWNER``; the targets are then systemuser and team.
    """
    targets = (
        ("systemuser", "team") if kind == AttributeType.OWNER else tuple(dict.fromkeys(navigation.values()))
    )
    main = _attr(
        name,
        kind,
        display,
        targets=targets,
        navigation=dict(navigation),
        readonly=readonly,
        required_level=required,
        is_custom=custom,
    )
    helpers = [
        _attr(
            f"{name}name",
            AttributeType.STRING,
            display,
            max_length=160,
            attribute_of=name,
            is_odata_property=False,
            readonly=True,
        )
    ]
    if len(targets) > 1:
        helpers.append(
            _attr(
                f"{name}type",
                AttributeType.ENTITYNAME,
                display,
                attribute_of=name,
                is_odata_property=False,
                readonly=True,
            )
        )
    return [main, *helpers]


def build_entity(entity: EntityDef, *groups: AttributeDef | list[AttributeDef]) -> EntityDef:
    """Add the given columns (single or grouped) to ``entity`` in order and return it."""
    for group in groups:
        for attribute in group if isinstance(group, list) else [group]:
            entity.add(attribute)
    return entity


def relationship(
    schema_name: str,
    referenced: EntityDef,
    referencing: str,
    attribute: str,
    navigation: str,
    *,
    cascade: str = "RemoveLink",
    custom: bool = False,
) -> RelationshipDef:
    """A one-to-many relationship whose collection navigation on the one side is the schema name."""
    return RelationshipDef(
        schema_name=schema_name,
        referenced_entity=referenced.logical_name,
        referenced_attribute=referenced.primary_id,
        referencing_entity=referencing,
        referencing_attribute=attribute,
        referenced_navigation=schema_name,
        referencing_navigation=navigation,
        cascade_delete=cascade,
        is_custom=custom,
    )
