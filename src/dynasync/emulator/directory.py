"""The emulated Entra ID directory: tenants, app registrations (secrets, redirect URIs, consent) and users.

Plain state and rules, no HTTP. Secret values and passwords are kept only as salted hashes; a new secret's
value is returned once, when it is created, like the Azure portal does. ``to_dict``/``from_dict`` give a
JSON-able snapshot the web layer can save.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import threading
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from dynasync.emulator.directory_model import (
    DYNAMICS_CRM_APP_ID,
    PASSWORD_ITERATIONS,
    USER_IMPERSONATION,
    ApiPermission,
    AppRegistration,
    ClientSecret,
    NewSecret,
    ReadyApp,
    SecretCheck,
    SignInAudience,
    Tenant,
    User,
    hash_value,
    parse_time,
)

__all__ = [
    "DYNAMICS_CRM_APP_ID",
    "USER_IMPERSONATION",
    "ApiPermission",
    "AppRegistration",
    "ClientSecret",
    "Directory",
    "NewSecret",
    "ReadyApp",
    "SecretCheck",
    "Tenant",
    "User",
    "is_dns_name",
]

_SECRET_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
_SCHEMA = 1


class Directory:
    """All tenants, app registrations and users of the emulated Entra ID.

    Mutating methods take a lock because the identity routes change consent while other requests read.
    """

    def __init__(self) -> None:
        self.tenants: dict[str, Tenant] = {}
        self.apps: dict[str, AppRegistration] = {}
        self.users: dict[str, User] = {}  # by object id
        self._lock = threading.RLock()

    # -- tenants -------------------------------------------------------------------------------------------

    def add_tenant(
        self,
        domain: str,
        *,
        tenant_id: str | None = None,
        display_name: str = "",
        extra_domains: Iterable[str] = (),
    ) -> Tenant:
        """Create a tenant with its initial ``*.onmicrosoft.com``-style domain and return it."""
        tid = str(uuid.UUID(tenant_id)) if tenant_id else str(uuid.uuid4())
        domains = [domain.lower(), *(d.lower() for d in extra_domains)]
        with self._lock:
            if tid in self.tenants:
                raise ValueError(f"tenant {tid} already exists")
            for d in domains:
                if self.tenant_by_domain(d) is not None:
                    raise ValueError(f"domain {d!r} is already verified in another tenant")
            tenant = Tenant(tid, domains, display_name or domain.split(".")[0].title())
            self.tenants[tid] = tenant
        return tenant

    def tenant_by_domain(self, domain: str) -> Tenant | None:
        """Return the tenant that verified ``domain`` (case-insensitive), if any."""
        wanted = domain.lower()
        return next((t for t in self.tenants.values() if wanted in t.domains), None)

    def resolve_tenant(self, identifier: str) -> Tenant | None:
        """Return the tenant named by a GUID (any casing) or a verified domain, or None."""
        try:
            return self.tenants.get(str(uuid.UUID(identifier)))
        except ValueError:
            return self.tenant_by_domain(identifier)

    def add_demo_tenant(
        self,
        domain: str = "contoso.onmicrosoft.com",
        *,
        tenant_id: str | None = None,
        admin_password: str = "emulator-admin",
        user_password: str = "emulator-user",
    ) -> Tenant:
        """Create a tenant with a global administrator ``admin@<domain>`` and an ordinary user ``user@<domain>``."""
        tenant = self.add_tenant(domain, tenant_id=tenant_id)
        self.add_user(
            tenant.id, f"admin@{domain}", admin_password, display_name="Emulator Admin", is_admin=True
        )
        self.add_user(tenant.id, f"user@{domain}", user_password, display_name="Emulator User")
        return tenant

    @property
    def default_tenant(self) -> Tenant | None:
        """The first tenant created, if any."""
        return next(iter(self.tenants.values()), None)

    # -- apps ----------------------------------------------------------------------------------------------

    def register_app(
        self,
        tenant_id: str,
        display_name: str,
        *,
        client_id: str | None = None,
        redirect_uris: Iterable[str] = (),
        permissions: Iterable[ApiPermission] = (),
        sign_in_audience: SignInAudience = "AzureADMyOrg",
    ) -> AppRegistration:
        """Register an application in ``tenant_id`` (no secret, no consent yet) and return it."""
        if tenant_id not in self.tenants:
            raise KeyError(f"unknown tenant {tenant_id}")
        app = AppRegistration(
            tenant_id=tenant_id,
            display_name=display_name,
            client_id=str(uuid.UUID(client_id)) if client_id else str(uuid.uuid4()),
            object_id=str(uuid.uuid4()),
            service_principal_id=str(uuid.uuid4()),
            sign_in_audience=sign_in_audience,
            redirect_uris=list(redirect_uris),
            permissions=list(permissions),
        )
        with self._lock:
            if app.client_id in self.apps:
                raise ValueError(f"an app with client id {app.client_id} already exists")
            self.apps[app.client_id] = app
        return app

    def app(self, client_id: str) -> AppRegistration | None:
        """Return the app registration with this client id (any GUID casing), or None."""
        try:
            return self.apps.get(str(uuid.UUID(client_id)))
        except ValueError:
            return None

    def app_in_tenant(self, client_id: str, tenant_id: str) -> AppRegistration | None:
        """Return the app if it has a service principal in ``tenant_id``: its home tenant, or a consented one."""
        app = self.app(client_id)
        if app is None:
            return None
        if app.tenant_id == tenant_id or (app.multi_tenant and tenant_id in app.consented_tenants):
            return app
        return None

    def add_secret(
        self,
        client_id: str,
        now: dt.datetime,
        *,
        lifetime: dt.timedelta = dt.timedelta(days=180),
        description: str = "",
        value: str | None = None,
    ) -> NewSecret:
        """Add a client secret (random unless ``value`` is given) and return its value, once."""
        app = self._app(client_id)
        secret_value = value or _new_secret_value()
        salt = secrets.token_hex(16)
        secret = ClientSecret(
            id=str(uuid.uuid4()),
            hint=secret_value[:3],
            salt=salt,
            value_hash=hash_value(secret_value, salt, 1),  # high-entropy random values: one round suffices
            expires_at=now + lifetime,
            description=description,
        )
        with self._lock:
            app.secrets.append(secret)
        return NewSecret(secret.id, secret_value, secret.expires_at)

    def remove_secret(self, client_id: str, secret_id: str) -> None:
        """Delete a client secret by its id."""
        app = self._app(client_id)
        with self._lock:
            app.secrets = [s for s in app.secrets if s.id != secret_id]

    def grant_admin_consent(self, client_id: str, tenant_id: str | None = None) -> None:
        """Record admin consent for the app in ``tenant_id`` (default: its home tenant)."""
        app = self._app(client_id)
        with self._lock:
            app.consented_tenants.add(tenant_id or app.tenant_id)

    def revoke_admin_consent(self, client_id: str, tenant_id: str | None = None) -> None:
        """Withdraw admin consent for the app in ``tenant_id`` (default: its home tenant)."""
        app = self._app(client_id)
        with self._lock:
            app.consented_tenants.discard(tenant_id or app.tenant_id)

    def grant_user_consent(self, client_id: str, user_object_id: str) -> None:
        """Record that one user consented to the app for themselves."""
        app = self._app(client_id)
        with self._lock:
            app.user_consents.add(user_object_id)

    def has_consent(self, app: AppRegistration, tenant_id: str, user_object_id: str | None) -> bool:
        """Return True when the app may act in ``tenant_id`` (for ``user_object_id`` when delegated)."""
        if tenant_id in app.consented_tenants:
            return True
        return user_object_id is not None and user_object_id in app.user_consents

    def create_ready_app(
        self,
        tenant_id: str,
        *,
        display_name: str = "Syncari Integration",
        redirect_uris: Iterable[str] = (),
        admin_consent: bool = True,
        now: dt.datetime,
        secret_lifetime: dt.timedelta = dt.timedelta(days=180),
        client_id: str | None = None,
        secret_value: str | None = None,
    ) -> ReadyApp:
        """Do the setup guide's app steps: register, add Dynamics CRM ``user_impersonation``, a secret, consent.

        Returns:
            The client id and the secret value (the only time the value is available).
        """
        app = self.register_app(
            tenant_id,
            display_name,
            client_id=client_id,
            redirect_uris=redirect_uris,
            permissions=[ApiPermission()],
        )
        secret = self.add_secret(
            app.client_id, now, lifetime=secret_lifetime, description="dynasync", value=secret_value
        )
        if admin_consent:
            self.grant_admin_consent(app.client_id)
        return ReadyApp(tenant_id, app.client_id, secret.secret_id, secret.value)

    # -- users ---------------------------------------------------------------------------------------------

    def add_user(
        self,
        tenant_id: str,
        upn: str,
        password: str,
        *,
        display_name: str = "",
        is_admin: bool = False,
        object_id: str | None = None,
    ) -> User:
        """Create a user who can sign in with ``upn`` and ``password``."""
        if tenant_id not in self.tenants:
            raise KeyError(f"unknown tenant {tenant_id}")
        salt = secrets.token_hex(16)
        user = User(
            tenant_id=tenant_id,
            upn=upn.lower(),
            object_id=str(uuid.UUID(object_id)) if object_id else str(uuid.uuid4()),
            display_name=display_name or upn.split("@")[0].replace(".", " ").title(),
            salt=salt,
            password_hash=hash_value(password, salt, PASSWORD_ITERATIONS),
            is_admin=is_admin,
        )
        with self._lock:
            if self.user_by_upn(user.upn) is not None:
                raise ValueError(f"user {user.upn!r} already exists")
            self.users[user.object_id] = user
        return user

    def user_by_upn(self, upn: str) -> User | None:
        """Return the user with this UPN (case-insensitive), if any."""
        wanted = upn.lower()
        return next((u for u in self.users.values() if u.upn == wanted), None)

    def users_of(self, tenant_id: str) -> list[User]:
        """Return the users of one tenant, admins first."""
        return sorted(
            (u for u in self.users.values() if u.tenant_id == tenant_id),
            key=lambda u: (not u.is_admin, u.upn),
        )

    # -- persistence ---------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able snapshot (hashes only, no secret values or passwords)."""
        with self._lock:
            return {
                "schema": _SCHEMA,
                "tenants": [t.to_dict() for t in self.tenants.values()],
                "apps": [a.to_dict() for a in self.apps.values()],
                "users": [u.to_dict() for u in self.users.values()],
            }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Directory:
        """Rebuild a directory from :meth:`to_dict` output."""
        if data.get("schema") != _SCHEMA:
            raise ValueError(f"unsupported directory snapshot schema {data.get('schema')!r}")
        directory = cls()
        for t in data["tenants"]:
            directory.tenants[t["id"]] = Tenant(t["id"], list(t["domains"]), t.get("display_name", ""))
        for a in data["apps"]:
            app = AppRegistration(
                tenant_id=a["tenant_id"],
                display_name=a["display_name"],
                client_id=a["client_id"],
                object_id=a["object_id"],
                service_principal_id=a["service_principal_id"],
                sign_in_audience=a["sign_in_audience"],
                secrets=[
                    ClientSecret(
                        id=s["id"],
                        hint=s["hint"],
                        salt=s["salt"],
                        value_hash=s["value_hash"],
                        expires_at=parse_time(s["expires_at"]),
                        description=s.get("description", ""),
                    )
                    for s in a["secrets"]
                ],
                redirect_uris=list(a["redirect_uris"]),
                permissions=[ApiPermission(**p) for p in a["permissions"]],
                consented_tenants=set(a["consented_tenants"]),
                user_consents=set(a["user_consents"]),
            )
            directory.apps[app.client_id] = app
        for u in data["users"]:
            directory.users[u["object_id"]] = User(**u)
        return directory

    def _app(self, client_id: str) -> AppRegistration:
        app = self.app(client_id)
        if app is None:
            raise KeyError(f"unknown app {client_id}")
        return app


def _new_secret_value() -> str:
    """Return a secret shaped like the portal's (``abc8Q~`` + 34 characters)."""
    head = "".join(secrets.choice(_SECRET_ALPHABET[:62]) for _ in range(3))
    tail = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(34))
    return f"{head}8Q~{tail}"


_DNS_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def is_dns_name(text: str) -> bool:
    """Return True when ``text`` is a plausible tenant domain (at least two valid DNS labels)."""
    labels = text.lower().split(".")
    return len(labels) >= 2 and all(_DNS_LABEL.match(label) for label in labels)
