"""Schema discovery at large-org scale: hundreds of tables, thousands of columns, bounded requests and memory.

Tokens come from the real emulator server (MSAL over TLS); the Web API calls go to the same emulator in process
through ``httpx.ASGITransport`` (no TLS or socket per request): ~2,700 requests under tracemalloc take ~30 s.
"""

from __future__ import annotations

import asyncio
import re
import time
import tracemalloc
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from synapse_env import config_for, server, tokens  # noqa: F401  (fixtures)

from dynasync.emulator.app import create_app
from dynasync.emulator.server import EmulatorServer
from dynasync.synapses.base import ColumnType, StreamSpec
from dynasync.synapses.dynamics.auth import ClientCredentialsProvider
from dynasync.synapses.dynamics.client import DataverseClient
from dynasync.synapses.dynamics.schema import DiscoveryResult, discover

pytestmark = pytest.mark.e2e

TABLE_COUNT = 200
# One column of every kind the spec format offers (Money adds its ``_base`` twin), so each custom table needs
# every type cast: the request count per table is then the worst case, whatever the number of columns.
COLUMNS: tuple[tuple[str, dict[str, Any], ColumnType], ...] = (
    ("code", {"type": "String", "max_length": 40}, ColumnType.STRING),
    ("title", {"type": "String", "max_length": 250}, ColumnType.STRING),
    ("notes", {"type": "Memo", "max_length": 4000}, ColumnType.TEXT),
    ("qty", {"type": "Integer"}, ColumnType.INTEGER),
    ("big", {"type": "BigInt"}, ColumnType.BIGINT),
    ("rate", {"type": "Decimal", "precision": 4}, ColumnType.DECIMAL),
    ("ratio", {"type": "Double", "precision": 3}, ColumnType.FLOAT),
    ("amount", {"type": "Money"}, ColumnType.MONEY),
    ("flag", {"type": "Boolean"}, ColumnType.BOOLEAN),
    ("due", {"type": "DateTime"}, ColumnType.DATETIME),
    ("day", {"type": "DateTime", "date_only": True}, ColumnType.DATE),
    ("tier", {"type": "Picklist", "options": [[1, "Gold"], [2, "Silver"], [3, "Bronze"]]}, ColumnType.CHOICE),
    ("tags", {"type": "MultiSelectPicklist", "options": [[7, "Red"], [8, "Blue"]]}, ColumnType.MULTICHOICE),
    ("accountid", {"type": "Lookup", "target": "account"}, ColumnType.LOOKUP),
    ("previousid", {"type": "Lookup"}, ColumnType.LOOKUP),  # target: the previous custom table
)
# Attributes + ManyToOneRelationships + one request per type cast that exposes details (11 kinds).
MAX_REQUESTS_PER_TABLE = 13
_TABLE_PATH = re.compile(r"EntityDefinitions\(LogicalName='([a-z0-9_]+)'\)/")


@dataclass
class Recorded:
    """Every Web API request of one run: its path and query, and the decoded size of its response body."""

    sizes: list[tuple[str, int]] = field(default_factory=list)


