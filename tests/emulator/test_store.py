from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from dynasync.clock import FrozenClock
from dynasync.emulator.catalog import EntityDef
from dynasync.emulator.errors import EmulatorError
from dynasync.emulator.odata import parse_filter
from dynasync.emulator.seed import OrgIds, seed_org
from dynasync.emulator.store import OrgStore
from dynasync.emulator.table_builders import lookup, string, uid
from dynasync.emulator.values import LookupValue

NOW = dt.datetime(2024, 5, 15, 12, 30, 45, tzinfo=dt.UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def store(clock: FrozenClock) -> Iterator[OrgStore]:
    s = OrgStore(clock=clock)
    yield s
    s.close()


@pytest.fixture
def org(store: OrgStore) -> OrgIds:
    return seed_org(store)


def err(fn: Any, *args: Any, **kw: Any) -> EmulatorError:
    with pytest.raises(EmulatorError) as info:
        fn(*args, **kw)
    return info.value


def names(rows: list[dict[str, object]], key: str = "name") -> list[object]:
    return [r[key] for r in rows]


def test_create_maintains_server_columns(store: OrgStore, org: OrgIds) -> None:
    before = store.version
    contact = store.create("contact", {"firstname": "Joe", "lastname": "Smith"}, caller=org.admin_user_id)
    assert contact["fullname"] == "Joe Smith"
    assert contact["statecode"] == 0 and contact["statuscode"] == 1
    assert (
        contact["createdon"] == NOW.replace(microsecond=0) and contact["modifiedon"] == contact["createdon"]
    )
    admin = LookupValue("systemuser", org.admin_user_id)
    assert contact["createdby"] == admin and contact["modifiedby"] == admin
    assert contact["ownerid"] == admin and contact["owninguser"] == admin and contact["owningteam"] is None
    assert contact["owningbusinessunit"] == LookupValue("businessunit", org.business_unit_id)
    assert contact["versionnumber"] == before + 1 == store.version
    assert contact["donotemail"] is False
    account = store.create(
        "account",
        {"name": "Contoso", "revenue": Decimal("1234.567"), "address1_line1": "1 Way", "address1_city": "Redmond",
         "address1_stateorprovince": "WA", "address1_postalcode": "98052", "address1_country": "US"},
        caller=org.admin_user_id,
    )  # fmt: skip
    assert account["revenue"] == Decimal("1234.57")  # money is rounded to the column precision
    assert account["revenue_base"] == Decimal("1234.5700")
    assert account["exchangerate"] == Decimal(1)
    assert account["transactioncurrencyid"] == LookupValue("transactioncurrency", org.currency_id)
    assert account["address1_composite"] == "1 Way\r\nRedmond, WA 98052\r\nUS"
    given = uuid.uuid4()
    assert store.create("account", {"name": "B"}, caller=None, id=given)["accountid"] == given
    migrated = store.create(
        "account", {"name": "M", "overriddencreatedon": dt.datetime(2020, 1, 1, tzinfo=dt.UTC)}, caller=None
    )
    assert migrated["createdon"] == dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    assert migrated["overriddencreatedon"] == NOW.replace(microsecond=0)
    team = store.create(
        "team",
        {"name": "T", "businessunitid": LookupValue("businessunit", org.business_unit_id)},
        caller=None,
    )
    owned = store.create(
        "account", {"name": "Team owned", "ownerid": LookupValue("team", team["teamid"])}, caller=None
    )
    assert owned["owningteam"] == LookupValue("team", team["teamid"]) and owned["owninguser"] is None


def test_update_versions_state_and_concurrency(store: OrgStore, org: OrgIds, clock: FrozenClock) -> None:
    row = store.create("account", {"name": "A"}, caller=org.admin_user_id)
    clock.advance(dt.timedelta(minutes=5))
    updated = store.update("account", row["accountid"], {"name": "B", "revenue": Decimal(10)}, caller=None)
    assert updated["name"] == "B" and updated["versionnumber"] > row["versionnumber"]  # type: ignore[operator]
    assert updated["modifiedon"] == NOW.replace(microsecond=0) + dt.timedelta(minutes=5)
    assert updated["createdon"] == row["createdon"] and updated["revenue_base"] == Decimal("10.0000")
    inactive = store.update("account", row["accountid"], {"statecode": 1}, caller=None)
    assert (inactive["statecode"], inactive["statuscode"]) == (1, 2)
    e = err(store.update, "account", row["accountid"], {"statecode": 0, "statuscode": 2}, caller=None)
    assert (e.status, e.code) == (400, "0x80048408")
    assert (
        e.message
        == f"2 is not a valid status code for state code AccountState.Active on account with Id {row['accountid']}."
    )
    e = err(store.update, "account", row["accountid"], {"name": "C"}, caller=None, if_match=1)
    assert (e.status, e.code) == (412, "0x80060882")
    assert e.message == "The version of the existing record doesn't match the RowVersion property provided."
    current = store.require("account", row["accountid"])
    assert (
        store.update(
            "account", row["accountid"], {"name": "C"}, caller=None, if_match=current["versionnumber"]
        )["name"]
        == "C"
    )  # type: ignore[arg-type]
    missing = uuid.uuid4()
    e = err(store.update, "account", missing, {"name": "x"}, caller=None)
    assert (e.status, e.code, e.message) == (404, "0x80040217", f"account With Id = {missing} Does Not Exist")
    assert err(store.require, "account", missing).status == 404
    assert store.get("account", missing) is None
    contact = store.create("contact", {"firstname": "A", "lastname": "B"}, caller=None)
    assert store.update("contact", contact["contactid"], {"firstname": "Z"}, caller=None)["fullname"] == "Z B"
    lead = store.create("lead", {"subject": "s", "statuscode": 2}, caller=None)
    assert (lead["statecode"], lead["statuscode"]) == (0, 2)
    assert err(store.create, "lead", {"subject": "s", "statuscode": 3}, caller=None).code == "0x80048408"


def test_keys_and_duplicates(store: OrgStore) -> None:
    row = store.create("account", {"name": "A", "accountnumber": "ABC"}, caller=None)
    e = err(store.create, "account", {"name": "B", "accountnumber": "abc"}, caller=None)
    assert (e.status, e.code) == (412, "0x80060892")
    other = store.create("account", {"name": "C", "accountnumber": "X"}, caller=None)
    assert (
        err(store.update, "account", other["accountid"], {"accountnumber": "ABC"}, caller=None).code
        == "0x80060892"
    )
    store.create("account", {"name": "no key 1"}, caller=None)
    store.create("account", {"name": "no key 2"}, caller=None)  # nulls never collide
    e = err(store.create, "account", {"name": "dup"}, caller=None, id=row["accountid"])
    assert (e.status, e.code, e.message) == (412, "0x80040237", "Cannot insert duplicate key.")
    assert store.find("account", {"accountnumber": "abc"})["accountid"] == row["accountid"]  # type: ignore[index]
    assert store.find("account", {"accountid": row["accountid"]})["name"] == "A"  # type: ignore[index]
    assert store.find("account", {"accountnumber": "none"}) is None
    c = store.create("contact", {"firstname": "Joe", "emailaddress1": "abc@example.com"}, caller=None)
    assert (
        store.find("contact", {"firstname": "joe", "emailaddress1": "ABC@example.com"})["contactid"]
        == c["contactid"]
    )  # type: ignore[index]
    assert err(store.find, "account", {"name": "A"}).code == "0x80060890"
    assert err(store.get, "nothing", uuid.uuid4()).status == 404


def test_delete_cascades_and_tombstones(store: OrgStore) -> None:
    account = store.create("account", {"name": "Parent"}, caller=None)
    ref = LookupValue("account", account["accountid"])
    child = store.create("contact", {"lastname": "Child", "parentcustomerid": ref}, caller=None)
    grandchild = store.create(
        "contact",
        {"lastname": "Grandchild", "parentcustomerid": LookupValue("contact", child["contactid"])},
        caller=None,
    )
    opp = store.create(
        "opportunity", {"name": "Deal", "customerid": ref, "parentaccountid": ref}, caller=None
    )
    sub = store.create("account", {"name": "Sub", "parentaccountid": ref}, caller=None)
    mark = store.version
    assert err(store.delete, "account", account["accountid"], caller=None, if_match=999).code == "0x80060882"
    store.delete("account", account["accountid"], caller=None)
    assert store.get("account", account["accountid"]) is None
    assert store.get("contact", child["contactid"]) is None  # parentcustomerid cascades
    assert store.get("contact", grandchild["contactid"]) is None
    opp_after = store.require("opportunity", opp["opportunityid"])
    assert opp_after["customerid"] is None and opp_after["parentaccountid"] is None  # RemoveLink
    assert opp_after["versionnumber"] > mark  # type: ignore[operator]
    assert store.require("account", sub["accountid"])["parentaccountid"] is None
    deleted = store.deleted_ids("account", since=mark, upto=store.version)
    assert [d[0] for d in deleted] == [account["accountid"]]
    assert {d[0] for d in store.deleted_ids("contact", since=0, upto=store.version)} == {
        child["contactid"],
        grandchild["contactid"],
    }
    assert err(store.delete, "account", account["accountid"], caller=None).code == "0x80040217"
    # A re-created id is a change again, not a delete.
    store.create("account", {"name": "Back"}, caller=None, id=account["accountid"])
    assert store.deleted_ids("account", since=0, upto=store.version) == []


def test_change_tracking_window(store: OrgStore) -> None:
    rows = [store.create("account", {"name": f"A{i}"}, caller=None) for i in range(5)]
    upto = store.version
    page1 = store.changed_rows("account", since=0, upto=upto, limit=2)
    assert names(page1) == ["A0", "A1"]
    store.update("account", rows[3]["accountid"], {"name": "A3 changed"}, caller=None)
    rest = store.changed_rows(
        "account", since=0, upto=upto, after_version=int(str(page1[-1]["versionnumber"]))
    )
    assert names(rest) == ["A2", "A4"]  # the row changed after the snapshot waits for the next delta
    delta = store.changed_rows("account", since=upto, upto=store.version)
    assert names(delta) == ["A3 changed"]
    wire, last = store.changed_rows_wire("account", columns=["name"], since=upto, upto=store.version)
    assert wire == [{"@odata.etag": f'W/"{store.version}"', "name": "A3 changed"}] and last == store.version
    assert store.changed_rows("account", since=0, upto=upto, select=["name"])[0].keys() == {
        "accountid",
        "name",
        "versionnumber",
    }


def test_filters(store: OrgStore, org: OrgIds, clock: FrozenClock) -> None:
    joe = store.create(
        "contact", {"firstname": "Joe", "lastname": "Smith", "emailaddress1": "joe@x.com"}, caller=None
    )
    ann = store.create("contact", {"firstname": "Ann", "lastname": "Ann"}, caller=None)
    a = store.create(
        "account",
        {"name": "Contoso Ltd", "revenue": Decimal(5000), "numberofemployees": 50, "creditonhold": True,
         "primarycontactid": LookupValue("contact", joe["contactid"]), "new_regions": (100000000, 100000002),
         "accountnumber": "A_1"},
        caller=org.admin_user_id,
    )  # fmt: skip
    clock.advance(dt.timedelta(days=-10))
    b = store.create(
        "account",
        {"name": "Fabrikam", "revenue": Decimal(100), "numberofemployees": 5, "accountnumber": "A%2"},
        caller=None,
    )
    clock.advance(dt.timedelta(days=10))
    store.create("account", {"name": "Litware"}, caller=None)
    store.update(
        "contact", joe["contactid"], {"parentcustomerid": LookupValue("account", a["accountid"])}, caller=None
    )

    def q(text: str, aliases: dict[str, str] | None = None, **kw: Any) -> list[object]:
        return sorted(str(n) for n in names(store.query("account", filter=parse_filter(text, aliases), **kw)))

    assert q("name eq 'CONTOSO LTD'") == ["Contoso Ltd"]
    assert q("name ne 'Contoso Ltd'") == ["Fabrikam", "Litware"]
    assert q("revenue gt 1000") == ["Contoso Ltd"]
    assert q("revenue ne 100") == ["Contoso Ltd"]  # null revenue is not "not equal" (SQL semantics)
    assert q("revenue eq null") == ["Litware"]
    assert q("revenue ge 100.5 or numberofemployees lt 6") == ["Contoso Ltd", "Fabrikam"]
    assert q("not (revenue gt 1000)") == ["Fabrikam"]
    assert q("creditonhold eq true") == ["Contoso Ltd"]
    assert q("contains(name,'TOSO')") == ["Contoso Ltd"]
    assert q("startswith(name,'fab') and endswith(name,'kam')") == ["Fabrikam"]
    assert q("contains(name,'o%o')") == ["Contoso Ltd"]  # % is a wildcard, as in the service
    assert q("contains(accountnumber,'A_')") == ["Contoso Ltd", "Fabrikam"]
    assert q("startswith(name,'[cf]')") == ["Contoso Ltd", "Fabrikam"]
    assert q("startswith(name,'[^c]')") == ["Fabrikam", "Litware"]
    assert q("primarycontactid/fullname eq 'joe smith'") == ["Contoso Ltd"]
    assert q(f"primarycontactid/contactid eq {joe['contactid']}") == ["Contoso Ltd"]
    assert q(f"_primarycontactid_value eq {joe['contactid']}") == ["Contoso Ltd"]
    assert q("primarycontactid/parentcustomerid_account/name eq 'Contoso Ltd'") == ["Contoso Ltd"]
    assert q("contact_customer_accounts/any(c: c/firstname eq 'JOE')") == ["Contoso Ltd"]
    assert q("contact_customer_accounts/any()") == ["Contoso Ltd"]
    assert q("contact_customer_accounts/all(c: c/firstname eq 'Joe')") == [
        "Contoso Ltd",
        "Fabrikam",
        "Litware",
    ]
    assert q("contact_customer_accounts/all(c: c/firstname eq 'Ann')") == ["Fabrikam", "Litware"]
    assert q('Microsoft.Dynamics.CRM.In(PropertyName=\'name\',PropertyValues=["fabrikam","litware"])') == [
        "Fabrikam",
        "Litware",
    ]
    assert q("Microsoft.Dynamics.CRM.NotIn(PropertyName='name',PropertyValues=[\"fabrikam\"])") == [
        "Contoso Ltd",
        "Litware",
    ]
    assert q(
        'Microsoft.Dynamics.CRM.Between(PropertyName=\'numberofemployees\',PropertyValues=["5","20"])'
    ) == ["Fabrikam"]
    assert q('Microsoft.Dynamics.CRM.NotBetween(PropertyName=\'revenue\',PropertyValues=["50","200"])') == [
        "Contoso Ltd"
    ]
    assert q("Microsoft.Dynamics.CRM.Today(PropertyName='createdon')") == ["Contoso Ltd", "Litware"]
    assert q("Microsoft.Dynamics.CRM.LastXDays(PropertyName='createdon',PropertyValue=3)") == [
        "Contoso Ltd",
        "Litware",
    ]
    assert q("Microsoft.Dynamics.CRM.LastXDays(PropertyName='createdon',PropertyValue=30)") == [
        "Contoso Ltd",
        "Fabrikam",
        "Litware",
    ]
    assert q("Microsoft.Dynamics.CRM.OlderThanXDays(PropertyName='createdon',PropertyValue=5)") == [
        "Fabrikam"
    ]
    assert q("Microsoft.Dynamics.CRM.On(PropertyName='createdon',PropertyValue='2024-05-05')") == ["Fabrikam"]
    assert q("Microsoft.Dynamics.CRM.OnOrAfter(PropertyName='createdon',PropertyValue='2024-05-06')") == [
        "Contoso Ltd",
        "Litware",
    ]
    assert q("Microsoft.Dynamics.CRM.ThisMonth(PropertyName='createdon')") == [
        "Contoso Ltd",
        "Fabrikam",
        "Litware",
    ]
    assert q(
        "Microsoft.Dynamics.CRM.ContainValues(PropertyName='new_regions',PropertyValues=[\"100000002\"])"
    ) == ["Contoso Ltd"]
    assert q(
        "Microsoft.Dynamics.CRM.DoesNotContainValues(PropertyName='new_regions',PropertyValues=[\"100000002\"])"
    ) == ["Fabrikam", "Litware"]
    everyone = ["Contoso Ltd", "Fabrikam", "Litware"]
    assert (
        q("Microsoft.Dynamics.CRM.EqualUserId(PropertyName='ownerid')", caller=org.admin_user_id) == everyone
    )
    assert q("Microsoft.Dynamics.CRM.EqualUserId(PropertyName='ownerid')", caller=uuid.uuid4()) == []
    assert q("Microsoft.Dynamics.CRM.NotEqualUserId(PropertyName='ownerid')", caller=uuid.uuid4()) == everyone
    assert q("Microsoft.Dynamics.CRM.EqualBusinessId(PropertyName='owningbusinessunit')", caller=org.admin_user_id) == [
        "Contoso Ltd", "Fabrikam", "Litware"]  # fmt: skip
    assert q("name eq @p1", {"@p1": "'Fabrikam'"}) == ["Fabrikam"]
    assert q(f"createdon lt {(NOW - dt.timedelta(days=1)).isoformat()}") == ["Fabrikam"]
    people = store.query("contact", filter=parse_filter("firstname eq lastname"))
    assert [p["contactid"] for p in people] == [ann["contactid"]]
    assert store.count("account", parse_filter("revenue gt 0")) == 2
    assert store.count("account") == 3
    assert b["accountid"]


def test_filter_errors(store: OrgStore) -> None:
    def e(text: str) -> EmulatorError:
        return err(store.query, "account", filter=parse_filter(text))

    bad = e("foo eq 1")
    assert (bad.status, bad.code) == (400, "0x80060888")
    assert bad.message == "Could not find a property named 'foo' on type 'Microsoft.Dynamics.CRM.account'."
    mismatch = e("numberofemployees eq 'x'")
    assert mismatch.message == (
        "A binary operator with incompatible types was detected. Found operand types 'Edm.Int32' and 'Edm.String' "
        "for operator kind 'Equal'."
    )
    assert e("name eq 5").status == 400
    assert e("_primarycontactid_value eq 'x'").status == 400
    assert e("primarycontactid eq null").status == 400  # a navigation property is not a value
    assert e("contact_customer_accounts/fullname eq 'x'").status == 400
    assert e("primarycontactid/any(c: c/fullname eq 'x')").status == 400
    assert e("contains(revenue,'1')").status == 400
    assert e("Microsoft.Dynamics.CRM.ThisFiscalYear(PropertyName='createdon')").status == 501
    assert e("Microsoft.Dynamics.CRM.Under(PropertyName='accountid',PropertyValue='x')").status == 501
    assert e("Microsoft.Dynamics.CRM.Today(PropertyName='name')").status == 400
    assert e("new_regions eq '1'").status == 501
    assert err(store.query, "account", orderby=[("primarycontactid/fullname", False)]).status == 501


def test_keyset_paging_is_complete_and_stable(store: OrgStore) -> None:
    for i in range(23):
        store.create(
            "account", {"name": f"N{i % 4}", "numberofemployees": None if i % 5 == 0 else i % 7}, caller=None
        )
    for order in (
        [],
        [("numberofemployees", True), ("name", False)],
        [("name", False)],
        [("numberofemployees", False)],
    ):
        seen: list[object] = []
        after = None
        while True:
            page = store.query("account", orderby=order, after=after, limit=4)
            if not page:
                break
            seen.extend(r["accountid"] for r in page)
            after = store.page_key("account", page[-1], order)
        full = store.query("account", orderby=order)
        assert seen == [r["accountid"] for r in full], order
        assert len(set(seen)) == 23
    desc = store.query("account", orderby=[("numberofemployees", True)])
    assert desc[-1]["numberofemployees"] is None  # nulls last when descending, first when ascending
    assert store.query("account", orderby=[("numberofemployees", False)])[0]["numberofemployees"] is None


def test_lookup_order_uses_primary_name(store: OrgStore) -> None:
    zed = store.create("contact", {"firstname": "Zed", "lastname": "Z"}, caller=None)
    amy = store.create("contact", {"firstname": "Amy", "lastname": "A"}, caller=None)
    for name, contact in (("one", zed), ("two", amy), ("three", None)):
        ref = LookupValue("contact", contact["contactid"]) if contact else None  # type: ignore[arg-type]
        store.create("account", {"name": name, "primarycontactid": ref}, caller=None)
    order = [("_primarycontactid_value", False)]
    assert names(store.query("account", orderby=order)) == ["three", "two", "one"]
    first = store.query("account", orderby=order, limit=2)
    assert store.page_key("account", first[-1], order)[0] == "Amy A"
    assert names(
        store.query("account", orderby=order, after=store.page_key("account", first[-1], order))
    ) == ["one"]
    rows, key = store.query_wire("account", columns=["name"], orderby=order, limit=2)
    assert names(rows) == ["three", "two"] and key is not None and key[0] == "Amy A"


def test_select_and_wire_shape(store: OrgStore, org: OrgIds) -> None:
    contact = store.create("contact", {"lastname": "L", "birthdate": dt.date(1990, 1, 31)}, caller=None)
    row = store.create(
        "account",
        {"name": "W", "revenue": Decimal("-20000.5"), "creditonhold": True, "new_regions": (100000001, 100000000),
         "primarycontactid": LookupValue("contact", contact["contactid"]), "address1_latitude": 47.5},
        caller=org.admin_user_id,
    )  # fmt: skip
    selected = store.get("account", row["accountid"], select=["name", "revenue", "_primarycontactid_value"])
    assert selected is not None
    assert set(selected) == {
        "accountid",
        "name",
        "revenue",
        "primarycontactid",
        "transactioncurrencyid",
        "versionnumber",
    }
    assert err(store.get, "account", row["accountid"], select=["nope"]).code == "0x80060888"
    columns = [
        "name",
        "revenue",
        "creditonhold",
        "new_regions",
        "_primarycontactid_value",
        "createdon",
        "address1_latitude",
        "accountid",
    ]
    rows, key = store.query_wire("account", columns=columns)
    assert list(rows[0]) == ["@odata.etag", *[c for c in columns]]
    body = orjson.loads(orjson.dumps(rows[0]))
    assert body == {
        "@odata.etag": f'W/"{row["versionnumber"]}"',
        "name": "W",
        "revenue": -20000.5,
        "creditonhold": True,
        "new_regions": "100000000,100000001",
        "_primarycontactid_value": str(contact["contactid"]),
        "createdon": "2024-05-15T12:30:45Z",
        "address1_latitude": 47.5,
        "accountid": str(row["accountid"]),
    }
    assert b'"revenue":-20000.5000' in orjson.dumps(rows[0])
    assert key == [str(row["accountid"])]
    wire_contact, _ = store.query_wire("contact", columns=["birthdate"])
    assert wire_contact[0]["birthdate"] == "1990-01-31"
    assert store.query_wire("account", columns=["name"], filter=parse_filter("name eq 'none'")) == ([], None)


def test_transactions_and_savepoints(store: OrgStore) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.create("account", {"name": "rolled back"}, caller=None)
        raise RuntimeError("boom")
    assert store.count("account") == 0
    with store.transaction():
        store.create("account", {"name": "kept"}, caller=None)
        with pytest.raises(EmulatorError), store.transaction():
            store.create("account", {"name": "inner"}, caller=None)
            store.create("account", {"name": "bad", "statuscode": 99}, caller=None)
        store.create("account", {"name": "after"}, caller=None)
    assert sorted(str(n) for n in names(store.query("account"))) == ["after", "kept"]


def test_threads_share_one_store(store: OrgStore) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                store.create("account", {"name": f"t{n}-{i}"}, caller=None)
                store.query("account", limit=5)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    versions = [r["versionnumber"] for r in store.query("account")]
    assert len(set(versions)) == 80


def test_custom_schema_survives_restart(tmp_path: Path, clock: FrozenClock) -> None:
    path = str(tmp_path / "org.db")
    store = OrgStore(path=path, clock=clock)
    widget = EntityDef("new_widget", "new_widgets", "new_widgetid", "new_name", 10001, is_custom=True)
    widget.add(uid("new_widgetid", "Widget", primary=True))
    widget.add(string("new_name", 100, "Name", primary_name=True, custom=True))
    for attribute in lookup("new_accountid", "Account", {"new_accountid": "account"}, custom=True):
        widget.add(attribute)
    store.add_entity(widget)
    store.add_attribute("account", string("new_code", 10, "Code", custom=True))
    store.set_change_tracking("team", True)
    account = store.create("account", {"name": "A", "new_code": "C1"}, caller=None)
    store.create(
        "new_widget",
        {"new_name": "W", "new_accountid": LookupValue("account", account["accountid"])},
        caller=None,
    )
    version = store.version
    store.close()

    reopened = OrgStore(path=path, clock=clock)
    assert reopened.catalog.entities["new_widget"].entity_set_name == "new_widgets"
    assert "new_code" in reopened.catalog.entities["account"].attributes
    assert reopened.catalog.entities["team"].change_tracking
    assert any(r.referencing_entity == "new_widget" for r in reopened.catalog.relationships)
    assert reopened.require("account", account["accountid"])["new_code"] == "C1"
    assert reopened.version == version
    relationship = next(r for r in reopened.catalog.relationships if r.referencing_entity == "new_widget")
    assert (
        relationship.referenced_entity == "account" and relationship.referencing_navigation == "new_accountid"
    )
    found = reopened.query(
        "account", filter=parse_filter(f"{relationship.referenced_navigation}/any(w: w/new_name eq 'W')")
    )
    assert names(found) == ["A"]
    assert reopened.create("account", {"name": "B"}, caller=None)["versionnumber"] == version + 1
    reopened.close()
