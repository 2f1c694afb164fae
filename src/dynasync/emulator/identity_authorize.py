"""The interactive endpoints: ``/{tenant}/oauth2/v2.0/authorize`` and ``/{tenant}/[v2.0/]adminconsent``.

Errors that make the redirect untrustworthy (bad tenant, unknown client, redirect URI mismatch) are shown as an
error page; the others redirect back to the app with ``error``/``error_description``/``state``.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from dynasync.emulator.directory import AppRegistration, Tenant, User
from dynasync.emulator.grants import AuthCode
from dynasync.emulator.identity_errors import AadError, aad
from dynasync.emulator.identity_pages import error_page, form_post_page, sign_in_page
from dynasync.emulator.identity_service import IdentityService, PendingSignIn, public_base

__all__ = ["adminconsent_endpoint", "authorize_endpoint"]

Endpoint = Callable[[Request], Awaitable[Response]]


class _PageError(Exception):
    """An error to show as a page (not redirected)."""

    def __init__(self, error: AadError) -> None:
        super().__init__(str(error))
        self.error = error


def _redirect(uri: str, params: Mapping[str, str | None], mode: str = "query") -> Response:
    """Send the result to the app: a 302 with a query string, or the auto-posting page for ``form_post``."""
    values = {k: v for k, v in params.items() if v is not None}
    if mode == "form_post":
        return HTMLResponse(form_post_page(uri, values), headers={"Cache-Control": "no-store"})
    separator = "&" if urlsplit(uri).query else "?"
    return RedirectResponse(
        f"{uri}{separator}{urlencode(values)}", status_code=302, headers={"Cache-Control": "no-store"}
    )


def _error_redirect(
    uri: str, error: AadError, state: str | None, service: IdentityService, mode: str = "query"
) -> Response:
    body = error.envelope(service.clock.now())
    fields = {"error": error.error, "error_description": body["error_description"], "state": state}
    return _redirect(uri, fields, mode)


def _mode(params: Mapping[str, str]) -> str:
    """The response mode to answer with; unsupported values fall back to ``query`` (and are rejected)."""
    mode = params.get("response_mode", "query")
    return mode if mode in ("query", "form_post") else "query"


def _page_response(error: AadError, service: IdentityService, request: Request) -> HTMLResponse:
    body = error.envelope(service.clock.now(), correlation_id=request.headers.get("client-request-id"))
    return HTMLResponse(
        error_page(error, correlation_id=body["correlation_id"], timestamp=body["timestamp"]),
        status_code=error.status,
    )


def _resolve_client(
    service: IdentityService, tenant_segment: str, params: Mapping[str, str]
) -> tuple[Tenant | None, AppRegistration, str]:
    """Validate tenant, client and redirect URI; anything wrong here is a page error."""
    try:
        tenant = service.resolve_tenant(tenant_segment)
        client_id = params.get("client_id", "")
        if not client_id:
            raise aad.missing_parameter("client_id")
        app = service.find_app(client_id, tenant, tenant_segment)
    except AadError as exc:
        raise _PageError(exc) from exc
    redirect_uri = params.get("redirect_uri")
    if redirect_uri is None:
        if len(app.redirect_uris) != 1:
            raise _PageError(aad.missing_parameter("redirect_uri"))
        redirect_uri = app.redirect_uris[0]
    if redirect_uri not in app.redirect_uris:
        raise _PageError(aad.redirect_mismatch(redirect_uri, app.client_id))
    return tenant, app, redirect_uri


def _candidates(service: IdentityService, tenant: Tenant | None, app: AppRegistration) -> list[User]:
    """Users who may sign in here: the tenant's, or for common every tenant where the app can be used."""
    if tenant is not None:
        return service.directory.users_of(tenant.id)
    tenants = [app.tenant_id] if not app.multi_tenant else list(service.directory.tenants)
    return [u for tid in tenants for u in service.directory.users_of(tid)]


def _auto_user(
    service: IdentityService, users: list[User], hint: str | None, admin_only: bool
) -> User | None:
    by_upn = {u.upn: u for u in users}
    for upn in (hint, service.default_user_upn):
        if upn and upn.lower() in by_upn:
            return by_upn[upn.lower()]
    return next((u for u in users if u.is_admin), None if admin_only else next(iter(users), None))


