"""The benchmarks measure the emulator's fast serialisation paths; they must answer exactly as the slow ones.

Plain pages come from wire rows (``OrgStore.query_wire``); ``odata.include-annotations="-*"`` asks for no
annotations but takes the typed-row path (annotation patterns are present), so the same request through both
paths must give the same body, nextLinks included. Annotated rows use per-response column plans, checked
against ``put_property``, the per-value reference.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import orjson
import pytest

from dynasync.emulator.app import Emulator
from dynasync.emulator.http_types import ODataRequest
from dynasync.emulator.paging import parse_prefer
from dynasync.emulator.serialize import (
    FORMATTED,
    column_plan,
    etag_of,
    json_bytes,
    output_columns,
    put_property,
    row_json,
)
from dynasync.emulator.values import LookupValue
from dynasync.emulator.webapi import handle
from dynasync.emulator.webapi_wire import wire_eligible
from dynasync.emulator.webctx import Ctx

BASE = "https://127.0.0.1/api/data/v9.2/"
TYPED = 'odata.include-annotations="-*"'


@pytest.fixture(scope="module")
def emulator() -> Emulator:
    em = Emulator.create(None, seed={"accounts": 120, "contacts": 40})
    contact = em.store.create(
        "contact", {"lastname": "Edge", "birthdate": dt.date(1999, 12, 31)}, caller=None
    )
    contact_id = contact["contactid"]
    assert isinstance(contact_id, uuid.UUID)
    em.store.create(
        "account",
        {"name": "Edge", "revenue": Decimal("-20000.5"), "creditonhold": True, "new_regions": (100000001,),
         "primarycontactid": LookupValue("contact", contact_id), "address1_latitude": -0.5,
         "numberofemployees": 0, "description": "quote \" and ünïcode"},
        caller=None,
    )  # fmt: skip
    return em


def _get(em: Emulator, url: str, prefer: str) -> dict[str, Any]:
    path, _, query = url.removeprefix(BASE).partition("?")
    user = em.store.app_user(em.default_app.client_id if em.default_app else "")
    assert user is not None
    request = ODataRequest(
        method="GET",
        path=path,
        query=query,
        headers={"prefer": prefer},
        body=b"",
        base_url=BASE,
        caller_id=str(user["systemuserid"]),
    )
    response = handle(em, request)
    assert response.status == 200, response.body[:300]
    body: dict[str, Any] = orjson.loads(response.body)
    return body


def _pages(em: Emulator, url: str, prefer: str) -> Iterator[dict[str, Any]]:
    next_url: str | None = url
    while next_url:
        body = _get(em, next_url, prefer)
        yield body
        next_url = body.get("@odata.nextLink")


@pytest.mark.parametrize(
    "query",
    [
        "accounts",
        "accounts?$select=name,revenue,creditonhold,new_regions,_primarycontactid_value,createdon,address1_latitude",
        "accounts?$orderby=name desc&$select=name",
        "accounts?$orderby=_primarycontactid_value,numberofemployees desc",
        "accounts?$filter=revenue gt 1000000&$top=30",
        "contacts?$select=lastname,birthdate,_parentcustomerid_value",
    ],
)
def test_fast_pages_equal_typed_pages(emulator: Emulator, query: str) -> None:
    size = "odata.maxpagesize=25"
    fast = list(_pages(emulator, BASE + query, size))
    typed = list(_pages(emulator, BASE + query, f"{size},{TYPED}"))
    assert fast == typed
    assert sum(len(page["value"]) for page in fast) > 25  # several pages were compared


def test_fast_change_tracking_pages_equal_typed_pages(emulator: Emulator) -> None:
    size = "odata.maxpagesize=50,odata.track-changes"
    fast = list(_pages(emulator, BASE + "accounts?$select=name,revenue", size))
    typed = list(_pages(emulator, BASE + "accounts?$select=name,revenue", f"{size},{TYPED}"))
    for page in (*fast, *typed):  # links carry the time of the request ("at"); compare the rest
        page.pop("@odata.deltaLink", None)
        if "@odata.nextLink" in page:
            page["@odata.nextLink"] = re.sub("at%253d%2522.*?%2522", "", page["@odata.nextLink"])
    assert fast == typed and len(fast) == 3


def test_the_two_requests_take_different_paths(emulator: Emulator) -> None:
    def ctx(prefer: str) -> Ctx:
        request = ODataRequest(
            method="GET", path="accounts", query="", headers={"prefer": prefer}, body=b"", base_url=BASE
        )
        return Ctx.build(emulator, request)

    assert wire_eligible(ctx("odata.maxpagesize=25"), [])
    assert not wire_eligible(ctx(f"odata.maxpagesize=25,{TYPED}"), [])
    assert not wire_eligible(ctx('odata.include-annotations="*"'), [])


@pytest.mark.parametrize(
    "prefer",
    [
        'odata.include-annotations="*"',
        f'odata.include-annotations="{FORMATTED}"',
        'odata.include-annotations="Microsoft.Dynamics.CRM.*"',
        'odata.include-annotations="*,-Microsoft.Dynamics.CRM.lookuplogicalname"',
        TYPED,
    ],
)
@pytest.mark.parametrize("table", ["account", "contact", "systemuser"])
def test_planned_rows_equal_put_property(emulator: Emulator, prefer: str, table: str) -> None:
    """The annotated pages (what the synapse reads) use per-response column plans; put_property is the
    reference: same keys in the same order and the same JSON."""
    prefs = parse_prefer(prefer)
    entity = emulator.catalog.entity(table)
    assert entity is not None
    columns = output_columns(entity, None)
    store = emulator.store

    def names(target: str, row_id: uuid.UUID) -> str | None:
        return store.primary_name_of(target, row_id)

    plan = column_plan(columns, prefs)
    rows = store.query(table)
    assert rows
    for row in rows:
        expected: dict[str, Any] = {"@odata.etag": etag_of(row)}
        for attribute in columns:
            put_property(expected, attribute, row.get(attribute.logical_name), prefs, names)
        got = row_json(entity, row, columns, prefs, names, plan)
        assert list(got) == list(expected)
        assert orjson.loads(json_bytes(got)) == orjson.loads(json_bytes(expected))
