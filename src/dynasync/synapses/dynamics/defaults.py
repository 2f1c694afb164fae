"""The default mapping of the standard Dynamics 365 tables to UDM entities, limited to what the org has."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from dynasync.mapping.errors import MappingValidationError
from dynasync.mapping.spec import (
    DEFAULT_CONFLICT,
    Cast,
    ConflictPolicy,
    Direction,
    EntityMapping,
    FieldMapping,
    MappingSpec,
    UnmappedPolicy,
)
from dynasync.mapping.transforms import FIELD_ACCEPTS, Kind, kind_after_casts
from dynasync.mapping.validate import column_kind, validate_mapping
from dynasync.mapping.yaml_io import dump_mapping
from dynasync.synapses.base import ColumnSpec, ColumnType, StreamSpec
from dynasync.udm.model import FieldType as T

SYNAPSE = "dynamics"

B, R = Direction.BOTH, Direction.TO_UDM
KEEP_VALUE = ConflictPolicy(reject_empty=True)  # keys and names: an empty value never wipes a known one
EMAIL = (Cast.TRIM, Cast.LOWER)


@dataclass(frozen=True, slots=True)
class _Std:
    """One standard column's default: the UDM field, its type and direction, and lookup targets."""

    column: str
    field: str
    type: T
    direction: Direction = B
    casts: tuple[Cast, ...] = ()
    reference: str | None = None
    target_table: str | None = None
    conflict: ConflictPolicy = DEFAULT_CONFLICT


def _ref(column: str, field: str, entity: str, table: str, direction: Direction = B) -> _Std:
    return _Std(column, field, T.REFERENCE, direction, reference=entity, target_table=table)


def _address(direction: Direction = B) -> tuple[_Std, ...]:
    parts = (
        ("line1", T.STRING),
        ("line2", T.STRING),
        ("line3", T.STRING),
        ("city", T.STRING),
        ("stateorprovince", T.STRING),
        ("postalcode", T.STRING),
        ("county", T.STRING),
        ("country", T.STRING),
        ("latitude", T.FLOAT),
        ("longitude", T.FLOAT),
    )
    names = {"stateorprovince": "state_or_province", "postalcode": "postal_code"}
    return tuple(_Std(f"address1_{p}", f"address_{names.get(p, p)}", t, direction) for p, t in parts)


def _system() -> tuple[_Std, ...]:
    return (
        _ref("ownerid", "owner_ref", "User", "systemuser"),
        _Std("createdon", "created_on", T.DATETIME, R),
        _Std("modifiedon", "modified_on", T.DATETIME, R),
    )


def _state(direction: Direction) -> tuple[_Std, ...]:
    return (
        _Std("statecode", "state", T.CHOICE, direction),
        _Std("statuscode", "status", T.CHOICE, direction),
    )


@dataclass(frozen=True, slots=True)
class _Table:
    table: str
    entity: str
    match_keys: tuple[str, ...]
    columns: tuple[_Std, ...]


