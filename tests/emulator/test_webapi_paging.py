"""Paging: odata.maxpagesize, Preference-Applied, nextLink with the Dataverse skiptoken cookie, keyset order."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator

import pytest
from conftest import ORG, Api, make_api

from dynasync.emulator.app import Emulator
from dynasync.emulator.paging import PagingPosition, decode_skiptoken, encode_skiptoken, parse_prefer
from dynasync.emulator.settings import EmulatorSettings


@pytest.fixture
def paged() -> Iterator[Api]:
    emulator = Emulator.create(seed=0, settings=EmulatorSettings(tls=False))
    yield from make_api(emulator)


def _fill(api: Api, n: int) -> None:
    for i in range(n):
        assert api.post("accounts", json={"name": f"acct {i % 4}", "numberofemployees": i}).status_code == 204


def _all_pages(api: Api, url: str, prefer: str) -> list[dict[str, object]]:
    pages = []
    while url:
        response = api.get(url, headers={"Prefer": prefer})
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body)
        url = body.get("@odata.nextLink", "")
        if url:
            assert list(body)[-1] == "@odata.nextLink"
            assert url.startswith(f"{ORG}/api/data/v9.2/accounts?")
    return pages


def test_maxpagesize_pages_cover_every_row_once(paged: Api) -> None:
    _fill(paged, 7)
    first = paged.get("accounts?$select=name", headers={"Prefer": "odata.maxpagesize=3"})
    assert first.headers["Preference-Applied"] == "odata.maxpagesize=3"
    pages = _all_pages(paged, "accounts?$select=name", "odata.maxpagesize=3")
    assert [len(p["value"]) for p in pages] == [3, 3, 1]  # type: ignore[arg-type]
    ids = [row["accountid"] for p in pages for row in p["value"]]  # type: ignore[attr-defined]
    assert len(ids) == len(set(ids)) == 7
    assert ids == sorted(ids)


def test_next_link_keeps_options_and_has_the_service_cookie_format(paged: Api) -> None:
    _fill(paged, 4)
    body = paged.get(
        "accounts?$select=name&$filter=numberofemployees ge 0",
        headers={"Prefer": "odata.maxpagesize=2"},
    ).json()
    link = body["@odata.nextLink"]
    assert link.startswith(
        f"{ORG}/api/data/v9.2/accounts?$select=name&$filter=numberofemployees%20ge%200&$skiptoken="
    )
    token = link.split("$skiptoken=", 1)[1]
    assert token.startswith(
        "%3Ccookie%20pagenumber=%222%22%20pagingcookie=%22%253ccookie%2520page%253d%25221%2522%253e"
    )
    assert token.endswith("%22%20istracking=%22False%22%20/%3E")
    last = body["value"][-1]["accountid"].upper()
    assert f"last%253d%2522%257b{last}%257d%2522" in token


def test_orderby_paging_with_duplicates_in_order_column(paged: Api) -> None:
    _fill(paged, 9)
    pages = _all_pages(paged, "accounts?$select=name&$orderby=name desc", "odata.maxpagesize=2")
    rows = [row for p in pages for row in p["value"]]  # type: ignore[attr-defined]
    assert len({r["accountid"] for r in rows}) == 9
    names = [r["name"] for r in rows]
    assert names == sorted(names, reverse=True)


def test_multiple_prefer_headers_and_annotations_with_commas(paged: Api) -> None:
    _fill(paged, 3)
    response = paged.client.get(
        "/api/data/v9.2/accounts?$select=name",
        headers=[
            ("Authorization", f"Bearer {paged.token}"),
            (
                "Prefer",
                'odata.include-annotations="OData.Community.Display.V1.FormattedValue,Microsoft.Dynamics.CRM.lookuplogicalname"',
            ),
            ("Prefer", "odata.maxpagesize=2"),
        ],
    )
    assert response.status_code == 200
    applied = response.headers["Preference-Applied"]
    assert "odata.maxpagesize=2" in applied
    assert len(response.json()["value"]) == 2


def test_tampered_skiptoken_is_rejected(paged: Api) -> None:
    _fill(paged, 3)
    link = paged.get("accounts?$select=name", headers={"Prefer": "odata.maxpagesize=2"}).json()[
        "@odata.nextLink"
    ]
    broken = link.replace("pagenumber=%222%22", "pagenumber=%229%22")
    response = paged.get(broken, headers={"Prefer": "odata.maxpagesize=2"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "0x8004112A"
    garbage = paged.get("accounts?$skiptoken=hello")
    assert garbage.status_code == 400
    mismatch = link.replace("$select=name", "$select=name&$orderby=name")
    assert paged.get(mismatch).json()["error"]["code"] == "0x80041129"


def test_top_and_maxpagesize_configurable(paged: Api) -> None:
    _fill(paged, 5)
    ignored = paged.get("accounts?$top=1", headers={"Prefer": "odata.maxpagesize=2"}).json()
    assert len(ignored["value"]) == 2 and "@odata.nextLink" in ignored
    paged.emulator.update_settings(top_with_maxpagesize="ignore_maxpagesize")
    applied = paged.get("accounts?$top=1", headers={"Prefer": "odata.maxpagesize=2"})
    assert len(applied.json()["value"]) == 1
    assert "Preference-Applied" not in applied.headers


def test_maxpagesize_above_limit_clamps_or_errors(paged: Api) -> None:
    paged.emulator.update_settings(max_page_size=3)
    _fill(paged, 4)
    clamped = paged.get("accounts", headers={"Prefer": "odata.maxpagesize=10"})
    assert clamped.headers["Preference-Applied"] == "odata.maxpagesize=3"
    assert len(clamped.json()["value"]) == 3
    paged.emulator.update_settings(above_max_page_size="error")
    assert paged.get("accounts", headers={"Prefer": "odata.maxpagesize=10"}).status_code == 400


def test_default_page_size_applies_without_preference(paged: Api) -> None:
    paged.emulator.update_settings(default_page_size=2)
    _fill(paged, 3)
    body = paged.get("accounts").json()
    assert len(body["value"]) == 2 and "@odata.nextLink" in body


def test_cookie_round_trip_and_prefer_parsing() -> None:
    position = PagingPosition(
        page=3,
        columns=["name", "accountid"],
        last=['O"Neil & <Co>', "8151925c-cde2-e411-80db-00155d2a68cb"],
        first=[None, "7d51925c-cde2-e411-80db-00155d2a68cb"],
    )
    token = encode_skiptoken(position, pk="accountid")
    decoded = decode_skiptoken(urllib.parse.unquote(token))
    assert decoded.page == 3
    assert decoded.columns == ["name", "accountid"]
    assert decoded.last == ['O"Neil & <Co>', "{8151925C-CDE2-E411-80DB-00155D2A68CB}"]
    assert decoded.first[0] is None
    prefs = parse_prefer('return=representation, odata.include-annotations="a.b,c.*", odata.maxpagesize=7')
    assert prefs.return_representation and prefs.maxpagesize == 7
    assert prefs.wants("c.d") and prefs.wants("a.b") and not prefs.wants("x")
