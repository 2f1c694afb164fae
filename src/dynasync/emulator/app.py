"""The emulator facade (catalog, org store, identity, clock, settings, faults, limits) and its Starlette app."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope, Send

from dynasync.clock import OffsetClock
from dynasync.emulator.catalog import Catalog
from dynasync.emulator.control import ControlMixin
from dynasync.emulator.control_http import control_routes
from dynasync.emulator.directory import Directory, ReadyApp
from dynasync.emulator.faults import FaultQueue
from dynasync.emulator.http_types import ODataRequest
from dynasync.emulator.identity_service import IdentityService
from dynasync.emulator.protection import Drop, RateLimiter, process
from dynasync.emulator.settings import EmulatorSettings
from dynasync.emulator.standard_tables import standard_catalog
from dynasync.emulator.store import OrgStore
from dynasync.emulator.tokens import SigningKey, TokenIssuer

log = logging.getLogger(__name__)

API_VERSIONS = ("v9.0", "v9.1", "v9.2")
DEFAULT_SEED: dict[str, int] = {"accounts": 20, "contacts": 40}
DEFAULT_TENANT_ID = "a3c5e6f0-1d2b-4c8e-9f70-6b1d2e3f4a5b"
DEFAULT_CLIENT_ID = "51f81489-12ee-4a9e-aaae-a2591f45987d"
DEFAULT_CLIENT_SECRET = "emulator-secret-change-me"  # only ever valid against the local emulator


class Emulator(ControlMixin):
    """One emulated Dataverse org plus its Entra ID tenant.

    Attributes:
        catalog: Tables and columns (changes through the control plane).
        store: The org's rows (SQLite).
        identity: Directory, token issuer and identity-route state.
        clock: The emulator's clock; move it with :meth:`advance_clock`.
        settings: Tunables (page sizes, limits, token expiry...).
        faults: Armed faults for the next Web API requests.
        limits: Service protection counters.
        default_app: The app registration (client id + secret) whose application user exists in the org.
        tokens_expired_before: Change tokens issued before this instant are expired (control plane).
        lock: Serialises access to the store across worker threads.
    """

    def __init__(
        self,
        *,
        catalog: Catalog,
        store: OrgStore,
        identity: IdentityService,
        clock: OffsetClock,
        settings: EmulatorSettings,
        data_path: str | None,
        seed_counts: Mapping[str, int],
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.identity = identity
        self.clock = clock
        self.settings = settings
        self.data_path = data_path
        self.seed_counts = dict(seed_counts)
        self.faults = FaultQueue()
        self.limits = RateLimiter(self)
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        self.tokens_expired_before: dt.datetime | None = None
        self.default_app: ReadyApp | None = None
        self.app_users: dict[str, str] = {}  # client id -> display name, re-created on reset

    # -- construction --------------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | Path | None = None,
        *,
        seed: Mapping[str, int] | int | None = None,
        settings: EmulatorSettings | None = None,
        clock: OffsetClock | None = None,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
    ) -> Emulator:
        """Build an emulator with the standard tables, a demo tenant and a ready application user.

        Args:
            path: SQLite file for the org's data (None: in memory).
            seed: Row counts per table for :func:`dynasync.emulator.seed.seed` (``{"accounts": 100}``), an int
                (that many accounts, twice as many contacts), or None for a small default; ``0`` for no rows.
            settings: Tunables; defaults match the real service.
            clock: The emulator clock (default: wall clock, movable).
            client_id: Client id of the ready app registration (and its application user).
            client_secret: Its secret value.
        """
        settings = settings or EmulatorSettings()
        clock = clock or OffsetClock()
        data_path = str(path) if path is not None else None
        catalog = standard_catalog()
        store = OrgStore(catalog, data_path, clock)
        fresh = store.organization_id is None
        directory_file = Path(f"{data_path}.directory.json") if data_path else None
        if directory_file is not None and directory_file.exists():
            directory = Directory.from_dict(json.loads(directory_file.read_text()))
        else:
            directory = Directory()
            directory.add_demo_tenant(tenant_id=DEFAULT_TENANT_ID)
        signing_key = SigningKey.load_or_create(f"{data_path}.signing-key.pem") if data_path else None
        identity = IdentityService(
            directory,
            TokenIssuer(clock, signing_key),
            auto_approve=settings.auto_approve_sign_in,
            on_directory_change=_saver(directory_file),
        )
        counts = _seed_counts(seed)
        emulator = cls(
            catalog=catalog,
            store=store,
            identity=identity,
            clock=clock,
            settings=settings,
            data_path=data_path,
            seed_counts=counts,
        )
        tenant_id = emulator.tenant_id
        if directory.app(client_id) is None:
            emulator.default_app = directory.create_ready_app(
                tenant_id,
                now=clock.now(),
                client_id=client_id,
                secret_value=client_secret,
                redirect_uris=["http://localhost"],
            )
        else:
            emulator.default_app = ReadyApp(tenant_id, client_id, "", client_secret)
        emulator.prepare_org()
        emulator.add_application_user(client_id, "# dynasync")
        emulator.update_settings(change_token_expiry_days=settings.change_token_expiry_days)
        if fresh:
            emulator.seed(counts)
        identity.notify_directory_changed()
        return emulator

    # -- facts used by the Web API -------------------------------------------------------------------------

    @property
    def directory(self) -> Directory:
        """The Entra ID directory."""
        return self.identity.directory

    @property
    def issuer(self) -> TokenIssuer:
        """The token signer/verifier."""
        return self.identity.tokens

    @property
    def tenant_id(self) -> str:
        """The id of the default tenant."""
        tenant = self.directory.default_tenant
        return tenant.id if tenant is not None else "common"

    def identity_base_url(self, request: ODataRequest) -> str:
        """Where the identity endpoints are served for ``request``: the same origin as the Web API."""
        scheme, _, rest = request.base_url.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}"

    async def sleep(self, seconds: float) -> None:
        """Sleep up to ``seconds``; returns early when the server is stopping."""
        deadline = time.monotonic() + seconds
        while not self.stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(0.05, left))


def _saver(path: Path | None) -> Callable[[Directory], None] | None:
    if path is None:
        return None

    def save(directory: Directory) -> None:
        path.write_text(json.dumps(directory.to_dict(), indent=1))

    return save


def _seed_counts(seed: Mapping[str, int] | int | None) -> dict[str, int]:
    if seed is None:
        return dict(DEFAULT_SEED)
    if isinstance(seed, int):
        return {"accounts": seed, "contacts": seed * 2} if seed else {}
    return dict(seed)


# -- ASGI ------------------------------------------------------------------------------------------------------


def _header(scope: Scope, name: bytes) -> str | None:
    values = [v.decode("latin-1") for k, v in scope["headers"] if k.lower() == name]
    return ", ".join(values) if values else None


def public_origin(scope: Scope) -> str:
    """``scheme://host[:port]`` as the client sees it (X-Forwarded-Proto / X-Forwarded-Host honoured)."""
    proto = (_header(scope, b"x-forwarded-proto") or "").split(",")[0].strip() or scope.get("scheme", "http")
    host = (_header(scope, b"x-forwarded-host") or "").split(",")[0].strip() or _header(scope, b"host")
    if not host:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{proto}://{host}"


