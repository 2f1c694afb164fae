from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
from starlette.applications import Starlette

from dynasync.clock import FrozenClock
from dynasync.emulator.directory import ApiPermission, Directory, ReadyApp
from dynasync.emulator.identity import IdentityService, identity_routes
from dynasync.emulator.tokens import InvalidToken, SigningKey, TokenIssuer

ORG = "https://contoso.crm.dynamics.com"
BASE = "https://login.test"
TID = "11111111-2222-3333-4444-555555555555"
DOMAIN = "contoso.onmicrosoft.com"
REDIRECT = "https://app.example/oauth/callback"
START = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)
SCOPES = f"{ORG}/user_impersonation openid profile offline_access"
DESCRIPTION = re.compile(
    r"^AADSTS(\d+): .+ Trace ID: [0-9a-f-]{36} Correlation ID: [0-9a-f-]{36} Timestamp: \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$"
)


class SyncClient:
    """A synchronous facade over httpx.ASGITransport (Starlette's TestClient now wants another package)."""

    def __init__(self, app: Starlette, base_url: str) -> None:
        self.app = app
        self.base_url = base_url

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url=self.base_url) as client:
                return await client.request(method, url, **kwargs)

        return asyncio.run(send())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)


@pytest.fixture(scope="module")
def signing_key() -> SigningKey:
    return SigningKey.generate()


@dataclass
class Env:
    client: SyncClient
    service: IdentityService
    directory: Directory
    ready: ReadyApp
    clock: FrozenClock
    saves: list[int]

    def token(self, tenant: str = TID, *, path: str = "oauth2/v2.0/token", **form: str) -> httpx.Response:
        return self.client.post(f"/{tenant}/{path}", data=form)

    def client_credentials(self, **overrides: str) -> httpx.Response:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.ready.client_id,
            "client_secret": self.ready.client_secret,
            "scope": f"{ORG}/.default",
        } | overrides
        return self.token(**form)


@pytest.fixture
def env(signing_key: SigningKey) -> Iterator[Env]:
    clock = FrozenClock(START)
    directory = Directory()
    directory.add_demo_tenant(DOMAIN, tenant_id=TID)
    ready = directory.create_ready_app(TID, redirect_uris=[REDIRECT], now=START)
    saves: list[int] = []
    service = IdentityService(
        directory,
        TokenIssuer(clock, signing_key),
        org_urls=[ORG],
        on_directory_change=lambda d: saves.append(len(d.apps)),
    )
    client = SyncClient(Starlette(routes=identity_routes(service)), BASE)
    yield Env(client, service, directory, ready, clock, saves)


