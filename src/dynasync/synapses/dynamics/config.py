"""The Dynamics 365 synapse settings: validation of every field at once and SSRF-safe URL normalisation.

The organization URL decides where dynasync sends requests carrying a token, so only Dataverse cloud hosts are
accepted (https, port 443, no userinfo, no path, no IP literals); a local emulator on loopback is accepted only
with ``allow_local_emulator=True``. The endpoint URL is normalised to an Entra ID authority and a tenant.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator

from dynasync.secrets import Secret
from dynasync.synapses.dynamics.errors import ConfigProblem, DynamicsConfigError, ErrorContext

__all__ = [
    "CLOUDS",
    "Cloud",
    "DynamicsConfig",
    "OrgHost",
    "parse_endpoint",
    "parse_org_url",
]


@dataclass(frozen=True, slots=True)
class Cloud:
    """A Microsoft cloud: its Dataverse host pattern and the Entra ID sign-in hosts that serve it."""

    name: str
    org_pattern: re.Pattern[str]
    login_host: str
    login_aliases: frozenset[str]


_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PUBLIC_LOGIN = frozenset(
    {"login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net"}
)
_US_GOV_LOGIN = frozenset({"login.microsoftonline.us", "login-us.microsoftonline.com"})
_CHINA_LOGIN = frozenset({"login.chinacloudapi.cn", "login.partner.microsoftonline.cn"})

CLOUDS: tuple[Cloud, ...] = (
    # Commercial regions are crm, crm2 ... crm21 and growing; GCC is crm9 and signs in at the public cloud.
    Cloud(
        "commercial",
        re.compile(rf"^{_LABEL}(?:\.api)?\.crm\d{{0,2}}\.dynamics\.com$"),
        "login.microsoftonline.com",
        _PUBLIC_LOGIN,
    ),
    Cloud(
        "gcc-high",
        re.compile(rf"^{_LABEL}(?:\.api)?\.crm\.microsoftdynamics\.us$"),
        "login.microsoftonline.us",
        _US_GOV_LOGIN,
    ),
    Cloud(
        "dod",
        re.compile(rf"^{_LABEL}(?:\.api)?\.crm\.appsplatform\.us$"),
        "login.microsoftonline.us",
        _US_GOV_LOGIN,
    ),
    Cloud(
        "china",
        re.compile(rf"^{_LABEL}(?:\.api)?\.crm\.dynamics\.cn$"),
        "login.chinacloudapi.cn",
        _CHINA_LOGIN,
    ),
)
_EMULATOR_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DOMAIN = re.compile(rf"^(?:{_LABEL}\.)+[a-z]{{2,63}}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")
# What may follow the tenant in a pasted endpoint URL: the v1/v2 authorize or token endpoint, discovery, v2.0.
_ENDPOINT_TAILS = re.compile(
    r"^(?:/v2\.0)?(?:/oauth2(?:/v2\.0)?/(?:token|authorize))?(?:/v2\.0)?(?:/\.well-known/openid-configuration)?/?$"
)
_BAD_CHARS = re.compile(r"[\s\\\x00-\x1f\x7f]")

_ORG_EXAMPLE = "https://contoso.crm.dynamics.com"
_ENDPOINT_EXAMPLE = "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True, slots=True)
class OrgHost:
    """A validated organization URL: ``origin`` is ``https://host[:port]`` with no trailing slash."""

    origin: str
    host: str
    port: int
    cloud: str  # a Cloud.name or "emulator"


class _Problem(ValueError):
    pass


def _is_ip_literal(host: str) -> bool:
    candidate = host.strip("[]")
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        # Forms like 2130706433, 0x7f.1 or 127.1 resolve to addresses in many resolvers; none is a domain name.
        return bool(re.fullmatch(r"[0-9x.]+", candidate)) and not re.search(r"[a-z]{2,}", candidate)
    return True


def _split_url(raw: str, what: str) -> tuple[str, str, int | None, str, str]:
    """Return scheme, host, port, path, rest (query/fragment) after refusing userinfo and odd characters."""
    if _BAD_CHARS.search(raw):
        raise _Problem(f"the {what} contains spaces, backslashes or control characters")
    text = raw if "://" in raw else f"https://{raw}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise _Problem(f"the {what} is not a valid URL ({exc})") from None
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise _Problem(f"the {what} must not contain a user name or password ('@')")
    host = (parts.hostname or "").lower()
    if not host:
        raise _Problem(f"the {what} has no host name")
    try:
        host.encode("ascii")
    except UnicodeEncodeError:
        raise _Problem(f"the {what} host '{host}' contains non-ASCII characters") from None
    rest = ("?" + parts.query if parts.query else "") + ("#" + parts.fragment if parts.fragment else "")
    if "?" in text and not parts.query:
        rest = "?"
    return parts.scheme.lower(), host, port, parts.path, rest


