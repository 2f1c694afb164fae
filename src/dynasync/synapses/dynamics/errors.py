"""The one place where Dataverse and Entra ID (AADSTS) failures become typed dynasync errors with a remedy.

The classes live in :mod:`.error_types` and are re-exported here, so callers import everything from this module.
Every error raised by the Dynamics synapse's connection layer is a ``DynamicsError`` that also inherits the
dynasync category telling the caller what to do next (``AuthError``, ``RetriableError``, ``CursorExpiredError`` ...).
It carries the HTTP status, the service's error code, the service's message, the request id (Dataverse
``x-ms-service-request-id``/``REQ_ID`` or Entra's correlation id) and a human remedy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from dynasync.synapses.dynamics.error_types import (
    ApplicationUserMissingError,
    AuthFlowError,
    ChangeTrackingDisabledError,
    ConcurrencyConflictError,
    ConfigProblem,
    ConsentRequiredError,
    DeltaTokenExpiredError,
    DuplicateRecordError,
    DynamicsAuthError,
    DynamicsConfigError,
    DynamicsError,
    ErrorContext,
    ExpiredClientSecretError,
    HostRefusedError,
    InvalidClientSecretError,
    IpBlockedError,
    PagingLoopError,
    PrivilegeDeniedError,
    ReauthenticationRequiredError,
    RecordNotFoundError,
    RecordRejectedError,
    RedirectRefusedError,
    RedirectUriMismatchError,
    RequestRejectedError,
    ResourceNotFoundError,
    ResourceRejectedError,
    ServiceUnavailableError,
    ThrottledError,
    TokenRejectedError,
    TransportFailureError,
    UnknownClientError,
    UnknownTenantError,
)

__all__ = [
    "ApplicationUserMissingError",
    "AuthFlowError",
    "ChangeTrackingDisabledError",
    "ConcurrencyConflictError",
    "ConfigProblem",
    "ConsentRequiredError",
    "DeltaTokenExpiredError",
    "DuplicateRecordError",
    "DynamicsAuthError",
    "DynamicsConfigError",
    "DynamicsError",
    "ErrorContext",
    "ExpiredClientSecretError",
    "HostRefusedError",
    "InvalidClientSecretError",
    "IpBlockedError",
    "PagingLoopError",
    "PrivilegeDeniedError",
    "ReauthenticationRequiredError",
    "RecordNotFoundError",
    "RecordRejectedError",
    "RedirectRefusedError",
    "RedirectUriMismatchError",
    "RequestRejectedError",
    "ResourceNotFoundError",
    "ResourceRejectedError",
    "ServiceUnavailableError",
    "ThrottledError",
    "TokenRejectedError",
    "TransportFailureError",
    "UnknownClientError",
    "UnknownTenantError",
    "change_tracking_remedy",
    "from_aad_result",
    "from_dataverse_response",
    "from_msal_exception",
    "parse_retry_after",
    "request_id_of",
]


# --- remedies --------------------------------------------------------------------------------------------------

_APP_USER_STEPS = (
    "Create an application user for the app in Dynamics 365: click the Settings gear > Advanced Settings > "
    "Settings > Security > Users, switch the view to Application Users, click New, paste the Application ID "
    "{client_id}, click Save, then assign it a security role (Manage Roles). In the Power Platform admin center "
    "the same is Environments > your environment > Settings > Users + permissions > Application users > New app user."
)
_CONSENT = (
    "Grant admin consent for the app in Microsoft Entra ID: App registrations > your app > API permissions > "
    "Grant admin consent (the Dynamics CRM user_impersonation permission must be listed), or have an "
    "administrator open {consent_url}"
)
_TRACKING = (
    "Enable change tracking for table '{table}': in Power Apps (make.powerapps.com) open Tables > {table} > "
    "Properties > Advanced options, tick 'Track changes' and save (classic: Settings > Customizations > "
    "Customize the System > Entities > {table} > Change Tracking). Change tracking cannot be turned off again."
)


def change_tracking_remedy(table: str) -> str:
    """The guide's steps to enable change tracking for ``table`` (used at activation and on 0x80072491)."""
    return _TRACKING.format(table=table)


def _consent_remedy(ctx: ErrorContext) -> str:
    return _CONSENT.format(consent_url=ctx.admin_consent_url)