class WebApiEndpoint:
    """Raw ASGI endpoint for ``/api/data/v9.x/...``: builds an :class:`ODataRequest`, runs the gates and handler."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request."""
        version = scope["path_params"].get("version", "")
        rest = scope["path_params"].get("rest", "")
        if version not in API_VERSIONS:
            await _send(send, 404, {"Content-Type": "text/plain"}, b"Not Found")
            return
        body = bytearray()
        while True:
            message = await receive()
            body.extend(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers: dict[str, str] = {}
        for key, value in scope["headers"]:
            name = key.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[name] = f"{headers[name]}, {text}" if name in headers else text
        client = scope.get("client")
        request = ODataRequest(
            method=scope["method"].upper(),
            path=rest,
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=bytes(body),
            base_url=f"{public_origin(scope)}/api/data/{version}/",
            client_ip=client[0] if client else None,
        )
        result = await process(self.emulator, request)
        if isinstance(result, Drop):
            await _drop(scope.get(RAW_SEND, send))
            return
        await _send(send, result.status, result.headers, result.body)


async def _send(send: Send, status: int, headers: Mapping[str, str], body: bytes) -> None:
    raw = [
        (k.encode("latin-1"), v.encode("latin-1"))
        for k, v in headers.items()
        if k.lower() != "content-length"
    ]
    if status not in (204, 304):
        raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": b"" if status in (204, 304) else body})


class ConnectionDropped(ConnectionError):
    """Raised in-process (no socket to close) where a real server would drop the connection."""


async def _drop(send: Send) -> None:
    # uvicorn passes a bound method of its per-request cycle, which holds the socket transport: aborting it
    # closes the connection without any response, as a crashed gateway would.
    cycle: Any = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None or not hasattr(transport, "abort"):
        raise ConnectionDropped("the emulator dropped the connection (injected fault)")
    transport.abort()
    await asyncio.sleep(0.05)  # let uvicorn notice the disconnect, so it does not try to send a 500


RAW_SEND = "dynasync.raw_send"


class EmulatorApp(Starlette):
    """Starlette app that remembers the server's own ``send`` (middleware wraps it) for dropping connections."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection."""
        if scope["type"] == "http":
            scope[RAW_SEND] = send
        await super().__call__(scope, receive, send)


def create_app(emulator: Emulator) -> Starlette:
    """The emulator's ASGI app: identity routes at the root, Web API under ``/api/data/v9.x/``, ``/_emulator/``."""
    endpoint = WebApiEndpoint(emulator)
    routes: list[BaseRoute] = [
        Route("/api/data/{version}/{rest:path}", endpoint=endpoint, methods=None),
        Route("/api/data/{version}", endpoint=endpoint, methods=None),
        Mount("/_emulator", routes=control_routes(emulator)),
    ]
    routes.extend(_identity_routes(emulator))
    app = EmulatorApp(routes=routes)
    app.state.emulator = emulator
    return app


def _identity_routes(emulator: Emulator) -> list[BaseRoute]:
    from dynasync.emulator import identity

    return list(identity.identity_routes(emulator.identity))