STANDARD: tuple[_Table, ...] = (
    _Table(
        "account",
        "Account",
        ("account_number",),
        (
            _Std("name", "name", T.STRING, conflict=KEEP_VALUE),
            _Std("accountnumber", "account_number", T.STRING, casts=(Cast.TRIM,), conflict=KEEP_VALUE),
            _Std("emailaddress1", "email", T.STRING, casts=EMAIL),
            _Std("emailaddress2", "email2", T.STRING, casts=EMAIL),
            _Std("emailaddress3", "email3", T.STRING, casts=EMAIL),
            _Std("telephone1", "phone", T.STRING),
            _Std("telephone2", "phone2", T.STRING),
            _Std("telephone3", "phone3", T.STRING),
            _Std("fax", "fax", T.STRING),
            _Std("websiteurl", "website", T.STRING, casts=(Cast.TRIM,)),
            _Std("tickersymbol", "ticker_symbol", T.STRING),
            _Std("description", "description", T.TEXT),
            *_address(),
            _Std("revenue", "revenue", T.DECIMAL),
            _Std("creditlimit", "credit_limit", T.DECIMAL),
            _Std("marketcap", "market_cap", T.DECIMAL),
            _Std("numberofemployees", "number_of_employees", T.INTEGER),
            _Std("creditonhold", "credit_on_hold", T.BOOLEAN),
            _Std("donotemail", "do_not_email", T.BOOLEAN),
            _Std("donotphone", "do_not_phone", T.BOOLEAN),
            _Std("accountcategorycode", "category", T.CHOICE),
            _Std("customertypecode", "relationship_type", T.CHOICE),
            _Std("industrycode", "industry", T.CHOICE),
            _Std("ownershipcode", "ownership", T.CHOICE),
            _Std("preferredcontactmethodcode", "preferred_contact_method", T.CHOICE),
            _ref("parentaccountid", "parent_account_ref", "Account", "account"),
            _ref("primarycontactid", "primary_contact_ref", "Contact", "contact"),
            *_state(B),
            *_system(),
        ),
    ),
    _Table(
        "contact",
        "Contact",
        ("email",),
        (
            _Std("firstname", "first_name", T.STRING),
            _Std("middlename", "middle_name", T.STRING),
            _Std("lastname", "last_name", T.STRING, conflict=KEEP_VALUE),
            _Std("fullname", "full_name", T.STRING, R),
            _Std("salutation", "salutation", T.STRING),
            _Std("jobtitle", "job_title", T.STRING),
            _Std("department", "department", T.STRING),
            _Std("emailaddress1", "email", T.STRING, casts=EMAIL, conflict=KEEP_VALUE),
            _Std("emailaddress2", "email2", T.STRING, casts=EMAIL),
            _Std("emailaddress3", "email3", T.STRING, casts=EMAIL),
            _Std("telephone1", "phone", T.STRING),
            _Std("telephone2", "home_phone", T.STRING),
            _Std("mobilephone", "mobile_phone", T.STRING),
            _Std("fax", "fax", T.STRING),
            _Std("birthdate", "birth_date", T.DATE),
            _Std("gendercode", "gender", T.CHOICE),
            _Std("familystatuscode", "marital_status", T.CHOICE),
            _Std("preferredcontactmethodcode", "preferred_contact_method", T.CHOICE),
            _Std("description", "description", T.TEXT),
            *_address(),
            _Std("creditlimit", "credit_limit", T.DECIMAL),
            _Std("annualincome", "annual_income", T.DECIMAL),
            _Std("donotemail", "do_not_email", T.BOOLEAN),
            _Std("donotphone", "do_not_phone", T.BOOLEAN),
            # Customer lookup: one UDM reference per target table (the column holds one or the other).
            _ref("parentcustomerid", "account_ref", "Account", "account"),
            _ref("parentcustomerid", "parent_contact_ref", "Contact", "contact"),
            *_state(B),
            *_system(),
        ),
    ),
    _Table(
        "lead",
        "Lead",
        ("email",),
        (
            _Std("subject", "topic", T.STRING, conflict=KEEP_VALUE),
            _Std("firstname", "first_name", T.STRING),
            _Std("middlename", "middle_name", T.STRING),
            _Std("lastname", "last_name", T.STRING),
            _Std("fullname", "full_name", T.STRING, R),
            _Std("companyname", "company_name", T.STRING),
            _Std("jobtitle", "job_title", T.STRING),
            _Std("emailaddress1", "email", T.STRING, casts=EMAIL, conflict=KEEP_VALUE),
            _Std("telephone1", "phone", T.STRING),
            _Std("mobilephone", "mobile_phone", T.STRING),
            _Std("websiteurl", "website", T.STRING, casts=(Cast.TRIM,)),
            _Std("description", "description", T.TEXT),
            *_address(),
            _Std("leadsourcecode", "lead_source", T.CHOICE),
            _Std("leadqualitycode", "rating", T.CHOICE),
            _Std("industrycode", "industry", T.CHOICE),
            _Std("estimatedamount", "estimated_amount", T.DECIMAL),
            _Std("budgetamount", "budget_amount", T.DECIMAL),
            _Std("revenue", "revenue", T.DECIMAL),
            _Std("estimatedclosedate", "estimated_close_date", T.DATE),
            _Std("numberofemployees", "number_of_employees", T.INTEGER),
            _Std("donotemail", "do_not_email", T.BOOLEAN),
            _ref("parentaccountid", "account_ref", "Account", "account"),
            _ref("parentcontactid", "contact_ref", "Contact", "contact"),
            _ref("qualifyingopportunityid", "qualifying_opportunity_ref", "Opportunity", "opportunity", R),
            # Lead state changes go through qualification actions, not plain updates: read only.
            *_state(R),
            *_system(),
        ),
    ),
    _Table(
        "opportunity",
        "Opportunity",
        (),
        (
            _Std("name", "name", T.STRING, conflict=KEEP_VALUE),
            _ref("customerid", "account_ref", "Account", "account"),
            _ref("customerid", "contact_ref", "Contact", "contact"),
            _ref("parentaccountid", "parent_account_ref", "Account", "account"),
            _ref("parentcontactid", "parent_contact_ref", "Contact", "contact"),
            _ref("originatingleadid", "originating_lead_ref", "Lead", "lead"),
            _Std("estimatedvalue", "estimated_value", T.DECIMAL),
            _Std("estimatedclosedate", "estimated_close_date", T.DATE),
            _Std("actualvalue", "actual_value", T.DECIMAL),
            _Std("actualclosedate", "actual_close_date", T.DATE),
            _Std("budgetamount", "budget_amount", T.DECIMAL),
            _Std("closeprobability", "close_probability", T.INTEGER),
            _Std("opportunityratingcode", "rating", T.CHOICE),
            _Std("salesstagecode", "sales_stage", T.CHOICE),
            _Std("purchasetimeframe", "purchase_timeframe", T.CHOICE),
            _Std("stepname", "step_name", T.STRING),
            _Std("description", "description", T.TEXT),
            # Won/lost needs the close actions (WinOpportunity/LoseOpportunity), not plain updates: read only.
            *_state(R),
            *_system(),
        ),
    ),
    _Table(
        "systemuser",
        "User",
        ("domain_name", "email"),
        # Users are people licensed in one org and managed there (and in Entra ID): the default mapping only
        # reads them. Written back, every user of one org would be created in each other org a UDM shares.
        (
            _Std("fullname", "full_name", T.STRING, R),
            _Std("firstname", "first_name", T.STRING, R),
            _Std("lastname", "last_name", T.STRING, R),
            # Identity columns are managed in Entra ID; dynasync only reads them.
            _Std("domainname", "domain_name", T.STRING, R, casts=EMAIL, conflict=KEEP_VALUE),
            _Std("internalemailaddress", "email", T.STRING, R, casts=EMAIL),
            _Std("azureactivedirectoryobjectid", "entra_object_id", T.UUID, R),
            _Std("isdisabled", "is_disabled", T.BOOLEAN, R),
            _Std("islicensed", "is_licensed", T.BOOLEAN, R),
            _Std("accessmode", "access_mode", T.CHOICE, R),
            _Std("title", "title", T.STRING, R),
            _Std("jobtitle", "job_title", T.STRING, R),
            _Std("mobilephone", "mobile_phone", T.STRING, R),
            _Std("address1_telephone1", "phone", T.STRING, R),
            _ref("parentsystemuserid", "manager_ref", "User", "systemuser", R),
            _Std("createdon", "created_on", T.DATETIME, R),
            _Std("modifiedon", "modified_on", T.DATETIME, R),
        ),
    ),
)

