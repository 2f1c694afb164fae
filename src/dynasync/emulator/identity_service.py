"""State and shared rules of the identity endpoints: the ``IdentityService`` the app builder creates.

It bundles the directory, the token issuer, the grant registries and the emulator's switches, and holds the
request-independent rules the routes share: tenant resolution, scope parsing, which org URLs are served,
and bearer verification for the Web API.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from dynasync.clock import Clock
from dynasync.emulator.directory import (
    DYNAMICS_CRM_APP_ID,
    USER_IMPERSONATION,
    AppRegistration,
    Directory,
    Tenant,
    is_dns_name,
)
from dynasync.emulator.grants import CodeRegistry, RefreshTokenRegistry
from dynasync.emulator.identity_errors import AadError, aad
from dynasync.emulator.tokens import InvalidToken, TokenClaims, TokenIssuer, normalize_resource

__all__ = ["OIDC_SCOPES", "IdentityService", "PendingSignIn", "ScopeRequest", "public_base"]

OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
_MULTI_TENANT_ALIASES = frozenset({"common", "organizations"})
_PENDING_LIFETIME = dt.timedelta(minutes=15)


def public_base(request: Request) -> str:
    """Return ``scheme://host[:port]`` as the client sees it, honouring X-Forwarded-Proto/-Host."""
    proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip() or request.url.scheme
    host = request.headers.get("x-forwarded-host", "").split(",")[0].strip() or request.headers.get(
        "host", ""
    )
    if not host:
        host = request.url.netloc
    return f"{proto}://{host}"