def _aad_remedy(code: int, ctx: ErrorContext) -> tuple[type[DynamicsError], str] | None:
    app = f"'{ctx.client_id}'" if ctx.client_id else "the app"
    table: dict[int, tuple[type[DynamicsError], str]] = {
        65001: (ConsentRequiredError, _consent_remedy(ctx)),
        7000215: (
            InvalidClientSecretError,
            "The client secret is wrong. In Microsoft Entra ID open App registrations > your app > Certificates & "
            "secrets and copy the secret's Value (shown only once, right after you create it), not its Secret ID; "
            "if the value is lost, create a new client secret. Save it as the synapse's Client Secret.",
        ),
        7000222: (
            ExpiredClientSecretError,
            f"The client secret of app {app} has expired. In Microsoft Entra ID open App registrations > your app > "
            "Certificates & secrets, click New client secret, choose an expiration, copy its Value and save it as "
            "the synapse's Client Secret.",
        ),
        700016: (
            UnknownClientError,
            f"No application with Client ID {app} exists in tenant '{ctx.tenant}'. Copy the Application (client) ID "
            "from App registrations > your app > Overview, and make sure the Endpoint URL ends with the Directory "
            "(tenant) ID shown on the same page.",
        ),
        90002: (
            UnknownTenantError,
            f"Tenant '{ctx.tenant}' was not found. Set the Endpoint URL to https://login.microsoftonline.com/<Directory "
            "(tenant) ID>, copying the ID from Microsoft Entra ID > Overview; check the sovereign cloud too "
            "(GCC High/DoD sign in at login.microsoftonline.us, China at login.chinacloudapi.cn).",
        ),
        900023: (
            UnknownTenantError,
            f"'{ctx.tenant}' is not a valid tenant. Use the Directory (tenant) ID (a GUID) from Microsoft Entra ID > "
            "Overview, or a verified domain such as contoso.onmicrosoft.com.",
        ),
        50011: (
            RedirectUriMismatchError,
            "Add this exact redirect URL in Microsoft Entra ID: App registrations > your app > Authentication > "
            f"Add a platform > Web > Redirect URIs: {ctx.redirect_url or '(the synapse redirect URL)'} then Configure.",
        ),
    }
    for expired in (70008, 54005, 700082, 50173, 50078, 50076):
        table[expired] = (
            ReauthenticationRequiredError,
            "The stored sign-in has expired or was revoked. Click Authenticate on the synapse and sign in again.",
        )
    for scope_code in (70011, 1002012, 500011):
        table[scope_code] = (
            ResourceRejectedError,
            f"The Dynamics CRM resource was not accepted for org {ctx.org_url}. Check the Organization URL and "
            "that the app has the Dynamics CRM user_impersonation API permission.",
        )
    return table.get(code)


_AADSTS = re.compile(r"AADSTS(\d+)")


def _clean_aad_description(text: str) -> str:
    # Entra appends trace, correlation and timestamp lines; they belong in request_id, not in the sentence.
    return re.split(r"\s*(?:\r?\n|\s)Trace ID:", text, maxsplit=1)[0].strip()


def from_aad_result(
    result: Mapping[str, Any], ctx: ErrorContext, *, status: int | None = None
) -> DynamicsError:
    """Map an Entra ID error (an msal result dict or a token-endpoint JSON body) to a typed error.

    Args:
        result: The dict with ``error``, ``error_description``, ``error_codes``, ``correlation_id`` ...
        ctx: The connection the remedies talk about.
        status: The HTTP status when known.

    Returns:
        The typed error; the caller raises it.
    """
    error = str(result.get("error") or "")
    description = str(result.get("error_description") or error or "Sign-in failed.")
    codes = [int(c) for c in result.get("error_codes") or [] if isinstance(c, int | str) and str(c).isdigit()]
    codes += [int(m) for m in _AADSTS.findall(description)]
    request_id = str(result.get("correlation_id") or result.get("trace_id") or "") or None
    message = _clean_aad_description(description)
    for code in codes:
        mapped = _aad_remedy(code, ctx)
        if mapped:
            cls, remedy = mapped
            return cls(message, remedy=remedy, status=status, code=f"AADSTS{code}", request_id=request_id)
    code_text = f"AADSTS{codes[0]}" if codes else (error or None)
    if error in {"consent_required", "access_denied"} or "unauthorized" in description.lower():
        return ConsentRequiredError(
            message, remedy=_consent_remedy(ctx), status=status, code=code_text, request_id=request_id
        )
    if error == "invalid_grant" or error == "interaction_required":
        return ReauthenticationRequiredError(
            message,
            remedy="Click Authenticate on the synapse and sign in again.",
            status=status,
            code=code_text,
            request_id=request_id,
        )
    if error == "temporarily_unavailable" or (status is not None and status >= 500):
        return ServiceUnavailableError(
            message,
            remedy="Microsoft Entra ID is temporarily unavailable; try again later (sync --every tries at its next "
            "run).",
            status=status,
            code=code_text,
            request_id=request_id,
        )
    return DynamicsAuthError(
        message,
        remedy="Check the Endpoint URL, Client ID and Client Secret against the app registration in Microsoft Entra ID.",
        status=status,
        code=code_text,
        request_id=request_id,
    )


