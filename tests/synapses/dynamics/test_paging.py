"""Paging with prefetch: the next page is asked for before a page is handed out; errors and early exits."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from dynasync.synapses.dynamics import errors as E
from dynasync.synapses.dynamics.auth import StaticTokenProvider
from dynasync.synapses.dynamics.client import DataverseClient
from dynasync.synapses.dynamics.config import DynamicsConfig

ORG = "https://contoso.crm.dynamics.com"
API = f"{ORG}/api/data/v9.2/"
CONFIG = DynamicsConfig.parse(
    {
        "name": "t",
        "endpoint_url": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "org_url": ORG,
        "client_id": "11111111-2222-3333-4444-555555555555",
        "client_secret": "s~ecret",
        "public_base_url": "https://sync.example.com",
    }
)


async def public(host: str) -> list[str]:
    return ["20.42.0.1"]


def client_for(handler: Any) -> DataverseClient:
    return DataverseClient(
        CONFIG, StaticTokenProvider("tok"), transport=httpx.MockTransport(handler), resolver=public
    )


def page(n: int, last: int) -> httpx.Response:
    body: dict[str, Any] = {"value": [{"n": n}]}
    if n < last:
        body["@odata.nextLink"] = f"{API}accounts?$skiptoken={n + 1}"
    return httpx.Response(200, json=body)


def number(request: httpx.Request) -> int:
    return int(request.url.params.get("$skiptoken", "1"))


def test_next_page_is_requested_before_the_current_one_is_handed_out() -> None:
    asked: list[int] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        asked.append(number(request))
        return page(number(request), 3)

    async def go() -> list[tuple[int, list[int]]]:
        async with client_for(handler) as client:
            return [(p.rows[0]["n"], list(asked)) async for p in client.iter_pages("accounts")]

    # While the caller holds page n, page n + 1 has already been asked for; nothing is asked twice.
    assert asyncio.run(go()) == [(1, [1, 2]), (2, [1, 2, 3]), (3, [1, 2, 3])]


def test_without_prefetch_each_page_is_asked_for_when_wanted() -> None:
    asked: list[int] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        asked.append(number(request))
        return page(number(request), 3)

    async def go() -> list[tuple[int, list[int]]]:
        async with client_for(handler) as client:
            pages = client.iter_pages("accounts", prefetch=False)
            return [(p.rows[0]["n"], list(asked)) async for p in pages]

    assert asyncio.run(go()) == [(1, [1]), (2, [1, 2]), (3, [1, 2, 3])]


def test_a_failed_prefetch_surfaces_only_when_its_page_is_wanted() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        if number(request) == 2:
            return httpx.Response(400, json={"error": {"code": "0x80060888", "message": "bad link"}})
        return page(number(request), 3)

    async def go() -> list[int]:
        got: list[int] = []
        async with client_for(handler) as client:
            with pytest.raises(E.DynamicsError, match="bad link"):
                async for p in client.iter_pages("accounts"):
                    got.append(p.rows[0]["n"])
        return got

    assert asyncio.run(go()) == [1]


def test_closing_early_cancels_the_request_in_flight() -> None:
    started = asyncio.Event()
    cancelled: list[int] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        if number(request) == 1:
            return page(1, 3)
        started.set()
        try:
            await asyncio.sleep(30)  # the service is slow with page 2
        except asyncio.CancelledError:
            cancelled.append(number(request))
            raise
        return page(number(request), 3)

    async def go() -> list[int]:
        async with client_for(handler) as client:
            pages = client.iter_pages("accounts")
            first = await pages.__anext__()
            await asyncio.wait_for(started.wait(), 5)
            await pages.aclose()  # the caller stops after page 1 (e.g. a run interrupted)
            return [first.rows[0]["n"]]

    assert asyncio.run(asyncio.wait_for(go(), 10)) == [1]
    assert cancelled == [2]
