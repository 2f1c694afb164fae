"""SSRF-safe parsing of the URLs a user types: Dataverse org URLs, Entra ID endpoints and dynasync's public URL.

Only Dataverse cloud hosts are accepted as org URLs (https, port 443, no userinfo, no path, no IP literals); a
local emulator on loopback only when explicitly allowed. Endpoint URLs are normalised to an authority and a tenant.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = [
    "CLOUDS",
    "EMULATOR_HOSTS",
    "GUID",
    "Cloud",
    "OrgHost",
    "UrlProblem",
    "check_public_base_url",
    "check_tenant",
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
EMULATOR_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DOMAIN = re.compile(rf"^(?:{_LABEL}\.)+[a-z]{{2,63}}$")
# What may follow the tenant in a pasted endpoint URL: the v1/v2 authorize or token endpoint, discovery, v2.0.
_ENDPOINT_TAILS = re.compile(
    r"^(?:/v2\.0)?(?:/oauth2(?:/v2\.0)?/(?:token|authorize))?(?:/v2\.0)?(?:/\.well-known/openid-configuration)?/?$"
)
_BAD_CHARS = re.compile(r"[\s\\\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class OrgHost:
    """A validated organization URL: ``origin`` is ``https://host[:port]`` with no trailing slash."""

    origin: str
    host: str
    port: int
    cloud: str  # a Cloud.name or "emulator"


class UrlProblem(ValueError):
    """A typed URL is refused; the message says why in one sentence."""


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
        raise UrlProblem(f"the {what} contains spaces, backslashes or control characters")
    text = raw if "://" in raw else f"https://{raw}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise UrlProblem(f"the {what} is not a valid URL ({exc})") from None
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UrlProblem(f"the {what} must not contain a user name or password ('@')")
    host = (parts.hostname or "").lower()
    if not host:
        raise UrlProblem(f"the {what} has no host name")
    try:
        host.encode("ascii")
    except UnicodeEncodeError:
        raise UrlProblem(f"the {what} host '{host}' contains non-ASCII characters") from None
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
        raise UrlProblem(f"the Organization URL must start with https:// (got {scheme}://)")
    if rest:
        raise UrlProblem("the Organization URL must not have a query (?...) or fragment (#...)")
    if path not in ("", "/"):
        raise UrlProblem(
            f"the Organization URL must be the environment address only, without the path '{path}'"
        )
    if host.endswith("."):
        raise UrlProblem("the Organization URL host must not end with a dot")
    if host in EMULATOR_HOSTS:
        if not allow_local_emulator:
            raise UrlProblem(
                f"'{host}' is a local address; it is accepted only for the local emulator (setting "
                "allow_local_emulator; on the command line, add --emulator-ca with the CA file `dynasync emulator "
                "ca` prints)"
            )
        if port is None:
            raise UrlProblem("a local emulator Organization URL needs its port, e.g. https://127.0.0.1:8443")
        shown = f"[{host}]" if ":" in host else host
        return OrgHost(f"https://{shown}:{port}", host, port, "emulator")
    if _is_ip_literal(host):
        raise UrlProblem(f"the Organization URL must be a Dataverse host name, not the IP address '{host}'")
    if port not in (None, 443):
        raise UrlProblem(f"the Organization URL must use the default https port 443, not {port}")
    for cloud in CLOUDS:
        if cloud.org_pattern.match(host):
            return OrgHost(f"https://{host}", host, 443, cloud.name)
    raise UrlProblem(
        f"'{host}' is not a Dataverse environment host (expected <org>.crm[N].dynamics.com, "
        "<org>.crm.microsoftdynamics.us, <org>.crm.appsplatform.us or <org>.crm.dynamics.cn)"
    )


def check_tenant(tenant: str) -> str:
    """Return the tenant GUID or domain, lower-case; refuse multi-tenant aliases and malformed names."""
    lowered = tenant.lower()
    if lowered in {"common", "organizations", "consumers"}:
        raise UrlProblem(
            f"'{tenant}' is a multi-tenant alias; the Endpoint URL must name your own tenant (Directory (tenant) ID)"
        )
    if GUID.match(tenant):
        return lowered
    if _DOMAIN.match(lowered) and not _is_ip_literal(lowered):
        return lowered
    raise UrlProblem(
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
        raise UrlProblem("the Endpoint URL is empty")
    if "/" not in text and ":" not in text:
        tenant = check_tenant(text)
        if org is None:
            raise UrlProblem("a bare tenant needs a valid Organization URL to pick the sign-in cloud")
        if org.cloud == "emulator":
            return f"{org.origin}/{tenant}", tenant
        cloud = next(c for c in CLOUDS if c.name == org.cloud)
        return f"https://{cloud.login_host}/{tenant}", tenant
    scheme, host, port, path, rest = _split_url(text, "Endpoint URL")
    if scheme != "https":
        raise UrlProblem(f"the Endpoint URL must start with https:// (got {scheme}://)")
    if rest:
        raise UrlProblem("the Endpoint URL must not have a query (?...) or fragment (#...)")
    segments = [s for s in path.split("/") if s]
    if not segments:
        raise UrlProblem("the Endpoint URL must end with your tenant ID, e.g. .../<Directory (tenant) ID>")
    tenant = check_tenant(segments[0])
    tail = path[path.index(segments[0]) + len(segments[0]) :]
    if not _ENDPOINT_TAILS.match(tail):
        raise UrlProblem(f"the Endpoint URL has an unexpected path after the tenant: '{tail}'")
    if host in EMULATOR_HOSTS:
        if org is None or org.cloud != "emulator":
            raise UrlProblem(
                "a local Endpoint URL is accepted only together with a local emulator Organization URL"
            )
        if port is None:
            raise UrlProblem("a local emulator Endpoint URL needs its port")
        shown = f"[{host}]" if ":" in host else host
        return f"https://{shown}:{port}/{tenant}", tenant
    if port not in (None, 443):
        raise UrlProblem(f"the Endpoint URL must use the default https port 443, not {port}")
    cloud_of_host = next((c for c in CLOUDS if host in c.login_aliases), None)
    if cloud_of_host is None:
        raise UrlProblem(
            f"'{host}' is not a Microsoft Entra ID sign-in host (login.microsoftonline.com, "
            "login.microsoftonline.us, login.chinacloudapi.cn)"
        )
    if org is not None:
        if org.cloud == "emulator":
            raise UrlProblem(
                "an emulator Organization URL needs the emulator's own Endpoint URL or a bare tenant ID"
            )
        org_cloud = next(c for c in CLOUDS if c.name == org.cloud)
        if host not in org_cloud.login_aliases:
            raise UrlProblem(
                f"sign-in host '{host}' belongs to another cloud than the Organization URL; "
                f"use https://{org_cloud.login_host}/<tenant>"
            )
    # The canonical host is used for the authority so msal recognises it as a well-known host.
    return f"https://{cloud_of_host.login_host}/{tenant}", tenant


def check_public_base_url(raw: str) -> str:
    """Return dynasync's public base URL normalised; https only (http for localhost), no query or userinfo."""
    scheme, host, port, path, rest = _split_url(raw.strip(), "public base URL")
    if rest:
        raise UrlProblem("the public base URL must not have a query or fragment")
    loopback = host in EMULATOR_HOSTS
    if scheme != "https" and not (scheme == "http" and loopback):
        raise UrlProblem("the public base URL must use https:// (plain http is allowed only for localhost)")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and not (scheme == "https" and port == 443) and not (scheme == "http" and port == 80):
        netloc += f":{port}"
    return f"{scheme}://{netloc}{path.rstrip('/')}"