def from_msal_exception(exc: BaseException, ctx: ErrorContext) -> DynamicsError:
    """Map an exception raised inside msal (authority discovery, network, TLS) to a typed error."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    text = " ".join(str(e) for e in chain)
    match = _AADSTS.search(text)
    if match:
        body = _json_in(text)
        result = body if body else {"error_description": text[match.start() :]}
        return from_aad_result(result, ctx, status=400)
    names = {type(e).__name__ for e in chain}
    if names & {"SSLError", "SSLCertVerificationError"}:
        return TransportFailureError(
            f"TLS verification failed talking to {ctx.authority}.",
            remedy="For a local emulator set ca_bundle to the emulator's CA certificate; otherwise check the "
            "machine's trust store or proxy.",
        )
    if names & {"ConnectionError", "Timeout", "ConnectTimeout", "ReadTimeout", "ConnectionRefusedError"}:
        return TransportFailureError(
            f"Could not reach the sign-in service at {ctx.authority}.",
            remedy="Check network access to the sign-in host, then try again (sync --every tries at its next run).",
        )
    if "Unable to get authority configuration" in text or "OIDC Discovery failed" in text:
        _, remedy = _aad_remedy(90002, ctx) or (UnknownTenantError, "")
        return UnknownTenantError(
            f"The sign-in service did not recognise authority {ctx.authority}.", remedy=remedy
        )
    return DynamicsAuthError(
        f"Sign-in failed: {type(exc).__name__}: {exc}",
        remedy="Check the Endpoint URL, Client ID and Client Secret.",
    )


def _json_in(text: str) -> dict[str, Any] | None:
    start = text.find("{")
    while start != -1:
        try:
            value, _ = json.JSONDecoder().raw_decode(text[start:])
        except ValueError:
            start = text.find("{", start + 1)
            continue
        return value if isinstance(value, dict) else None
    return None


# --- Dataverse -----------------------------------------------------------------------------------------------

_PRIVILEGE_VERBS = {
    "Read": "Read",
    "Create": "Create",
    "Write": "Write",
    "Delete": "Delete",
    "AppendTo": "Append To",
    "Append": "Append",
    "Assign": "Assign",
    "Share": "Share",
}


def request_id_of(headers: Mapping[str, str]) -> str | None:
    """Return Dataverse's request id from response headers (``x-ms-service-request-id`` or ``REQ_ID``)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    return lowered.get("x-ms-service-request-id") or lowered.get("req_id") or None


