from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest

from dynasync.secrets import SecretBox, SecretsError
from dynasync.synapses.dynamics import errors as E
from dynasync.synapses.dynamics.auth import (
    AuthCodeFlow,
    EncryptedTokenCache,
    StaticTokenProvider,
    TokenProvider,
    msal_http_client,
    preflight_sign_in,
    redirect_url,
)
from dynasync.synapses.dynamics.config import DynamicsConfig

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def config(**over: Any) -> DynamicsConfig:
    data: dict[str, Any] = {
        "name": "Dynamics Prod",
        "endpoint_url": TENANT,
        "org_url": "https://contoso.crm.dynamics.com",
        "client_id": "11111111-2222-3333-4444-555555555555",
        "client_secret": "s~ecret",
        "public_base_url": "https://sync.example.com",
    }
    data.update(over)
    return DynamicsConfig.parse(data)


def test_redirect_url() -> None:
    assert redirect_url("https://sync.example.com/", "Dynamics Prod") == (
        "https://sync.example.com/oauth/dynamics/dynamics-prod/callback"
    )
    assert redirect_url("https://h/base", "  ***  ") == "https://h/base/oauth/dynamics/synapse/callback"


def test_msal_http_client_only_for_emulator(tmp_path: Path) -> None:
    assert msal_http_client(config()) is None
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    session = msal_http_client(
        config(org_url="https://127.0.0.1:8443", allow_local_emulator=True, ca_bundle=ca)
    )
    assert session is not None
    assert session.trust_env is False  # REQUESTS_CA_BUNDLE must not replace the emulator CA
    assert session.verify == str(ca)
    session.close()


def test_static_provider_is_a_token_provider() -> None:
    provider = StaticTokenProvider("tok-a", "tok-b")
    assert isinstance(provider, TokenProvider)
    assert asyncio.run(provider.token()) == "tok-a"
    assert asyncio.run(provider.token(force_refresh=True)) == "tok-b"
    assert asyncio.run(provider.token(force_refresh=True)) == "tok-b"
    assert "tok-" not in repr(provider)


def test_encrypted_token_cache_round_trip(tmp_path: Path) -> None:
    box = SecretBox.generate()
    path = tmp_path / "tokens" / "prod.cache"
    cache = EncryptedTokenCache(path, box, context="prod")
    cache.cache.add(
        {
            "client_id": "c",
            "scope": ["https://contoso.crm.dynamics.com/.default"],
            "token_endpoint": f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token",
            "response": {"access_token": "AT-PLAINTEXT-123", "expires_in": 3600, "token_type": "Bearer"},
        }
    )
    cache.persist()
    raw = path.read_bytes()
    assert b"AT-PLAINTEXT-123" not in raw
    assert raw.startswith(b"dsx1.")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = EncryptedTokenCache(path, box, context="prod")
    assert "AT-PLAINTEXT-123" in again.cache.serialize()
    with pytest.raises(SecretsError):  # bound to its context
        EncryptedTokenCache(path, box, context="other")
    again.clear()
    assert not path.exists()


def test_callback_errors_are_mapped_before_any_network(tmp_path: Path) -> None:
    box = SecretBox.generate()
    flow = AuthCodeFlow(
        config(), EncryptedTokenCache(tmp_path / "c", box, context="x"), box, clock=lambda: 1000.0
    )
    with pytest.raises(E.ConsentRequiredError) as info:
        asyncio.run(
            flow.complete(
                "unused",
                {
                    "error": "consent_required",
                    "error_description": "AADSTS65001: The user or administrator has not consented",
                },
            )
        )
    assert "adminconsent?client_id=11111111-2222-3333-4444-555555555555" in (info.value.remedy or "")
    with pytest.raises(E.RedirectUriMismatchError) as mismatch:
        asyncio.run(
            flow.complete("unused", {"error": "invalid_request", "error_description": "AADSTS50011: no"})
        )
    assert "https://sync.example.com/oauth/dynamics/dynamics-prod/callback" in (mismatch.value.remedy or "")


def test_state_mismatch_and_expiry(tmp_path: Path) -> None:
    box = SecretBox.generate()
    now = [1000.0]
    flow = AuthCodeFlow(
        config(), EncryptedTokenCache(tmp_path / "c", box, context="x"), box, clock=lambda: now[0]
    )
    sealed = box.encrypt(
        json.dumps({"flow": {"state": "s1", "code_verifier": "v"}, "created": 1000.0}),
        context="authflow|Dynamics Prod|11111111-2222-3333-4444-555555555555",
    )
    with pytest.raises(E.AuthFlowError):
        asyncio.run(flow.complete(sealed, {"state": "other", "code": "c"}))
    with pytest.raises(E.AuthFlowError):
        asyncio.run(flow.complete(sealed, {"state": "s1"}))
    now[0] = 1000.0 + 601
    with pytest.raises(E.AuthFlowError) as info:
        asyncio.run(flow.complete(sealed, {"state": "s1", "code": "c"}))
    assert "expired" in info.value.message


def _page(status: int, text: str = "", **headers: str) -> httpx.MockTransport:
    async def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.host == "login.microsoftonline.com"
        return httpx.Response(status, text=text, headers=headers)

    return httpx.MockTransport(handler)


def test_preflight_maps_errors_shown_on_the_sign_in_page() -> None:
    cfg = config()
    url = f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/authorize?client_id=x&redirect_uri=y"
    page = (
        "<html><body><div>Sign in</div><div class='error'>AADSTS50011: The redirect URI &#39;https://x/cb&#39; "
        "specified in the request does not match the redirect URIs configured for the application.</div>"
        "<div>Trace ID: abc Correlation ID: def</div></body></html>"
    )
    with pytest.raises(E.RedirectUriMismatchError) as info:
        asyncio.run(preflight_sign_in(cfg, url, transport=_page(400, page)))
    assert "'https://x/cb'" in info.value.message and "<div" not in info.value.message
    assert "https://sync.example.com/oauth/dynamics/dynamics-prod/callback" in (info.value.remedy or "")
    asyncio.run(preflight_sign_in(cfg, url, transport=_page(200, "<html>Sign in to your account</html>")))
    asyncio.run(
        preflight_sign_in(cfg, url, transport=_page(302, "", Location="https://sync.example.com/cb?code=1"))
    )
    with pytest.raises(E.AuthFlowError):
        asyncio.run(preflight_sign_in(cfg, "https://evil.example.com/authorize", transport=_page(200)))