def _complete_authorize(
    service: IdentityService, request: Request, pending: PendingSignIn, user: User, consent_org: bool
) -> Response:
    """Consent check, then the code redirect (or the consent_required error redirect)."""
    app = service.find_app(pending.client_id, pending.tenant, pending.tenant_segment)
    params = pending.params
    if not service.directory.has_consent(app, user.tenant_id, user.object_id):
        if not user.is_admin:
            failure = aad.consent_required(app.client_id, app.display_name)
            body = failure.envelope(service.clock.now())
            return _redirect(
                pending.redirect_uri,
                {
                    "error": "consent_required",
                    "error_description": body["error_description"],
                    "state": pending.state,
                },
                _mode(params),
            )
        if consent_org:
            service.directory.grant_admin_consent(app.client_id, user.tenant_id)
        else:
            service.directory.grant_user_consent(app.client_id, user.object_id)
        service.notify_directory_changed()
    scope = service.parse_scope(
        params.get("scope"), base=public_base(request), tenant_label=user.tenant_id, app=app
    )
    code = service.codes.issue(
        AuthCode(
            tenant_id=user.tenant_id,
            client_id=app.client_id,
            redirect_uri=pending.redirect_uri,
            user_object_id=user.object_id,
            resource=scope.resource,
            scopes=scope.oidc,
            permissions=scope.permissions,
            nonce=params.get("nonce"),
            code_challenge=params.get("code_challenge"),
            code_challenge_method=params.get("code_challenge_method"),
            expires_at=service.clock.now(),
        )
    )
    fields = {"code": code, "state": pending.state, "session_state": str(uuid.uuid4())}
    return _redirect(pending.redirect_uri, fields, _mode(params))


def _complete_adminconsent(service: IdentityService, pending: PendingSignIn, user: User) -> Response:
    if not user.is_admin:
        error = AadError(
            "access_denied",
            90094,
            "The grant requires admin permission. Sign in as an administrator of the tenant.",
        )
        return _error_redirect(pending.redirect_uri, error, pending.state, service)
    service.directory.grant_admin_consent(pending.client_id, user.tenant_id)
    service.notify_directory_changed()
    return _redirect(
        pending.redirect_uri,
        {
            "admin_consent": "True",
            "tenant": user.tenant_id,
            "state": pending.state,
            "scope": pending.params.get("scope"),
        },
    )


def _validate_authorize(
    service: IdentityService, request: Request, tenant: Tenant | None, app: AppRegistration
) -> None:
    """Redirectable checks of an authorize request; raises AadError."""
    params = request.query_params
    response_type = params.get("response_type")
    if not response_type:
        raise aad.missing_parameter("response_type")
    if response_type != "code":
        raise aad.unsupported_response_type(response_type)
    if params.get("response_mode", "query") not in ("query", "form_post"):
        raise aad.not_emulated(f"response_mode={params.get('response_mode')} (only 'query' and 'form_post')")
    label = tenant.id if tenant else app.tenant_id
    service.parse_scope(params.get("scope"), base=public_base(request), tenant_label=label, app=app)
    method = params.get("code_challenge_method")
    if method is not None and method not in ("S256", "plain"):
        raise AadError(
            "invalid_request", 501491, f"Invalid code_challenge_method '{method}'; use S256 or plain."
        )
    if method is not None and not params.get("code_challenge"):
        raise aad.missing_parameter("code_challenge")


def authorize_endpoint(service: IdentityService) -> Endpoint:
    """Build the GET/POST handler of ``/{tenant}/oauth2/v2.0/authorize``."""

    async def authorize(request: Request) -> Response:
        segment = request.path_params["tenant"]
        if request.method == "POST":
            return await _post_form(service, request, segment)
        params = dict(request.query_params)
        try:
            tenant, app, redirect_uri = _resolve_client(service, segment, params)
        except _PageError as exc:
            return _page_response(exc.error, service, request)
        state = params.get("state")
        mode = _mode(params)
        try:
            _validate_authorize(service, request, tenant, app)
        except AadError as exc:
            return _error_redirect(redirect_uri, exc, state, service, mode)
        pending = PendingSignIn(
            "authorize", tenant, segment, app.client_id, redirect_uri, state, params, service.clock.now()
        )
        users = _candidates(service, tenant, app)
        if service.auto_approve:
            user = _auto_user(service, users, params.get("login_hint"), admin_only=False)
            if user is None:
                return _error_redirect(redirect_uri, aad.login_required(), state, service, mode)
            try:
                return _complete_authorize(service, request, pending, user, consent_org=True)
            except AadError as exc:
                return _error_redirect(redirect_uri, exc, state, service, mode)
        if params.get("prompt") == "none":
            return _error_redirect(redirect_uri, aad.login_required(), state, service, mode)
        request_id = service.add_pending(pending)
        return HTMLResponse(
            sign_in_page(
                action=str(request.url.path),
                request_id=request_id,
                app=app,
                users=users,
                kind="authorize",
                resource=service.parse_scope(
                    params.get("scope"), base=public_base(request), tenant_label=app.tenant_id, app=app
                ).resource,
                selected_upn=(params.get("login_hint") or "").lower() or None,
            ),
            headers={"Cache-Control": "no-store"},
        )

    return authorize


