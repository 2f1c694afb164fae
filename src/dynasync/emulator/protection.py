"""The gate in front of the Web API: IP allow-list, injected faults, bearer tokens, org membership, 429 limits."""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio.to_thread

from dynasync.emulator.errors import EmulatorError
from dynasync.emulator.http_types import ODataRequest, ODataResponse
from dynasync.emulator.odata_ast import Compare, Literal, Property
from dynasync.emulator.tokens import InvalidToken
from dynasync.emulator.webapi import error_response, handle

if TYPE_CHECKING:
    from dynasync.emulator.app import Emulator

NOT_MEMBER = EmulatorError(403, "0x80072560", "The user is not a member of the organization.")
SERVER_BUSY_CODE = "0x8004A001"
SERVER_BUSY = "The server is busy and the request was not completed. Try again later."


class Drop:
    """Sentinel result: close the connection without any response."""


DROP = Drop()


@dataclass(slots=True)
class _UserWindow:
    entries: deque[list[float]] = field(default_factory=deque)  # [timestamp seconds, execution ms]
    in_flight: int = 0


class RateLimiter:
    """Dataverse service protection per user over a sliding window, timed by the emulator clock."""

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator
        self._users: dict[str, _UserWindow] = {}
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Forget all history (control plane ``reset``)."""
        with self._lock:
            self._users.clear()

    def _now(self) -> float:
        return self._emulator.clock.now().timestamp()

    def _prune(self, window: _UserWindow, now: float) -> None:
        horizon = now - self._emulator.settings.window_seconds
        while window.entries and window.entries[0][0] <= horizon:
            window.entries.popleft()

    def admit(self, user: str) -> list[float]:
        """Count a request in; return its window entry (for :meth:`finish`) or raise the service's 429."""
        settings = self._emulator.settings
        with self._lock:
            window = self._users.setdefault(user, _UserWindow())
            now = self._now()
            self._prune(window, now)
            if window.in_flight >= settings.concurrency_limit:
                raise _throttled(
                    "0x80072326",
                    f"Number of concurrent requests exceeded the limit of {settings.concurrency_limit}.",
                    1,
                )
            retry = 1
            if window.entries:
                retry = max(1, math.ceil(window.entries[0][0] + settings.window_seconds - now))
            if len(window.entries) >= settings.requests_per_window:
                raise _throttled(
                    "0x80072322",
                    f"Number of requests exceeded the limit of {settings.requests_per_window} over time window "
                    f"of {settings.window_seconds} seconds.",
                    retry,
                )
            if sum(e[1] for e in window.entries) >= settings.execution_ms_per_window:
                raise _throttled(
                    "0x80072321",
                    f"Combined execution time of incoming requests exceeded limit of "
                    f"{settings.execution_ms_per_window:,} milliseconds over time window of "
                    f"{settings.window_seconds} seconds. Decrease number of concurrent requests or reduce the "
                    "duration of requests and try again later.",
                    retry,
                )
            entry = [now, 0.0]
            window.entries.append(entry)
            window.in_flight += 1
            return entry

    def finish(self, user: str, entry: list[float], execution_ms: float) -> None:
        """Record a finished request's execution time and release its concurrency slot."""
        with self._lock:
            entry[1] = execution_ms
            window = self._users.get(user)
            if window is not None:
                window.in_flight = max(0, window.in_flight - 1)

    def headers(self, user: str) -> dict[str, str]:
        """The ``x-ms-ratelimit-*`` headers: requests and execution seconds left in the window."""
        settings = self._emulator.settings
        with self._lock:
            window = self._users.setdefault(user, _UserWindow())
            self._prune(window, self._now())
            remaining = max(0, settings.requests_per_window - len(window.entries))
            used_ms = sum(e[1] for e in window.entries)
        seconds = max(0.0, (settings.execution_ms_per_window - used_ms) / 1000)
        return {
            "x-ms-ratelimit-burst-remaining-xrm-requests": str(remaining),
            "x-ms-ratelimit-time-remaining-xrm-requests": f"{seconds:,.2f}",
        }


def _throttled(code: str, message: str, retry_after: int) -> EmulatorError:
    return EmulatorError(429, code, message, headers={"Retry-After": str(retry_after)})


def unauthorized(emulator: Emulator, request: ODataRequest) -> ODataResponse:
    """401 with the service's ``WWW-Authenticate`` challenge and an empty body."""
    org = org_url_of(request)
    challenge = emulator.identity.www_authenticate(
        emulator.identity_base_url(request), org, emulator.tenant_id
    )
    return ODataResponse(401, {"WWW-Authenticate": challenge, "Content-Length": "0"})


