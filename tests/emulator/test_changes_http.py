"""Change tracking over HTTP: initial sync with paging, delta links, deleted entities, expiry, restrictions."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import API, ORG, Api, make_api

from dynasync.emulator.app import Emulator
from dynasync.emulator.settings import EmulatorSettings


@pytest.fixture
def tracked() -> Iterator[Api]:
    emulator = Emulator.create(seed=0, settings=EmulatorSettings(tls=False))
    yield from make_api(emulator)


def _create(api: Api, name: str) -> str:
    response = api.post("accounts", json={"name": name})
    assert response.status_code == 204, response.text
    return response.headers["OData-EntityId"].split("(")[1][:-1]


def _follow(
    api: Api, url: str, prefer: str = "odata.track-changes,odata.maxpagesize=2"
) -> tuple[list[Any], str, list[Any]]:
    rows: list[Any] = []
    pages: list[Any] = []
    while True:
        response = api.get(url, headers={"Prefer": prefer})
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body)
        rows.extend(body["value"])
        if "@odata.nextLink" in body:
            assert "@odata.deltaLink" not in body
            url = body["@odata.nextLink"]
            continue
        return rows, body["@odata.deltaLink"], pages


def test_initial_sync_pages_then_delta_link_on_last_page(tracked: Api) -> None:
    ids = {_create(tracked, f"a{i}") for i in range(5)}
    first = tracked.get(
        "accounts?$select=name", headers={"Prefer": "odata.track-changes,odata.maxpagesize=2"}
    )
    assert "odata.track-changes" in first.headers["Preference-Applied"]
    rows, delta, pages = _follow(tracked, "accounts?$select=name")
    assert len(pages) == 3
    assert {r["accountid"] for r in rows} == ids
    assert "istracking=%22True%22" in pages[0]["@odata.nextLink"]
    assert delta.startswith(f"{ORG}{API}accounts?$select=name&$deltatoken=")
    token = urllib.parse.unquote(delta.split("$deltatoken=")[1])
    version, _, stamp = token.partition("!")
    assert version.isdigit() and len(stamp) == len("08/22/2017 08:10:44")
    assert pages[0]["@odata.context"] == f"{ORG}{API}$metadata#accounts(name)"


def test_delta_returns_changes_then_deletes_and_a_new_link(tracked: Api) -> None:
    keep, change, drop = (_create(tracked, n) for n in ("keep", "change", "drop"))
    _, delta, _ = _follow(tracked, "accounts?$select=name")
    assert tracked.patch(f"accounts({change})", json={"name": "changed"}).status_code == 204
    added = _create(tracked, "added")
    assert tracked.delete(f"accounts({drop})").status_code == 204
    gone = _create(tracked, "short-lived")
    assert tracked.delete(f"accounts({gone})").status_code == 204
    response = tracked.get(delta)
    body = response.json()
    assert body["@odata.context"] == f"{ORG}{API}$metadata#accounts(name)/$delta"
    values = body["value"]
    changed = [v for v in values if "accountid" in v]
    deleted = [v for v in values if "reason" in v]
    assert [v["accountid"] for v in changed] == [change, added]
    assert changed[0]["name"] == "changed"
    assert values[: len(changed)] == changed  # upserts first, then deletes
    assert {d["id"] for d in deleted} == {drop, gone}
    assert deleted[0] == {
        "@odata.context": f"{ORG}{API}$metadata#accounts/$deletedEntity",
        "id": deleted[0]["id"],
        "reason": "deleted",
    }
    assert keep not in {v.get("accountid") for v in values}
    new_delta = body["@odata.deltaLink"]
    again = tracked.get(new_delta).json()
    assert again["value"] == []
    assert "@odata.deltaLink" in again


def test_delta_is_paged_too(tracked: Api) -> None:
    _create(tracked, "x")
    _, delta, _ = _follow(tracked, "accounts?$select=name")
    ids = [_create(tracked, f"n{i}") for i in range(3)]
    for i in ids[:2]:
        tracked.delete(f"accounts({i})")
    rows, _, pages = _follow(tracked, delta, prefer="odata.maxpagesize=2")
    assert [len(p["value"]) for p in pages] == [2, 1]
    assert [r.get("accountid") or r.get("id") for r in rows] == [ids[2], ids[0], ids[1]]
    assert all(p["@odata.context"].endswith("/$delta") for p in pages)


def test_change_count(tracked: Api) -> None:
    _create(tracked, "x")
    _, delta, _ = _follow(tracked, "accounts?$select=name")
    _create(tracked, "y")
    token = delta.split("$deltatoken=")[1]
    response = tracked.get(f"accounts/$count?$deltatoken={token}")
    assert response.status_code == 200
    assert response.text == "1"


def test_restricted_options_with_track_changes(tracked: Api) -> None:
    for option in ("$filter=name eq 'x'", "$orderby=name", "$top=1", "$expand=primarycontactid"):
        response = tracked.get(f"accounts?{option}", headers={"Prefer": "odata.track-changes"})
        assert response.status_code == 400, option
        name = option.split("=")[0]
        assert response.json()["error"]["message"] == (
            f'The "{name}" query parameter isn\'t supported when Change Tracking is enabled.'
        )


def test_table_without_change_tracking(tracked: Api) -> None:
    tracked.emulator.set_change_tracking("account", False)
    response = tracked.get("accounts", headers={"Prefer": "odata.track-changes"})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "0x80072491",
        "message": "Entity account isn't enabled for change tracking.",
    }


def test_expired_tokens(tracked: Api) -> None:
    _create(tracked, "x")
    _, delta, _ = _follow(tracked, "accounts?$select=name")
    tracked.emulator.advance_clock(days=6)
    tracked.refresh_token()
    assert tracked.get(delta).status_code == 200
    tracked.emulator.advance_clock(days=2)
    tracked.refresh_token()
    expired = tracked.get(delta)
    assert expired.status_code == 400
    assert expired.json()["error"] == {
        "code": "0x80044352",
        "message": "Version stamp associated with the client has expired. Please perform a full sync.",
    }
    _, fresh, _ = _follow(tracked, "accounts?$select=name")
    assert tracked.get(fresh).status_code == 200
    tracked.emulator.expire_change_tokens()
    assert tracked.get(fresh).json()["error"]["code"] == "0x80044352"
