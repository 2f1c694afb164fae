from __future__ import annotations

import datetime as dt
import uuid

from dynasync.clock import FrozenClock
from dynasync.emulator.odata import parse_filter
from dynasync.emulator.seed import register_app_user, seed, seed_org
from dynasync.emulator.store import OrgStore
from dynasync.emulator.values import LookupValue

NOW = dt.datetime(2024, 5, 15, 12, 0, tzinfo=dt.UTC)


def fresh() -> OrgStore:
    return OrgStore(clock=FrozenClock(NOW))


def test_org_rows_and_idempotence() -> None:
    store = fresh()
    ids = seed_org(store, org_name="contoso")
    assert seed_org(store, org_name="contoso") == ids
    org = store.require("organization", ids.organization_id)
    assert org["expirechangetrackingindays"] == 7 and store.change_tracking_expiry_days == 7
    assert org["basecurrencyid"] == LookupValue("transactioncurrency", ids.currency_id)
    assert store.require("transactioncurrency", ids.currency_id)["isocurrencycode"] == "USD"
    admin = store.require("systemuser", ids.admin_user_id)
    assert admin["fullname"] == "System Administrator"
    assert admin["businessunitid"] == LookupValue("businessunit", ids.business_unit_id)
    assert (store.organization_id, store.business_unit_id, store.admin_user_id) == (
        ids.organization_id,
        ids.business_unit_id,
        ids.admin_user_id,
    )
    assert store.count("systemuser") == 1


def test_register_app_user() -> None:
    store = fresh()
    app_id = uuid.uuid4()
    assert store.app_user(app_id) is None
    user_id = register_app_user(store, app_id, name="Sync App", object_id=uuid.UUID(int=7))
    assert register_app_user(store, str(app_id)) == user_id
    row = store.app_user(app_id)
    assert row is not None and row["systemuserid"] == user_id
    assert row["applicationid"] == app_id and row["accessmode"] == 4 and row["fullname"] == "# Sync App"
    assert store.user_by_object_id(uuid.UUID(int=7))["systemuserid"] == user_id  # type: ignore[index]


def test_seed_is_deterministic_with_valid_lookups() -> None:
    a, b = fresh(), fresh()
    ra = seed(a, accounts=40, contacts=60, leads=10, opportunities=15, users=3, rng_seed=7)
    rb = seed(b, accounts=40, contacts=60, leads=10, opportunities=15, users=3, rng_seed=7)
    assert ra.account_ids == rb.account_ids and ra.contact_ids == rb.contact_ids
    assert a.query("account", select=["name", "revenue"]) == b.query("account", select=["name", "revenue"])
    assert {t: a.count(t) for t in ("account", "contact", "lead", "opportunity")} == {
        "account": 40, "contact": 60, "lead": 10, "opportunity": 15}  # fmt: skip
    assert a.count("systemuser") == 4
    accounts = set(ra.account_ids)
    contacts = set(ra.contact_ids)
    owners = {ra.org.admin_user_id, *ra.user_ids}
    for row in a.query("contact"):
        parent = row["parentcustomerid"]
        assert parent is None or (isinstance(parent, LookupValue) and parent.id in accounts)
        assert isinstance(row["ownerid"], LookupValue) and row["ownerid"].id in owners
        assert row["fullname"] and row["emailaddress1"]
    for row in a.query("account"):
        assert isinstance(row["primarycontactid"], LookupValue) and row["primarycontactid"].id in contacts
        assert row["revenue_base"] == row["revenue"]
        assert row["createdon"] <= row["modifiedon"] <= NOW  # type: ignore[operator]
        assert row["address1_composite"]
    for row in a.query("opportunity"):
        customer = row["customerid"]
        assert isinstance(customer, LookupValue) and customer.id in accounts | contacts
    assert len({r["accountnumber"] for r in a.query("account")}) == 40
    assert a.count("account", parse_filter("statecode eq 1")) < 40
    versions = [r["versionnumber"] for r in a.query("account", orderby=[("versionnumber", False)])]
    assert versions == sorted(set(versions))  # type: ignore[type-var]


def test_wire_paging_visits_every_seeded_account_once() -> None:
    # Speed is measured by bench/emulator_paging.py, never asserted here; this checks keyset paging is exact.
    store = OrgStore()
    seed(store, accounts=12_000, contacts=100, users=3)
    columns = list(store.plan("account").attributes)
    after, seen = None, []
    while True:
        rows, after_key = store.query_wire("account", columns=columns, after=after, limit=5000)
        if not rows:
            break
        seen.extend(row["accountid"] for row in rows)
        after = after_key
    assert len(seen) == 12_000
    assert len(set(seen)) == 12_000
