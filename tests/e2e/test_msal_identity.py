"""Unmodified MSAL against the identity emulator over real TLS on loopback, with REQUESTS_CA_BUNDLE set."""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import msal
import pytest
import requests
from starlette.applications import Starlette

from dynasync.clock import SystemClock
from dynasync.emulator.directory import ApiPermission, Directory, ReadyApp
from dynasync.emulator.identity import IdentityService, identity_routes
from dynasync.emulator.testing_server import serve_in_thread
from dynasync.emulator.tls import TlsMaterial, ensure_ca, requests_session_trusting
from dynasync.emulator.tokens import TokenIssuer

pytestmark = pytest.mark.e2e

TID = "7f3c1a52-6a0e-4f1c-9a43-2b9c6d1e8f01"
DOMAIN = "contoso.onmicrosoft.com"
REDIRECT = "https://dynasync.example/oauth/callback"
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


@dataclass
class Emulator:
    base: str
    tls: TlsMaterial
    service: IdentityService
    directory: Directory
    ready: ReadyApp
    sessions: list[requests.Session] = field(default_factory=list)

    def session(self) -> requests.Session:
        """A session trusting the emulator CA; closed before the server stops so shutdown is immediate."""
        session = requests_session_trusting(self.tls.ca_cert_path)
        self.sessions.append(session)
        return session

    @property
    def authority(self) -> str:
        return f"{self.base}/{TID}"

    def app(
        self, ready: ReadyApp | None = None, *, secret: str | None = None, authority: str | None = None
    ) -> Any:
        chosen = ready or self.ready
        return msal.ConfidentialClientApplication(
            chosen.client_id,
            client_credential=secret or chosen.client_secret,
            authority=authority or self.authority,
            instance_discovery=False,
            http_client=self.session(),
        )


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    # Users' machines (and this one) export REQUESTS_CA_BUNDLE; keep it set to prove the recipe works with it.
    saved = os.environ.get("REQUESTS_CA_BUNDLE")
    if saved is None:
        os.environ["REQUESTS_CA_BUNDLE"] = SYSTEM_BUNDLE
    material = ensure_ca(Path(tmp_path_factory.mktemp("tls")))
    clock = SystemClock()
    directory = Directory()
    directory.add_demo_tenant(DOMAIN, tenant_id=TID)
    ready = directory.create_ready_app(TID, redirect_uris=[REDIRECT], now=clock.now())
    service = IdentityService(directory, TokenIssuer(clock))
    try:
        with serve_in_thread(Starlette(routes=identity_routes(service)), tls=material) as base:
            emulator = Emulator(base, material, service, directory, ready)
            yield emulator
            for session in emulator.sessions:
                session.close()
    finally:
        if saved is None:
            del os.environ["REQUESTS_CA_BUNDLE"]


@pytest.fixture(autouse=True)
def _interactive(emulator: Emulator) -> Iterator[None]:
    emulator.service.auto_approve = False
    yield
    emulator.service.auto_approve = False


def test_environment_really_has_a_ca_bundle_override() -> None:
    assert os.environ.get("REQUESTS_CA_BUNDLE")


def test_client_credentials(emulator: Emulator) -> None:
    result = emulator.app().acquire_token_for_client(scopes=[f"{emulator.base}/.default"])
    assert "access_token" in result, result
    assert result["token_type"] == "Bearer" and result["token_source"] == "identity_provider"
    claims = emulator.service.verify_access_token(result["access_token"], emulator.base)
    assert claims.app_id == emulator.ready.client_id and claims.is_app_only


def test_client_credentials_with_domain_authority(emulator: Emulator) -> None:
    app = emulator.app(authority=f"{emulator.base}/{DOMAIN}")
    result = app.acquire_token_for_client(scopes=[f"{emulator.base}/.default"])
    assert "access_token" in result, result
    assert emulator.service.verify_access_token(result["access_token"], emulator.base).tenant_id == TID


def test_msal_verify_parameter_alone_is_overridden_by_requests_ca_bundle(emulator: Emulator) -> None:
    # The trap the recipe avoids: MSAL's own verify= is replaced by REQUESTS_CA_BUNDLE inside requests.
    with pytest.raises(requests.exceptions.SSLError):  # raised by the discovery MSAL runs in its constructor
        msal.ConfidentialClientApplication(
            emulator.ready.client_id,
            client_credential=emulator.ready.client_secret,
            authority=emulator.authority,
            instance_discovery=False,
            verify=str(emulator.tls.ca_cert_path),
        )


def test_wrong_secret(emulator: Emulator) -> None:
    result = emulator.app(secret="not-the-secret").acquire_token_for_client(
        scopes=[f"{emulator.base}/.default"]
    )
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]
    assert result["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")


def test_unknown_tenant(emulator: Emulator) -> None:
    with pytest.raises(ValueError, match="Unable to get authority configuration") as info:
        emulator.app(authority=f"{emulator.base}/fabrikam.onmicrosoft.com")
    cause = info.value.__cause__ or info.value.__context__
    assert "HTTP status: 400" in str(
        cause
    ) and "AADSTS90002: Tenant 'fabrikam.onmicrosoft.com' not found" in str(cause)


