"""Test helpers: StreamSpecs for the standard Dynamics tables (hand-built, and from the emulator catalog)."""

from __future__ import annotations

from dynasync.emulator.catalog import AttributeDef, AttributeType, EntityDef
from dynasync.emulator.standard_tables import standard_catalog
from dynasync.synapses.base import ColumnSpec, ColumnType, StreamSpec

S, L, C = ColumnType.STRING, ColumnType.LOOKUP, ColumnType.CHOICE

_TYPES = {
    AttributeType.STRING: ColumnType.STRING,
    AttributeType.MEMO: ColumnType.TEXT,
    AttributeType.INTEGER: ColumnType.INTEGER,
    AttributeType.BIGINT: ColumnType.BIGINT,
    AttributeType.DECIMAL: ColumnType.DECIMAL,
    AttributeType.DOUBLE: ColumnType.FLOAT,
    AttributeType.MONEY: ColumnType.MONEY,
    AttributeType.BOOLEAN: ColumnType.BOOLEAN,
    AttributeType.PICKLIST: ColumnType.CHOICE,
    AttributeType.STATE: ColumnType.CHOICE,
    AttributeType.STATUS: ColumnType.CHOICE,
    AttributeType.LOOKUP: ColumnType.LOOKUP,
    AttributeType.CUSTOMER: ColumnType.LOOKUP,
    AttributeType.OWNER: ColumnType.LOOKUP,
    AttributeType.UNIQUEIDENTIFIER: ColumnType.UUID,
}


def col(name: str, type_: ColumnType, **kw: object) -> ColumnSpec:
    return ColumnSpec(name=name, type=type_, **kw)  # type: ignore[arg-type]


def stream(name: str, collection: str, *columns: ColumnSpec, primary_name: str | None = "name") -> StreamSpec:
    pk = col(f"{name}id", ColumnType.UUID, is_primary_id=True, creatable=True, updatable=False)
    return StreamSpec(
        name=name,
        collection=collection,
        primary_id=pk.name,
        primary_name=primary_name,
        columns={c.name: c for c in (pk, *columns)},
    )


def _column(attr: AttributeDef) -> ColumnSpec | None:
    if attr.is_multiselect:
        kind = ColumnType.MULTICHOICE
    elif attr.type is AttributeType.DATETIME:
        kind = ColumnType.DATE if (attr.format or "").lower() == "dateonly" else ColumnType.DATETIME
    elif attr.type in _TYPES:
        kind = _TYPES[attr.type]
    else:
        return None
    return ColumnSpec(
        name=attr.logical_name,
        type=kind,
        source_type=attr.type.value,
        display_name=attr.display_name,
        max_length=attr.max_length,
        options=tuple((o.value, o.label) for o in attr.options),
        targets=tuple(attr.targets),
        navigation=dict(attr.navigation),
        readable=attr.valid_for_read,
        creatable=attr.valid_for_create,
        updatable=attr.valid_for_update,
        is_primary_id=attr.is_primary_id,
        is_primary_name=attr.is_primary_name,
    )


def stream_of(entity: EntityDef) -> StreamSpec:
    columns = {}
    for attr in entity.attributes.values():
        if not attr.is_odata_property or attr.attribute_of:
            continue
        spec = _column(attr)
        if spec is not None:
            columns[spec.name] = spec
    return StreamSpec(
        name=entity.logical_name,
        collection=entity.entity_set_name,
        primary_id=entity.primary_id,
        primary_name=entity.primary_name,
        columns=columns,
    )


def catalog_streams(*tables: str) -> list[StreamSpec]:
    """StreamSpecs of the emulator's standard catalog (all tables, or the ones named)."""
    catalog = standard_catalog()
    names = tables or tuple(catalog.entities)
    return [stream_of(catalog.entities[n]) for n in names]


ACCOUNT_CATEGORY = ((1, "Preferred Customer"), (2, "Standard"))
STATE = ((0, "Active"), (1, "Inactive"))
STATUS = ((1, "Active"), (2, "Inactive"))


def small_streams() -> list[StreamSpec]:
    """A hand-built, trimmed org: account, contact, systemuser, team with realistic column facts."""
    account = stream(
        "account",
        "accounts",
        col("name", S, max_length=160, required=True),
        col("accountnumber", S, max_length=20),
        col("emailaddress1", S, max_length=100),
        col("revenue", ColumnType.MONEY, precision=2),
        col("numberofemployees", ColumnType.INTEGER),
        col("creditonhold", ColumnType.BOOLEAN),
        col("accountcategorycode", C, options=ACCOUNT_CATEGORY),
        col("new_regions", ColumnType.MULTICHOICE, options=((1, "North"), (2, "South"), (3, "East"))),
        col("parentaccountid", L, targets=("account",)),
        col("primarycontactid", L, targets=("contact",)),
        col("ownerid", L, targets=("systemuser", "team")),
        col("statecode", C, options=STATE, creatable=False),
        col("statuscode", C, options=STATUS),
        col("createdon", ColumnType.DATETIME, creatable=False, updatable=False),
        col("modifiedon", ColumnType.DATETIME, creatable=False, updatable=False),
        col("lastonholdtime", ColumnType.DATETIME),
        col("tickersymbol", S, max_length=10),
    )
    contact = stream(
        "contact",
        "contacts",
        col("firstname", S, max_length=50),
        col("lastname", S, max_length=50),
        col("fullname", S, max_length=160, creatable=False, updatable=False),
        col("emailaddress1", S, max_length=100),
        col("birthdate", ColumnType.DATE),
        col("parentcustomerid", L, targets=("account", "contact")),
        col("ownerid", L, targets=("systemuser", "team")),
        col("createdon", ColumnType.DATETIME, creatable=False, updatable=False),
        primary_name="fullname",
    )
    user = stream(
        "systemuser",
        "systemusers",
        col("fullname", S, creatable=False, updatable=False),
        col("domainname", S, max_length=1024),
        col("internalemailaddress", S, max_length=100),
        primary_name="fullname",
    )
    team = stream("team", "teams", col("name", S, max_length=160))
    return [account, contact, user, team]