def adminconsent_endpoint(service: IdentityService) -> Endpoint:
    """Build the GET/POST handler of ``/{tenant}/adminconsent`` (and the ``/v2.0/`` variant)."""

    async def adminconsent(request: Request) -> Response:
        segment = request.path_params["tenant"]
        if request.method == "POST":
            return await _post_form(service, request, segment)
        params = dict(request.query_params)
        try:
            tenant, app, redirect_uri = _resolve_client(service, segment, params)
        except _PageError as exc:
            return _page_response(exc.error, service, request)
        pending = PendingSignIn(
            "adminconsent",
            tenant,
            segment,
            app.client_id,
            redirect_uri,
            params.get("state"),
            params,
            service.clock.now(),
        )
        users = _candidates(service, tenant, app)
        if service.auto_approve:
            admin = _auto_user(service, users, params.get("login_hint"), admin_only=True)
            if admin is None:
                cancel = AadError("access_denied", 0, "No administrator is available to grant consent.")
                return _error_redirect(redirect_uri, cancel, pending.state, service)
            return _complete_adminconsent(service, pending, admin)
        request_id = service.add_pending(pending)
        return HTMLResponse(
            sign_in_page(
                action=str(request.url.path),
                request_id=request_id,
                app=app,
                users=users,
                kind="adminconsent",
                resource=None,
            ),
            headers={"Cache-Control": "no-store"},
        )

    return adminconsent


async def _post_form(service: IdentityService, request: Request, segment: str) -> Response:
    """Handle the sign-in page's form: cancel, wrong password (page again), or sign-in and consent."""
    form = await request.form()
    request_id = str(form.get("request_id", ""))
    pending = service.get_pending(request_id)
    if pending is None or pending.tenant_segment != segment:
        expired = aad.not_emulated("resuming this sign-in: the request expired or was already completed")
        return _page_response(expired, service, request)
    if form.get("action") != "accept":
        service.drop_pending(request_id)
        if pending.kind == "adminconsent":
            return _redirect(
                pending.redirect_uri,
                {
                    "error": "permission_denied",
                    "error_description": "The admin canceled the request",
                    "state": pending.state,
                },
            )
        return _error_redirect(
            pending.redirect_uri, aad.user_declined(), pending.state, service, _mode(pending.params)
        )
    app = service.find_app(pending.client_id, pending.tenant, pending.tenant_segment)
    users = _candidates(service, pending.tenant, app)
    upn = str(form.get("username", "")).lower()
    user = next((u for u in users if u.upn == upn), None)
    if user is None or not user.check_password(str(form.get("password", ""))):
        resource = None
        if pending.kind == "authorize":
            resource = service.parse_scope(
                pending.params.get("scope"), base=public_base(request), tenant_label=app.tenant_id, app=app
            ).resource
        return HTMLResponse(
            sign_in_page(
                action=str(request.url.path),
                request_id=request_id,
                app=app,
                users=users,
                kind=pending.kind,
                resource=resource,
                selected_upn=upn,
                error=aad.bad_credentials().description,
            ),
            headers={"Cache-Control": "no-store"},
        )
    service.drop_pending(request_id)
    if pending.kind == "adminconsent":
        return _complete_adminconsent(service, pending, user)
    try:
        return _complete_authorize(
            service, request, pending, user, consent_org=form.get("consent_org") == "on"
        )
    except AadError as exc:
        return _error_redirect(pending.redirect_uri, exc, pending.state, service, _mode(pending.params))
