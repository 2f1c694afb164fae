"""The standard Dataverse tables of a fresh emulated org (account, contact, lead, opportunity and the system tables).

Column names, types, lengths, option values, navigation property names and relationship schema names follow
the service (see ``docs/dataverse-web-api.md`` §9.4 and §12). One deliberate addition: account carries the
customer-added multi-select column ``new_regions`` (real orgs add such columns; vanilla account has none).
"""

from __future__ import annotations

import dataclasses
import uuid

from dynasync.emulator.catalog import (
    AttributeType,
    Catalog,
    EntityDef,
    KeyDef,
    RelationshipDef,
)
from dynasync.emulator.standard_columns import (
    ACTIVE_INACTIVE_STATE,
    ACTIVE_INACTIVE_STATUS,
    APP_REQ,
    CONTACT_METHOD,
    CUSTOMER,
    INDUSTRY,
    address,
    audit_columns,
    currency_columns,
    owner_columns,
    person_names,
)
from dynasync.emulator.standard_tables_more import (
    businessunit_table,
    lead_table,
    opportunity_table,
    organization_table,
    systemuser_table,
    team_table,
    transactioncurrency_table,
)
from dynasync.emulator.table_builders import (
    boolean,
    build_entity,
    datetime,
    integer,
    lookup,
    memo,
    money,
    multiselect,
    picklist,
    relationship,
    state,
    status,
    string,
    uid,
)

# Relationship schema names and delete behaviour of the business lookups, keyed by (table, navigation).
# Collection navigations on the "one" side equal the schema name, as in Dataverse.
_RELATIONSHIPS: dict[tuple[str, str], tuple[str, str]] = {
    ("account", "parentaccountid"): ("account_parent_account", "RemoveLink"),
    ("account", "primarycontactid"): ("account_primary_contact", "RemoveLink"),
    ("contact", "parentcustomerid_account"): ("contact_customer_accounts", "Cascade"),
    ("contact", "parentcustomerid_contact"): ("contact_customer_contacts", "Cascade"),
    ("lead", "parentaccountid"): ("lead_parent_account", "RemoveLink"),
    ("lead", "parentcontactid"): ("lead_parent_contact", "RemoveLink"),
    ("lead", "customerid_account"): ("lead_customer_accounts", "RemoveLink"),
    ("lead", "customerid_contact"): ("lead_customer_contacts", "RemoveLink"),
    ("lead", "qualifyingopportunityid"): ("lead_qualifying_opportunity", "RemoveLink"),
    ("opportunity", "customerid_account"): ("opportunity_customer_accounts", "RemoveLink"),
    ("opportunity", "customerid_contact"): ("opportunity_customer_contacts", "RemoveLink"),
    ("opportunity", "parentaccountid"): ("opportunity_parent_account", "RemoveLink"),
    ("opportunity", "parentcontactid"): ("opportunity_parent_contact", "RemoveLink"),
    ("opportunity", "originatingleadid"): ("opportunity_originating_lead", "RemoveLink"),
    ("systemuser", "businessunitid"): ("business_unit_system_users", "RemoveLink"),
    ("systemuser", "parentsystemuserid"): ("user_parent_user", "RemoveLink"),
    ("team", "businessunitid"): ("business_unit_teams", "RemoveLink"),
    ("team", "administratorid"): ("lk_teambase_administratorid", "RemoveLink"),
    ("businessunit", "parentbusinessunitid"): ("business_unit_parent_business_unit", "RemoveLink"),
    ("organization", "basecurrencyid"): ("basecurrency_organization", "RemoveLink"),
}


