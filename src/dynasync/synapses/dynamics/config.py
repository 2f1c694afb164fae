"""The Dynamics 365 synapse settings: validation of every field at once and SSRF-safe URL normalisation.

The organization URL decides where dynasync sends requests carrying a token, so only Dataverse cloud hosts are
accepted (https, port 443, no userinfo, no path, no IP literals); a local emulator on loopback is accepted only
with ``allow_local_emulator=True``. The endpoint URL is normalised to an Entra ID authority and a tenant.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator

from dynasync.secrets import Secret
from dynasync.synapses.dynamics.errors import ConfigProblem, DynamicsConfigError, ErrorContext
from dynasync.synapses.dynamics.urls import (
    CLOUDS,
    EMULATOR_HOSTS,
    GUID,
    Cloud,
    OrgHost,
    UrlProblem,
    check_public_base_url,
    parse_endpoint,
    parse_org_url,
)

__all__ = [
    "CLOUDS",
    "Cloud",
    "DynamicsConfig",
    "OrgHost",
    "parse_endpoint",
    "parse_org_url",
]


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")
_ORG_EXAMPLE = "https://contoso.crm.dynamics.com"
_ENDPOINT_EXAMPLE = "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000"


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {
        "true",
        "1",
        "yes",
        "on",
        "false",
        "0",
        "no",
        "off",
        "",
    }:
        return value.strip().lower() in {"true", "1", "yes", "on"}
    raise UrlProblem("must be true or false")


_EXAMPLES = {
    "name": "Dynamics Production",
    "endpoint_url": _ENDPOINT_EXAMPLE,
    "org_url": _ORG_EXAMPLE,
    "client_id": "11111111-2222-3333-4444-555555555555",
    "client_secret": "the secret's Value from Certificates & secrets, e.g. 'Abc8Q~...'",
    "public_base_url": "https://dynasync.example.com",
    "allow_local_emulator": "false",
    "ca_bundle": "~/.dynasync/emulator/ca.pem",
}
_FIELDS = tuple(_EXAMPLES)


def _validate_all(data: Mapping[str, Any]) -> dict[str, Any]:
    """Check every field, collect every problem, and return the normalised values."""
    problems: list[ConfigProblem] = []
    out: dict[str, Any] = {}

    def problem(field: str, text: str) -> None:
        problems.append(ConfigProblem(field, text, _EXAMPLES.get(field, "")))

    for key in data:
        if key not in _FIELDS:
            problems.append(
                ConfigProblem(str(key), "is not a setting of the Dynamics 365 synapse", ", ".join(_FIELDS))
            )

    def text_of(field: str, required: bool = True) -> str | None:
        value = data.get(field)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                problem(field, "is required")
            return None
        if not isinstance(value, str):
            problem(field, "must be text")
            return None
        return value.strip()

    name = text_of("name")
    if name is not None:
        if _NAME.match(name):
            out["name"] = name
        else:
            problem(
                "name",
                "must be 1-64 letters, digits, spaces, '.', '_' or '-', starting with a letter or digit",
            )

    try:
        emulator = _as_bool(data.get("allow_local_emulator", False))
    except UrlProblem as exc:
        problem("allow_local_emulator", str(exc))
        emulator = False
    out["allow_local_emulator"] = emulator

    org: OrgHost | None = None
    org_raw = text_of("org_url")
    if org_raw is not None:
        try:
            org = parse_org_url(org_raw, allow_local_emulator=emulator)
            out["org_url"] = org.origin
        except UrlProblem as exc:
            problem("org_url", str(exc))

    endpoint_raw = text_of("endpoint_url")
    if endpoint_raw is not None:
        try:
            out["endpoint_url"], _ = parse_endpoint(endpoint_raw, org)
        except UrlProblem as exc:
            if org is not None or "needs a valid Organization URL" not in str(exc):
                problem("endpoint_url", str(exc))

    client_id = text_of("client_id")
    if client_id is not None:
        if GUID.match(client_id):
            out["client_id"] = client_id.lower()
        else:
            problem("client_id", "must be the Application (client) ID, a GUID")

    secret = data.get("client_secret")
    secret_text = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    if isinstance(secret_text, Secret):
        secret_text = secret_text.reveal()
    if not isinstance(secret_text, str) or not secret_text.strip():
        problem("client_secret", "is required")
    elif GUID.match(secret_text.strip()):
        # Never echo the value: it is (or is close to) a credential.
        problem("client_secret", "looks like the secret's ID (a GUID); paste the secret's Value instead")
    elif secret_text != secret_text.strip():
        problem("client_secret", "has leading or trailing spaces; paste the Value exactly")
    else:
        out["client_secret"] = SecretStr(secret_text)

    base = text_of("public_base_url")
    if base is not None:
        try:
            out["public_base_url"] = check_public_base_url(base)
        except UrlProblem as exc:
            problem("public_base_url", str(exc))

    ca = data.get("ca_bundle")
    if ca is not None and ca != "":
        path = Path(ca).expanduser() if isinstance(ca, str | Path) else None
        if path is None:
            problem("ca_bundle", "must be a file path")
        elif org is not None and org.cloud != "emulator":
            problem(
                "ca_bundle", "is used only for a local emulator; Microsoft hosts use the system trust store"
            )
        elif not path.is_file():
            problem("ca_bundle", f"file '{path}' does not exist")
        else:
            out["ca_bundle"] = path
    elif org is not None and org.cloud == "emulator":
        problem("ca_bundle", "a local emulator Organization URL needs the emulator's CA certificate file")
    if problems:
        raise DynamicsConfigError(problems)
    return out


class DynamicsConfig(BaseModel):
    """Validated settings of one Dynamics 365 synapse; construct with keyword fields or :meth:`parse`.

    Every field is checked and all problems are reported together as one
    :class:`~dynasync.synapses.dynamics.errors.DynamicsConfigError`. ``org_url`` is normalised to
    ``https://host`` (``https://127.0.0.1:<port>`` for the emulator) and ``endpoint_url`` to the authority
    ``https://<login host>/<tenant>``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    endpoint_url: str
    org_url: str
    client_id: str
    client_secret: SecretStr
    public_base_url: str
    allow_local_emulator: bool = False
    ca_bundle: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _check(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise DynamicsConfigError([ConfigProblem("(settings)", "must be a mapping of fields", "{...}")])
        return _validate_all(data)

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> DynamicsConfig:
        """Validate ``data`` (e.g. the setup form) and return the settings, or raise listing every problem."""
        return cls.model_validate(dict(data))

    @property
    def authority(self) -> str:
        """The Entra ID authority, ``https://<login host>/<tenant>``."""
        return self.endpoint_url

    @property
    def tenant(self) -> str:
        """The tenant id (GUID) or domain, lower-case."""
        return self.endpoint_url.rsplit("/", 1)[1]

    @property
    def is_emulator(self) -> bool:
        """True when the org is a local emulator on loopback."""
        return urlsplit(self.org_url).hostname in EMULATOR_HOSTS

    @property
    def cloud(self) -> str:
        """The cloud name: commercial, gcc-high, dod, china or emulator."""
        return parse_org_url(self.org_url, allow_local_emulator=self.allow_local_emulator).cloud

    @property
    def scope(self) -> str:
        """The app-only scope for client credentials, ``<org>/.default``."""
        return f"{self.org_url}/.default"

    @property
    def delegated_scope(self) -> str:
        """The delegated scope for the sign-in flow, ``<org>/user_impersonation``."""
        return f"{self.org_url}/user_impersonation"

    @property
    def admin_consent_url(self) -> str:
        """The URL an administrator opens to grant tenant-wide consent to the app."""
        return f"{self.authority}/adminconsent?client_id={self.client_id}"

    def api_base(self, version: str = "v9.2") -> str:
        """Return the Web API base URL with a trailing slash, e.g. ``https://org.crm.dynamics.com/api/data/v9.2/``."""
        return f"{self.org_url}/api/data/{version}/"

    def error_context(self, *, redirect_url: str | None = None, table: str | None = None) -> ErrorContext:
        """Return what the error remedies need to know about this connection."""
        return ErrorContext(self.org_url, self.client_id, self.tenant, self.authority, redirect_url, table)
