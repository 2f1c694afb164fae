"""The token endpoints: ``/{tenant}/oauth2/v2.0/token`` and the v1 ``/{tenant}/oauth2/token``.

Grants: ``authorization_code`` (with PKCE), ``refresh_token`` (rotating) and ``client_credentials``; client
authentication by ``client_secret`` in the body or HTTP Basic. v1 differs by ``resource=`` instead of ``scope``
and string-typed numbers in the response.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response

from dynasync.emulator.directory import DYNAMICS_CRM_APP_ID, AppRegistration, Tenant, User
from dynasync.emulator.grants import GrantError, RefreshGrant, pkce_matches
from dynasync.emulator.identity_errors import AadError, aad
from dynasync.emulator.identity_service import NO_STORE, IdentityService, json_response, public_base

__all__ = ["token_endpoint"]

Endpoint = Callable[[Request], Awaitable[Response]]

_NOT_EMULATED_GRANTS = {
    "password": "the resource owner password grant",
    "urn:ietf:params:oauth:grant-type:device_code": "the device code grant",
    "urn:ietf:params:oauth:grant-type:jwt-bearer": "the on-behalf-of grant",
    "urn:ietf:params:oauth:grant-type:saml1_1-bearer": "the SAML bearer grant",
    "urn:ietf:params:oauth:grant-type:token-exchange": "the token exchange grant",
}


@dataclass(frozen=True)
class _Call:
    """One token request, after tenant and client authentication."""

    service: IdentityService
    form: Mapping[str, str]
    tenant: Tenant | None
    segment: str
    app: AppRegistration
    base: str
    v1: bool


def _grant_error(error: GrantError) -> AadError:
    if error.kind == "redeemed":
        return aad.code_redeemed()
    if error.kind == "expired":
        return aad.grant_expired()
    return aad.grant_malformed()


def _client_info(user: User) -> str:
    raw = json.dumps({"uid": user.object_id, "utid": user.tenant_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise AadError(
            "invalid_client", 0, "The Authorization header is not valid HTTP Basic.", status=401
        ) from None
    client_id, _, secret = decoded.partition(":")
    return unquote(client_id), unquote(secret)


def _authenticate(
    service: IdentityService,
    form: Mapping[str, str],
    headers: Mapping[str, str],
    tenant: Tenant | None,
    segment: str,
) -> AppRegistration:
    basic = _basic_credentials(headers.get("authorization"))
    client_id = form.get("client_id", "")
    secret = form.get("client_secret")
    if basic is not None:
        if client_id and client_id != basic[0]:
            raise AadError(
                "invalid_request", 0, "client_id in the body and in the Authorization header differ."
            )
        client_id, secret = basic
    if not client_id:
        raise aad.missing_parameter("client_id")
    app = service.find_app(client_id, tenant, segment)
    if "client_assertion" in form:
        raise aad.not_emulated("certificate credentials (client_assertion); use a client secret")
    if not secret:
        raise aad.missing_client_credential()
    verdict = app.check_secret(secret, service.clock.now())
    if verdict == "wrong":
        raise aad.invalid_secret(app.client_id)
    if verdict == "expired":
        raise aad.expired_secret(app.client_id)
    return app


def _numbers(body: dict[str, Any], v1: bool) -> dict[str, Any]:
    """v1 answers every number as a string."""
    return {k: (str(v) if v1 and isinstance(v, int) else v) for k, v in body.items()}


def _client_credentials(call: _Call) -> dict[str, Any]:
    service, app = call.service, call.app
    if call.tenant is None:
        raise aad.no_tenant()
    if call.v1:
        raw = call.form.get("resource")
        if not raw:
            raise aad.missing_parameter("resource")
        scope_text = raw
    else:
        scope_text = call.form.get("scope", "")
        if not scope_text:
            raise aad.missing_parameter("scope")
        items = scope_text.split()
        if len(items) != 1 or not items[0].endswith("/.default"):
            raise aad.scope_needs_default(scope_text)
        raw = items[0][: -len("/.default")]
    resource = service.served_resource(raw, call.base)
    if resource is None:
        raise aad.resource_not_found(raw, call.tenant.id)
    if service.require_admin_consent_for_client_credentials and call.tenant.id not in app.consented_tenants:
        raise aad.consent_required(app.client_id, app.display_name)
    issued = service.tokens.issue_access_token(
        tenant_id=call.tenant.id,
        audience=resource,
        app_id=app.client_id,
        object_id=app.service_principal_id,
        roles=app.application_roles(DYNAMICS_CRM_APP_ID),
    )
    body: dict[str, Any] = {
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "ext_expires_in": issued.expires_in,
    }
    if call.v1:
        body |= {
            "expires_on": int(issued.expires_at.timestamp()),
            "not_before": issued.claims["nbf"],
            "resource": resource,
        }
    body["access_token"] = issued.token
    return _numbers(body, call.v1)


def _delegated(call: _Call, user: User, grant: RefreshGrant, nonce: str | None) -> dict[str, Any]:
    """Tokens for a signed-in user: access token, rotated refresh token, id_token and client_info."""
    service = call.service
    issued = service.tokens.issue_access_token(
        tenant_id=user.tenant_id,
        audience=grant.resource,
        app_id=call.app.client_id,
        object_id=user.object_id,
        scopes=grant.permissions,
        upn=user.upn,
        name=user.display_name,
    )
    body: dict[str, Any] = {"token_type": "Bearer"}
    if call.v1:
        body["scope"] = " ".join(grant.permissions)
    else:
        body["scope"] = " ".join(f"{grant.resource}/{p}" for p in grant.permissions)
    body |= {"expires_in": issued.expires_in, "ext_expires_in": issued.expires_in}
    if call.v1:
        body |= {
            "expires_on": int(issued.expires_at.timestamp()),
            "not_before": issued.claims["nbf"],
            "resource": grant.resource,
        }
    body["access_token"] = issued.token
    if call.v1 or "offline_access" in grant.scopes:
        body["refresh_token"] = service.refresh_tokens.issue(grant)
    if "openid" in grant.scopes:
        body["id_token"] = service.tokens.issue_id_token(
            issuer=f"{call.base}/{user.tenant_id}/v2.0",
            client_id=call.app.client_id,
            tenant_id=user.tenant_id,
            object_id=user.object_id,
            preferred_username=user.upn,
            name=user.display_name,
            nonce=nonce,
        )
    if call.form.get("client_info") == "1":
        body["client_info"] = _client_info(user)
    return _numbers(body, call.v1)


def _requested_resource(call: _Call, current: str) -> str:
    """The resource a code/refresh redemption asks for (scope or v1 resource), defaulting to ``current``."""
    if call.v1:
        raw = call.form.get("resource")
    else:
        scope = call.form.get("scope", "")
        resource_items = [s.rpartition("/")[0] for s in scope.split() if "/" in s]
        raw = resource_items[0] if resource_items else None
    if not raw:
        return current
    resource = call.service.served_resource(raw, call.base)
    if resource is None:
        raise aad.resource_not_found(raw, call.tenant.id if call.tenant else call.segment)
    return resource


def _user_for(call: _Call, tenant_id: str, user_object_id: str) -> User:
    if call.tenant is not None and call.tenant.id != tenant_id:
        raise aad.grant_wrong_client()
    user = call.service.directory.users.get(user_object_id)
    if user is None:
        raise aad.grant_malformed()
    if not call.service.directory.has_consent(call.app, tenant_id, user.object_id):
        raise aad.consent_required(call.app.client_id, call.app.display_name)
    return user


def _authorization_code(call: _Call) -> dict[str, Any]:
    value = call.form.get("code")
    if not value:
        raise aad.missing_parameter("code")
    try:
        code = call.service.codes.redeem(value)
    except GrantError as exc:
        raise _grant_error(exc) from exc
    if code.client_id != call.app.client_id:
        raise aad.grant_wrong_client()
    redirect_uri = call.form.get("redirect_uri")
    if not redirect_uri:
        raise aad.missing_parameter("redirect_uri")
    if redirect_uri != code.redirect_uri:
        raise aad.redirect_mismatch(redirect_uri, call.app.client_id)
    if code.code_challenge is not None:
        verifier = call.form.get("code_verifier")
        if not verifier or not pkce_matches(verifier, code.code_challenge, code.code_challenge_method):
            raise aad.pkce_mismatch()
    if _requested_resource(call, code.resource) != code.resource:
        raise aad.scope_invalid("The scope's resource differs from the one the code was issued for.")
    user = _user_for(call, code.tenant_id, code.user_object_id)
    grant = RefreshGrant(
        code.tenant_id,
        code.client_id,
        user.object_id,
        code.resource,
        code.permissions,
        code.scopes,
        code.expires_at,
    )
    return _delegated(call, user, grant, code.nonce)


def _refresh_token(call: _Call) -> dict[str, Any]:
    value = call.form.get("refresh_token")
    if not value:
        raise aad.missing_parameter("refresh_token")
    try:
        grant = call.service.refresh_tokens.redeem(value)
    except GrantError as exc:
        raise (aad.grant_expired() if exc.kind == "expired" else aad.grant_malformed()) from exc
    if grant.client_id != call.app.client_id:
        raise aad.grant_wrong_client()
    user = _user_for(call, grant.tenant_id, grant.user_object_id)
    resource = _requested_resource(call, grant.resource)
    scopes = grant.scopes
    if not call.v1 and call.form.get("scope"):
        # The new tokens cover what this request asks for (OIDC scopes included), within the original grant.
        asked = set(call.form["scope"].split())
        scopes = tuple(s for s in grant.scopes if s in asked or s == "offline_access")
    renewed = RefreshGrant(
        grant.tenant_id,
        grant.client_id,
        user.object_id,
        resource,
        grant.permissions,
        scopes,
        grant.expires_at,
    )
    return _delegated(call, user, renewed, None)


_GRANTS: dict[str, Callable[[_Call], dict[str, Any]]] = {
    "client_credentials": _client_credentials,
    "authorization_code": _authorization_code,
    "refresh_token": _refresh_token,
}


def token_endpoint(service: IdentityService, *, v1: bool) -> Endpoint:
    """Build the POST handler of ``/{tenant}/oauth2/v2.0/token`` (or the v1 ``/{tenant}/oauth2/token``)."""

    async def token(request: Request) -> Response:
        correlation = request.headers.get("client-request-id")
        headers = dict(NO_STORE)
        if correlation:
            headers["client-request-id"] = correlation
        try:
            form = {k: str(v) for k, v in (await request.form()).items()}
            segment = request.path_params["tenant"]
            tenant = service.resolve_tenant(segment)
            grant_type = form.get("grant_type")
            if not grant_type:
                raise aad.missing_parameter("grant_type")
            if grant_type in _NOT_EMULATED_GRANTS:
                raise aad.not_emulated(_NOT_EMULATED_GRANTS[grant_type])
            handler = _GRANTS.get(grant_type)
            if handler is None:
                raise aad.unsupported_grant(grant_type)
            app = _authenticate(service, form, request.headers, tenant, segment)
            call = _Call(service, form, tenant, segment, app, public_base(request), v1)
            body = handler(call)
        except AadError as exc:
            return json_response(
                exc.envelope(service.clock.now(), correlation_id=correlation), exc.status, headers
            )
        return json_response(body, 200, headers)

    return token
