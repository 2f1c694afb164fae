"""The emulated Entra ID's HTTP surface: discovery documents, keys, and the route table ``identity_routes``.

Mount the routes at the root of the emulator app::

    service = IdentityService(directory=directory, tokens=TokenIssuer(clock, signing_key))
    app = Starlette(routes=[*identity_routes(service), ...])

All URLs in documents are absolute and built from the request (``X-Forwarded-Host``/``-Proto`` honoured), so
an authority ``https://127.0.0.1:<port>/<tenant>`` discovers endpoints on the same origin.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from dynasync.emulator.identity_authorize import adminconsent_endpoint, authorize_endpoint
from dynasync.emulator.identity_errors import AadError
from dynasync.emulator.identity_service import IdentityService, json_response, public_base
from dynasync.emulator.identity_token import token_endpoint

__all__ = ["IdentityService", "identity_routes"]

Endpoint = Callable[[Request], Awaitable[Response]]
_DISCOVERY_CACHE = {"Cache-Control": "max-age=86400, private"}
_CLAIMS_V2 = [
    "sub",
    "iss",
    "cloud_instance_name",
    "cloud_instance_host_name",
    "cloud_graph_host_name",
    "msgraph_host",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "acr",
    "nonce",
    "preferred_username",
    "name",
    "tid",
    "ver",
    "at_hash",
    "c_hash",
    "email",
]
_CLAIMS_V1 = [
    "sub",
    "iss",
    "cloud_instance_name",
    "cloud_instance_host_name",
    "cloud_graph_host_name",
    "msgraph_host",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "acr",
    "amr",
    "nonce",
    "email",
    "given_name",
    "family_name",
    "nickname",
]


def _error(service: IdentityService, request: Request, error: AadError) -> Response:
    correlation = request.headers.get("client-request-id")
    return json_response(error.envelope(service.clock.now(), correlation_id=correlation), error.status)


def _openid_v2(base: str, segment: str, tenant_id: str | None) -> dict[str, Any]:
    path = tenant_id or segment
    issuer_tenant = tenant_id or "{tenantid}"
    root = f"{base}/{path}"
    return {
        "token_endpoint": f"{root}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{root}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{base}/{issuer_tenant}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
        "claims_supported": list(_CLAIMS_V2),
        "kerberos_endpoint": f"{root}/kerberos",
        "tenant_region_scope": "NA",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }


def _openid_v1(base: str, segment: str, tenant_id: str | None) -> dict[str, Any]:
    root = f"{base}/{tenant_id or segment}"
    return {
        "token_endpoint": f"{root}/oauth2/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{root}/discovery/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
        "scopes_supported": ["openid"],
        "issuer": f"https://sts.windows.net/{tenant_id or '{tenantid}'}/",
        "microsoft_multi_refresh_token": True,
        "authorization_endpoint": f"{root}/oauth2/authorize",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{root}/oauth2/logout",
        "claims_supported": list(_CLAIMS_V1),
        "tenant_region_scope": "NA",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }


def _discovery(
    service: IdentityService, builder: Callable[[str, str, str | None], dict[str, Any]]
) -> Endpoint:
    async def openid_configuration(request: Request) -> Response:
        segment = request.path_params["tenant"]
        try:
            tenant = service.resolve_tenant(segment)
        except AadError as exc:
            return _error(service, request, exc)
        body = builder(public_base(request), segment, tenant.id if tenant else None)
        return json_response(body, 200, _DISCOVERY_CACHE)

    return openid_configuration


def _keys(service: IdentityService) -> Endpoint:
    async def keys(request: Request) -> Response:
        try:
            service.resolve_tenant(request.path_params["tenant"])
        except AadError as exc:
            return _error(service, request, exc)
        return json_response(service.tokens.jwks(), 200, _DISCOVERY_CACHE)

    return keys


def _instance_discovery(service: IdentityService) -> Endpoint:
    async def instance(request: Request) -> Response:
        base = public_base(request)
        endpoint = request.query_params.get("authorization_endpoint", "")
        parts = urlsplit(endpoint)
        ours = urlsplit(base)
        segments = [s for s in parts.path.split("/") if s]
        if parts.scheme != "https" or parts.netloc.lower() != ours.netloc.lower() or not segments:
            error = AadError("invalid_instance", 50049, "Unknown or invalid instance.")
            return _error(service, request, error)
        host = ours.netloc
        body = {
            "tenant_discovery_endpoint": f"{base}/{segments[0]}/v2.0/.well-known/openid-configuration",
            "api-version": request.query_params.get("api-version", "1.1"),
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        }
        return json_response(body, 200, _DISCOVERY_CACHE)

    return instance


def identity_routes(service: IdentityService) -> list[BaseRoute]:
    """Return the identity routes, to be mounted at the application root.

    Args:
        service: The shared state (directory, token issuer, switches) the routes read and update.
    """
    authorize = authorize_endpoint(service)
    consent = adminconsent_endpoint(service)
    return [
        Route("/common/discovery/instance", _instance_discovery(service), methods=["GET"]),
        Route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            _discovery(service, _openid_v2),
            methods=["GET"],
        ),
        Route("/{tenant}/.well-known/openid-configuration", _discovery(service, _openid_v1), methods=["GET"]),
        Route("/{tenant}/discovery/v2.0/keys", _keys(service), methods=["GET"]),
        Route("/{tenant}/discovery/keys", _keys(service), methods=["GET"]),
        Route("/{tenant}/oauth2/v2.0/authorize", authorize, methods=["GET", "POST"]),
        Route("/{tenant}/oauth2/v2.0/token", token_endpoint(service, v1=False), methods=["POST"]),
        Route("/{tenant}/oauth2/token", token_endpoint(service, v1=True), methods=["POST"]),
        Route("/{tenant}/adminconsent", consent, methods=["GET", "POST"]),
        Route("/{tenant}/v2.0/adminconsent", consent, methods=["GET", "POST"]),
    ]