def org_url_of(request: ODataRequest) -> str:
    """The environment URL (``scheme://host[:port]``) the request was made to."""
    base = request.base_url
    scheme, _, rest = base.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def resolve_caller(emulator: Emulator, request: ODataRequest) -> str:
    """Verify the bearer token and return the caller's systemuserid; raises 401 (as InvalidToken) or 403."""
    claims = emulator.identity.verify_bearer(request.headers.get("authorization"), org_url_of(request))
    with emulator.lock:
        if claims.is_app_only:
            row = emulator.store.app_user(uuid.UUID(claims.app_id))
        else:
            rows = emulator.store.query(
                "systemuser",
                filter=Compare(
                    "eq",
                    Property(("azureactivedirectoryobjectid",)),
                    Literal(uuid.UUID(claims.object_id), "guid"),
                ),
                orderby=[],
                after=None,
                limit=1,
            )
            row = rows[0] if rows else None
    if row is None or row.get("isdisabled") is True:
        raise NOT_MEMBER
    return impersonated(emulator, request) or str(row["systemuserid"])


def impersonated(emulator: Emulator, request: ODataRequest) -> str | None:
    """The systemuserid named by ``CallerObjectId`` (Entra object id) or ``MSCRMCallerID``, if any.

    The emulator does not model the ``prvActOnBehalfOfAnotherUser`` privilege: every caller may impersonate.
    """
    object_id = request.headers.get("callerobjectid")
    legacy = request.headers.get("mscrmcallerid")
    if not object_id and not legacy:
        return None
    text = (object_id or legacy or "").strip().strip("{}")
    try:
        wanted = uuid.UUID(text)
    except ValueError:
        raise _invalid_caller(text) from None
    with emulator.lock:
        row = (
            emulator.store.user_by_object_id(wanted)
            if object_id
            else emulator.store.get("systemuser", wanted)
        )
    if row is None:
        raise _invalid_caller(text)
    if row.get("isdisabled") is True:
        raise EmulatorError(
            403, "0x80040225", f"The user with SystemUserId = {row['systemuserid']} is disabled."
        )
    return str(row["systemuserid"])


def _invalid_caller(text: str) -> EmulatorError:
    return EmulatorError(
        400, "0x80048d1A", f"Invalid caller id: '{text}'. No such user exists in the organization."
    )


def _ip_blocked() -> EmulatorError:
    # The service's documented wording (it names no address); the code is the 403 one the platform maps.
    return EmulatorError(
        403,
        "0x80048306",
        "The request you are trying to make is rejected as access to your IP is blocked. "
        "Contact your administrator for more information.",
    )


def _common_headers(response: ODataResponse) -> ODataResponse:
    request_id = str(uuid.uuid4())
    response.headers.setdefault("OData-Version", "4.0")
    response.headers.setdefault("REQ_ID", request_id)
    response.headers.setdefault("x-ms-service-request-id", request_id)
    response.headers.setdefault("Cache-Control", "no-cache")
    return response


async def process(emulator: Emulator, request: ODataRequest) -> ODataResponse | Drop:
    """Run one Web API request through every gate, then :func:`handle` in a worker thread.

    Order: IP allow-list, bearer token and org membership, service protection limits, injected faults (inside
    the request's concurrency slot, so a slow or hanging request holds it), then the request itself.
    """
    if not emulator.settings.ip_allowed(request.client_ip):
        return _common_headers(error_response(_ip_blocked()))
    try:
        caller = await anyio.to_thread.run_sync(resolve_caller, emulator, request)
    except InvalidToken:
        return _common_headers(unauthorized(emulator, request))
    except EmulatorError as error:
        return _common_headers(error_response(error))
    request.caller_id = caller
    try:
        entry = emulator.limits.admit(caller)
    except EmulatorError as error:
        response = error_response(error)
        response.headers.update(emulator.limits.headers(caller))
        return _common_headers(response)
    started = time.perf_counter()
    try:
        result = await _run(emulator, request)
    finally:
        emulator.limits.finish(caller, entry, (time.perf_counter() - started) * 1000)
    if isinstance(result, Drop):
        return result
    result.headers.update(emulator.limits.headers(caller))
    return _common_headers(result)


async def _run(emulator: Emulator, request: ODataRequest) -> ODataResponse | Drop:
    fault = emulator.faults.take(request.path)
    if fault is not None:
        settings = emulator.settings
        if fault.kind == "429":
            return error_response(
                _throttled(
                    "0x80072322",
                    f"Number of requests exceeded the limit of {settings.requests_per_window} over time "
                    f"window of {settings.window_seconds} seconds.",
                    fault.retry_after,
                )
            )
        if fault.kind == "503":
            headers = {"Retry-After": str(fault.retry_after)}
            return error_response(EmulatorError(503, SERVER_BUSY_CODE, SERVER_BUSY, headers=headers))
        if fault.kind == "timeout":
            await emulator.sleep(fault.seconds)
            return DROP
        if fault.kind == "drop":
            return DROP
        await emulator.sleep(fault.seconds)  # "slow": the wait counts as execution time
    return await anyio.to_thread.run_sync(_locked_handle, emulator, request)


def _locked_handle(emulator: Emulator, request: ODataRequest) -> ODataResponse:
    with emulator.lock:
        return handle(emulator, request)
