"""Records of the emulated Entra ID directory: tenants, app registrations, client secrets, permissions, users.

Secret values and passwords are kept only as salted hashes. Each record converts to and from a JSON-able dict.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "DYNAMICS_CRM_APP_ID",
    "USER_IMPERSONATION",
    "ApiPermission",
    "AppRegistration",
    "ClientSecret",
    "NewSecret",
    "ReadyApp",
    "SecretCheck",
    "SignInAudience",
    "Tenant",
    "User",
]

DYNAMICS_CRM_APP_ID = "00000007-0000-0000-c000-000000000000"
"""The application id of the "Dynamics CRM" API in every tenant [I]."""
USER_IMPERSONATION = "user_impersonation"

PASSWORD_ITERATIONS = 20_000

SignInAudience = Literal["AzureADMyOrg", "AzureADMultipleOrgs"]
SecretCheck = Literal["ok", "wrong", "expired"]


def hash_value(value: str, salt: str, iterations: int) -> str:
    """Return the PBKDF2-SHA256 hex digest of ``value`` (salt given as hex)."""
    return hashlib.pbkdf2_hmac("sha256", value.encode(), bytes.fromhex(salt), iterations).hex()


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat()


def parse_time(text: str) -> dt.datetime:
    """Parse an ISO timestamp written by ``to_dict`` as aware UTC."""
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


@dataclass
class Tenant:
    """A directory (tenant): a GUID and its verified domains such as ``contoso.onmicrosoft.com``."""

    id: str
    domains: list[str]
    display_name: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict."""
        return {"id": self.id, "domains": list(self.domains), "display_name": self.display_name}


@dataclass
class ClientSecret:
    """A client secret: its id, the first characters shown in the portal, a hash of the value and its expiry."""

    id: str
    hint: str
    salt: str
    value_hash: str
    expires_at: dt.datetime
    description: str = ""

    def matches(self, value: str) -> bool:
        """Return True when ``value`` is this secret's value (constant-time comparison)."""
        return hmac.compare_digest(hash_value(value, self.salt, 1), self.value_hash)

    def __repr__(self) -> str:
        return f"ClientSecret(id={self.id!r}, hint={self.hint!r}, expires_at={self.expires_at.isoformat()!r})"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict (the hash, never the value)."""
        return {
            "id": self.id,
            "hint": self.hint,
            "salt": self.salt,
            "value_hash": self.value_hash,
            "expires_at": _iso(self.expires_at),
            "description": self.description,
        }


@dataclass(frozen=True)
class ApiPermission:
    """A requested API permission, e.g. Dynamics CRM ``user_impersonation`` (delegated)."""

    resource_app_id: str = DYNAMICS_CRM_APP_ID
    resource_name: str = "Dynamics CRM"
    value: str = USER_IMPERSONATION
    kind: Literal["delegated", "application"] = "delegated"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict."""
        return {
            "resource_app_id": self.resource_app_id,
            "resource_name": self.resource_name,
            "value": self.value,
            "kind": self.kind,
        }


@dataclass
class AppRegistration:
    """An app registration and its service principal in the home tenant.

    Attributes:
        consented_tenants: Tenants where an administrator granted consent for the whole organisation.
        user_consents: Object ids of users who consented for themselves.
    """

    tenant_id: str
    display_name: str
    client_id: str
    object_id: str
    service_principal_id: str
    sign_in_audience: SignInAudience = "AzureADMyOrg"
    secrets: list[ClientSecret] = field(default_factory=list)
    redirect_uris: list[str] = field(default_factory=list)
    permissions: list[ApiPermission] = field(default_factory=list)
    consented_tenants: set[str] = field(default_factory=set)
    user_consents: set[str] = field(default_factory=set)

    @property
    def admin_consent(self) -> bool:
        """Whether admin consent is granted in the home tenant."""
        return self.tenant_id in self.consented_tenants

    @property
    def multi_tenant(self) -> bool:
        """Whether accounts of other tenants may sign in to this app."""
        return self.sign_in_audience == "AzureADMultipleOrgs"

    def has_delegated(self, resource_app_id: str, value: str) -> bool:
        """Return True when the app requests the delegated permission ``value`` on ``resource_app_id``."""
        return any(
            p.kind == "delegated" and p.resource_app_id == resource_app_id and p.value == value
            for p in self.permissions
        )

    def application_roles(self, resource_app_id: str) -> list[str]:
        """Return the application permissions (app roles) requested on ``resource_app_id``."""
        return [
            p.value
            for p in self.permissions
            if p.kind == "application" and p.resource_app_id == resource_app_id
        ]

    def check_secret(self, value: str, now: dt.datetime) -> SecretCheck:
        """Classify a presented secret: ``ok``, ``expired`` (matches an expired secret) or ``wrong``."""
        matched = [s for s in self.secrets if s.matches(value)]
        if not matched:
            return "wrong"
        return "ok" if any(s.expires_at > now for s in matched) else "expired"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict."""
        return {
            "tenant_id": self.tenant_id,
            "display_name": self.display_name,
            "client_id": self.client_id,
            "object_id": self.object_id,
            "service_principal_id": self.service_principal_id,
            "sign_in_audience": self.sign_in_audience,
            "secrets": [s.to_dict() for s in self.secrets],
            "redirect_uris": list(self.redirect_uris),
            "permissions": [p.to_dict() for p in self.permissions],
            "consented_tenants": sorted(self.consented_tenants),
            "user_consents": sorted(self.user_consents),
        }


@dataclass
class User:
    """A user who can sign in on the emulator's sign-in page."""

    tenant_id: str
    upn: str
    object_id: str
    display_name: str
    salt: str
    password_hash: str
    is_admin: bool = False

    def check_password(self, password: str) -> bool:
        """Return True when ``password`` is this user's password."""
        return hmac.compare_digest(hash_value(password, self.salt, PASSWORD_ITERATIONS), self.password_hash)

    def __repr__(self) -> str:
        return f"User(upn={self.upn!r}, object_id={self.object_id!r}, is_admin={self.is_admin!r})"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict (the password hash, never the password)."""
        return {
            "tenant_id": self.tenant_id,
            "upn": self.upn,
            "object_id": self.object_id,
            "display_name": self.display_name,
            "salt": self.salt,
            "password_hash": self.password_hash,
            "is_admin": self.is_admin,
        }


@dataclass(frozen=True)
class NewSecret:
    """A freshly created client secret; ``value`` is only available here, once."""

    secret_id: str
    value: str = field(repr=False)
    expires_at: dt.datetime


@dataclass(frozen=True)
class ReadyApp:
    """An app registration made ready for the Dynamics synapse, with its secret value (shown once)."""

    tenant_id: str
    client_id: str
    secret_id: str
    client_secret: str = field(repr=False)
