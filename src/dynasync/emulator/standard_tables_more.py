"""Standard lead, opportunity and system tables (user, team, business unit, currency, organization)."""

from __future__ import annotations

from dynasync.emulator.catalog import EntityDef, RequiredLevel
from dynasync.emulator.standard_columns import (
    ACTIVE_INACTIVE_STATE,
    ACTIVE_INACTIVE_STATUS,
    APP_REQ,
    CUSTOMER,
    INDUSTRY,
    RATING,
    address,
    audit_columns,
    currency_columns,
    owner_columns,
    person_names,
)
from dynasync.emulator.table_builders import (
    boolean,
    build_entity,
    datetime,
    decimal,
    integer,
    lookup,
    memo,
    money,
    picklist,
    state,
    status,
    string,
    uid,
)


def lead_table() -> EntityDef:
    """The ``lead`` table."""
    e = EntityDef("lead", "leads", "leadid", "fullname", 4, display_name="Lead")
    return build_entity(
        e,
        uid("leadid", "Lead", primary=True),
        string("subject", 300, "Topic", required=APP_REQ),
        person_names(),
        string("companyname", 100, "Company Name"),
        string("jobtitle", 100, "Job Title"),
        string("emailaddress1", 100, "Email", fmt="Email"),
        string("telephone1", 50, "Business Phone", fmt="Phone"),
        string("mobilephone", 50, "Mobile Phone", fmt="Phone"),
        string("websiteurl", 200, "Website", fmt="Url"),
        memo("description", 2000, "Description"),
        address("lead", 1),
        picklist(
            "lead",
            "leadsourcecode",
            "Lead Source",
            [
                (1, "Advertisement"),
                (2, "Employee Referral"),
                (3, "External Referral"),
                (4, "Partner"),
                (5, "Public Relations"),
                (6, "Seminar"),
                (7, "Trade Show"),
                (8, "Web"),
                (9, "Word of Mouth"),
                (10, "Other"),
            ],
        ),
        picklist("lead", "leadqualitycode", "Rating", RATING),
        picklist("lead", "industrycode", "Industry", INDUSTRY),
        money("estimatedamount", "Est. Value", 0, 100_000_000_000_000),
        money("revenue", "Annual Revenue", 0, 100_000_000_000_000),
        datetime("estimatedclosedate", "Est. Close Date", date_only=True),
        integer("numberofemployees", "No. of Employees", 0, 1_000_000_000),
        boolean("donotemail", "Do not allow Emails", true_label="Do Not Allow", false_label="Allow"),
        *lookup("parentaccountid", "Parent Account for lead", {"parentaccountid": "account"}),
        *lookup("parentcontactid", "Parent Contact for lead", {"parentcontactid": "contact"}),
        *lookup(
            "customerid",
            "Customer",
            {"customerid_account": "account", "customerid_contact": "contact"},
            kind=CUSTOMER,
        ),
        *lookup(
            "qualifyingopportunityid", "Qualifying Opportunity", {"qualifyingopportunityid": "opportunity"}
        ),
        state("lead", [(0, "Open", 1), (1, "Qualified", 3), (2, "Disqualified", 4)]),
        status(
            "lead",
            [
                (1, "New", 0),
                (2, "Contacted", 0),
                (3, "Qualified", 1),
                (4, "Lost", 2),
                (5, "Cannot Contact", 2),
                (6, "No Longer Interested", 2),
                (7, "Canceled", 2),
            ],
        ),
        currency_columns(),
        owner_columns(),
        audit_columns(),
    )


def opportunity_table() -> EntityDef:
    """The ``opportunity`` table."""
    e = EntityDef("opportunity", "opportunities", "opportunityid", "name", 3, display_name="Opportunity")
    e.display_collection_name = "Opportunities"
    return build_entity(
        e,
        uid("opportunityid", "Opportunity", primary=True),
        string("name", 300, "Topic", required=APP_REQ, primary_name=True),
        *lookup(
            "customerid",
            "Potential Customer",
            {"customerid_account": "account", "customerid_contact": "contact"},
            kind=CUSTOMER,
            required=APP_REQ,
        ),
        *lookup("parentaccountid", "Account", {"parentaccountid": "account"}),
        *lookup("parentcontactid", "Contact", {"parentcontactid": "contact"}),
        *lookup("originatingleadid", "Originating Lead", {"originatingleadid": "lead"}),
        money("estimatedvalue", "Est. Revenue", 0, 100_000_000_000_000),
        datetime("estimatedclosedate", "Est. Close Date", date_only=True),
        money("actualvalue", "Actual Revenue", 0, 100_000_000_000_000),
        datetime("actualclosedate", "Actual Close Date", date_only=True),
        money("budgetamount", "Budget Amount", 0, 100_000_000_000_000),
        integer("closeprobability", "Probability", 0, 100),
        picklist("opportunity", "opportunityratingcode", "Rating", RATING),
        picklist(
            "opportunity",
            "salesstagecode",
            "Process Code",
            [(0, "Qualify"), (1, "Develop"), (2, "Propose"), (3, "Close")],
        ),
        picklist(
            "opportunity",
            "purchasetimeframe",
            "Purchase Timeframe",
            [(0, "Immediate"), (1, "This Quarter"), (2, "Next Quarter"), (3, "This Year"), (4, "Unknown")],
        ),
        string("stepname", 200, "Pipeline Phase"),
        memo("description", 2000, "Description"),
        state("opportunity", [(0, "Open", 1), (1, "Won", 3), (2, "Lost", 4)]),
        status(
            "opportunity",
            [(1, "In Progress", 0), (2, "On Hold", 0), (3, "Won", 1), (4, "Canceled", 2), (5, "Out-Sold", 2)],
        ),
        currency_columns(),
        owner_columns(),
        audit_columns(),
    )