def parse_org_url(raw: str, *, allow_local_emulator: bool = False) -> OrgHost:
    """Validate an organization URL and return its normalised origin.

    Args:
        raw: What the user typed, e.g. ``https://contoso.crm4.dynamics.com/``.
        allow_local_emulator: Also accept ``https://127.0.0.1:<port>`` / ``https://localhost:<port>``.

    Raises:
        ValueError: With a sentence saying what is wrong.
    """
    scheme, host, port, path, rest = _split_url(raw.strip(), "Organization URL")
    if scheme != "https":
        raise _Problem(f"the Organization URL must start with https:// (got {scheme}://)")
    if rest:
        raise _Problem("the Organization URL must not have a query (?...) or fragment (#...)")
    if path not in ("", "/"):
        raise _Problem(
            f"the Organization URL must be the environment address only, without the path '{path}'"
        )
    if host.endswith("."):
        raise _Problem("the Organization URL host must not end with a dot")
    if host in _EMULATOR_HOSTS:
        if not allow_local_emulator:
            raise _Problem(
                f"'{host}' is a local address; it is accepted only for the local emulator (allow_local_emulator)"
            )
        if port is None:
            raise _Problem("a local emulator Organization URL needs its port, e.g. https://127.0.0.1:8443")
        shown = f"[{host}]" if ":" in host else host
        return OrgHost(f"https://{shown}:{port}", host, port, "emulator")
    if _is_ip_literal(host):
        raise _Problem(f"the Organization URL must be a Dataverse host name, not the IP address '{host}'")
    if port not in (None, 443):
        raise _Problem(f"the Organization URL must use the default https port 443, not {port}")
    for cloud in CLOUDS:
        if cloud.org_pattern.match(host):
            return OrgHost(f"https://{host}", host, 443, cloud.name)
    raise _Problem(
        f"'{host}' is not a Dataverse environment host (expected <org>.crm[N].dynamics.com, "
        "<org>.crm.microsoftdynamics.us, <org>.crm.appsplatform.us or <org>.crm.dynamics.cn)"
    )


def _check_tenant(tenant: str) -> str:
    lowered = tenant.lower()
    if lowered in {"common", "organizations", "consumers"}:
        raise _Problem(
            f"'{tenant}' is a multi-tenant alias; the Endpoint URL must name your own tenant (Directory (tenant) ID)"
        )
    if _GUID.match(tenant):
        return lowered
    if _DOMAIN.match(lowered) and not _is_ip_literal(lowered):
        return lowered
    raise _Problem(
        f"'{tenant}' is neither a tenant ID (GUID) nor a domain name such as contoso.onmicrosoft.com"
    )