def assert_aad_error(response: httpx.Response, status: int, error: str, code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == error
    assert body["error_codes"] == [code]
    match = DESCRIPTION.match(body["error_description"])
    assert match is not None, body["error_description"]
    assert int(match.group(1)) == code
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", body["timestamp"])
    assert body["trace_id"] and body["correlation_id"]
    assert body["error_uri"] == f"https://login.microsoftonline.com/error?code={code}"
    return body


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(40)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_params(env: Env, challenge: str | None = None, **extra: str) -> dict[str, str]:
    params = {
        "client_id": env.ready.client_id,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "scope": SCOPES,
        "state": "st-1",
        "nonce": "nonce-1",
    }
    if challenge:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    return params | extra


def request_id(page: str) -> str:
    match = re.search(r"name='request_id' value='([^']+)'", page)
    assert match, page
    return match.group(1)


def sign_in(env: Env, params: dict[str, str], upn: str, password: str, **form: str) -> httpx.Response:
    page = env.client.get(f"/{TID}/oauth2/v2.0/authorize", params=params)
    assert page.status_code == 200, page.text
    fields = {"request_id": request_id(page.text), "username": upn, "password": password, "action": "accept"}
    return env.client.post(f"/{TID}/oauth2/v2.0/authorize", data=fields | form)


def redirect_query(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


# -- discovery -------------------------------------------------------------------------------------------------


def test_v2_discovery_by_domain_uses_tenant_guid(env: Env) -> None:
    response = env.client.get(f"/{DOMAIN}/v2.0/.well-known/openid-configuration")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "max-age=86400, private"
    doc = response.json()
    assert doc["token_endpoint"] == f"{BASE}/{TID}/oauth2/v2.0/token"
    assert doc["authorization_endpoint"] == f"{BASE}/{TID}/oauth2/v2.0/authorize"
    assert doc["jwks_uri"] == f"{BASE}/{TID}/discovery/v2.0/keys"
    assert doc["issuer"] == f"{BASE}/{TID}/v2.0"


def test_discovery_honours_forwarded_headers(env: Env) -> None:
    response = env.client.get(
        f"/{TID}/v2.0/.well-known/openid-configuration",
        headers={"X-Forwarded-Host": "login.proxy.example:8443", "X-Forwarded-Proto": "https"},
    )
    assert response.json()["token_endpoint"] == f"https://login.proxy.example:8443/{TID}/oauth2/v2.0/token"


def test_v1_and_common_discovery(env: Env) -> None:
    v1 = env.client.get(f"/{TID}/.well-known/openid-configuration").json()
    assert v1["issuer"] == f"https://sts.windows.net/{TID}/"
    assert v1["token_endpoint"] == f"{BASE}/{TID}/oauth2/token"
    common = env.client.get("/organizations/v2.0/.well-known/openid-configuration").json()
    assert common["issuer"] == f"{BASE}/{{tenantid}}/v2.0"
    assert common["token_endpoint"] == f"{BASE}/organizations/oauth2/v2.0/token"


def test_unknown_and_malformed_tenants(env: Env) -> None:
    unknown = env.client.get(
        "/fabrikam.onmicrosoft.com/v2.0/.well-known/openid-configuration",
        headers={"client-request-id": "0b9c2f3e-1111-2222-3333-444455556666"},
    )
    body = assert_aad_error(unknown, 400, "invalid_tenant", 90002)
    assert "Tenant 'fabrikam.onmicrosoft.com' not found" in body["error_description"]
    assert body["correlation_id"] == "0b9c2f3e-1111-2222-3333-444455556666"
    assert_aad_error(
        env.client.get("/contoso/v2.0/.well-known/openid-configuration"), 400, "invalid_request", 900023
    )


def test_keys_and_instance_discovery(env: Env) -> None:
    keys = env.client.get(f"/{TID}/discovery/v2.0/keys").json()["keys"]
    assert keys[0]["kid"] == env.service.tokens.signing_key.kid and keys[0]["kty"] == "RSA"
    ok = env.client.get(
        "/common/discovery/instance",
        params={"api-version": "1.1", "authorization_endpoint": f"{BASE}/{TID}/oauth2/v2.0/authorize"},
    ).json()
    assert ok["tenant_discovery_endpoint"] == f"{BASE}/{TID}/v2.0/.well-known/openid-configuration"
    foreign = env.client.get(
        "/common/discovery/instance",
        params={"authorization_endpoint": f"https://evil.example/{TID}/oauth2/v2.0/authorize"},
    )
    assert foreign.status_code == 400 and foreign.json()["error"] == "invalid_instance"


# -- client credentials ----------------------------------------------------------------------------------------


def test_client_credentials_success(env: Env) -> None:
    response = env.client_credentials()
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store, no-cache"
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3599 and isinstance(body["ext_expires_in"], int)
    assert "refresh_token" not in body and "id_token" not in body
    claims = env.service.verify_bearer(f"Bearer {body['access_token']}", ORG + "/")
    app = env.directory.apps[env.ready.client_id]
    assert claims.app_id == env.ready.client_id
    assert claims.object_id == app.service_principal_id
    assert claims.is_app_only and claims.tenant_id == TID


def test_client_credentials_with_basic_auth_and_domain_tenant(env: Env) -> None:
    raw = f"{env.ready.client_id}:{env.ready.client_secret}".encode()
    response = env.client.post(
        f"/{DOMAIN}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "scope": f"{ORG}/.default"},
        headers={"Authorization": "Basic " + base64.b64encode(raw).decode()},
    )
    assert response.status_code == 200, response.text


def test_same_origin_org_is_served(env: Env) -> None:
    response = env.client_credentials(scope=f"{BASE}/.default")
    assert response.status_code == 200, response.text
    env.service.verify_access_token(response.json()["access_token"], BASE)


def test_token_expires_when_clock_moves(env: Env) -> None:
    token = env.client_credentials().json()["access_token"]
    env.clock.advance(dt.timedelta(seconds=3599))
    with pytest.raises(InvalidToken) as info:
        env.service.verify_access_token(token, ORG)
    assert info.value.reason == "expired"
    with pytest.raises(InvalidToken) as info:
        env.service.verify_bearer(None, ORG)
    assert info.value.reason == "missing"


@pytest.mark.parametrize(
    ("overrides", "status", "error", "code"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client", 7000215),
        ({"client_id": "99999999-9999-9999-9999-999999999999"}, 400, "unauthorized_client", 700016),
        ({"scope": f"{ORG}/user_impersonation"}, 400, "invalid_scope", 1002012),
        ({"scope": "https://other.crm.dynamics.com/.default"}, 400, "invalid_resource", 500011),
        ({"grant_type": "magic"}, 400, "unsupported_grant_type", 70003),
        ({"grant_type": ""}, 400, "invalid_request", 900144),
        ({"client_secret": ""}, 401, "invalid_client", 7000218),
    ],
)
def test_client_credentials_errors(
    env: Env, overrides: dict[str, str], status: int, error: str, code: int
) -> None:
    assert_aad_error(env.client_credentials(**overrides), status, error, code)


def test_wrong_secret_message_names_the_app(env: Env) -> None:
    body = assert_aad_error(env.client_credentials(client_secret="nope"), 401, "invalid_client", 7000215)
    assert f"secret added to app '{env.ready.client_id}'" in body["error_description"]


def test_expired_secret(env: Env) -> None:
    env.clock.advance(dt.timedelta(days=181))
    assert_aad_error(env.client_credentials(), 401, "invalid_client", 7000222)


def test_unknown_tenant_on_token_endpoint(env: Env) -> None:
    response = env.token("fabrikam.onmicrosoft.com", grant_type="client_credentials")
    assert_aad_error(response, 400, "invalid_tenant", 90002)


def test_missing_admin_consent_and_switch(env: Env) -> None:
    env.directory.revoke_admin_consent(env.ready.client_id)
    body = assert_aad_error(env.client_credentials(), 400, "invalid_grant", 65001)
    assert body["suberror"] == "consent_required"
    assert "named 'Syncari Integration'" in body["error_description"]
    env.service.require_admin_consent_for_client_credentials = False
    assert env.client_credentials().status_code == 200


def test_not_emulated_grant_is_a_clear_error(env: Env) -> None:
    response = env.client_credentials(grant_type="password")
    assert response.status_code == 400
    assert "does not implement the resource owner password grant" in response.json()["error_description"]


def test_v1_client_credentials_uses_resource_and_strings(env: Env) -> None:
    response = env.token(
        path="oauth2/token",
        grant_type="client_credentials",
        client_id=env.ready.client_id,
        client_secret=env.ready.client_secret,
        resource=ORG + "/",
    )
    body = response.json()
    assert response.status_code == 200, body
    assert body["expires_in"] == "3599" and body["ext_expires_in"] == "3599"
    assert body["resource"] == ORG and body["expires_on"].isdigit() and body["not_before"].isdigit()
    env.service.verify_access_token(body["access_token"], ORG)


# -- authorization code ----------------------------------------------------------------------------------------


def redeem(env: Env, code: str, verifier: str | None, **extra: str) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "client_id": env.ready.client_id,
        "client_secret": env.ready.client_secret,
        "code": code,
        "redirect_uri": REDIRECT,
        "scope": SCOPES,
        "client_info": "1",
    }
    if verifier:
        form["code_verifier"] = verifier
    return env.token(**(form | extra))


def test_auth_code_flow_with_sign_in_page_refresh_and_reuse(env: Env) -> None:
    verifier, challenge = pkce()
    params = authorize_params(env, challenge)
    page = env.client.get(f"/{TID}/oauth2/v2.0/authorize", params=params)
    assert "Syncari Integration" in page.text and "user@contoso.onmicrosoft.com" in page.text
    assert "Accept" in page.text

    wrong = env.client.post(
        f"/{TID}/oauth2/v2.0/authorize",
        data={"request_id": request_id(page.text), "username": "user@contoso.onmicrosoft.com", "password": "x",
              "action": "accept"},
    )  # fmt: skip
    assert wrong.status_code == 200 and "AADSTS50126" in wrong.text
    done = env.client.post(
        f"/{TID}/oauth2/v2.0/authorize",
        data={"request_id": request_id(wrong.text), "username": "user@contoso.onmicrosoft.com",
              "password": "emulator-user", "action": "accept"},
    )  # fmt: skip
    query = redirect_query(done)
    assert query["state"] == "st-1"

    response = redeem(env, query["code"], verifier)
    body = response.json()
    assert response.status_code == 200, body
    assert body["scope"] == f"{ORG}/user_impersonation"
    assert isinstance(body["expires_in"], int)
    user = env.directory.user_by_upn("user@contoso.onmicrosoft.com")
    assert user is not None
    claims = env.service.verify_access_token(body["access_token"], ORG)
    assert claims.object_id == user.object_id and claims.scopes == ("user_impersonation",)
    assert claims.upn == user.upn and claims.app_id == env.ready.client_id
    id_claims = jwt.decode(body["id_token"], options={"verify_signature": False})
    assert id_claims["aud"] == env.ready.client_id and id_claims["nonce"] == "nonce-1"
    assert id_claims["iss"] == f"{BASE}/{TID}/v2.0" and id_claims["tid"] == TID
    info = json.loads(base64.urlsafe_b64decode(body["client_info"] + "=="))
    assert info == {"uid": user.object_id, "utid": TID}

    assert_aad_error(redeem(env, query["code"], verifier), 400, "invalid_grant", 54005)

    refreshed = env.token(
        grant_type="refresh_token",
        client_id=env.ready.client_id,
        client_secret=env.ready.client_secret,
        refresh_token=body["refresh_token"],
        scope=SCOPES,
    )
    new = refreshed.json()
    assert refreshed.status_code == 200, new
    assert new["refresh_token"] != body["refresh_token"]
    assert env.service.verify_access_token(new["access_token"], ORG).object_id == user.object_id
    again = env.token(
        grant_type="refresh_token",
        client_id=env.ready.client_id,
        client_secret=env.ready.client_secret,
        refresh_token=body["refresh_token"],
    )
    assert_aad_error(again, 400, "invalid_grant", 9002313)


def test_pkce_mismatch_and_missing_verifier(env: Env) -> None:
    _, challenge = pkce()
    env.service.auto_approve = True
    code = redirect_query(
        env.client.get(f"/{TID}/oauth2/v2.0/authorize", params=authorize_params(env, challenge))
    )
    assert_aad_error(redeem(env, code["code"], "not-the-verifier"), 400, "invalid_grant", 50148)
    code = redirect_query(
        env.client.get(f"/{TID}/oauth2/v2.0/authorize", params=authorize_params(env, challenge))
    )
    assert_aad_error(redeem(env, code["code"], None), 400, "invalid_grant", 50148)


def test_expired_code_and_redirect_mismatch(env: Env) -> None:
    env.service.auto_approve = True
    code = redirect_query(env.client.get(f"/{TID}/oauth2/v2.0/authorize", params=authorize_params(env)))[
        "code"
    ]
    env.clock.advance(dt.timedelta(minutes=11))
    assert_aad_error(redeem(env, code, None), 400, "invalid_grant", 70008)
    code = redirect_query(env.client.get(f"/{TID}/oauth2/v2.0/authorize", params=authorize_params(env)))[
        "code"
    ]
    assert_aad_error(
        redeem(env, code, None, redirect_uri="https://app.example/other"), 400, "invalid_request", 50011
    )


def test_expired_refresh_token(env: Env) -> None:
    env.service.auto_approve = True
    code = redirect_query(env.client.get(f"/{TID}/oauth2/v2.0/authorize", params=authorize_params(env)))[
        "code"
    ]
    refresh = redeem(env, code, None).json()["refresh_token"]
    env.clock.advance(dt.timedelta(days=91))
    response = env.token(
        grant_type="refresh_token",
        client_id=env.ready.client_id,
        client_secret=env.ready.client_secret,
        refresh_token=refresh,
    )
    assert_aad_error(response, 400, "invalid_grant", 70008)


def test_auto_approve_signs_in_default_or_hinted_user(env: Env) -> None:
    env.service.auto_approve = True
    code = redirect_query(
        env.client.get(
            f"/{TID}/oauth2/v2.0/authorize",
            params=authorize_params(env, login_hint="user@contoso.onmicrosoft.com"),
        )
    )["code"]
    token = redeem(env, code, None).json()["access_token"]
    assert env.service.verify_access_token(token, ORG).upn == "user@contoso.onmicrosoft.com"
    code = redirect_query(env.client.get(f"/{TID}/oauth2/v2.0/authorize", params=authorize_params(env)))[
        "code"
    ]
    token = redeem(env, code, None).json()["access_token"]
    assert env.service.verify_access_token(token, ORG).upn == "admin@contoso.onmicrosoft.com"


def test_authorize_page_errors_are_not_redirected(env: Env) -> None:
    unknown = env.client.get(
        f"/{TID}/oauth2/v2.0/authorize",
        params=authorize_params(env, client_id="99999999-9999-9999-9999-999999999999"),
    )
    assert unknown.status_code == 400 and "AADSTS700016" in unknown.text
    mismatch = env.client.get(
        f"/{TID}/oauth2/v2.0/authorize", params=authorize_params(env, redirect_uri="https://evil.example/cb")
    )
    assert mismatch.status_code == 400 and "AADSTS50011" in mismatch.text
    assert "https://evil.example/cb" in mismatch.text
    bad_tenant = env.client.get(
        "/fabrikam.onmicrosoft.com/oauth2/v2.0/authorize", params=authorize_params(env)
    )
    assert bad_tenant.status_code == 400 and "AADSTS90002" in bad_tenant.text


@pytest.mark.parametrize(
    ("extra", "error", "code"),
    [
        ({"scope": "openid profile"}, "invalid_scope", "AADSTS70011"),
        ({"scope": "User.Read openid"}, "invalid_scope", "AADSTS70011"),
        ({"scope": "https://other.crm.dynamics.com/user_impersonation"}, "invalid_resource", "AADSTS500011"),
        ({"scope": f"{ORG}/.default https://other.example/.default"}, "invalid_scope", "AADSTS28000"),
        ({"response_type": "token"}, "unsupported_response_type", "AADSTS70005"),
        ({"code_challenge": "abc", "code_challenge_method": "S512"}, "invalid_request", "AADSTS501491"),
        ({"prompt": "none"}, "login_required", "AADSTS50058"),
    ],
)
def test_authorize_redirected_errors(env: Env, extra: dict[str, str], error: str, code: str) -> None:
    query = redirect_query(
        env.client.get(f"/{TID}/oauth2/v2.0/authorize", params=authorize_params(env, **extra))
    )
    assert query["error"] == error and query["state"] == "st-1"
    assert query["error_description"].startswith(code + ":")


def test_app_without_dynamics_permission(env: Env) -> None:
    bare = env.directory.register_app(TID, "Bare", redirect_uris=[REDIRECT])
    query = redirect_query(
        env.client.get(
            f"/{TID}/oauth2/v2.0/authorize", params=authorize_params(env, client_id=bare.client_id)
        )
    )
    assert query["error"] == "invalid_client" and query["error_description"].startswith("AADSTS650057:")


def test_consent_required_for_ordinary_user_and_granted_by_admin(env: Env) -> None:
    app = env.directory.register_app(
        TID, "Needs Consent", redirect_uris=[REDIRECT], permissions=[ApiPermission()]
    )
    params = authorize_params(env, client_id=app.client_id)
    query = redirect_query(sign_in(env, params, "user@contoso.onmicrosoft.com", "emulator-user"))
    assert query["error"] == "consent_required"
    assert query["error_description"].startswith("AADSTS65001: The user or administrator has not consented")

    query = redirect_query(
        sign_in(env, params, "admin@contoso.onmicrosoft.com", "emulator-admin", consent_org="on")
    )
    assert "code" in query
    assert app.admin_consent and env.saves
    query = redirect_query(sign_in(env, params, "user@contoso.onmicrosoft.com", "emulator-user"))
    assert "code" in query


def test_cancel_is_access_denied(env: Env) -> None:
    query = redirect_query(
        sign_in(env, authorize_params(env), "user@contoso.onmicrosoft.com", "emulator-user", action="cancel")
    )
    assert query["error"] == "access_denied" and query["error_description"].startswith("AADSTS65004:")


def test_form_cannot_be_posted_twice(env: Env) -> None:
    page = env.client.get(f"/{TID}/oauth2/v2.0/authorize", params=authorize_params(env))
    fields = {
        "request_id": request_id(page.text),
        "username": "user@contoso.onmicrosoft.com",
        "password": "emulator-user",
        "action": "accept",
    }
    assert env.client.post(f"/{TID}/oauth2/v2.0/authorize", data=fields).status_code == 302
    assert env.client.post(f"/{TID}/oauth2/v2.0/authorize", data=fields).status_code == 400


def test_v1_token_endpoint_redeems_code_with_strings(env: Env) -> None:
    env.service.auto_approve = True
    code = redirect_query(env.client.get(f"/{TID}/oauth2/v2.0/authorize", params=authorize_params(env)))[
        "code"
    ]
    response = env.token(
        path="oauth2/token",
        grant_type="authorization_code",
        client_id=env.ready.client_id,
        client_secret=env.ready.client_secret,
        code=code,
        redirect_uri=REDIRECT,
        resource=ORG,
    )
    body = response.json()
    assert response.status_code == 200, body
    assert body["expires_in"] == "3599" and body["scope"] == "user_impersonation"
    assert body["resource"] == ORG and body["refresh_token"]


# -- admin consent ---------------------------------------------------------------------------------------------


def test_admin_consent_endpoint(env: Env) -> None:
    app = env.directory.register_app(TID, "Later", redirect_uris=[REDIRECT], permissions=[ApiPermission()])
    params = {"client_id": app.client_id, "redirect_uri": REDIRECT, "state": "s-9"}
    page = env.client.get(f"/{DOMAIN}/adminconsent", params=params)
    assert page.status_code == 200
    fields = {"request_id": request_id(page.text), "username": "user@contoso.onmicrosoft.com"}
    denied = env.client.post(
        f"/{DOMAIN}/adminconsent", data=fields | {"password": "emulator-user", "action": "accept"}
    )
    assert redirect_query(denied)["error"] == "access_denied"
    assert not app.admin_consent

    page = env.client.get(f"/{DOMAIN}/adminconsent", params=params)
    cancel = env.client.post(
        f"/{DOMAIN}/adminconsent", data={"request_id": request_id(page.text), "action": "cancel"}
    )
    assert redirect_query(cancel) == {
        "error": "permission_denied",
        "error_description": "The admin canceled the request",
        "state": "s-9",
    }

    env.service.auto_approve = True
    query = redirect_query(
        env.client.get(f"/{DOMAIN}/v2.0/adminconsent", params=params | {"scope": f"{ORG}/.default"})
    )
    assert query == {"admin_consent": "True", "tenant": TID, "state": "s-9", "scope": f"{ORG}/.default"}
    assert app.admin_consent and env.saves


def test_www_authenticate_header(env: Env) -> None:
    value = env.service.www_authenticate("https://127.0.0.1:8443", ORG)
    assert (
        value == f"Bearer authorization_uri=https://127.0.0.1:8443/{TID}/oauth2/authorize, resource_id={ORG}/"
    )
    assert urlencode({"a": value})


def test_form_post_response_mode(env: Env) -> None:
    env.service.auto_approve = True
    response = env.client.get(
        f"/{TID}/oauth2/v2.0/authorize", params=authorize_params(env, response_mode="form_post")
    )
    assert response.status_code == 200
    assert f"<form method='post' action='{REDIRECT}'>" in response.text
    fields = dict(re.findall(r"<input type='hidden' name='([^']+)' value='([^']*)'>", response.text))
    assert fields["state"] == "st-1" and fields["code"]
    assert redeem(env, fields["code"], None).status_code == 200
    fragment = env.client.get(
        f"/{TID}/oauth2/v2.0/authorize", params=authorize_params(env, response_mode="fragment")
    )
    assert "does not implement response_mode=fragment" in redirect_query(fragment)["error_description"]
