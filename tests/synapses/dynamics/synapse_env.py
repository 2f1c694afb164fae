"""Shared set-up for the synapse tests: one real emulator server (TLS, uvicorn) and a synapse talking to it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from dynasync.emulator.server import EmulatorServer
from dynasync.synapses.base import ChangeBatch, StreamSpec
from dynasync.synapses.dynamics.auth import ClientCredentialsProvider
from dynasync.synapses.dynamics.config import DynamicsConfig
from dynasync.synapses.dynamics.retry import RetryPolicy
from dynasync.synapses.dynamics.synapse import DynamicsSynapse

TABLES = ["account", "contact"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    """One emulator per test module, reset by each test."""
    with EmulatorServer(tls_dir=tmp_path_factory.mktemp("tls"), seed=0) as running:
        yield running


@pytest.fixture(scope="module")
def tokens(server: EmulatorServer) -> Iterator[ClientCredentialsProvider]:
    """A real client-credentials token provider (MSAL against the emulator's identity endpoints)."""
    provider = ClientCredentialsProvider(config_for(server))
    yield provider
    provider.close()


def config_for(server: EmulatorServer) -> DynamicsConfig:
    """Settings pointing at the emulator with its ready app registration."""
    info = server.describe()
    return DynamicsConfig.parse(
        {
            "name": "Emulator",
            "endpoint_url": server.authority,
            "org_url": server.org_url,
            "client_id": info["client_id"],
            "client_secret": info["client_secret"],
            "public_base_url": "https://sync.example.com",
            "allow_local_emulator": True,
            "ca_bundle": str(server.ca_path),
        }
    )


def make_synapse(server: EmulatorServer, tokens: Any, **options: Any) -> DynamicsSynapse:
    """A synapse with a fast-retrying client (backoff in milliseconds) on the emulator."""
    options.setdefault("tables", TABLES)
    fast = {"rand": lambda: 0.0, "retry": RetryPolicy(base_delay=0.01, max_delay=0.05)}
    return DynamicsSynapse(config_for(server), tokens, client_options=fast, **options)


def run(coro: Any) -> Any:
    """Run a coroutine to completion."""
    return asyncio.run(coro)


async def collect(synapse: DynamicsSynapse, stream: StreamSpec, cursor: Any) -> list[ChangeBatch]:
    """Every batch of one read."""
    return [batch async for batch in synapse.read(stream, cursor)]


async def stream_of(synapse: DynamicsSynapse, table: str) -> StreamSpec:
    """Discover and return one table's stream."""
    streams = {s.name: s for s in await synapse.discover()}
    return streams[table]