def parse_endpoint(raw: str, org: OrgHost | None) -> tuple[str, str]:
    """Normalise the Endpoint URL to ``(authority, tenant)``.

    Accepts ``https://login.microsoftonline.com/<tenant>`` (and the sovereign sign-in hosts, optionally followed by
    the v1/v2 token or authorize path), a bare tenant GUID or domain, or, for an emulator org, the emulator's
    loopback authority. A bare tenant signs in at the org's cloud (or at the emulator itself).

    Raises:
        ValueError: With a sentence saying what is wrong.
    """
    text = raw.strip()
    if not text:
        raise _Problem("the Endpoint URL is empty")
    if "/" not in text and ":" not in text:
        tenant = _check_tenant(text)
        if org is None:
            raise _Problem("a bare tenant needs a valid Organization URL to pick the sign-in cloud")
        if org.cloud == "emulator":
            return f"{org.origin}/{tenant}", tenant
        cloud = next(c for c in CLOUDS if c.name == org.cloud)
        return f"https://{cloud.login_host}/{tenant}", tenant
    scheme, host, port, path, rest = _split_url(text, "Endpoint URL")
    if scheme != "https":
        raise _Problem(f"the Endpoint URL must start with https:// (got {scheme}://)")
    if rest:
        raise _Problem("the Endpoint URL must not have a query (?...) or fragment (#...)")
    segments = [s for s in path.split("/") if s]
    if not segments:
        raise _Problem("the Endpoint URL must end with your tenant ID, e.g. .../<Directory (tenant) ID>")
    tenant = _check_tenant(segments[0])
    tail = path[path.index(segments[0]) + len(segments[0]) :]
    if not _ENDPOINT_TAILS.match(tail):
        raise _Problem(f"the Endpoint URL has an unexpected path after the tenant: '{tail}'")
    if host in _EMULATOR_HOSTS:
        if org is None or org.cloud != "emulator":
            raise _Problem(
                "a local Endpoint URL is accepted only together with a local emulator Organization URL"
            )
        if port is None:
            raise _Problem("a local emulator Endpoint URL needs its port")
        shown = f"[{host}]" if ":" in host else host
        return f"https://{shown}:{port}/{tenant}", tenant
    if port not in (None, 443):
        raise _Problem(f"the Endpoint URL must use the default https port 443, not {port}")
    cloud_of_host = next((c for c in CLOUDS if host in c.login_aliases), None)
    if cloud_of_host is None:
        raise _Problem(
            f"'{host}' is not a Microsoft Entra ID sign-in host (login.microsoftonline.com, "
            "login.microsoftonline.us, login.chinacloudapi.cn)"
        )
    if org is not None:
        if org.cloud == "emulator":
            raise _Problem(
                "an emulator Organization URL needs the emulator's own Endpoint URL or a bare tenant ID"
            )
        org_cloud = next(c for c in CLOUDS if c.name == org.cloud)
        if host not in org_cloud.login_aliases:
            raise _Problem(
                f"sign-in host '{host}' belongs to another cloud than the Organization URL; "
                f"use https://{org_cloud.login_host}/<tenant>"
            )
    # The canonical host is used for the authority so msal recognises it as a well-known host.
    return f"https://{cloud_of_host.login_host}/{tenant}", tenant


def _check_public_base_url(raw: str) -> str:
    scheme, host, port, path, rest = _split_url(raw.strip(), "public base URL")
    if rest:
        raise _Problem("the public base URL must not have a query or fragment")
    loopback = host in _EMULATOR_HOSTS
    if scheme != "https" and not (scheme == "http" and loopback):
        raise _Problem("the public base URL must use https:// (plain http is allowed only for localhost)")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and not (scheme == "https" and port == 443) and not (scheme == "http" and port == 80):
        netloc += f":{port}"
    return f"{scheme}://{netloc}{path.rstrip('/')}"


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
    raise _Problem("must be true or false")


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
    except _Problem as exc:
        problem("allow_local_emulator", str(exc))
        emulator = False
    out["allow_local_emulator"] = emulator

    org: OrgHost | None = None
    org_raw = text_of("org_url")
    if org_raw is not None:
        try:
            org = parse_org_url(org_raw, allow_local_emulator=emulator)
            out["org_url"] = org.origin
        except _Problem as exc:
            problem("org_url", str(exc))

    endpoint_raw = text_of("endpoint_url")
    if endpoint_raw is not None:
        try:
            out["endpoint_url"], _ = parse_endpoint(endpoint_raw, org)
        except _Problem as exc:
            if org is not None or "needs a valid Organization URL" not in str(exc):
                problem("endpoint_url", str(exc))

    client_id = text_of("client_id")
    if client_id is not None:
        if _GUID.match(client_id):
            out["client_id"] = client_id.lower()
        else:
            problem("client_id", "must be the Application (client) ID, a GUID")

    secret = data.get("client_secret")
    secret_text = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    if isinstance(secret_text, Secret):
        secret_text = secret_text.reveal()
    if not isinstance(secret_text, str) or not secret_text.strip():
        problem("client_secret", "is required")
    elif _GUID.match(secret_text.strip()):
        # Never echo the value: it is (or is close to) a credential.
        problem("client_secret", "looks like the secret's ID (a GUID); paste the secret's Value instead")
    elif secret_text != secret_text.strip():
        problem("client_secret", "has leading or trailing spaces; paste the Value exactly")
    else:
        out["client_secret"] = SecretStr(secret_text)

    base = text_of("public_base_url")
    if base is not None:
        try:
            out["public_base_url"] = _check_public_base_url(base)
        except _Problem as exc:
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
        return urlsplit(self.org_url).hostname in _EMULATOR_HOSTS

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