def json_response(
    body: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """Return a JSON response with the service's content type (``application/json; charset=utf-8``)."""
    return Response(
        json.dumps(body, separators=(",", ":")).encode(),
        status_code=status,
        media_type="application/json; charset=utf-8",
        headers=dict(headers or {}),
    )


NO_STORE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache", "Expires": "-1"}


@dataclass(frozen=True)
class ScopeRequest:
    """A parsed ``scope`` parameter: one resource (org URL), its delegated permissions and OIDC scopes."""

    resource: str
    permissions: tuple[str, ...]
    oidc: tuple[str, ...]
    is_default: bool


@dataclass
class PendingSignIn:
    """An authorize (or admin-consent) request waiting for the user to sign in on the page."""

    kind: str  # "authorize" or "adminconsent"
    tenant: Tenant | None  # None for common/organizations
    tenant_segment: str
    client_id: str
    redirect_uri: str
    state: str | None
    params: dict[str, str]
    created_at: dt.datetime


@dataclass
class IdentityService:
    """Everything the identity routes need; created by the app builder and passed to ``identity_routes``.

    Attributes:
        directory: Tenants, apps and users.
        tokens: The signing key, clock and access-token lifetime.
        org_urls: Org URLs (e.g. ``https://contoso.crm.dynamics.com``) tokens may be issued for.
        same_origin_org: Also serve the org at the identity endpoint's own origin (``https://127.0.0.1:<port>``),
            which is where the emulator's Web API lives.
        auto_approve: Sign in and accept without showing the page (headless use).
        default_user_upn: Who auto-approve signs in as (a ``login_hint`` naming a known user wins); default:
            the tenant's first administrator.
        require_admin_consent_for_client_credentials: Client credentials fail with AADSTS65001 until admin
            consent is granted (the setup guide's "Unauthorized" case) [I: make configurable].
        on_directory_change: Called after the routes change the directory (consent), so it can be saved.
    """

    directory: Directory
    tokens: TokenIssuer
    org_urls: list[str] = field(default_factory=list)
    same_origin_org: bool = True
    auto_approve: bool = False
    default_user_upn: str | None = None
    require_admin_consent_for_client_credentials: bool = True
    on_directory_change: Callable[[Directory], None] | None = None
    codes: CodeRegistry = field(init=False)
    refresh_tokens: RefreshTokenRegistry = field(init=False)
    _pending: dict[str, PendingSignIn] = field(init=False, default_factory=dict)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.codes = CodeRegistry(self.tokens.clock)
        self.refresh_tokens = RefreshTokenRegistry(self.tokens.clock)

    @property
    def clock(self) -> Clock:
        """The clock tokens and codes are timed by."""
        return self.tokens.clock

    # -- the Web API's side ------------------------------------------------------------------------------------

    def verify_access_token(self, token: str, org_url: str) -> TokenClaims:
        """Verify an access token for ``org_url``; raises :class:`~dynasync.emulator.tokens.InvalidToken`."""
        return self.tokens.verify_access_token(token, org_url)

    def verify_bearer(self, authorization: str | None, org_url: str) -> TokenClaims:
        """Verify an ``Authorization`` header value (``Bearer <jwt>``) for ``org_url``.

        Raises:
            InvalidToken: ``missing`` when there is no bearer token, else as ``verify_access_token``.
        """
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise InvalidToken("missing", "No bearer token was presented.")
        return self.verify_access_token(token.strip(), org_url)

    def www_authenticate(self, base_url: str, org_url: str, tenant_id: str | None = None) -> str:
        """The ``WWW-Authenticate`` value Dataverse sends with a 401 (points at the v1 authorize endpoint)."""
        tenant = tenant_id or (
            self.directory.default_tenant.id if self.directory.default_tenant else "common"
        )
        return (
            f"Bearer authorization_uri={base_url.rstrip('/')}/{tenant}/oauth2/authorize, "
            f"resource_id={normalize_resource(org_url)}/"
        )

    # -- rules shared by the routes --------------------------------------------------------------------------

    def resolve_tenant(self, segment: str, *, allow_multi: bool = True) -> Tenant | None:
        """Resolve a path's tenant segment; None means ``common``/``organizations``.

        Raises:
            AadError: 900023 (malformed), 90002 (unknown), or an emulator error for ``consumers``.
        """
        lowered = segment.lower()
        if lowered in _MULTI_TENANT_ALIASES and allow_multi:
            return None
        if lowered == "consumers":
            raise aad.not_emulated("personal Microsoft accounts (the 'consumers' tenant)")
        try:
            uuid.UUID(segment)
        except ValueError:
            if not is_dns_name(segment):
                raise aad.malformed_tenant(segment) from None
        tenant = self.directory.resolve_tenant(segment)
        if tenant is None:
            raise aad.tenant_not_found(segment)
        return tenant

    def find_app(self, client_id: str, tenant: Tenant | None, tenant_segment: str) -> AppRegistration:
        """Return the app usable in ``tenant`` (any tenant for common), or raise AADSTS700016."""
        if tenant is None:
            app = self.directory.app(client_id)
        else:
            app = self.directory.app_in_tenant(client_id, tenant.id)
            candidate = self.directory.app(client_id)
            if app is None and candidate is not None and candidate.multi_tenant:
                app = candidate  # a multi-tenant app gets its service principal on first consent
        if app is None:
            raise aad.app_not_found(client_id, tenant.id if tenant else tenant_segment)
        return app

    def served_resource(self, resource: str, base: str) -> str | None:
        """Return the normalised org URL when ``resource`` is one this emulator issues tokens for."""
        wanted = normalize_resource(resource)
        served = {normalize_resource(u) for u in self.org_urls}
        if self.same_origin_org:
            served.add(normalize_resource(base))
        return wanted if wanted in served else None

    def parse_scope(
        self, text: str | None, *, base: str, tenant_label: str, app: AppRegistration | None
    ) -> ScopeRequest:
        """Parse a ``scope`` parameter for a delegated flow.

        Raises:
            AadError: 70011 (missing/invalid), 28000 (several resources), 500011 (unknown org),
                650057 (the app does not request Dynamics CRM ``user_impersonation``).
        """
        if not text or not text.strip():
            raise aad.scope_missing()
        oidc: list[str] = []
        resources: dict[str, list[str]] = {}
        for item in text.split():
            if item in OIDC_SCOPES:
                oidc.append(item)
                continue
            item_resource, slash, permission = item.rpartition("/")
            if not slash or "://" not in item_resource:
                raise aad.scope_invalid(
                    f"The scope '{item}' is not valid. The emulator issues tokens only for its Dataverse org(s); "
                    "use '<org url>/user_impersonation' or '<org url>/.default'."
                )
            resources.setdefault(item_resource.rstrip("/"), []).append(permission)
        if not resources:
            raise aad.scope_invalid(
                "The emulator needs a Dataverse resource scope such as '<org url>/user_impersonation'."
            )
        if len({normalize_resource(r) for r in resources}) > 1:
            raise AadError(
                "invalid_scope",
                28000,
                f"Provided value for the input parameter scope is not valid because it contains more than one "
                f"resource. Scope {text} is not valid.",
            )
        raw_resource, permissions = next(iter(resources.items()))
        resource = self.served_resource(raw_resource, base)
        if resource is None:
            raise aad.resource_not_found(raw_resource, tenant_label)
        for permission in permissions:
            if permission not in (USER_IMPERSONATION, ".default"):
                raise aad.scope_invalid(
                    f"The scope '{raw_resource}/{permission}' does not exist on the resource; Dynamics CRM "
                    "exposes only 'user_impersonation'."
                )
        if app is not None and not app.has_delegated(DYNAMICS_CRM_APP_ID, USER_IMPERSONATION):
            raise aad.permission_not_requested()
        return ScopeRequest(resource, (USER_IMPERSONATION,), tuple(oidc), ".default" in permissions)

    def notify_directory_changed(self) -> None:
        """Tell the owner the directory changed (consent granted) so it can persist it."""
        if self.on_directory_change is not None:
            self.on_directory_change(self.directory)

    # -- pending sign-ins ------------------------------------------------------------------------------------

    def add_pending(self, pending: PendingSignIn) -> str:
        """Remember a request shown on the sign-in page; return its unguessable id (also the CSRF token)."""
        request_id = secrets.token_urlsafe(32)
        now = self.clock.now()
        with self._lock:
            for key in [k for k, p in self._pending.items() if now - p.created_at > _PENDING_LIFETIME]:
                del self._pending[key]
            self._pending[request_id] = pending
        return request_id

    def get_pending(self, request_id: str) -> PendingSignIn | None:
        """Return a pending request that has not expired."""
        with self._lock:
            pending = self._pending.get(request_id)
        if pending is None or self.clock.now() - pending.created_at > _PENDING_LIFETIME:
            return None
        return pending

    def drop_pending(self, request_id: str) -> None:
        """Forget a finished request so its form cannot be posted twice."""
        with self._lock:
            self._pending.pop(request_id, None)
