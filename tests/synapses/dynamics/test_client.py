from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from dynasync.synapses.dynamics import errors as E
from dynasync.synapses.dynamics.auth import StaticTokenProvider
from dynasync.synapses.dynamics.client import DataverseClient
from dynasync.synapses.dynamics.config import DynamicsConfig
from dynasync.synapses.dynamics.retry import AdaptiveLimiter, RetryPolicy, backoff_delay

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


class FakeTime:
    """A monotonic clock that only moves when the client sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


async def public(host: str) -> list[str]:
    return ["20.42.0.1"]


Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


def make(handler: Handler, time: FakeTime | None = None, tokens: Any = None, **kw: Any) -> DataverseClient:
    t = time or FakeTime()
    return DataverseClient(
        CONFIG,
        tokens or StaticTokenProvider("tok-1", "tok-2"),
        transport=httpx.MockTransport(handler),
        sleep=t.sleep,
        clock=t.clock,
        rand=lambda: 0.5,
        resolver=public,
        **kw,
    )


def ok(body: Any = None, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body if body is not None else {"value": []}, headers=headers)


def err(status: int, code: str = "", message: str = "x", **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message}}, headers=headers)


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_odata_headers_and_relative_urls() -> None:
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return ok({"UserId": "u"})

    async def go() -> None:
        async with make(handler) as client:
            assert await client.get_json("WhoAmI") == {"UserId": "u"}
            await client.patch("accounts(00000000-0000-0000-0000-000000000001)", {"name": "A"}, if_match="*")

    run(go())
    get, patch = seen
    assert str(get.url) == f"{API}WhoAmI"
    assert get.headers["Accept"] == "application/json"
    assert get.headers["OData-MaxVersion"] == "4.0" and get.headers["OData-Version"] == "4.0"
    assert get.headers["If-None-Match"] == "null"
    assert get.headers["Authorization"] == "Bearer tok-1"
    assert "gzip" in get.headers["Accept-Encoding"]
    assert "If-None-Match" not in patch.headers
    assert patch.headers["If-Match"] == "*"
    assert patch.headers["Content-Type"].startswith("application/json")
    assert json.loads(patch.content) == {"name": "A"}


def test_gzip_body_and_counters() -> None:
    payload = json.dumps({"value": [{"name": "x" * 1000}]}).encode()

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=gzip.compress(payload), headers={"Content-Encoding": "gzip"})

    async def go() -> DataverseClient:
        async with make(handler) as client:
            body = await client.get_json("accounts")
            assert body["value"][0]["name"] == "x" * 1000
            return client

    client = run(go())
    assert client.counters.requests == 1
    assert 0 < client.counters.bytes_received < len(payload)


def test_redirects_are_never_followed() -> None:
    calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(302, headers={"Location": "https://evil.example.com/steal"})

    async def go() -> None:
        async with make(handler) as client:
            with pytest.raises(E.RedirectRefusedError):
                await client.get_json("accounts")

    run(go())
    assert calls == 1


def test_requests_outside_the_org_are_refused() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing may be sent")

    async def go() -> None:
        async with make(handler) as client:
            for url in ("https://evil.com/api/data/v9.2/accounts", "http://contoso.crm.dynamics.com/x",
                        "https://contoso.crm.dynamics.com:8443/x", "//evil.com/x"):  # fmt: skip
                with pytest.raises(E.HostRefusedError):
                    await client.get_json(url)

    run(go())


def test_private_dns_answer_is_refused() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing may be sent")

    async def private(host: str) -> list[str]:
        return ["10.0.0.7"]

    async def go() -> None:
        t = FakeTime()
        client = DataverseClient(
            CONFIG, StaticTokenProvider("t"), transport=httpx.MockTransport(handler), resolver=private,
            sleep=t.sleep, clock=t.clock,
        )  # fmt: skip
        async with client:
            with pytest.raises(E.HostRefusedError) as info:
                await client.get_json("WhoAmI")
            assert "10.0.0.7" in info.value.message

    run(go())


def test_retry_after_is_honoured_before_any_new_request() -> None:
    t = FakeTime()
    sent: list[float] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        sent.append(t.now)
        if len(sent) == 1:
            return err(429, "0x80072322", "Number of requests exceeded", **{"Retry-After": "7"})
        return ok()

    async def go() -> DataverseClient:
        async with make(handler, t) as client:
            await client.get_json("accounts")
            return client

    client = run(go())
    assert sent == [0.0, 7.0]
    assert client.counters.throttled == 1 and client.counters.retries == 1
    assert client.counters.throttle_wait_seconds == 7.0


def test_throttle_gate_holds_every_concurrent_request() -> None:
    t = FakeTime()
    sends: list[tuple[float, str]] = []
    throttled_once = False

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal throttled_once
        sends.append((t.now, request.url.path))
        await asyncio.sleep(0)
        if not throttled_once:
            throttled_once = True
            return err(
                429,
                "0x80072326",
                "Number of concurrent requests exceeded the limit of 52.",
                **{"Retry-After": "30"},
            )
        return ok()

    async def go() -> DataverseClient:
        async with make(handler, t, initial_concurrency=1, max_concurrency=4) as client:
            await asyncio.gather(*(client.get_json(f"accounts{i}") for i in range(10)))
            return client

    client = run(go())
    # The first request was throttled at t=0; nothing at all was sent again before t=30.
    assert sends[0] == (0.0, "/api/data/v9.2/accounts0")
    assert all(when >= 30.0 for when, _ in sends[1:])
    assert len(sends) == 11
    assert client.limiter.limit <= 4


def test_throttle_budget_exhausted_raises_throttled_error() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return err(429, "0x80072321", "Combined execution time exceeded", **{"Retry-After": "100"})

    async def go() -> None:
        async with make(handler, retry=RetryPolicy(max_throttle_wait=250)) as client:
            with pytest.raises(E.ThrottledError) as info:
                await client.get_json("accounts")
            assert info.value.retry_after == 100
            assert info.value.code == "0x80072321"
            assert client.counters.throttled == 3

    run(go())


def test_server_errors_back_off_with_jitter_then_succeed() -> None:
    t = FakeTime()
    statuses = [503, 502, 200]

    async def handler(request: httpx.Request) -> httpx.Response:
        status = statuses.pop(0)
        return ok() if status == 200 else err(status, "0x8004A001", "The server is busy")

    async def go() -> DataverseClient:
        async with make(handler, t, retry=RetryPolicy(base_delay=1.0)) as client:
            await client.get_json("accounts")
            return client

    client = run(go())
    # equal jitter with rand=0.5: 0.75 * capped delay; capped = 1, then 2
    assert t.sleeps == [0.75, 1.5]
    assert client.counters.server_errors == 2 and client.counters.retries == 2


def test_server_errors_give_up_after_max_attempts() -> None:
    calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return err(500, "0x80040216", "An unexpected error occurred.")

    async def go() -> None:
        async with make(handler, retry=RetryPolicy(max_attempts=3)) as client:
            with pytest.raises(E.ServiceUnavailableError):
                await client.get_json("accounts")

    run(go())
    assert calls == 3


def test_post_create_is_not_retried_after_unknown_outcome() -> None:
    calls: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) == 1:
            return err(503)
        return httpx.Response(
            204, headers={"OData-EntityId": f"{API}accounts(7EB682F1-CA75-E511-80D4-00155D2A68D1)"}
        )

    async def go() -> None:
        async with make(handler) as client:
            with pytest.raises(E.ServiceUnavailableError) as info:
                await client.post("accounts", {"name": "A"})
            assert "may or may not" in (info.value.remedy or "")
            response = await client.post("accounts", {"name": "B", "accountid": "7eb682f1-ca75-e511-80d4-00155d2a68d1"},
                                         idempotent=True)  # fmt: skip
            assert response.entity_id == "7eb682f1-ca75-e511-80d4-00155d2a68d1"

    run(go())
    assert calls == ["POST", "POST"]


def test_post_is_retried_after_429_and_connect_errors() -> None:
    calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return err(429, "0x80072322", "limit", **{"Retry-After": "1"})
        if calls == 2:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(204)

    async def go() -> None:
        async with make(handler) as client:
            assert (await client.post("accounts", {"name": "A"})).status == 204

    run(go())
    assert calls == 3


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE", "POST"])
def test_dropped_connection_retried_only_when_safe(method: str) -> None:
    calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        return httpx.Response(204) if method != "GET" else ok()

    async def go() -> None:
        async with make(handler) as client:
            if method == "POST":
                with pytest.raises(E.TransportFailureError) as info:
                    await client.request(method, "accounts", json={"a": 1})
                assert "may or may not" in (info.value.remedy or "")
            else:
                await client.request(method, "accounts(00000000-0000-0000-0000-000000000001)",
                                     json={"a": 1} if method == "PATCH" else None)  # fmt: skip

    run(go())
    assert calls == (1 if method == "POST" else 2)


def test_timeouts_retried_for_get() -> None:
    calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise httpx.ReadTimeout("slow", request=request)
        return ok()

    async def go() -> DataverseClient:
        async with make(handler) as client:
            await client.get_json("accounts")
            return client

    assert run(go()).counters.transport_errors == 2


def test_401_refreshes_token_once() -> None:
    auths: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        auths.append(request.headers["Authorization"])
        if request.headers["Authorization"] == "Bearer tok-1":
            return httpx.Response(401, headers={"WWW-Authenticate": "Bearer authorization_uri=x"})
        return ok()

    tokens = StaticTokenProvider("tok-1", "tok-2")

    async def go() -> DataverseClient:
        async with make(handler, tokens=tokens) as client:
            await client.post("accounts", {"name": "x"})  # even a POST: the 401 means it never ran
            return client

    client = run(go())
    assert auths == ["Bearer tok-1", "Bearer tok-2"]
    assert tokens.refreshes == 1 and client.counters.token_refreshes == 1


def test_second_401_is_token_rejected() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, headers={"REQ_ID": "r-1"})

    async def go() -> None:
        async with make(handler) as client:
            with pytest.raises(E.TokenRejectedError) as info:
                await client.get_json("WhoAmI")
            assert info.value.request_id == "r-1"
            assert isinstance(info.value, E.DynamicsAuthError)

    run(go())


def test_errors_are_typed_with_request_id() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return err(403, "0x80072560", "The user is not a member of the organization.",
                   **{"x-ms-service-request-id": "svc-1"})  # fmt: skip

    async def go() -> None:
        async with make(handler) as client:
            with pytest.raises(E.ApplicationUserMissingError) as info:
                await client.get_json("WhoAmI")
            assert info.value.request_id == "svc-1" and info.value.status == 403

    run(go())


def test_concurrency_cap_is_respected() -> None:
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        for _ in range(5):
            await asyncio.sleep(0)
        in_flight -= 1
        return ok()

    async def go() -> DataverseClient:
        async with make(handler, initial_concurrency=3, max_concurrency=3) as client:
            await asyncio.gather(*(client.get_json("accounts") for _ in range(30)))
            return client

    client = run(go())
    assert peak == 3
    assert client.counters.peak_concurrency == 3


def test_adaptive_limiter_halves_once_per_epoch_and_recovers_slowly() -> None:
    limiter = AdaptiveLimiter(initial=16, maximum=52)

    async def go() -> None:
        epochs = [await limiter.acquire() for _ in range(4)]
        for e in epochs:
            limiter.on_throttle(e)
        assert limiter.limit == 8  # one burst, one halving
        for _ in range(4):
            await limiter.release()
        for _ in range(7):
            limiter.on_success()
        assert limiter.limit == 8  # about one slot per window of `limit` successes
        for _ in range(2):
            limiter.on_success()
        assert limiter.limit == 9
        for _ in range(2000):  # back to the cap only after ~(52² - 8²) / 2 successes
            limiter.on_success()
        assert limiter.limit == 52

    run(go())
    with pytest.raises(ValueError):
        AdaptiveLimiter(initial=60, maximum=52)


def test_backoff_is_capped() -> None:
    policy = RetryPolicy(base_delay=1, max_delay=8)
    assert [backoff_delay(policy, n, lambda: 1.0) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 8, 8]
    assert backoff_delay(policy, 3, lambda: 0.0) == 2


def page(rows: list[int], next_link: str | None = None, delta: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"@odata.context": f"{API}$metadata#accounts", "value": [{"n": r} for r in rows]}
    if next_link:
        body["@odata.nextLink"] = next_link
    if delta:
        body["@odata.deltaLink"] = delta
    return httpx.Response(200, json=body, headers={"Preference-Applied": "odata.maxpagesize=2"})


def test_paging_follows_next_links_verbatim() -> None:
    seen: list[httpx.Request] = []
    link2 = f"{API}accounts?$select=name&$skiptoken=%3Ccookie%20pagenumber=%222%22%20/%3E"

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return page([1, 2], link2)
        return page([3], delta=f"{API}accounts?$deltatoken=9")

    async def go() -> list[Any]:
        async with make(handler) as client:
            return [p async for p in client.iter_pages("accounts?$select=name", maxpagesize=2, track_changes=True,
                                                       annotations="*")]  # fmt: skip

    pages = run(go())
    assert [[r["n"] for r in p.rows] for p in pages] == [[1, 2], [3]]
    assert pages[0].next_link == link2 and pages[1].delta_link == f"{API}accounts?$deltatoken=9"
    assert str(seen[1].url) == link2
    for request in seen:
        assert (
            request.headers["Prefer"]
            == 'odata.include-annotations="*",odata.maxpagesize=2,odata.track-changes'
        )
    assert pages[0].preference_applied == "odata.maxpagesize=2"


def test_paging_loop_is_detected() -> None:
    calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return page([calls], f"{API}accounts?$skiptoken=same")

    async def go() -> None:
        async with make(handler) as client:
            with pytest.raises(E.PagingLoopError):
                async for _ in client.iter_pages("accounts"):
                    pass

    run(go())
    assert calls == 2


def test_paging_link_back_to_first_page_is_a_loop() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return page([1], f"{API}accounts")

    async def go() -> None:
        async with make(handler) as client:
            with pytest.raises(E.PagingLoopError):
                async for _ in client.iter_pages("accounts"):
                    pass

    run(go())


def test_paging_refuses_foreign_next_link() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return page([1], "https://evil.example.com/api/data/v9.2/accounts?$skiptoken=x")

    async def go() -> None:
        async with make(handler) as client:
            with pytest.raises(E.HostRefusedError):
                async for _ in client.iter_pages("accounts"):
                    pass

    run(go())


def test_paging_mid_page_5xx_is_retried_and_continues() -> None:
    calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return page([1], f"{API}accounts?$skiptoken=2")
        if calls == 2:
            return err(502)
        return page([2])

    async def go() -> list[int]:
        async with make(handler) as client:
            return [r["n"] async for p in client.iter_pages("accounts") for r in p.rows]

    assert run(go()) == [1, 2]