STANDARD_TABLES = tuple(t.table for t in STANDARD)


def default_mapping(streams: Sequence[StreamSpec]) -> MappingSpec:
    """Return the default mapping of the standard tables, limited to tables and columns present in ``streams``.

    Tables or columns the org lacks are left out and named in ``spec.notes``; a column whose type differs
    from the standard one is left out too, and a read-only column is mapped ``to_udm`` only.

    Raises:
        MappingValidationError: the produced mapping does not validate (a bug in these defaults).
    """
    by_name = {s.name: s for s in streams}
    present = {t.table for t in STANDARD if t.table in by_name}
    notes: list[str] = []
    missing = [t.table for t in STANDARD if t.table not in present]
    if missing:
        # Either the org lacks them or they were not replicated (activate --table): both leave them unmapped.
        notes.append(f"standard tables not in the replicated schema (not mapped): {', '.join(missing)}")
    entities: list[EntityMapping] = []
    for table in STANDARD:
        stream = by_name.get(table.table)
        if stream is None:
            continue
        fields: list[FieldMapping] = []
        skipped: list[str] = []
        for std in table.columns:
            column = stream.columns.get(std.column)
            mapping = _field(std, column, present) if column is not None else None
            if mapping is None:
                if std.column not in skipped:
                    skipped.append(std.column)
                continue
            fields.append(mapping)
        names = {f.field for f in fields}
        keys = tuple(k for k in table.match_keys if k in names)
        if skipped:
            notes.append(
                f"{table.table}: standard columns not mapped (absent or incompatible): {', '.join(skipped)}"
            )
        if len(keys) < len(table.match_keys):
            notes.append(
                f"{table.table}: match key(s) {', '.join(set(table.match_keys) - set(keys))} unavailable"
            )
        entities.append(
            EntityMapping(
                table=table.table,
                entity=table.entity,
                fields=tuple(fields),
                match_keys=keys,
                delete_to_udm=True,
                delete_from_udm=False,
                description=f"Default mapping of Dynamics '{table.table}'",
            )
        )
    spec = MappingSpec(
        synapse=SYNAPSE, entities=tuple(entities), notes=tuple(notes), source="<default mapping>"
    )
    problems = validate_mapping(spec, streams)
    if problems:
        raise MappingValidationError(problems)
    return spec