def _account() -> EntityDef:
    e = EntityDef("account", "accounts", "accountid", "name", 1, display_name="Account")
    e.keys.append(KeyDef("accountnumber", ("accountnumber",), "AccountNumberKey"))
    return build_entity(
        e,
        uid("accountid", "Account", primary=True),
        string("name", 160, "Account Name", required=APP_REQ, primary_name=True),
        string("accountnumber", 20, "Account Number"),
        string("tickersymbol", 10, "Ticker Symbol"),
        string("sic", 20, "SIC Code"),
        string("emailaddress1", 100, "Email", fmt="Email"),
        string("emailaddress2", 100, "Email Address 2", fmt="Email"),
        string("emailaddress3", 100, "Email Address 3", fmt="Email"),
        string("telephone1", 50, "Main Phone", fmt="Phone"),
        string("telephone2", 50, "Other Phone", fmt="Phone"),
        string("telephone3", 50, "Telephone 3", fmt="Phone"),
        string("fax", 50, "Fax", fmt="Phone"),
        string("websiteurl", 200, "Website", fmt="Url"),
        memo("description", 2000, "Description"),
        *[address("account", 1), address("account", 2)],
        money("revenue", "Annual Revenue", 0, 100_000_000_000_000),
        money("creditlimit", "Credit Limit", 0, 100_000_000_000_000),
        money("marketcap", "Market Capitalization", 0, 100_000_000_000_000),
        integer("numberofemployees", "Number of Employees", 0, 1_000_000_000),
        boolean("creditonhold", "Credit Hold"),
        boolean("donotemail", "Do not allow Emails", true_label="Do Not Allow", false_label="Allow"),
        boolean("donotphone", "Do not allow Phone Calls", true_label="Do Not Allow", false_label="Allow"),
        picklist("account", "accountcategorycode", "Category", [(1, "Preferred Customer"), (2, "Standard")]),
        picklist(
            "account",
            "customertypecode",
            "Relationship Type",
            [
                (1, "Competitor"),
                (2, "Consultant"),
                (3, "Customer"),
                (4, "Investor"),
                (5, "Partner"),
                (6, "Influencer"),
                (7, "Press"),
                (8, "Prospect"),
                (9, "Reseller"),
                (10, "Supplier"),
                (11, "Vendor"),
                (12, "Other"),
            ],
        ),
        picklist("account", "industrycode", "Industry", INDUSTRY),
        picklist(
            "account",
            "ownershipcode",
            "Ownership",
            [(1, "Public"), (2, "Private"), (3, "Subsidiary"), (4, "Other")],
        ),
        picklist("account", "preferredcontactmethodcode", "Preferred Method of Contact", CONTACT_METHOD),
        multiselect(
            "account",
            "new_regions",
            "Regions",
            [
                (100000000, "North America"),
                (100000001, "South America"),
                (100000002, "Europe"),
                (100000003, "Middle East & Africa"),
                (100000004, "Asia Pacific"),
            ],
            custom=True,
        ),
        *lookup("parentaccountid", "Parent Account", {"parentaccountid": "account"}),
        *lookup("primarycontactid", "Primary Contact", {"primarycontactid": "contact"}),
        state("account", ACTIVE_INACTIVE_STATE),
        status("account", ACTIVE_INACTIVE_STATUS),
        currency_columns(),
        owner_columns(),
        audit_columns(),
    )


def _contact() -> EntityDef:
    e = EntityDef("contact", "contacts", "contactid", "fullname", 2, display_name="Contact")
    e.keys.append(KeyDef("firstname_emailaddress1", ("firstname", "emailaddress1"), "FirstNameEmailKey"))
    return build_entity(
        e,
        uid("contactid", "Contact", primary=True),
        person_names(),
        string("nickname", 100, "Nickname"),
        string("salutation", 100, "Salutation"),
        string("jobtitle", 100, "Job Title"),
        string("department", 100, "Department"),
        string("emailaddress1", 100, "Email", fmt="Email"),
        string("emailaddress2", 100, "Email Address 2", fmt="Email"),
        string("emailaddress3", 100, "Email Address 3", fmt="Email"),
        string("telephone1", 50, "Business Phone", fmt="Phone"),
        string("telephone2", 50, "Home Phone", fmt="Phone"),
        string("mobilephone", 50, "Mobile Phone", fmt="Phone"),
        string("fax", 50, "Fax", fmt="Phone"),
        datetime("birthdate", "Birthday", date_only=True),
        picklist("contact", "gendercode", "Gender", [(1, "Male"), (2, "Female")]),
        picklist(
            "contact",
            "familystatuscode",
            "Marital Status",
            [(1, "Single"), (2, "Married"), (3, "Divorced"), (4, "Widowed")],
        ),
        picklist("contact", "preferredcontactmethodcode", "Preferred Method of Contact", CONTACT_METHOD),
        integer("numberofchildren", "No. of Children", 0, 1_000_000_000),
        memo("description", 2000, "Description"),
        address("contact", 1),
        money("creditlimit", "Credit Limit", 0, 100_000_000_000_000),
        money("annualincome", "Annual Income", 0, 100_000_000_000_000),
        boolean("donotemail", "Do not allow Emails", true_label="Do Not Allow", false_label="Allow"),
        boolean("donotphone", "Do not allow Phone Calls", true_label="Do Not Allow", false_label="Allow"),
        *lookup(
            "parentcustomerid",
            "Company Name",
            {"parentcustomerid_account": "account", "parentcustomerid_contact": "contact"},
            kind=CUSTOMER,
        ),
        state("contact", ACTIVE_INACTIVE_STATE),
        status("contact", ACTIVE_INACTIVE_STATUS),
        currency_columns(),
        owner_columns(),
        audit_columns(),
    )