def parse_retry_after(value: str | None) -> float | None:
    """Parse a ``Retry-After`` header: integer/decimal seconds, or an HTTP date (returned relative to now)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value.replace(",", "")))
    except ValueError:
        pass
    import email.utils
    import time

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# The seed guide's "whitelist an IP" case: the Power Platform IP firewall (a Managed Environments feature).
_IP_FIREWALL = (
    "The IP firewall of {org_url} refuses requests from this machine's address. In the Power Platform admin "
    "center open Environments > (this environment) > Settings > Product > Privacy + Security and add the public "
    "IP address this machine reaches Microsoft from (its egress address, in CIDR form, e.g. 203.0.113.7/32) to "
    "the allowed IP ranges of the IP firewall; or run dynasync from a network that is allowed already."
)


def _privilege_remedy(message: str, ctx: ErrorContext) -> tuple[str, str | None, str | None]:
    match = re.search(r"\bprv[A-Za-z0-9_]+", message)
    privilege = None
    verb_text = "the needed"
    if match:
        privilege = match.group(0)
        for verb, label in _PRIVILEGE_VERBS.items():
            if privilege.startswith(f"prv{verb}"):
                verb_text = label
                break
    table_match = re.search(r"entity '([A-Za-z0-9_]+)'", message)
    table = table_match.group(1) if table_match else ctx.table
    where = f" on table '{table}'" if table else ""
    named = f" privilege {privilege} ({verb_text}{where})" if privilege else f" a privilege{where}"
    remedy = (
        f"The application user lacks{named}. In Dynamics 365 open Settings > Security > Users > Application Users, "
        f"select the user for Application ID {ctx.client_id}, click Manage Roles and assign a security role that "
        f"grants it at Organization level (or edit the role's {table or 'table'} row under Security Roles)."
    )
    return remedy, privilege, table


def _dataverse_body(body: bytes | Mapping[str, Any] | None) -> tuple[str, str]:
    data: Any = body
    if isinstance(body, bytes | bytearray):
        try:
            data = json.loads(body.decode("utf-8", "replace")) if body else None
        except ValueError:
            return "", body.decode("utf-8", "replace")[:500].strip()
    if isinstance(data, Mapping):
        error = data.get("error")
        if isinstance(error, Mapping):
            return str(error.get("code") or ""), str(error.get("message") or "")
        if "error_description" in data:
            return str(data.get("error") or ""), str(data.get("error_description") or "")
    return "", ""


def from_dataverse_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes | Mapping[str, Any] | None,
    ctx: ErrorContext,
    *,
    record_write: bool = False,
) -> DynamicsError:
    """Map one failed Dataverse Web API response to a typed error.

    Args:
        status: The HTTP status.
        headers: Response headers (``Retry-After``, request ids, ``WWW-Authenticate``).
        body: The raw body or its parsed JSON.
        ctx: The connection (and table) the remedy talks about.
        record_write: True when the request wrote one record; its refusals are then skippable for the run.

    Returns:
        The typed error; the caller raises it.
    """
    code, service_message = _dataverse_body(body)
    norm = code.lower()
    rid = request_id_of(headers)
    message = service_message or f"Dataverse answered HTTP {status}."
    kw: dict[str, Any] = {"status": status, "code": code or None, "request_id": rid}

    if status == 403 and "access to your ip is blocked" in message.lower():
        return IpBlockedError(message, remedy=_IP_FIREWALL.format(org_url=ctx.org_url), **kw)
    if norm == "0x80072560" or "not a member of the organization" in message.lower():
        return ApplicationUserMissingError(
            message, remedy=_APP_USER_STEPS.format(client_id=ctx.client_id), **kw
        )
    if norm in {"0x80040220", "0x80040231", "0x80048405"} or "missing prv" in message.lower():
        remedy, privilege, table = _privilege_remedy(message, ctx)
        return PrivilegeDeniedError(message, remedy=remedy, privilege=privilege, table=table, **kw)
    if norm == "0x80072491":
        found = re.search(r"Entity (\S+?) isn'?t enabled", message)
        table = found.group(1).strip("'\"") if found else ctx.table
        return ChangeTrackingDisabledError(
            message, remedy=_TRACKING.format(table=table or "<table>"), table=table, **kw
        )
    if norm == "0x80044352":
        return DeltaTokenExpiredError(
            message,
            remedy="The change-tracking token is older than the org keeps changes (organization "
            "expirechangetrackingindays); dynasync reloads the table in full and then resumes delta sync.",
            **kw,
        )
    if status == 429:
        retry_after = parse_retry_after(headers.get("Retry-After") or headers.get("retry-after"))
        return ThrottledError(
            message,
            remedy="Dataverse service protection limits were reached; dynasync waits as told and lowers its "
            "concurrency. Persistent throttling means other integrations share this application user's limits.",
            retry_after=retry_after,
            **kw,
        )
    if status == 401:
        return TokenRejectedError(
            message if service_message else "Dataverse rejected the access token (HTTP 401).",
            remedy=f"Check that the Organization URL {ctx.org_url} is the environment the app was set up for, that "
            "the token is for that org, and authenticate again.",
            **kw,
        )
    if status >= 500:
        return ServiceUnavailableError(
            message,
            remedy="Dataverse had a transient failure; dynasync retries with backoff.",
            retry_after=parse_retry_after(headers.get("Retry-After") or headers.get("retry-after")),
            **kw,
        )
    if status == 412:
        if norm in {"0x80040237", "0x80060892", "0x80040333"}:
            return DuplicateRecordError(
                message,
                remedy="A record with the same key already exists; update it instead of creating it, or fix the "
                "duplicate key value.",
                **kw,
            )
        return ConcurrencyConflictError(
            message,
            remedy="The record changed in Dynamics 365 after dynasync read it; the change is re-read and the "
            "conflict policy decides on the next run.",
            **kw,
        )
    if status == 404:
        if norm == "0x80040217" or "does not exist" in message.lower():
            return RecordNotFoundError(
                message, remedy="The record was deleted or never existed in Dynamics 365.", **kw
            )
        return ResourceNotFoundError(
            message,
            remedy=f"The URL names a table, function or relationship that {ctx.org_url} does not have; "
            "re-discover the schema.",
            **kw,
        )
    if status == 403:
        return PrivilegeDeniedError(
            message,
            remedy=_privilege_remedy(message, ctx)[0],
            privilege=None,
            table=ctx.table,
            **kw,
        )
    if 300 <= status < 400:
        return RedirectRefusedError(
            f"Dataverse answered with a redirect (HTTP {status}) to {headers.get('location', '?')}.",
            remedy="dynasync never follows redirects; check the Organization URL is the environment's own URL.",
            **kw,
        )
    if record_write and status in {400, 405, 413}:
        return RecordRejectedError(
            message, remedy="Fix the record's values; the rest of the run goes on.", **kw
        )
    return RequestRejectedError(message, remedy="Dataverse refused the request; see the message.", **kw)
