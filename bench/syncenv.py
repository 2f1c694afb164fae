"""The sync stack the sync benchmarks drive: DynamicsSynapse on the emulator child, an account-only mapping, the
SQLite UDM store and the engine, with request counting and a bare-client comparison read."""

from __future__ import annotations

import dataclasses
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.common import PagingRun, Served, bare_client, client_credentials_token, page_all
from dynasync.engine import Engine, RunReport
from dynasync.mapping.spec import MappingSpec
from dynasync.synapses.base import StreamSpec
from dynasync.synapses.dynamics.auth import ClientCredentialsProvider
from dynasync.synapses.dynamics.config import DynamicsConfig
from dynasync.synapses.dynamics.defaults import default_mapping
from dynasync.synapses.dynamics.synapse import DynamicsSynapse
from dynasync.udm.model import FieldType
from dynasync.udm.store import UdmStore, open_store

SYNAPSE = "dynamics"
TABLE = "account"
ENTITY_SET = "accounts"


def dynamics_config(served: Served) -> DynamicsConfig:
    """Synapse settings for the emulator child (its ready app registration and CA)."""
    return DynamicsConfig.parse(
        {
            "name": SYNAPSE,
            "endpoint_url": served.authority,
            "org_url": served.org_url,
            "client_id": served.client_id,
            "client_secret": served.client_secret,
            "public_base_url": "https://sync.example.com",
            "allow_local_emulator": True,
            "ca_bundle": served.ca_path,
        }
    )


def account_mapping(streams: list[StreamSpec]) -> MappingSpec:
    """The default account mapping without reference fields, so every row applies on its own (no other tables,
    no records held for a parent): the benchmark measures the read/apply path, not parent ordering."""
    spec = default_mapping(streams)
    account = spec.entity_for_table(TABLE)
    if account is None:
        raise RuntimeError("the default mapping has no account entity")
    fields = tuple(f for f in account.fields if f.type is not FieldType.REFERENCE and f.reference is None)
    return dataclasses.replace(spec, entities=(dataclasses.replace(account, fields=fields),), notes=())


class RecordingTransport(httpx.AsyncBaseTransport):
    """The synapse's HTTP transport (same TLS trust as the client builds itself) noting its first data request,
    so a bare client can repeat exactly that request (URL, ``$select``, ``Prefer`` with annotations)."""

    def __init__(self, served: Served) -> None:
        context = ssl.create_default_context(cafile=served.ca_path) if served.ca_path else None
        self.inner = httpx.AsyncHTTPTransport(verify=context or False, trust_env=False)
        self.first_read: tuple[str, str | None] | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Forward the request; remember the first GET of the table's rows."""
        if (
            self.first_read is None
            and request.method == "GET"
            and request.url.path.endswith(f"/{ENTITY_SET}")
            and "$select" in str(request.url)
        ):
            self.first_read = (str(request.url), request.headers.get("prefer"))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self.inner.aclose()


@dataclass(slots=True)
class SyncRun:
    """One engine run: wall time, CPU of this process, HTTP requests the synapse's client made, the report."""

    seconds: float
    cpu: float
    requests: int
    report: RunReport
    counts: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class SyncEnv:
    """The live stack of one benchmark."""

    served: Served
    synapse: DynamicsSynapse
    store: UdmStore
    engine: Engine
    spec: MappingSpec
    stream: StreamSpec
    transport: RecordingTransport

    @property
    def entity(self) -> str:
        """The UDM entity accounts map to."""
        return self.spec.entities[0].entity

    @property
    def requests(self) -> int:
        """HTTP requests the synapse's Web API client has sent so far."""
        return int(self.synapse.client.counters.requests)

    async def run(self) -> SyncRun:
        """Run the engine once (read, then write-back) and measure it."""
        before, cpu = self.requests, time.process_time()
        started = time.perf_counter()
        report = await self.engine.run()
        seconds = time.perf_counter() - started
        counts = report.to_dict()["entities"][self.entity]["synapses"][SYNAPSE]
        return SyncRun(seconds, time.process_time() - cpu, self.requests - before, report, counts)

    def bare_read(self, *, annotations: bool = True) -> PagingRun:
        """Page through the accounts with a bare httpx client sending the synapse's first read request again
        (after a run): same URL and ``$select``; same ``Prefer`` unless ``annotations`` is False, which keeps
        only the page size (the emulator's fast path for plain pages)."""
        if self.transport.first_read is None:
            raise RuntimeError("run the sync first: the synapse's read request is repeated")
        url, prefer = self.transport.first_read
        with bare_client(self.served) as client:
            token = client_credentials_token(client, self.served)
            return page_all(
                client, url, token, server_pid=self.served.pid, prefer=prefer if annotations else None
            )

    @property
    def read_prefer(self) -> str | None:
        """The ``Prefer`` header of the synapse's read (after a run)."""
        return self.transport.first_read[1] if self.transport.first_read else None

    @property
    def read_columns(self) -> int:
        """How many columns the synapse's read selects (after a run)."""
        if self.transport.first_read is None:
            return 0
        query = httpx.URL(self.transport.first_read[0]).params.get("$select", "")
        return len(query.split(",")) if query else 0


@asynccontextmanager
async def sync_env(served: Served, udm_url: str) -> AsyncIterator[SyncEnv]:
    """Build the stack (discovery and UDM tables done, so runs measure only syncing) and close it after."""
    config = dynamics_config(served)
    tokens = ClientCredentialsProvider(config)
    transport = RecordingTransport(served)
    options = {"transport": transport}
    try:
        # labels="metadata" as in dynasync.sync_service: what a real `dynasync sync` requests.
        async with DynamicsSynapse(
            config, tokens, tables=[TABLE], name=SYNAPSE, client_options=options, labels="metadata"
        ) as synapse:
            streams = await synapse.discover()
            spec = account_mapping(streams)
            stream = next(s for s in streams if s.name == TABLE)
            with open_store(udm_url) as store:
                engine = Engine(store, {SYNAPSE: synapse}, [spec])
                await engine.prepare()
                yield SyncEnv(served, synapse, store, engine, spec, stream, transport)
    finally:
        tokens.close()
