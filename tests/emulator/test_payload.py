from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest

from dynasync.emulator.catalog import Catalog
from dynasync.emulator.errors import EmulatorError
from dynasync.emulator.payload import parse_payload, reference_text, split_deep_insert, store_resolver
from dynasync.emulator.standard_tables import standard_catalog
from dynasync.emulator.store import OrgStore
from dynasync.emulator.values import LookupValue

G = uuid.UUID("78914942-34cb-ed11-b596-0022481d68cd")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return standard_catalog()


def resolve(text: str) -> tuple[str, uuid.UUID]:
    """A resolver for tests: '<set>(<guid>)' with the set's table from a fixed map; records what it saw."""
    seen.append(text)
    name, _, rest = text.partition("(")
    table = {"contacts": "contact", "accounts": "account", "teams": "team", "systemusers": "systemuser"}[name]
    return table, G if "=" in rest else uuid.UUID(rest.rstrip(")"))


seen: list[str] = []


def parse(
    catalog: Catalog, body: dict[str, Any], entity: str = "account", create: bool = True
) -> dict[str, object]:
    return parse_payload(catalog, entity, body, for_create=create, resolve_ref=resolve)


def error(
    catalog: Catalog, body: dict[str, Any], entity: str = "account", create: bool = True
) -> EmulatorError:
    with pytest.raises(EmulatorError) as info:
        parse(catalog, body, entity, create)
    return info.value


def test_values_convert(catalog: Catalog) -> None:
    values = parse(
        catalog,
        {
            "@odata.type": "Microsoft.Dynamics.CRM.account",
            "name": "Contoso",
            "revenue": 5000000,
            "creditlimit": 12.5,
            "creditonhold": False,
            "address1_latitude": 47.639583,
            "numberofemployees": 10,
            "accountcategorycode": 1,
            "new_regions": "100000002,100000000",
            "accountid": str(G),
            "name@OData.Community.Display.V1.FormattedValue": "ignored",
        },
    )
    assert values == {
        "name": "Contoso",
        "revenue": Decimal(5000000),
        "creditlimit": Decimal("12.5"),
        "creditonhold": False,
        "address1_latitude": 47.639583,
        "numberofemployees": 10,
        "accountcategorycode": 1,
        "new_regions": (100000000, 100000002),
        "accountid": G,
    }
    contact = parse(catalog, {"birthdate": "1990-01-31", "lastname": "x"}, "contact")
    assert contact["birthdate"] == dt.date(1990, 1, 31)
    account = parse(catalog, {"overriddencreatedon": "2020-01-02T03:04:05+02:00"})
    assert account["overriddencreatedon"] == dt.datetime(2020, 1, 2, 1, 4, 5, tzinfo=dt.UTC)


def test_service_messages(catalog: Catalog) -> None:
    e = error(catalog, {"foo": 1})
    assert (e.status, e.code) == (400, "0x80048d19")
    assert e.message == (
        "The property 'foo' does not exist on type 'Microsoft.Dynamics.CRM.account'. Make sure to only use property "
        "names that are defined by the type."
    )
    e = error(catalog, {"numberofemployees": "abc"})
    assert (e.code, e.message) == (
        "0x80048d19",
        "Cannot convert the literal 'abc' to the expected type 'Edm.Int32'.",
    )
    assert (
        error(catalog, {"name": 5}).message
        == "Cannot convert the literal '5' to the expected type 'Edm.String'."
    )
    assert "Edm.Boolean" in error(catalog, {"creditonhold": "yes"}).message
    assert "Edm.DateTimeOffset" in error(catalog, {"overriddencreatedon": "2020-01-02T03:04:05"}).message
    assert "Edm.Date" in error(catalog, {"birthdate": "1990-01-31T00:00:00Z"}, "contact").message
    e = error(catalog, {"name": "x" * 161})
    assert e.code == "0x80044331"
    assert e.message == (
        "A validation error occurred.  The length of the 'name' attribute of the 'account' entity exceeded the "
        "maximum allowed length of '160'."
    )
    e = error(catalog, {"accountcategorycode": 99})
    assert e.code == "0x8004431A"
    assert e.message == (
        "A validation error occurred. The value 99 of 'accountcategorycode' on record of type 'account' is outside "
        "the valid range. Accepted Values: 1,2"
    )
    assert error(catalog, {"numberofemployees": -1}).code == "0x8004431A"
    assert error(catalog, {"new_regions": "5"}).code == "0x8004431A"


