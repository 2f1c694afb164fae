"""The Web API gate: bearer tokens, org membership, service protection limits, IP allow-list, injected faults."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import anyio
import httpx
import pytest
from conftest import API, ORG, Api, asgi_client, client_credentials_token, make_api

from dynasync.emulator.app import ConnectionDropped, Emulator, create_app
from dynasync.emulator.settings import EmulatorSettings


@pytest.fixture
def limited() -> Iterator[Api]:
    settings = EmulatorSettings(tls=False, requests_per_window=3, window_seconds=300)
    yield from make_api(Emulator.create(seed=0, settings=settings))


def test_missing_or_bad_token_is_401_with_challenge(api: Api) -> None:
    response = api.client.get(f"{API}WhoAmI")
    assert response.status_code == 401
    assert response.content == b""
    assert response.headers["WWW-Authenticate"] == (
        f"Bearer authorization_uri={ORG}/{api.emulator.tenant_id}/oauth2/authorize, resource_id={ORG}/"
    )
    garbage = api.client.get(f"{API}WhoAmI", headers={"Authorization": "Bearer not.a.jwt"})
    assert garbage.status_code == 401


def test_token_for_another_org_is_rejected(api: Api) -> None:
    issued = api.emulator.issuer.issue_access_token(
        tenant_id=api.emulator.tenant_id,
        audience="https://other.crm.dynamics.com",
        app_id=api.emulator.default_app.client_id,  # type: ignore[union-attr]
        object_id=str(uuid.uuid4()),
    )
    response = api.client.get(f"{API}WhoAmI", headers={"Authorization": f"Bearer {issued.token}"})
    assert response.status_code == 401


def test_app_without_application_user_is_not_a_member(api: Api) -> None:
    app = api.emulator.register_app("No user", application_user=False)
    token = client_credentials_token(api.client, api.emulator, app["client_id"], app["client_secret"])
    response = api.client.get(f"{API}WhoAmI", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "0x80072560",
        "message": "The user is not a member of the organization.",
    }
    api.emulator.add_application_user(app["client_id"])
    assert api.client.get(f"{API}WhoAmI", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_delegated_user_token_acts_as_that_user(api: Api) -> None:
    admin = next(u for u in api.emulator.directory.users.values() if u.is_admin)
    issued = api.emulator.issuer.issue_access_token(
        tenant_id=api.emulator.tenant_id,
        audience=ORG,
        app_id=api.emulator.default_app.client_id,  # type: ignore[union-attr]
        object_id=admin.object_id,
        scopes=["user_impersonation"],
        upn=admin.upn,
    )
    who = api.client.get(f"{API}WhoAmI", headers={"Authorization": f"Bearer {issued.token}"}).json()
    assert who["UserId"] == str(api.emulator.store.admin_user_id)


def test_request_count_limit_and_window(limited: Api) -> None:
    first = limited.get("WhoAmI")
    assert first.headers["x-ms-ratelimit-burst-remaining-xrm-requests"] == "2"
    assert re.fullmatch(r"1,(199|200)\.\d\d", first.headers["x-ms-ratelimit-time-remaining-xrm-requests"])
    assert first.headers["REQ_ID"] == first.headers["x-ms-service-request-id"]
    limited.get("WhoAmI")
    limited.get("WhoAmI")
    throttled = limited.get("WhoAmI")
    assert throttled.status_code == 429
    assert throttled.json()["error"] == {
        "code": "0x80072322",
        "message": "Number of requests exceeded the limit of 3 over time window of 300 seconds.",
    }
    assert 1 <= int(throttled.headers["Retry-After"]) <= 300
    limited.emulator.advance_clock(seconds=301)
    assert limited.get("WhoAmI").status_code == 200


def test_execution_time_limit(api: Api) -> None:
    api.emulator.update_settings(execution_ms_per_window=40)
    api.emulator.faults.inject("slow", seconds=0.05)
    assert api.get("WhoAmI").status_code == 200
    throttled = api.get("WhoAmI")
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "0x80072321"
    assert throttled.json()["error"]["message"].startswith(
        "Combined execution time of incoming requests exceeded limit of 40 milliseconds over time window of 300 seconds."
    )


def test_concurrency_limit(api: Api) -> None:
    api.emulator.update_settings(concurrency_limit=1)
    api.emulator.faults.inject("slow", seconds=0.5)
    client = api.client

    async def both() -> list[httpx.Response]:
        results: list[httpx.Response] = []

        async def one(delay: float) -> None:
            await anyio.sleep(delay)
            results.append(await client.async_client.get(f"{API}WhoAmI", headers=api.headers()))

        async with anyio.create_task_group() as group:
            group.start_soon(one, 0)
            group.start_soon(one, 0.2)
        return results

    results = client.portal.call(both)
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200, 429]
    throttled = next(r for r in results if r.status_code == 429)
    assert throttled.json()["error"] == {
        "code": "0x80072326",
        "message": "Number of concurrent requests exceeded the limit of 1.",
    }


def test_ip_allow_list() -> None:
    emulator = Emulator.create(seed=0, settings=EmulatorSettings(tls=False, ip_allow_list=("10.0.0.0/8",)))
    with asgi_client(create_app(emulator)) as client:
        response = client.get(f"{API}WhoAmI")
        assert response.status_code == 403
        assert response.json()["error"] == {
            "code": "0x80048306",
            "message": "The request you are trying to make is rejected as access to your IP is blocked. "
            "Contact your administrator for more information.",
        }
    with asgi_client(create_app(emulator), client_ip="10.1.2.3") as client:
        assert client.get(f"{API}WhoAmI").status_code == 401  # past the firewall, now needs a token


def test_injected_faults(api: Api) -> None:
    api.emulator.faults.inject("429", count=2, retry_after=7)
    for _ in range(2):
        response = api.get("WhoAmI")
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "7"
        assert response.json()["error"]["code"] == "0x80072322"
    assert api.get("WhoAmI").status_code == 200
    api.emulator.faults.inject("503", path_contains="accounts")
    assert api.get("WhoAmI").status_code == 200
    busy = api.get("accounts")
    assert busy.status_code == 503 and busy.json()["error"]["code"] == "0x8004A001"
    api.emulator.faults.inject("drop")
    with pytest.raises(ConnectionDropped):
        api.get("WhoAmI")
    api.emulator.faults.inject("timeout", seconds=0.05)
    with pytest.raises(ConnectionDropped):
        api.get("WhoAmI")
    with pytest.raises(ValueError):
        api.emulator.faults.inject("boom")


def test_impersonation_headers(api: Api) -> None:
    user = api.emulator.add_user("maker@contoso.onmicrosoft.com", "pw-123456", "Maker Person")
    as_object = api.get("WhoAmI", headers={"CallerObjectId": user["object_id"]}).json()
    assert as_object["UserId"] == user["systemuserid"]
    legacy = api.post("accounts", json={"name": "On behalf"}, headers={"MSCRMCallerID": user["systemuserid"]})
    account = legacy.headers["OData-EntityId"]
    row = api.get(f"{account}?$select=_createdby_value")
    assert row.json()["_createdby_value"] == user["systemuserid"]
    unknown = api.get("WhoAmI", headers={"CallerObjectId": str(uuid.uuid4())})
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "0x80048d1A"
