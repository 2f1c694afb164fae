"""Fixtures for Web API tests: an in-process emulator, a real client-credentials token, a small client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio.from_thread
import httpx
import pytest

from dynasync.emulator.app import Emulator, create_app
from dynasync.emulator.settings import EmulatorSettings

ORG = "https://org.test"
API = "/api/data/v9.2/"


class AsgiClient:
    """A synchronous client over ``httpx.ASGITransport`` driven through an anyio blocking portal.

    (Starlette's own AsgiClient now warns about httpx, and warnings are errors here.)
    """

    def __init__(self, app: Any, base_url: str, portal: Any, client_ip: str = "127.0.0.1") -> None:
        transport = httpx.ASGITransport(app=app, client=(client_ip, 50000))
        self.async_client = httpx.AsyncClient(transport=transport, base_url=base_url)
        self.portal = portal

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        async def run() -> httpx.Response:
            return await self.async_client.request(method, url, **kw)

        return self.portal.call(run)

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("POST", url, **kw)

    def close(self) -> None:
        self.portal.call(self.async_client.aclose)


@contextmanager
def asgi_client(app: Any, base_url: str = ORG, client_ip: str = "127.0.0.1") -> Iterator[AsgiClient]:
    with anyio.from_thread.start_blocking_portal() as portal:
        client = AsgiClient(app, base_url, portal, client_ip)
        try:
            yield client
        finally:
            client.close()


class Api:
    """A AsgiClient bound to the Web API root with a bearer token."""

    def __init__(self, client: AsgiClient, emulator: Emulator, token: str) -> None:
        self.client = client
        self.emulator = emulator
        self.token = token

    def refresh_token(self) -> None:
        """Get a new token (after moving the emulator clock past the old one's expiry)."""
        app = self.emulator.default_app
        assert app is not None
        self.token = client_credentials_token(self.client, self.emulator, app.client_id, app.client_secret)

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/json",
            "OData-Version": "4.0",
        }
        headers.update(extra or {})
        return headers

    def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        url = path if path.startswith("http") else API + path
        return self.client.request(method, url, headers=self.headers(headers), **kw)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("POST", path, **kw)

    def patch(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("PATCH", path, **kw)

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("PUT", path, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, **kw)


def client_credentials_token(client: AsgiClient, emulator: Emulator, client_id: str, secret: str) -> str:
    response = client.post(
        f"/{emulator.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "scope": f"{ORG}/.default",
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def make_api(emulator: Emulator) -> Iterator[Api]:
    with asgi_client(create_app(emulator)) as client:
        app = emulator.default_app
        assert app is not None
        yield Api(
            client, emulator, client_credentials_token(client, emulator, app.client_id, app.client_secret)
        )


@pytest.fixture
def emulator() -> Emulator:
    return Emulator.create(seed={"accounts": 12, "contacts": 20}, settings=EmulatorSettings(tls=False))


@pytest.fixture
def api(emulator: Emulator) -> Iterator[Api]:
    yield from make_api(emulator)