def test_read_only_and_lookup_values(catalog: Catalog) -> None:
    assert error(catalog, {"statecode": 1}).status == 400  # not valid for create
    assert parse(catalog, {"statecode": 1, "statuscode": 2}, create=False) == {
        "statecode": 1,
        "statuscode": 2,
    }
    assert "createdon" in error(catalog, {"createdon": "2020-01-01T00:00:00Z"}).message
    assert "fullname" in error(catalog, {"fullname": "x"}, "contact").message
    assert error(catalog, {"overriddencreatedon": "2020-01-01T00:00:00Z"}, create=False).status == 400
    assert error(catalog, {"revenue_base": 1}).status == 400
    e = error(catalog, {"_primarycontactid_value": str(G)})
    assert "Use Navigation properties" in e.message
    assert error(catalog, {"primarycontactid": str(G)}).code == "0x80048d19"
    assert error(catalog, {"primarycontactidname": "x"}).message.startswith(
        "The property 'primarycontactidname'"
    )


def test_binds(catalog: Catalog) -> None:
    seen.clear()
    forms = [
        f"/contacts({G})",
        f"contacts({G})",
        f"https://org.crm.dynamics.com/api/data/v9.2/contacts({G})",
        "/contacts(emailaddress1='x@y.com',firstname='x')",
    ]
    for form in forms:
        assert parse(catalog, {"primarycontactid@odata.bind": form}) == {
            "primarycontactid": LookupValue("contact", G)
        }
    assert seen == [
        f"contacts({G})",
        f"contacts({G})",
        f"contacts({G})",
        "contacts(emailaddress1='x@y.com',firstname='x')",
    ]
    assert parse(catalog, {"primarycontactid@odata.bind": None}, create=False) == {"primarycontactid": None}
    values = parse(catalog, {"parentcustomerid_account@odata.bind": f"/accounts({G})"}, "contact")
    assert values == {"parentcustomerid": LookupValue("account", G)}
    values = parse(catalog, {"parentcustomerid_contact@odata.bind": f"/contacts({G})"}, "contact")
    assert values == {"parentcustomerid": LookupValue("contact", G)}
    assert parse(catalog, {"ownerid@odata.bind": f"/teams({G})"}) == {"ownerid": LookupValue("team", G)}
    e = error(catalog, {"PrimaryContactId@odata.bind": f"/contacts({G})"})
    assert e.code == "0x80048d19"
    assert e.message.startswith(
        "An undeclared property 'PrimaryContactId' which only has property annotations"
    )
    assert error(catalog, {"customerid_account@odata.bind": f"/contacts({G})"}, "opportunity").status == 400
    assert error(catalog, {"createdby@odata.bind": f"/systemusers({G})"}).status == 400
    assert reference_text(f"https://h:8443/api/data/v9.0/accounts({G})") == f"accounts({G})"


def test_deep_insert_split(catalog: Catalog) -> None:
    body = {
        "name": "Contoso",
        "primarycontactid": {"firstname": "John", "lastname": "Smith"},
        "contact_customer_accounts": [{"lastname": "A"}, {"lastname": "B"}],
        "opportunity_customer_accounts@odata.bind": [f"/opportunities({G})"],
    }
    rest, nested = split_deep_insert(catalog, "account", body)
    assert rest == {"name": "Contoso"}
    by_nav = {n.navigation: n for n in nested}
    assert (
        by_nav["primarycontactid"].lookup == "primarycontactid"
        and by_nav["primarycontactid"].entity == "contact"
    )
    assert [b["lastname"] for b in by_nav["contact_customer_accounts"].bodies] == ["A", "B"]
    relationship = by_nav["contact_customer_accounts"].relationship
    assert relationship is not None and relationship.referencing_attribute == "parentcustomerid"
    assert by_nav["opportunity_customer_accounts"].binds == [f"/opportunities({G})"]
    assert error(catalog, {"primarycontactid": {"firstname": "x"}}).code == "0x80048d19"


def test_store_resolver() -> None:
    store = OrgStore()
    row = store.create("account", {"name": "A", "accountnumber": "A-1"}, caller=None)
    resolver = store_resolver(store)
    assert resolver(f"accounts({row['accountid']})") == ("account", row["accountid"])
    assert resolver("accounts(accountnumber='a-1')") == ("account", row["accountid"])
    with pytest.raises(EmulatorError) as info:
        resolver(f"accounts({G})")
    assert (info.value.status, info.value.code) == (404, "0x80040217")
    assert info.value.message == f"account With Id = {G} Does Not Exist"
    with pytest.raises(EmulatorError) as info:
        resolver(f"nothings({G})")
    assert info.value.status == 404
    with pytest.raises(EmulatorError) as info:
        resolver("accounts(name='A')")
    assert info.value.code == "0x80060890"
    store.close()
