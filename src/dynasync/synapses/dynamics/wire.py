"""What travels between the Web API client and the network: response types, JSON encoding, the public-address guard."""

from __future__ import annotations

import asyncio
import decimal
import ipaddress
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from dynasync.synapses.dynamics.errors import HostRefusedError

__all__ = [
    "DataverseResponse",
    "Page",
    "PublicAddressGuard",
    "Resolver",
    "encode_json",
    "sent_tracer",
    "system_resolver",
]

Resolver = Callable[[str], Awaitable[list[str]]]
"""Resolves a host name to IP address strings (injectable so tests need no DNS)."""

_GUID_IN_URL = re.compile(
    r"\(([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\)\s*$"
)


@dataclass(frozen=True, slots=True)
class DataverseResponse:
    """A successful answer: status, headers and raw body."""

    status: int
    headers: httpx.Headers
    body: bytes
    url: str

    def json(self) -> Any:
        """Parse the body as JSON (``None`` for an empty body)."""
        return orjson.loads(self.body) if self.body else None

    @property
    def entity_id(self) -> str | None:
        """The GUID from ``OData-EntityId`` (or ``Location``) of a create/update/upsert, lower-case."""
        for name in ("OData-EntityId", "Location"):
            found = _GUID_IN_URL.search(self.headers.get(name, ""))
            if found:
                return found.group(1).lower()
        return None

    @property
    def etag(self) -> str | None:
        """The ``ETag`` header, e.g. ``W/"628460"``."""
        value = self.headers.get("ETag")
        return str(value) if value is not None else None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a collection: its rows and the links to go on with."""

    rows: list[dict[str, Any]]
    next_link: str | None
    delta_link: str | None
    body: dict[str, Any] = field(repr=False)
    preference_applied: str | None = None


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


def encode_json(body: Any) -> bytes:
    """Encode a request body: UUIDs as strings, aware datetimes in UTC with ``Z``, Decimals as numbers."""
    return orjson.dumps(body, default=_json_default, option=orjson.OPT_UTC_Z)


def sent_tracer(sent: asyncio.Event) -> Callable[[str, Mapping[str, Any]], Awaitable[None]]:
    """An httpcore ``trace`` extension that sets ``sent`` once a request's body has been written."""

    async def trace(event: str, info: Mapping[str, Any]) -> None:
        if event.endswith("send_request_body.complete"):
            sent.set()

    return trace


async def system_resolver(host: str) -> list[str]:
    """Resolve ``host`` with the system resolver (for the public-address check)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, 443, type=0)
    return sorted({str(info[4][0]) for info in infos})


class PublicAddressGuard(httpx.AsyncBaseTransport):
    """Refuses to connect when the org host resolves to a non-public address (DNS rebinding, internal names)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, resolver: Resolver, ttl: float = 300.0) -> None:
        self._inner = inner
        self._resolver = resolver
        self._ttl = ttl
        self._checked: dict[str, float] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Check the host's addresses (cached for ``ttl`` seconds), then pass the request on."""
        host = request.url.host
        now = time.monotonic()
        if self._checked.get(host, 0.0) < now:
            try:
                addresses = await self._resolver(host)
            except OSError as exc:
                raise httpx.ConnectError(f"cannot resolve {host}: {exc}", request=request) from exc
            bad = [a for a in addresses if not ipaddress.ip_address(a.split("%")[0]).is_global]
            if bad or not addresses:
                raise HostRefusedError(
                    f"{host} resolves to a non-public address ({', '.join(bad) or 'none'}); refusing to connect.",
                    remedy="Check DNS for the Organization URL; Dataverse hosts always resolve to public addresses.",
                )
            self._checked[host] = now + self._ttl
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self._inner.aclose()
