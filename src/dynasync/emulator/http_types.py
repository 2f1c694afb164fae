"""Framework-neutral request and response values of the emulated Web API.

The whole Web API is one function ``ODataRequest -> ODataResponse``; Starlette is only the adapter around it,
and ``$batch`` re-dispatches its inner requests through the same function.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class ODataRequest:
    """One Web API request.

    ``path`` is the part after ``/api/data/v9.x/`` (raw, percent-decoded), ``query`` the raw query string,
    ``headers`` with lower-case names, ``base_url`` the absolute service root built from the request
    (honouring X-Forwarded-Host/Proto), e.g. ``https://127.0.0.1:8443/api/data/v9.2/``.
    """

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    base_url: str
    caller_id: str | None = None  # systemuserid of the authenticated caller, set by the auth check
    client_ip: str | None = None


@dataclass(slots=True)
class ODataResponse:
    """One Web API response; ``headers`` keep their display casing."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
