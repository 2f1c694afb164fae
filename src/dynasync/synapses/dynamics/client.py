"""The async Dataverse Web API client: OData headers, paging, retries, throttling and the host allow-list.

Every request goes to the configured org only (relative paths are joined to the API base; absolute URLs such as
``@odata.nextLink`` must have the org's origin), never follows redirects, waits out ``Retry-After`` for the whole
app user before sending anything else, retries only what is safe to repeat, and turns every failed answer into a
typed error through :func:`.errors.from_dataverse_response`.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any

import httpx

from dynasync.synapses.dynamics.auth import TokenProvider
from dynasync.synapses.dynamics.config import DynamicsConfig
from dynasync.synapses.dynamics.errors import (
    DynamicsError,
    ErrorContext,
    HostRefusedError,
    ServiceUnavailableError,
    ThrottledError,
    TransportFailureError,
    from_dataverse_response,
    parse_retry_after,
)
from dynasync.synapses.dynamics.odata import prefer as compose_prefer
from dynasync.synapses.dynamics.paging import follow_pages
from dynasync.synapses.dynamics.retry import AdaptiveLimiter, ClientCounters, RetryPolicy, backoff_delay
from dynasync.synapses.dynamics.wire import (
    DataverseResponse,
    Page,
    PublicAddressGuard,
    Resolver,
    encode_json,
    sent_tracer,
    system_resolver,
)

__all__ = ["DataverseClient", "DataverseResponse", "Page", "Resolver", "encode_json"]

_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})
# Connection failures that prove the request never reached the server: safe to retry for any method.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_USER_AGENT = "dynasync/0.1 (Dataverse synapse)"


class DataverseClient:
    """Talks to one Dataverse org's Web API.

    Args:
        config: The synapse settings (org URL, emulator and CA settings).
        tokens: Where bearer tokens come from.
        transport: An httpx transport to use instead of the network (tests: ``httpx.MockTransport``).
        sleep: Async sleep (injectable: tests assert that nothing is sent before ``Retry-After`` elapsed).
        clock: Monotonic seconds matching ``sleep``.
        rand: Uniform [0, 1) source for backoff jitter.
        retry: Retry limits.
        initial_concurrency: Requests in flight at start; grows up to ``max_concurrency``.
        max_concurrency: Never more in flight than this (Dataverse's per-user limit is 52).
        api_version: ``v9.2`` by default.
        resolver: Host-name resolver for the public-address check (real orgs only; None: the system's).
        timeout: Per-request timeout.
    """

    def __init__(
        self,
        config: DynamicsConfig,
        tokens: TokenProvider,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
        retry: RetryPolicy | None = None,
        initial_concurrency: int = 8,
        max_concurrency: int = 52,
        api_version: str = "v9.2",
        resolver: Resolver | None = None,
        timeout: float = 120.0,
    ) -> None:
        self.config = config
        self.api_base = config.api_base(api_version)
        self.counters = ClientCounters()
        self.limiter = AdaptiveLimiter(min(initial_concurrency, max_concurrency), max_concurrency)
        self._tokens = tokens
        self._sleep = sleep
        self._clock = clock
        self._rand = rand
        self._retry = retry or RetryPolicy()
        self._not_before = 0.0
        self._origin = httpx.URL(config.org_url)
        self._ctx = config.error_context()
        limits = httpx.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency)
        inner: httpx.AsyncBaseTransport
        if config.is_emulator:
            # An explicit SSL context with trust_env off: env CA settings cannot replace the emulator's CA.
            context = ssl.create_default_context(cafile=str(config.ca_bundle) if config.ca_bundle else None)
            inner = transport or httpx.AsyncHTTPTransport(verify=context, trust_env=False, limits=limits)
        else:
            inner = PublicAddressGuard(
                transport or httpx.AsyncHTTPTransport(limits=limits), resolver or system_resolver
            )
        self._http = httpx.AsyncClient(
            transport=inner,
            follow_redirects=False,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
            trust_env=not config.is_emulator,
            headers={
                "Accept": "application/json",
                "OData-MaxVersion": "4.0",
                "OData-Version": "4.0",
                "Accept-Encoding": "gzip, deflate",
                "User-Agent": _USER_AGENT,
            },
        )

    def __repr__(self) -> str:
        return f"DataverseClient(org={self.config.org_url!r})"

    async def __aenter__(self) -> DataverseClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close pooled connections."""
        await self._http.aclose()

    # --- public verbs ------------------------------------------------------------------------------------------

    async def get_json(
        self,
        url: str,
        *,
        prefer: str | None = None,
        headers: Mapping[str, str] | None = None,
        table: str | None = None,
    ) -> Any:
        """GET ``url`` (relative to the API base, or an absolute org URL) and return the parsed JSON body."""
        response = await self.request("GET", url, prefer=prefer, headers=headers, table=table)
        return response.json()

    def iter_pages(
        self,
        url: str,
        *,
        maxpagesize: int | None = None,
        annotations: str | list[str] | None = None,
        track_changes: bool = False,
        headers: Mapping[str, str] | None = None,
        table: str | None = None,
        prefetch: bool = True,
    ) -> AsyncGenerator[Page, None]:
        """Yield every page of a collection, following ``@odata.nextLink`` verbatim (see :mod:`.paging`).

        The same ``Prefer`` goes with every page. ``delta_link`` is set on the page that carries
        ``@odata.deltaLink`` (the last one). A next link seen before raises :class:`PagingLoopError`.
        With ``prefetch`` the next page is requested before a page is handed out, so the service prepares it
        while the caller works on this one; an error of that request surfaces when the caller asks for it.
        Close the generator (``aclose()``) when stopping early: that cancels the request in flight.
        """
        prefer_value = compose_prefer(
            maxpagesize=maxpagesize, annotations=annotations, track_changes=track_changes
        )

        async def fetch(link: str, sent: asyncio.Event | None) -> DataverseResponse:
            return await self.request(
                "GET", link, prefer=prefer_value, headers=headers, table=table, sent=sent
            )

        return follow_pages(url, fetch, self._absolute, prefetch=prefetch)

    async def post(
        self,
        url: str,
        json: Any = None,
        *,
        content: bytes | None = None,
        content_type: str | None = None,
        prefer: str | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = False,
        table: str | None = None,
        record_write: bool = True,
    ) -> DataverseResponse:
        """POST a create or an action.

        Retried after dropped connections or 5xx only when ``idempotent`` (a client-supplied id or an action
        without side effects makes it so). A 429 or 401 is always retried: the service did not run the request.
        """
        return await self.request(
            "POST",
            url,
            json=json,
            content=content,
            content_type=content_type,
            prefer=prefer,
            headers=headers,
            idempotent=idempotent,
            table=table,
            record_write=record_write,
        )

    async def patch(
        self,
        url: str,
        json: Any,
        *,
        if_match: str | None = None,
        if_none_match: str | None = None,
        prefer: str | None = None,
        headers: Mapping[str, str] | None = None,
        table: str | None = None,
    ) -> DataverseResponse:
        """PATCH (update, or upsert without ``If-Match``); ``if_match`` ``*`` forbids create, an etag guards changes."""
        return await self.request(
            "PATCH", url, json=json, if_match=if_match, if_none_match=if_none_match, prefer=prefer,
            headers=headers, table=table, record_write=True,
        )  # fmt: skip

    async def put(
        self, url: str, json: Any, *, headers: Mapping[str, str] | None = None
    ) -> DataverseResponse:
        """PUT (single property value, ``$ref``)."""
        return await self.request("PUT", url, json=json, headers=headers, record_write=True)

    async def delete(
        self, url: str, *, if_match: str | None = None, table: str | None = None
    ) -> DataverseResponse:
        """DELETE; ``if_match`` an etag to delete only an unchanged record."""
        return await self.request("DELETE", url, if_match=if_match, table=table, record_write=True)

    # --- the one request path ----------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        content_type: str | None = None,
        prefer: str | None = None,
        if_match: str | None = None,
        if_none_match: str | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        table: str | None = None,
        record_write: bool = False,
        sent: asyncio.Event | None = None,
    ) -> DataverseResponse:
        """Send one logical request with retries; return the 2xx answer or raise a typed error.

        Args:
            method: HTTP method.
            url: Relative to the API base, or an absolute URL on the org.
            json: A JSON body (encoded with :func:`encode_json`).
            content: A raw body instead (``$batch``); give ``content_type``.
            content_type: Content type of ``content``.
            prefer: ``Prefer`` header value (see :func:`.odata.prefer`).
            if_match: ``If-Match`` value.
            if_none_match: ``If-None-Match`` value (GETs send ``null`` unless given).
            headers: Extra headers.
            idempotent: Override whether the request may be repeated after an unknown outcome.
            table: The table the request is about (for error remedies).
            record_write: Refusals of this request concern one record (skippable in a run).
            sent: Set once the request has been written to the connection (network transports only).
        """
        method = method.upper()
        target = self._absolute(url)
        safe = method in _IDEMPOTENT if idempotent is None else idempotent
        body = encode_json(json) if json is not None else content
        send_headers: dict[str, str] = dict(headers or {})
        if json is not None:
            send_headers.setdefault("Content-Type", "application/json; charset=utf-8")
        elif content is not None:
            if not content_type:
                raise ValueError("a raw body needs its content_type")
            send_headers.setdefault("Content-Type", content_type)
        if method == "GET":
            send_headers.setdefault("If-None-Match", if_none_match or "null")
        elif if_none_match:
            send_headers["If-None-Match"] = if_none_match
        if if_match:
            send_headers["If-Match"] = if_match
        if prefer:
            send_headers["Prefer"] = prefer
        ctx = self._ctx.with_table(table) if table else self._ctx
        return await self._send(method, target, body, send_headers, safe, ctx, record_write, sent)

    async def _send(
        self,
        method: str,
        target: str,
        body: bytes | None,
        headers: dict[str, str],
        safe: bool,
        ctx: ErrorContext,
        record_write: bool,
        sent: asyncio.Event | None = None,
    ) -> DataverseResponse:
        attempt = 0  # attempts that failed in a way counted against max_attempts
        refreshed = False
        throttle_waited = 0.0
        first = True
        while True:
            if not first:
                self.counters.retries += 1
            first = False
            await self._wait_until_allowed()
            epoch = await self.limiter.acquire()
            try:
                await (
                    self._wait_until_allowed()
                )  # a throttle may have arrived while this one queued for a slot
                token = await self._tokens.token()
                outcome = await self._attempt(method, target, body, headers, token, sent)
            finally:
                await self.limiter.release()
            self.counters.peak_concurrency = max(self.counters.peak_concurrency, self.limiter.peak)

            if isinstance(outcome, httpx.HTTPError):
                self.counters.transport_errors += 1
                attempt += 1
                if "CERTIFICATE_VERIFY_FAILED" in str(outcome):
                    raise TransportFailureError(
                        f"TLS certificate verification failed for {self.config.org_url}: {outcome}",
                        remedy="For a local emulator set ca_bundle to the emulator's CA certificate; for Microsoft "
                        "hosts check the machine's trust store or TLS-inspecting proxy.",
                    ) from outcome
                never_sent = isinstance(outcome, _NOT_SENT)
                if (safe or never_sent) and attempt < self._retry.max_attempts:
                    await self._sleep(backoff_delay(self._retry, attempt, self._rand))
                    continue
                raise TransportFailureError(
                    f"{method} {target} failed: {type(outcome).__name__}: {outcome or 'connection closed'}",
                    remedy="The connection to Dataverse failed"
                    + (" repeatedly" if attempt > 1 else "")
                    + ("" if safe or never_sent else "; the request may or may not have been applied")
                    + ". Check network access; the run can be resumed.",
                ) from outcome

            response = outcome
            status = response.status_code
            if 200 <= status < 300:
                self.limiter.on_success()
                return DataverseResponse(status, response.headers, response.content, str(response.url))
            if status == 401 and not refreshed:
                refreshed = True
                self.counters.token_refreshes += 1
                await self._tokens.token(force_refresh=True)
                continue
            if status == 429:
                self.counters.throttled += 1
                self.limiter.on_throttle(epoch)
                wait = parse_retry_after(response.headers.get("Retry-After"))
                wait = self._retry.default_retry_after if wait is None else wait
                throttle_waited += wait
                if throttle_waited > self._retry.max_throttle_wait:
                    error = from_dataverse_response(status, response.headers, response.content, ctx)
                    raise ThrottledError(
                        error.message,
                        remedy=f"Dataverse kept throttling for more than {self._retry.max_throttle_wait:.0f} seconds; "
                        "the run stops here and resumes from its last checkpoint. Other integrations may share "
                        "this application user's limits.",
                        status=status,
                        code=error.code,
                        request_id=error.request_id,
                        retry_after=wait,
                    )
                # Nothing else is sent for this app user until the server allows it.
                self._not_before = max(self._not_before, self._clock() + wait)
                self.counters.throttle_wait_seconds += wait
                continue
            if status >= 500 and status != 501:
                self.counters.server_errors += 1
                attempt += 1
                if safe and attempt < self._retry.max_attempts:
                    told = parse_retry_after(response.headers.get("Retry-After"))
                    delay = backoff_delay(self._retry, attempt, self._rand)
                    await self._sleep(max(delay, told or 0.0))
                    continue
                error = from_dataverse_response(status, response.headers, response.content, ctx)
                if not safe and isinstance(error, ServiceUnavailableError):
                    error.remedy = (
                        "Dataverse failed while handling a request that is not safe to repeat; it may or may not "
                        "have been applied. The next run re-reads the record before writing again."
                    )
                raise error
            raise from_dataverse_response(
                status, response.headers, response.content, ctx, record_write=record_write
            )

    async def _attempt(
        self,
        method: str,
        target: str,
        body: bytes | None,
        headers: dict[str, str],
        token: str,
        sent: asyncio.Event | None = None,
    ) -> httpx.Response | httpx.HTTPError:
        request_headers = {
            **headers,
            "Authorization": f"Bearer {token}",
            "x-ms-client-request-id": str(uuid.uuid4()),
        }
        self.counters.requests += 1
        self.counters.bytes_sent += len(body or b"")
        try:
            response = await self._http.request(
                method,
                target,
                content=body,
                headers=request_headers,
                extensions={"trace": sent_tracer(sent)} if sent is not None else None,
            )
        except (httpx.TransportError, httpx.DecodingError) as exc:
            return exc
        # Bytes on the wire (compressed); responses built in memory (tests) report their declared length.
        wire = response.num_bytes_downloaded or int(response.headers.get("Content-Length") or 0)
        self.counters.bytes_received += wire or len(response.content)
        return response

    async def _wait_until_allowed(self) -> None:
        while True:
            delay = self._not_before - self._clock()
            if delay <= 0:
                return
            await self._sleep(delay)

    def _absolute(self, url: str) -> str:
        target = httpx.URL(self.api_base).join(url)
        if (
            target.scheme != "https"
            or target.host != self._origin.host
            or (target.port or 443) != (self._origin.port or 443)
            or target.userinfo
        ):
            raise HostRefusedError(
                f"Refusing to send a request to {target.scheme}://{target.host}: only {self.config.org_url} is allowed.",
                remedy="A link from the service or a caller pointed outside the configured Organization URL.",
            )
        return str(target)

    @property
    def not_before(self) -> float:
        """Clock time before which no request is sent (set by a 429's ``Retry-After``)."""
        return self._not_before

    def mapped_error(self, status: int, headers: Mapping[str, str], body: bytes) -> DynamicsError:
        """Map a failed answer seen outside :meth:`request` (e.g. inside a ``$batch`` part) like any other."""
        return from_dataverse_response(status, headers, body, self._ctx)
