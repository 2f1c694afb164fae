"""End-to-end: the synapse's connection layer against the local emulator over real TLS (uvicorn, msal, httpx)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dynasync.secrets import SecretBox
from dynasync.synapses.dynamics import errors as E
from dynasync.synapses.dynamics.auth import (
    AuthCodeFlow,
    ClientCredentialsProvider,
    DelegatedTokenProvider,
    EncryptedTokenCache,
    preflight_sign_in,
    redirect_url,
)
from dynasync.synapses.dynamics.client import DataverseClient
from dynasync.synapses.dynamics.config import DynamicsConfig
from dynasync.synapses.dynamics.connection import check_connection, test_connection
from dynasync.synapses.dynamics.retry import RetryPolicy

server_mod = pytest.importorskip("dynasync.emulator.server", reason="the emulator is not available")

pytestmark = pytest.mark.e2e

PUBLIC_BASE = "https://sync.example.com"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    tls = tmp_path_factory.mktemp("tls")
    with server_mod.EmulatorServer(tls_dir=tls, seed={"accounts": 25, "contacts": 0}) as running:
        yield running


@pytest.fixture(autouse=True)
def _clean_faults(server: Any) -> Iterator[None]:
    server.emulator.faults.clear()
    yield
    server.emulator.faults.clear()


def config(
    server: Any, *, client_id: str | None = None, secret: str | None = None, **over: Any
) -> DynamicsConfig:
    info = server.describe()
    data: dict[str, Any] = {
        "name": "Emulator",
        "endpoint_url": server.authority,
        "org_url": server.org_url,
        "client_id": client_id or info["client_id"],
        "client_secret": secret or info["client_secret"],
        "public_base_url": PUBLIC_BASE,
        "allow_local_emulator": True,
        "ca_bundle": str(server.ca_path),
    }
    data.update(over)
    return DynamicsConfig.parse(data)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def fast(cfg: DynamicsConfig, tokens: Any, **kw: Any) -> DataverseClient:
    return DataverseClient(
        cfg, tokens, rand=lambda: 0.0, retry=RetryPolicy(base_delay=0.02, max_delay=0.1), **kw
    )


# --- client credentials and test connection --------------------------------------------------------------------


def test_client_credentials_and_test_connection(server: Any) -> None:
    app = server.emulator.register_app("Syncari Integration")
    report = run(check_connection(config(server, client_id=app["client_id"], secret=app["client_secret"])))
    assert report.user_id == app["systemuserid"]
    assert report.application_id == app["client_id"]
    assert report.organization_id
    assert report.organization_name
    assert report.version == server.emulator.settings.version
    assert report.org_url == server.org_url
    assert server.org_url in report.summary()


def test_ca_bundle_wins_over_requests_ca_bundle_env(
    server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The machine's REQUESTS_CA_BUNDLE points at the system store, which does not hold the emulator CA.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
    report = run(check_connection(config(server)))
    assert report.user_id


def test_wrong_ca_fails_with_tls_remedy(server: Any, tmp_path: Path) -> None:
    bogus = tmp_path / "other-ca.pem"
    bogus.write_bytes(Path("/etc/ssl/certs/ca-certificates.crt").read_bytes())
    with pytest.raises(E.TransportFailureError) as info:
        run(check_connection(config(server, ca_bundle=str(bogus))))
    assert "ca_bundle" in (info.value.remedy or "")


# --- each authentication error and its remedy ------------------------------------------------------------------


def test_wrong_secret(server: Any) -> None:
    cfg = config(server, secret="this-is-not-the-secret")
    with pytest.raises(E.InvalidClientSecretError) as info:
        run(check_connection(cfg))
    assert info.value.code == "AADSTS7000215"
    assert "not its Secret ID" in (info.value.remedy or "")
    assert "this-is-not-the-secret" not in info.value.explain()


def test_expired_secret(server: Any) -> None:
    app = server.emulator.register_app("Expired secret app")
    directory = server.emulator.directory
    old = server.emulator.clock.now() - dt.timedelta(days=400)
    expired = directory.add_secret(
        app["client_id"], old, lifetime=dt.timedelta(days=30), value="expired-secret-value-1"
    )
    cfg = config(server, client_id=app["client_id"], secret=expired.value)
    with pytest.raises(E.ExpiredClientSecretError) as info:
        run(check_connection(cfg))
    assert info.value.code == "AADSTS7000222"
    assert "New client secret" in (info.value.remedy or "")


def test_unknown_tenant(server: Any) -> None:
    tenant = str(uuid.uuid4())
    cfg = config(server, endpoint_url=f"{server.base_url}/{tenant}")
    with pytest.raises(E.UnknownTenantError) as info:
        run(check_connection(cfg))
    assert "Directory (tenant) ID" in (info.value.remedy or "")


def test_wrong_client_id(server: Any) -> None:
    cfg = config(server, client_id=str(uuid.uuid4()))
    with pytest.raises(E.UnknownClientError) as info:
        run(check_connection(cfg))
    assert info.value.code == "AADSTS700016"
    assert cfg.client_id in (info.value.remedy or "")


def test_missing_admin_consent(server: Any) -> None:
    app = server.emulator.register_app("No consent app", admin_consent=False)
    cfg = config(server, client_id=app["client_id"], secret=app["client_secret"])
    with pytest.raises(E.ConsentRequiredError) as info:
        run(check_connection(cfg))
    assert info.value.code == "AADSTS65001"
    assert f"{server.authority}/adminconsent?client_id={app['client_id']}" in (info.value.remedy or "")


def test_no_application_user(server: Any) -> None:
    app = server.emulator.register_app("No app user", application_user=False)
    cfg = config(server, client_id=app["client_id"], secret=app["client_secret"])
    with pytest.raises(E.ApplicationUserMissingError) as info:
        run(check_connection(cfg))
    assert info.value.status == 403 and info.value.code == "0x80072560"
    assert app["client_id"] in (info.value.remedy or "")
    assert "Application Users" in (info.value.remedy or "")


def test_redirect_uri_not_registered(server: Any, tmp_path: Path) -> None:
    app = server.emulator.register_app("Wrong redirect", redirect_uris=("https://elsewhere.example.com/cb",))
    cfg = config(server, client_id=app["client_id"], secret=app["client_secret"])
    box = SecretBox.generate()
    flow = AuthCodeFlow(cfg, EncryptedTokenCache(tmp_path / "c", box, context="x"), box)

    async def go() -> None:
        pending = await flow.begin()
        await preflight_sign_in(cfg, pending.auth_url)

    with pytest.raises(E.RedirectUriMismatchError) as info:
        run(go())
    flow.close()
    assert info.value.code == "AADSTS50011"
    assert redirect_url(PUBLIC_BASE, "Emulator") in (info.value.remedy or "")
    assert "Authentication > Add a platform > Web" in (info.value.remedy or "")


# --- authorization code flow -------------------------------------------------------------------------------------


def _follow_sign_in(cfg: DynamicsConfig, auth_url: str) -> dict[str, str]:
    """Play the browser: the emulator auto-approves and answers with the form_post page aimed at the callback."""
    import re
    import ssl

    context = ssl.create_default_context(cafile=str(cfg.ca_bundle))
    with httpx.Client(verify=context, trust_env=False, follow_redirects=False) as browser:
        response = browser.get(auth_url)
    assert response.status_code == 200, response.text[:500]
    action = re.search(r"action='([^']+)'", response.text)
    assert action is not None and action.group(1) == redirect_url(PUBLIC_BASE, cfg.name)
    return dict(re.findall(r"name='([^']+)' value='([^']*)'", response.text))


def test_auth_code_flow_with_pkce_and_encrypted_cache(server: Any, tmp_path: Path) -> None:
    base_cfg = config(server)
    app = server.emulator.register_app("Delegated", redirect_uris=(redirect_url(PUBLIC_BASE, "Emulator"),))
    cfg = config(server, client_id=app["client_id"], secret=app["client_secret"])
    box = SecretBox.generate()
    cache_path = tmp_path / "tokens" / "emulator.cache"
    flow = AuthCodeFlow(cfg, EncryptedTokenCache(cache_path, box, context="Emulator"), box)

    async def sign_in() -> Any:
        pending = await flow.begin()
        assert "code_challenge=" in pending.auth_url and "code_challenge_method=S256" in pending.auth_url
        assert f"state={pending.state}" in pending.auth_url
        assert "code_verifier" not in pending.sealed
        await preflight_sign_in(cfg, pending.auth_url)  # consumes one code; harmless
        query = await asyncio.to_thread(_follow_sign_in, cfg, pending.auth_url)
        return await flow.complete(pending.sealed, query)

    signed_in = run(sign_in())
    flow.close()
    assert signed_in.username
    raw = cache_path.read_bytes()
    # A JWT header ("{"typ"...) in base64 starts with eyJ0eXAi or eyJhbGci; random ciphertext may contain "eyJ".
    assert raw.startswith(b"dsx1.") and b"refresh_token" not in raw
    assert b"eyJ0eXAi" not in raw and b"eyJhbGci" not in raw

    async def use_tokens() -> Any:
        # A fresh process: the cache comes back from disk, decrypted.
        provider = DelegatedTokenProvider(cfg, EncryptedTokenCache(cache_path, box, context="Emulator"))
        try:
            async with DataverseClient(cfg, provider) as client:
                first = await test_connection(client)
                await provider.token(force_refresh=True)  # redeems the refresh token
                second = await test_connection(client)
                return first, second
        finally:
            provider.close()

    first, second = run(use_tokens())
    assert first.user_id == second.user_id
    assert first.application_id is None  # an interactive user, not the app user
    assert base_cfg.client_id != cfg.client_id


def test_auth_code_replayed_callback_is_refused(server: Any, tmp_path: Path) -> None:
    app = server.emulator.register_app("Replay", redirect_uris=(redirect_url(PUBLIC_BASE, "Emulator"),))
    cfg = config(server, client_id=app["client_id"], secret=app["client_secret"])
    box = SecretBox.generate()
    flow = AuthCodeFlow(cfg, EncryptedTokenCache(tmp_path / "c", box, context="x"), box)

    async def go() -> None:
        one = await flow.begin()
        two = await flow.begin()
        query = await asyncio.to_thread(_follow_sign_in, cfg, one.auth_url)
        with pytest.raises(E.AuthFlowError):
            await flow.complete(two.sealed, query)  # state of another sign-in
        await flow.complete(one.sealed, query)
        with pytest.raises(E.DynamicsAuthError):
            await flow.complete(one.sealed, query)  # the code was already redeemed

    try:
        run(go())
    finally:
        flow.close()


# --- token expiry, throttling and faults mid-run -----------------------------------------------------------------


def test_token_expiry_mid_run_refreshes_on_401(server: Any) -> None:
    cfg = config(server)
    provider = ClientCredentialsProvider(cfg)

    async def go() -> DataverseClient:
        async with fast(cfg, provider) as client:
            await client.get_json("WhoAmI")
            server.emulator.advance_clock(seconds=2 * 3600)  # the token the client holds is now expired
            try:
                await client.get_json("WhoAmI")
            finally:
                server.emulator.advance_clock(seconds=-2 * 3600)
            return client

    try:
        client = run(go())
    finally:
        provider.close()
    assert client.counters.token_refreshes == 1
    assert provider.acquisitions == 2


def test_429_storm_honours_retry_after(server: Any) -> None:
    import ssl

    sends: list[float] = []
    throttles: list[float] = []
    cfg = config(server)
    inner = httpx.AsyncHTTPTransport(
        verify=ssl.create_default_context(cafile=str(cfg.ca_bundle)), trust_env=False
    )

    class Recording(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            sends.append(time.monotonic())
            response = await inner.handle_async_request(request)
            if response.status_code == 429:
                throttles.append(time.monotonic())
            return response

        async def aclose(self) -> None:
            await inner.aclose()

    provider = ClientCredentialsProvider(cfg)
    server.emulator.faults.inject("429", count=3, retry_after=1, path_contains="WhoAmI")

    async def go() -> DataverseClient:
        async with fast(cfg, provider, transport=Recording()) as client:
            await client.get_json("WhoAmI")  # throttled twice in a row, then answered
            await asyncio.gather(
                *(client.get_json("WhoAmI") for _ in range(4))
            )  # a storm of concurrent calls
            return client

    try:
        client = run(go())
    finally:
        provider.close()
    assert client.counters.throttled == 3
    assert len(sends) == 1 + 4 + 3
    # Nothing was sent while a Retry-After was running (1 s after each 429 answer; 20 ms clock tolerance).
    for answered in throttles:
        assert not [t for t in sends if answered < t < answered + 0.98]
    assert client.limiter.limit < 8


def test_5xx_and_dropped_connections_mid_paging(server: Any) -> None:
    cfg = config(server)
    provider = ClientCredentialsProvider(cfg)

    async def go() -> tuple[list[str], DataverseClient]:
        ids: list[str] = []
        async with fast(cfg, provider) as client:
            pages = 0
            # No prefetch: each fault must hit the request made after it is injected.
            async for page in client.iter_pages("accounts?$select=name", maxpagesize=10, prefetch=False):
                pages += 1
                ids.extend(r["accountid"] for r in page.rows)
                if pages == 1:
                    server.emulator.faults.inject("503", count=1, retry_after=0, path_contains="accounts")
                if pages == 2:
                    server.emulator.faults.inject("drop", count=1, path_contains="accounts")
            return ids, client

    try:
        ids, client = run(go())
    finally:
        provider.close()
    assert len(ids) == len(set(ids)) == 25
    assert client.counters.server_errors == 1
    assert client.counters.transport_errors == 1


def test_timeout_mid_run_is_retried(server: Any) -> None:
    cfg = config(server)
    provider = ClientCredentialsProvider(cfg)
    server.emulator.faults.inject("timeout", count=1, seconds=0.8, path_contains="WhoAmI")

    async def go() -> DataverseClient:
        async with fast(cfg, provider, timeout=0.3) as client:
            await client.get_json("WhoAmI")
            return client

    try:
        client = run(go())
    finally:
        provider.close()
    assert client.counters.transport_errors == 1


def test_no_secret_or_token_in_debug_logs(server: Any, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    cfg = config(server)
    caplog.set_level(logging.DEBUG)
    tokens: list[str] = []
    provider = ClientCredentialsProvider(cfg)

    async def go() -> None:
        tokens.append(await provider.token())
        async with DataverseClient(cfg, provider) as client:
            await test_connection(client)
        with pytest.raises(E.InvalidClientSecretError) as info:
            await check_connection(config(server, secret="wrong-secret-value-xyz"))
        assert "wrong-secret-value-xyz" not in info.value.explain()

    try:
        run(go())
    finally:
        provider.close()
    text = caplog.text
    assert caplog.records  # DEBUG logging was really on
    assert cfg.client_secret.get_secret_value() not in text
    assert "wrong-secret-value-xyz" not in text
    assert tokens[0] not in text and tokens[0][:40] not in text
