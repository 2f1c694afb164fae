"""The emulator on a real loopback socket over TLS: MSAL token, Web API calls, paging, dropped connections."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import msal
import pytest

from dynasync.emulator.server import EmulatorServer
from dynasync.emulator.tls import client_ssl_context, requests_session_trusting

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    tls_dir = Path(tmp_path_factory.mktemp("tls"))
    with EmulatorServer(tls_dir=tls_dir, seed={"accounts": 7, "contacts": 3}) as running:
        yield running


@pytest.fixture(scope="module")
def token(server: EmulatorServer) -> str:
    app = server.emulator.default_app
    assert app is not None and server.ca_path is not None
    session = requests_session_trusting(server.ca_path)
    client = msal.ConfidentialClientApplication(
        app.client_id,
        client_credential=app.client_secret,
        authority=server.authority,
        instance_discovery=False,
        http_client=session,
    )
    result = client.acquire_token_for_client(scopes=[f"{server.org_url}/.default"])
    session.close()
    assert "access_token" in result, result
    return str(result["access_token"])


@pytest.fixture
def http(server: EmulatorServer, token: str) -> Iterator[httpx.Client]:
    assert server.ca_path is not None
    with httpx.Client(
        base_url=server.api_url,
        verify=client_ssl_context(server.ca_path),
        headers={"Authorization": f"Bearer {token}", "OData-Version": "4.0"},
        timeout=5,
    ) as client:
        yield client


def test_addresses(server: EmulatorServer) -> None:
    assert server.base_url.startswith("https://127.0.0.1:")
    assert server.authority == f"{server.base_url}/{server.emulator.tenant_id}"
    assert server.describe()["client_id"] == server.emulator.default_app.client_id  # type: ignore[union-attr]


def test_whoami_and_paging_over_tls(server: EmulatorServer, http: httpx.Client) -> None:
    who = http.get("WhoAmI")
    assert who.status_code == 200
    assert who.json()["@odata.context"] == f"{server.api_url}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse"
    url = "accounts?$select=name"
    seen = []
    while url:
        body = http.get(url, headers={"Prefer": "odata.maxpagesize=3"}).json()
        seen.extend(body["value"])
        url = body.get("@odata.nextLink", "")
    assert len(seen) == server.emulator.store.count("account")


def test_create_and_forwarded_host(server: EmulatorServer, http: httpx.Client) -> None:
    created = http.post("accounts", json={"name": "Over TLS"})
    assert created.status_code == 204
    assert created.headers["OData-EntityId"].startswith(f"{server.api_url}accounts(")
    app = server.emulator.default_app
    assert app is not None


def test_dropped_connection_and_timeout(server: EmulatorServer, http: httpx.Client) -> None:
    server.emulator.faults.inject("drop")
    with pytest.raises(httpx.TransportError):
        http.get("WhoAmI")
    server.emulator.faults.inject("timeout", seconds=3)
    with pytest.raises(httpx.ReadTimeout):
        http.get("WhoAmI", timeout=0.5)
    assert http.get("WhoAmI").status_code == 200


def test_plain_http_on_request(tmp_path: Path) -> None:
    with EmulatorServer(tls=False, seed=0) as plain:
        assert plain.base_url.startswith("http://")
        response = httpx.get(f"{plain.api_url}WhoAmI")
        assert response.status_code == 401
        assert "authorization_uri=" in response.headers["WWW-Authenticate"]