def system_relationship_name(entity: EntityDef, navigation: str) -> str | None:
    """Schema name of the relationship behind a system lookup (``createdby``, ``owninguser``...), or None."""
    e = entity.logical_name
    names = {
        "createdby": f"lk_{e}base_createdby",
        "modifiedby": f"lk_{e}base_modifiedby",
        "createdonbehalfby": f"lk_{e}base_createdonbehalfby",
        "modifiedonbehalfby": f"lk_{e}base_modifiedonbehalfby",
        "owninguser": f"user_{entity.entity_set_name}",
        "owningteam": f"team_{entity.entity_set_name}",
        "owningbusinessunit": f"business_unit_{entity.entity_set_name}",
        "transactioncurrencyid": f"TransactionCurrency_{entity.schema_name}",
    }
    return names.get(navigation)


def relationships_of(catalog: Catalog, entity: EntityDef) -> list[RelationshipDef]:
    """Derive the one-to-many relationships behind every lookup of ``entity``.

    The owner lookup is left out: its partner is the abstract ``principal``, which has no collection
    navigation on systemuser or team.
    """
    result: list[RelationshipDef] = []
    for attribute in entity.attributes.values():
        if not attribute.is_lookup or attribute.type == AttributeType.OWNER:
            continue
        for navigation, target in attribute.navigation.items():
            referenced = catalog.entity(target)
            if referenced is None:
                continue
            known = _RELATIONSHIPS.get((entity.logical_name, navigation))
            if known is not None:
                schema, cascade = known
            else:
                schema = (
                    system_relationship_name(entity, navigation)
                    or f"{target}_{entity.logical_name}_{navigation}"
                )
                cascade = "RemoveLink"
            result.append(
                relationship(
                    schema,
                    referenced,
                    entity.logical_name,
                    attribute.logical_name,
                    navigation,
                    cascade=cascade,
                    custom=attribute.is_custom,
                )
            )
    return result


def standard_catalog() -> Catalog:
    """Return a fresh catalog with the standard tables and their relationships (a new object on every call)."""
    catalog = Catalog()
    for build in (
        _account,
        _contact,
        lead_table,
        opportunity_table,
        systemuser_table,
        team_table,
        businessunit_table,
        transactioncurrency_table,
        organization_table,
    ):
        catalog.add_entity(build())
    for entity in catalog.entities.values():
        catalog.relationships.extend(relationships_of(catalog, entity))
    _stable_ids(catalog)
    catalog.metadata_version = 1
    return catalog


_NAMESPACE = uuid.UUID("5c3a8d2e-7f41-4b8a-9d0e-2f6b1c9e4a77")
_ACCOUNT_METADATA_ID = uuid.UUID("70816501-edb9-4740-a16c-6a5efbc05d84")  # the real account MetadataId


def _stable_ids(catalog: Catalog) -> None:
    """Give standard definitions the same MetadataIds in every process (clients cache them)."""
    for entity in catalog.entities.values():
        entity.metadata_id = uuid.uuid5(_NAMESPACE, f"entity:{entity.logical_name}")
        for attribute in entity.attributes.values():
            attribute.metadata_id = uuid.uuid5(
                _NAMESPACE, f"attribute:{entity.logical_name}.{attribute.logical_name}"
            )
    catalog.entities["account"].metadata_id = _ACCOUNT_METADATA_ID
    catalog.relationships[:] = [
        dataclasses.replace(r, metadata_id=uuid.uuid5(_NAMESPACE, f"relationship:{r.schema_name}"))
        for r in catalog.relationships
    ]