def systemuser_table() -> EntityDef:
    """The ``systemuser`` table."""
    e = EntityDef(
        "systemuser",
        "systemusers",
        "systemuserid",
        "fullname",
        8,
        display_name="User",
        ownership="BusinessOwned",
    )
    return build_entity(
        e,
        uid("systemuserid", "User", primary=True),
        string("firstname", 64, "First Name"),
        string("middlename", 50, "Middle Name"),
        string("lastname", 64, "Last Name"),
        string("fullname", 200, "Full Name", primary_name=True, readonly=True),
        string("domainname", 1024, "User Name", required=RequiredLevel.SYSTEM_REQUIRED),
        string("internalemailaddress", 100, "Primary Email", fmt="Email"),
        string("title", 128, "Title"),
        string("jobtitle", 100, "Job Title"),
        string("mobilephone", 64, "Mobile Phone", fmt="Phone"),
        string("address1_telephone1", 64, "Main Phone", fmt="Phone"),
        uid("azureactivedirectoryobjectid", "Azure AD Object ID"),
        uid("applicationid", "Application ID"),
        boolean("isdisabled", "Status", true_label="Disabled", false_label="Enabled"),
        boolean("islicensed", "User Licensed"),
        picklist(
            "systemuser",
            "accessmode",
            "Access Mode",
            [
                (0, "Read-Write"),
                (1, "Administrative"),
                (2, "Read"),
                (3, "Support User"),
                (4, "Non-interactive"),
                (5, "Delegated Admin"),
            ],
        ),
        *lookup(
            "businessunitid",
            "Business Unit",
            {"businessunitid": "businessunit"},
            required=RequiredLevel.SYSTEM_REQUIRED,
        ),
        *lookup("parentsystemuserid", "Manager", {"parentsystemuserid": "systemuser"}),
        audit_columns(),
    )


def team_table() -> EntityDef:
    """The ``team`` table."""
    e = EntityDef(
        "team",
        "teams",
        "teamid",
        "name",
        9,
        display_name="Team",
        ownership="BusinessOwned",
        change_tracking=False,
    )
    return build_entity(
        e,
        uid("teamid", "Team", primary=True),
        string("name", 160, "Team Name", required=RequiredLevel.SYSTEM_REQUIRED, primary_name=True),
        picklist(
            "team",
            "teamtype",
            "Team Type",
            [(0, "Owner"), (1, "Access"), (2, "Security Group"), (3, "Office Group")],
        ),
        uid("azureactivedirectoryobjectid", "Azure AD Object Id for a group"),
        boolean("isdefault", "Is Default"),
        memo("description", 2000, "Description"),
        *lookup(
            "businessunitid",
            "Business Unit",
            {"businessunitid": "businessunit"},
            required=RequiredLevel.SYSTEM_REQUIRED,
        ),
        *lookup("administratorid", "Administrator", {"administratorid": "systemuser"}),
        audit_columns(),
    )


def businessunit_table() -> EntityDef:
    """The ``businessunit`` table."""
    e = EntityDef(
        "businessunit",
        "businessunits",
        "businessunitid",
        "name",
        10,
        display_name="Business Unit",
        ownership="BusinessOwned",
    )
    return build_entity(
        e,
        uid("businessunitid", "Business Unit", primary=True),
        string("name", 160, "Name", required=RequiredLevel.SYSTEM_REQUIRED, primary_name=True),
        string("divisionname", 100, "Division"),
        string("emailaddress", 100, "Email", fmt="Email"),
        string("websiteurl", 200, "Website", fmt="Url"),
        boolean("isdisabled", "Is Disabled"),
        *lookup("parentbusinessunitid", "Parent Business", {"parentbusinessunitid": "businessunit"}),
        audit_columns(),
    )


def transactioncurrency_table() -> EntityDef:
    """The ``transactioncurrency`` table."""
    e = EntityDef(
        "transactioncurrency",
        "transactioncurrencies",
        "transactioncurrencyid",
        "currencyname",
        9105,
        display_name="Currency",
        ownership="OrganizationOwned",
    )
    e.display_collection_name = "Currencies"
    return build_entity(
        e,
        uid("transactioncurrencyid", "Transaction Currency", primary=True),
        string(
            "currencyname", 100, "Currency Name", required=RequiredLevel.SYSTEM_REQUIRED, primary_name=True
        ),
        string("isocurrencycode", 5, "Currency Code", required=RequiredLevel.SYSTEM_REQUIRED),
        string("currencysymbol", 13, "Currency Symbol", required=RequiredLevel.SYSTEM_REQUIRED),
        decimal("exchangerate", "Exchange Rate", 10, 0.0000000001, 100_000_000_000),
        integer("currencyprecision", "Currency Precision", 0, 4),
        state("transactioncurrency", ACTIVE_INACTIVE_STATE),
        status("transactioncurrency", ACTIVE_INACTIVE_STATUS),
        audit_columns(),
    )


def organization_table() -> EntityDef:
    """The ``organization`` table."""
    e = EntityDef(
        "organization",
        "organizations",
        "organizationid",
        "name",
        1019,
        display_name="Organization",
        ownership="None",
        change_tracking=False,
    )
    return build_entity(
        e,
        uid("organizationid", "Organization", primary=True),
        string("name", 160, "Organization Name", required=RequiredLevel.SYSTEM_REQUIRED, primary_name=True),
        integer("expirechangetrackingindays", "Days to Expire Change Tracking Deleted Records", 0, 365),
        integer("languagecode", "Language", 0),
        *lookup("basecurrencyid", "Currency", {"basecurrencyid": "transactioncurrency"}),
        audit_columns(),
    )
