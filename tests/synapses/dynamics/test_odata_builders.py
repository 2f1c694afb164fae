from __future__ import annotations

import datetime as dt
import decimal
import uuid

import pytest

from dynasync.synapses.dynamics import odata as O

G = "78914942-34cb-ed11-b596-0022481d68cd"


def test_literals() -> None:
    assert O.literal("O'Neil") == "'O''Neil'"
    assert O.literal("''") == "''''''"
    assert O.literal(None) == "null"
    assert O.literal(True) == "true"
    assert O.literal(5) == "5"
    assert O.literal(1.5) == "1.5"
    assert O.literal(decimal.Decimal("20000.0000")) == "20000.0000"
    assert O.literal(uuid.UUID(G)) == G
    assert O.literal(dt.datetime(2023, 4, 7, 21, 59, 1, tzinfo=dt.UTC)) == "2023-04-07T21:59:01Z"
    assert (
        O.literal(dt.datetime(2023, 4, 7, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))))
        == "2023-04-07T21:00:00Z"
    )
    assert O.literal(dt.date(2023, 4, 7)) == "2023-04-07"
    with pytest.raises(ValueError):
        O.literal(dt.datetime(2023, 1, 1))
    with pytest.raises(ValueError):
        O.literal(float("nan"))
    with pytest.raises(TypeError):
        O.literal(object())


def test_filter_builders() -> None:
    f = O.and_(
        O.compare("name", "eq", "O'Neil & Co"),
        O.compare("modifiedon", "ge", dt.datetime(2024, 1, 1, tzinfo=dt.UTC)),
    )
    assert f == "(name eq 'O''Neil & Co') and (modifiedon ge 2024-01-01T00:00:00Z)"
    assert O.or_(O.func("contains", "name", "a"), O.not_(O.compare("statecode", "eq", 0))) == (
        "(contains(name,'a')) or (not (statecode eq 0))"
    )
    assert O.in_("accountnumber", ["A1", "B'2"]) == (
        "Microsoft.Dynamics.CRM.In(PropertyName='accountnumber',PropertyValues=['A1','B''2'])"
    )
    assert O.compare("primarycontactid/fullname", "eq", "x") == "primarycontactid/fullname eq 'x'"
    with pytest.raises(ValueError):
        O.compare("name) or (1 eq 1", "eq", 1)
    with pytest.raises(ValueError):
        O.compare("name", "like", 1)


def test_query_string_encoding() -> None:
    q = O.query(
        select_=["name", "accountnumber", "name"],
        filter_=O.compare("name", "eq", "A&B #1 + 50%"),
        orderby=[("modifiedon", False), ("accountid", True)],
        top=10,
        count=True,
    )
    assert q == (
        "$select=name,accountnumber&$filter=name%20eq%20'A%26B%20%231%20%2B%2050%25'"
        "&$orderby=modifiedon%20asc,accountid%20desc&$top=10&$count=true"
    )
    with pytest.raises(ValueError):
        O.select(["name;drop"])
    with pytest.raises(ValueError):
        O.query(top=0)


def test_keys_and_binds() -> None:
    assert O.entity_key(G.upper()) == f"({G})"
    assert O.entity_path("accounts", uuid.UUID(G)) == f"accounts({G})"
    assert (
        O.entity_path("accounts", {"accountnumber": "ABC/1?#"}) == "accounts(accountnumber='ABC%2F1%3F%23')"
    )
    assert O.entity_path("contacts", {"firstname": "Joe", "emailaddress1": "o'k@example.com"}) == (
        "contacts(firstname='Joe',emailaddress1='o''k@example.com')"
    )
    assert (
        O.entity_key({"new_num": 5, "_primarycontactid_value": uuid.UUID(G)})
        == f"(new_num=5,_primarycontactid_value={G})"
    )
    assert O.bind("contacts", G) == f"/contacts({G})"
    with pytest.raises(ValueError):
        O.entity_key("not-a-guid")
    with pytest.raises(ValueError):
        O.entity_key({})
    with pytest.raises(ValueError):
        O.entity_key({"k": None})
    with pytest.raises(ValueError):
        O.entity_path("accounts/../x", G)


def test_prefer_composition() -> None:
    assert O.prefer() is None
    assert O.prefer(return_representation=True) == "return=representation"
    assert O.prefer(annotations="*", maxpagesize=500, track_changes=True) == (
        'odata.include-annotations="*",odata.maxpagesize=500,odata.track-changes'
    )
    assert O.prefer(
        annotations=["OData.Community.Display.V1.FormattedValue", "Microsoft.Dynamics.CRM.*"]
    ) == ('odata.include-annotations="OData.Community.Display.V1.FormattedValue,Microsoft.Dynamics.CRM.*"')
    assert O.prefer(continue_on_error=True) == "odata.continue-on-error"
    with pytest.raises(ValueError):
        O.prefer(maxpagesize=5001)