def test_missing_admin_consent(emulator: Emulator) -> None:
    fresh = emulator.directory.create_ready_app(
        TID,
        display_name="Unconsented",
        redirect_uris=[REDIRECT],
        admin_consent=False,
        now=SystemClock().now(),
    )
    result = emulator.app(fresh).acquire_token_for_client(scopes=[f"{emulator.base}/.default"])
    assert result["error"] == "invalid_grant" and result["error_codes"] == [65001]
    assert result.get("suberror") == "consent_required"


def _sign_in(emulator: Emulator, auth_uri: str, upn: str, password: str) -> dict[str, str]:
    """Play the browser: open the sign-in page, submit the form, read what is sent to the redirect URI."""
    browser = emulator.session()
    page = browser.get(auth_uri, allow_redirects=False, timeout=10)
    request_id = re.search(r"name='request_id' value='([^']+)'", page.text)
    if page.status_code == 200 and request_id:
        action = re.search(r"action='([^']+)'", page.text)
        assert action, page.text
        page = browser.post(
            urljoin(auth_uri, action.group(1)),
            data={
                "request_id": request_id.group(1),
                "username": upn,
                "password": password,
                "action": "accept",
            },
            allow_redirects=False,
            timeout=10,
        )
    if page.status_code == 302:  # response_mode=query
        location = page.headers["Location"]
        assert location.startswith(REDIRECT)
        return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    # response_mode=form_post: a page whose form posts the result to the redirect URI.
    assert page.status_code == 200, page.text
    target = re.search(r"<form method='post' action='([^']+)'", page.text)
    assert target and html.unescape(target.group(1)) == REDIRECT, page.text
    fields = re.findall(r"<input type='hidden' name='([^']+)' value='([^']*)'>", page.text)
    return {html.unescape(k): html.unescape(v) for k, v in fields}


def test_auth_code_flow_with_sign_in_page_then_refresh(emulator: Emulator) -> None:
    app = emulator.app()
    scopes = [f"{emulator.base}/user_impersonation"]
    flow = app.initiate_auth_code_flow(scopes, redirect_uri=REDIRECT, response_mode="form_post")
    auth_response = _sign_in(emulator, flow["auth_uri"], "user@contoso.onmicrosoft.com", "emulator-user")

    result = app.acquire_token_by_auth_code_flow(flow, auth_response)

    assert "access_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == "user@contoso.onmicrosoft.com"
    claims = emulator.service.verify_access_token(result["access_token"], emulator.base)
    assert claims.upn == "user@contoso.onmicrosoft.com" and claims.scopes == ("user_impersonation",)

    accounts = app.get_accounts()
    assert [a["username"] for a in accounts] == ["user@contoso.onmicrosoft.com"]
    assert accounts[0]["home_account_id"] == f"{claims.object_id}.{TID}"
    cached = app.acquire_token_silent(scopes, account=accounts[0])
    assert cached is not None and cached["token_source"] == "cache"
    refreshed = app.acquire_token_silent(scopes, account=accounts[0], force_refresh=True)
    assert refreshed is not None and refreshed["token_source"] == "identity_provider", refreshed
    assert refreshed["access_token"] != result["access_token"]

    by_refresh = emulator.app().acquire_token_by_refresh_token(result["refresh_token"], scopes)
    # That refresh token was rotated away by the silent refresh above; the newest one still works.
    assert by_refresh["error"] == "invalid_grant", by_refresh
    newest = app.token_cache.find(msal.TokenCache.CredentialType.REFRESH_TOKEN)[0]["secret"]
    again = emulator.app().acquire_token_by_refresh_token(newest, scopes)
    assert "access_token" in again, again


# MSAL recommends form_post and warns otherwise; query mode is what older clients use, so cover it too.
@pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning")
def test_auth_code_flow_auto_approve_query_mode(emulator: Emulator) -> None:
    emulator.service.auto_approve = True
    app = emulator.app()
    flow = app.initiate_auth_code_flow([f"{emulator.base}/.default"], redirect_uri=REDIRECT)
    auth_response = _sign_in(emulator, flow["auth_uri"], "", "")
    result = app.acquire_token_by_auth_code_flow(flow, auth_response)
    assert "access_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == "admin@contoso.onmicrosoft.com"


def test_auth_code_flow_consent_required(emulator: Emulator) -> None:
    fresh = emulator.directory.create_ready_app(
        TID,
        display_name="Needs Consent",
        redirect_uris=[REDIRECT],
        admin_consent=False,
        now=SystemClock().now(),
    )
    assert fresh.client_id in emulator.directory.apps
    assert emulator.directory.apps[fresh.client_id].permissions == [ApiPermission()]
    app = emulator.app(fresh)
    flow = app.initiate_auth_code_flow(
        [f"{emulator.base}/user_impersonation"], redirect_uri=REDIRECT, response_mode="form_post"
    )
    auth_response = _sign_in(emulator, flow["auth_uri"], "user@contoso.onmicrosoft.com", "emulator-user")
    result = app.acquire_token_by_auth_code_flow(flow, auth_response)
    assert result["error"] == "consent_required"
    assert result["error_description"].startswith("AADSTS65001:")
