"""The typed errors of the Dynamics synapse: one class per remedy, each also a dynasync error category.

Every class derives from :class:`DynamicsError` (HTTP status, service error code, request id, ``retry_after`` and a
human remedy) and from the dynasync category that tells the caller what to do next. :mod:`.errors` maps service
answers onto them and re-exports them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dynasync.errors import (
    AuthError,
    ConfigError,
    CursorExpiredError,
    DynasyncError,
    FatalSourceError,
    RetriableError,
    SkippableRecordError,
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
]


@dataclass(frozen=True, slots=True)
class ErrorContext:
    """What the remedies need to know about the connection: which org, which app, which tenant.

    ``redirect_url`` is set for the authorization-code flow so a redirect-URI mismatch can show the exact URL.
    ``table`` is the logical name of the table a request was about, when the caller knows it.
    """

    org_url: str = ""
    client_id: str = ""
    tenant: str = ""
    authority: str = ""
    redirect_url: str | None = None
    table: str | None = None

    @property
    def admin_consent_url(self) -> str:
        """The URL an administrator opens to grant tenant-wide consent to this app."""
        return f"{self.authority}/adminconsent?client_id={self.client_id}"

    def with_table(self, table: str | None) -> ErrorContext:
        """Return a copy naming ``table``."""
        return ErrorContext(
            self.org_url, self.client_id, self.tenant, self.authority, self.redirect_url, table
        )


class DynamicsError(DynasyncError):
    """Base of every Dynamics synapse error; mixed with a dynasync category by each subclass."""

    def __init__(
        self,
        message: str,
        *,
        remedy: str | None = None,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, remedy=remedy)
        self.status = status
        self.code = code
        self.request_id = request_id
        if retry_after is not None or not hasattr(self, "retry_after"):
            self.retry_after = retry_after

    def explain(self) -> str:
        """Return message, remedy and, when known, the code and request id (for support tickets)."""
        text = super().explain()
        tags = [t for t in (f"code {self.code}" if self.code else "", self._rid()) if t]
        return f"{text} ({'; '.join(tags)})" if tags else text

    def _rid(self) -> str:
        return f"request id {self.request_id}" if self.request_id else ""


# --- configuration -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One wrong setting: which field, what is wrong with it, and an example of a right value."""

    field: str
    problem: str
    example: str

    def __str__(self) -> str:
        return f"{self.field}: {self.problem} (example: {self.example})"


class DynamicsConfigError(DynamicsError, ConfigError):
    """The synapse settings are wrong; ``problems`` lists every wrong field at once."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        lines = "; ".join(str(p) for p in self.problems)
        super().__init__(
            f"The Dynamics 365 synapse settings have {count} problem{'s' if count != 1 else ''}: {lines}",
            remedy="Correct each field listed and save the synapse again.",
        )


class HostRefusedError(DynamicsError, ConfigError):
    """A request would have gone to a host other than the configured org (or to a non-public address)."""


# --- authentication and authorization ----------------------------------------------------------------------


class DynamicsAuthError(DynamicsError, AuthError):
    """Authentication or authorization failed at Entra ID or at Dataverse."""


class ConsentRequiredError(DynamicsAuthError):
    """AADSTS65001 or an "Unauthorized" consent error: an administrator must grant consent."""


class InvalidClientSecretError(DynamicsAuthError):
    """AADSTS7000215: the client secret is wrong (often the secret's ID was pasted instead of its value)."""


class ExpiredClientSecretError(DynamicsAuthError):
    """AADSTS7000222: the client secret has expired."""


class UnknownClientError(DynamicsAuthError):
    """AADSTS700016: no app with this client id in this tenant."""


class UnknownTenantError(DynamicsAuthError):
    """AADSTS90002 / 900023: the tenant does not exist or is malformed."""


class RedirectUriMismatchError(DynamicsAuthError):
    """AADSTS50011: the redirect URL is not registered on the app."""


class ReauthenticationRequiredError(DynamicsAuthError):
    """The stored sign-in is gone or expired (no account, AADSTS70008, 54005...); sign in again."""


class AuthFlowError(DynamicsAuthError):
    """The sign-in callback did not match the sign-in that was started (state, PKCE) or was cancelled."""


class TokenRejectedError(DynamicsAuthError):
    """Dataverse answered 401 even with a freshly acquired token."""


class ResourceRejectedError(DynamicsAuthError):
    """Entra refused the Dynamics resource asked for (AADSTS500011, 70011, 1002012).

    A wrong Organization URL or a missing Dynamics CRM API permission: a setup problem, not a failed request.
    """


class ApplicationUserMissingError(DynamicsAuthError):
    """Dataverse 0x80072560: the app has no application user in this environment."""


class PrivilegeDeniedError(DynamicsAuthError):
    """Dataverse 0x80040220 and kin: the application user's security roles lack a privilege."""

    def __init__(self, message: str, *, privilege: str | None = None, table: str | None = None, **kw: Any):
        super().__init__(message, **kw)
        self.privilege = privilege
        self.table = table


class IpBlockedError(DynamicsError, ConfigError):
    """The environment's IP firewall refused this machine's address (a configuration matter, not a login one)."""


# --- source refusals -----------------------------------------------------------------------------------------


class ChangeTrackingDisabledError(DynamicsError, FatalSourceError):
    """Dataverse 0x80072491: change tracking is off for the table."""

    def __init__(self, message: str, *, table: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.table = table


class DeltaTokenExpiredError(DynamicsError, CursorExpiredError):
    """Dataverse 0x80044352: the change-tracking token expired; a full reload is needed."""


class ResourceNotFoundError(DynamicsError, FatalSourceError):
    """404 for a URL segment (unknown table, function or navigation): the request itself is wrong."""


class RequestRejectedError(DynamicsError, FatalSourceError):
    """Dataverse refused a request (400, 405, 501 ...) in a way retrying will not fix."""


class RedirectRefusedError(DynamicsError, FatalSourceError):
    """The server answered with a redirect; dynasync never follows redirects."""


class PagingLoopError(DynamicsError, FatalSourceError):
    """The service returned the same ``@odata.nextLink`` twice; following it would never end."""


class RecordNotFoundError(DynamicsError, SkippableRecordError):
    """Dataverse 0x80040217: the addressed record does not exist."""


class RecordRejectedError(DynamicsError, SkippableRecordError):
    """One record write was refused (validation, type, length ...); the run goes on."""


class ConcurrencyConflictError(DynamicsError, SkippableRecordError):
    """412 0x80060882: the record changed since its version was read (If-Match failed)."""

    conflict = True


class DuplicateRecordError(DynamicsError, SkippableRecordError):
    """412 0x80040237 / 0x80060892 / 0x80040333: a record with the same key already exists."""

    conflict = True


# --- transient -----------------------------------------------------------------------------------------------


class ThrottledError(DynamicsError, RetriableError):
    """429: Dataverse service protection limits; wait ``retry_after`` seconds."""


class ServiceUnavailableError(DynamicsError, RetriableError):
    """5xx from Dataverse or Entra ID: a transient failure."""


class TransportFailureError(DynamicsError, RetriableError):
    """The connection dropped, timed out or TLS failed before an answer arrived."""