class RecordingTransport(httpx.AsyncBaseTransport):
    """The emulator's real ASGI app, with each response body read once to record its (uncompressed) size."""

    def __init__(self, inner: httpx.AsyncBaseTransport, recorded: Recorded) -> None:
        self.inner = inner
        self.recorded = recorded

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # Ask for identity encoding so the bytes counted are the JSON the client parses, not gzip output.
        request.headers["Accept-Encoding"] = "identity"
        response = await self.inner.handle_async_request(request)
        body = b"".join([chunk async for chunk in response.aiter_raw()])
        await response.aclose()
        target = urllib.parse.unquote(request.url.raw_path.decode())
        self.recorded.sizes.append((target, len(body)))
        return httpx.Response(
            response.status_code, headers=response.headers, content=body, extensions=response.extensions
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


def _table_name(index: int) -> str:
    return f"lg{index:03d}_item"


def _add_large_schema(server: EmulatorServer) -> None:  # noqa: F811
    emulator = server.emulator
    for index in range(TABLE_COUNT):
        name = _table_name(index)
        prefix = name.split("_", 1)[0]
        columns = []
        for suffix, spec, _ in COLUMNS:
            column = {"logical_name": f"{prefix}_{suffix}", **spec}
            if suffix == "previousid":
                column["target"] = _table_name(index - 1) if index else "contact"
            columns.append(column)
        emulator.add_table(
            {
                "logical_name": name,
                "display_name": f"Large org item {index}",
                "change_tracking": index % 2 == 0,
                "columns": columns,
            }
        )


async def _discover(
    server: EmulatorServer,  # noqa: F811
    provider: ClientCredentialsProvider,
) -> tuple[DiscoveryResult, Recorded, int, int]:
    recorded = Recorded()
    transport = RecordingTransport(httpx.ASGITransport(app=create_app(server.emulator)), recorded)
    async with DataverseClient(config_for(server), provider, transport=transport) as client:
        await client.get_json("WhoAmI")  # token and connection set up outside the measured window
        recorded.sizes.clear()
        requests_before = client.counters.requests
        tracemalloc.start()
        try:
            result = await discover(client, concurrency=4)
            retained, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert client.counters.requests - requests_before == len(recorded.sizes)
    return result, recorded, retained, peak


def _check_table(stream: StreamSpec, index: int) -> None:
    name = _table_name(index)
    prefix = name.split("_", 1)[0]
    assert stream.collection == f"{name}s" and stream.primary_id == f"{name}id" and stream.is_custom
    assert stream.primary_name == f"{prefix}_name"
    assert stream.display_name == f"Large org item {index}"
    assert stream.change_tracking is (index % 2 == 0)
    for suffix, spec, expected in COLUMNS:
        column = stream.columns[f"{prefix}_{suffix}"]
        assert column.type is expected, (name, suffix, column.type)
        assert column.is_custom
        if "max_length" in spec:
            assert column.max_length == spec["max_length"]
        if "options" in spec:
            assert column.options == tuple((v, label) for v, label in spec["options"])
    assert stream.columns[f"{prefix}_rate"].precision == 4
    assert stream.columns[f"{prefix}_ratio"].precision == 3
    assert stream.columns[f"{prefix}_accountid"].targets == ("account",)
    previous = _table_name(index - 1) if index else "contact"
    lookup = stream.columns[f"{prefix}_previousid"]
    assert lookup.targets == (previous,)
    assert dict(lookup.navigation) == {previous: f"{prefix}_previousid"}
    assert stream.columns[f"{name}id"].type is ColumnType.UUID and stream.columns[f"{name}id"].is_primary_id
    assert stream.columns["statuscode"].options and stream.columns["ownerid"].type is ColumnType.LOOKUP


@pytest.mark.slow
def test_discovers_hundreds_of_tables_table_by_table_with_bounded_requests_and_memory(
    server: EmulatorServer,  # noqa: F811
    tokens: ClientCredentialsProvider,  # noqa: F811
) -> None:
    server.emulator.reset(seed={})
    _add_large_schema(server)
    started = time.monotonic()
    result, recorded, retained, peak = asyncio.run(_discover(server, tokens))
    elapsed = time.monotonic() - started

    # Every custom table and column, with the right types and details.
    streams = {s.name: s for s in result.streams}
    for index in range(TABLE_COUNT):
        _check_table(streams[_table_name(index)], index)
    custom_columns = sum(
        1 for s in result.streams if s.name.startswith("lg") for c in s.columns.values() if c.is_custom
    )
    total_columns = sum(len(s.columns) for s in result.streams)
    assert custom_columns >= TABLE_COUNT * len(COLUMNS) > 2500
    assert not any(name.startswith("lg") for name in result.skipped_columns)
    assert sorted(n for n in result.untracked if n.startswith("lg")) == [
        _table_name(i) for i in range(TABLE_COUNT) if i % 2
    ]

    # One narrow table list, then a bounded number of requests per table, never one per column.
    table_lists = [(t, n) for t, n in recorded.sizes if _TABLE_PATH.search(t) is None]
    assert len(table_lists) == 1 and table_lists[0][0].startswith("/api/data/v9.2/EntityDefinitions?")
    per_table: dict[str, int] = {}
    for target, _ in recorded.sizes:
        found = _TABLE_PATH.search(target)
        if found:
            per_table[found.group(1)] = per_table.get(found.group(1), 0) + 1
    assert set(per_table) == set(streams)
    assert max(per_table.values()) <= MAX_REQUESTS_PER_TABLE
    assert len(recorded.sizes) <= 1 + MAX_REQUESTS_PER_TABLE * len(streams)

    # No response carries the catalogue: the table list has no attributes and the largest body is a sliver.
    list_target, list_size = table_lists[0]
    assert "$select=" in list_target and re.search(r"(?<![A-Za-z])Attributes", list_target) is None
    total = sum(n for _, n in recorded.sizes)
    largest = max(n for _, n in recorded.sizes)
    assert largest * 20 < total, (largest, total)

    # Peak traced memory (the client and the in-process emulator together) stays far below what parsing the
    # whole catalogue at once would take (its JSON alone is ``total`` bytes; as Python objects several times that).
    # Beyond what the result itself keeps, the working set is a few tables' responses in flight.
    assert peak < 32 * 1024 * 1024, peak
    assert peak - retained < 8 * 1024 * 1024, (peak, retained)
    print(
        f"\nlarge org: {len(streams)} tables, {total_columns} columns ({custom_columns} custom), "
        f"{len(recorded.sizes)} requests (max {max(per_table.values())}/table), "
        f"bytes total {total}, largest {largest} (table list {list_size}), "
        f"peak traced {peak / 1e6:.1f} MB (retained {retained / 1e6:.1f} MB), {elapsed:.1f} s"
    )