def default_mapping_yaml(streams: Sequence[StreamSpec]) -> str:
    """Return :func:`default_mapping` as a YAML document (what ``dynasync mapping show`` prints)."""
    return dump_mapping(default_mapping(streams))


def _field(std: _Std, column: ColumnSpec, present: set[str]) -> FieldMapping | None:
    if not column.readable:
        return None
    direction = std.direction
    if direction.writes and not (column.creatable or column.updatable):
        direction = Direction.TO_UDM
    base = FieldMapping(
        column=std.column,
        field=std.field,
        type=std.type,
        direction=direction,
        casts=std.casts,
        conflict=std.conflict,
    )
    if std.type is T.REFERENCE:
        if column.type is not ColumnType.LOOKUP or std.target_table not in present:
            return None
        if column.targets and std.target_table not in column.targets:
            return None
        return replace(
            base, reference=std.reference, target_table=std.target_table, unmapped=UnmappedPolicy.NULL
        )
    casts = std.casts
    if std.type is T.DATE and column.type is ColumnType.DATETIME:
        casts = (*casts, Cast.DATE_ONLY)  # a DateOnly column reported as a plain DateTime
    kind, problem = kind_after_casts(column_kind(column, std.type), casts)
    if problem or kind not in FIELD_ACCEPTS[std.type] or column.type is ColumnType.MULTICHOICE:
        return None
    if column.type is ColumnType.CHOICE:
        if kind is not Kind.TEXT:
            return None
        options = {value: label for value, label in column.options}
        return replace(base, casts=casts, options=options, unmapped=UnmappedPolicy.LABEL)
    return replace(base, casts=casts)


__all__ = ["STANDARD_TABLES", "default_mapping", "default_mapping_yaml"]
