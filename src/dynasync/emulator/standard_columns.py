"""Column groups and option lists shared by the standard tables (addresses, ownership, audit stamps...)."""

from __future__ import annotations

from dynasync.emulator.catalog import AttributeDef, AttributeType, RequiredLevel
from dynasync.emulator.table_builders import (
    bigint,
    datetime,
    decimal,
    double,
    integer,
    lookup,
    memo,
    picklist,
    string,
)

APP_REQ = RequiredLevel.APPLICATION_REQUIRED
"""Shorthand for ApplicationRequired ("business required"), which the API does not enforce."""
OWNER = AttributeType.OWNER
CUSTOMER = AttributeType.CUSTOMER
CONTACT_METHOD = [(1, "Any"), (2, "Email"), (3, "Phone"), (4, "Fax"), (5, "Mail")]
RATING = [(1, "Hot"), (2, "Warm"), (3, "Cold")]
INDUSTRY = [
    (1, "Accounting"),
    (2, "Agriculture and Non-petrol Natural Resource Extraction"),
    (3, "Broadcasting Printing and Publishing"),
    (4, "Brokers"),
    (5, "Building Supply Retail"),
    (6, "Business Services"),
    (7, "Consulting"),
    (8, "Consumer Services"),
    (9, "Design, Direction and Creative Management"),
    (10, "Distributors, Dispatchers and Processors"),
    (11, "Doctor's Offices and Clinics"),
    (12, "Durable Manufacturing"),
    (13, "Eating and Drinking Places"),
    (14, "Entertainment Retail"),
    (15, "Equipment Rental and Leasing"),
    (16, "Financial"),
    (17, "Food and Tobacco Processing"),
    (18, "Inbound Capital Intensive Processing"),
    (19, "Inbound Repair and Services"),
    (20, "Insurance"),
    (21, "Legal Services"),
    (22, "Non-Durable Merchandise Retail"),
    (23, "Outbound Consumer Service"),
    (24, "Petrochemical Extraction and Distribution"),
    (25, "Service Retail"),
    (26, "SIG Affiliations"),
    (27, "Social Services"),
    (28, "Special Outbound Trade Contractors"),
    (29, "Specialty Realty"),
    (30, "Transportation"),
    (31, "Utility Creation and Distribution"),
    (32, "Vehicle Retail"),
    (33, "Wholesale"),
]
ACTIVE_INACTIVE_STATE = [(0, "Active", 1), (1, "Inactive", 2)]
ACTIVE_INACTIVE_STATUS = [(1, "Active", 0), (2, "Inactive", 1)]


def audit_columns() -> list[AttributeDef]:
    """Columns every table has: created/modified stamps, row version, migration helpers."""
    return [
        datetime("createdon", "Created On", readonly=True),
        datetime("modifiedon", "Modified On", readonly=True),
        *lookup("createdby", "Created By", {"createdby": "systemuser"}, readonly=True),
        *lookup("modifiedby", "Modified By", {"modifiedby": "systemuser"}, readonly=True),
        *lookup(
            "createdonbehalfby", "Created By (Delegate)", {"createdonbehalfby": "systemuser"}, readonly=True
        ),
        *lookup(
            "modifiedonbehalfby",
            "Modified By (Delegate)",
            {"modifiedonbehalfby": "systemuser"},
            readonly=True,
        ),
        bigint("versionnumber", "Version Number", readonly=True),
        integer("importsequencenumber", "Import Sequence Number", create_only=True),
        datetime("overriddencreatedon", "Record Created On", create_only=True),
        integer("timezoneruleversionnumber", "Time Zone Rule Version Number", -1),
        integer("utcconversiontimezonecode", "UTC Conversion Time Zone Code", -1),
    ]


def owner_columns() -> list[AttributeDef]:
    """Ownership columns of user-owned tables; ``owning*`` are derived from ``ownerid`` by the store."""
    return [
        *lookup(
            "ownerid", "Owner", {"ownerid": "systemuser"}, kind=OWNER, required=RequiredLevel.SYSTEM_REQUIRED
        ),
        *lookup("owninguser", "Owning User", {"owninguser": "systemuser"}, readonly=True),
        *lookup("owningteam", "Owning Team", {"owningteam": "team"}, readonly=True),
        *lookup(
            "owningbusinessunit",
            "Owning Business Unit",
            {"owningbusinessunit": "businessunit"},
            readonly=True,
        ),
    ]


def currency_columns() -> list[AttributeDef]:
    """Currency of a table with money columns; ``exchangerate`` is copied from the currency by the store."""
    return [
        *lookup("transactioncurrencyid", "Currency", {"transactioncurrencyid": "transactioncurrency"}),
        decimal("exchangerate", "Exchange Rate", 10, 0.0000000001, 100_000_000_000, readonly=True),
    ]


def address(entity: str, n: int) -> list[AttributeDef]:
    """The ``address<n>_*`` block; the composite is computed by the store."""
    p = f"address{n}_"
    return [
        picklist(
            entity,
            f"{p}addresstypecode",
            f"Address {n}: Address Type",
            [(1, "Bill To"), (2, "Ship To"), (3, "Primary"), (4, "Other")],
        ),
        string(f"{p}name", 200, f"Address {n}: Name"),
        string(f"{p}line1", 250, f"Address {n}: Street 1"),
        string(f"{p}line2", 250, f"Address {n}: Street 2"),
        string(f"{p}line3", 250, f"Address {n}: Street 3"),
        string(f"{p}city", 80, f"Address {n}: City"),
        string(f"{p}stateorprovince", 50, f"Address {n}: State/Province"),
        string(f"{p}postalcode", 20, f"Address {n}: ZIP/Postal Code"),
        string(f"{p}county", 50, f"Address {n}: County"),
        string(f"{p}country", 80, f"Address {n}: Country/Region"),
        string(f"{p}telephone1", 50, f"Address {n}: Phone", fmt="Phone"),
        double(f"{p}latitude", f"Address {n}: Latitude", 5, -90, 90),
        double(f"{p}longitude", f"Address {n}: Longitude", 5, -180, 180),
        memo(f"{p}composite", 1000, f"Address {n}", readonly=True),
    ]


def person_names(required_last: bool = True) -> list[AttributeDef]:
    """First, middle, last and the computed, read-only ``fullname`` (primary name)."""
    return [
        string("firstname", 50, "First Name"),
        string("middlename", 50, "Middle Name"),
        string("lastname", 50, "Last Name", required=APP_REQ if required_last else RequiredLevel.NONE),
        string("fullname", 160, "Full Name", primary_name=True, readonly=True),
    ]
