"""Profile the engine's CPU during a full load of many accounts from the in-memory fake synapse (not a test).

The account table is the real Dynamics one (discovered once from the emulator, cached as JSON), mapped with the
default mapping (Account and User; references to other entities left out); rows are synthesised per column type.
It reports the process CPU of one full ``engine.run`` and splits it into synapse (the fake's paging), mapping
(``to_udm``), UDM store and engine (the rest) from a cProfile run.

    .venv/bin/python -m tests.engine.profile_full_load --rows 100000 [--data emulator] [--profile] [--top 25]

``--data emulator`` takes the rows from the emulator's seeded data (realistic: empty columns, repeated
choices and owners) converted by the Dynamics synapse's own row reader, instead of synthesised ones.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import datetime as dt
import pstats
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from dynasync.engine import Engine, EngineOptions
from dynasync.mapping.spec import MappingSpec
from dynasync.synapses.base import ColumnSpec, ColumnType, LookupRef, StreamSpec
from dynasync.synapses.dynamics.defaults import default_mapping
from dynasync.synapses.dynamics.schema_drift import streams_from_json, streams_to_json
from dynasync.udm.store import open_store

from .fake_synapse import FakeSynapse

CACHE = Path(tempfile.gettempdir()) / "dynasync-engine-profile-streams.json"
TABLES = ("account", "systemuser")
ENTITIES = ("Account", "User")


def discovered_streams() -> list[StreamSpec]:
    """The account and systemuser streams as the Dynamics synapse discovers them on the emulator."""
    if CACHE.exists():
        return streams_from_json(CACHE.read_text())
    from dynasync.emulator.server import EmulatorServer
    from dynasync.synapses.dynamics.auth import ClientCredentialsProvider
    from dynasync.synapses.dynamics.config import DynamicsConfig
    from dynasync.synapses.dynamics.synapse import DynamicsSynapse

    with tempfile.TemporaryDirectory() as tls, EmulatorServer(tls_dir=Path(tls), seed=0) as server:
        info = server.describe()
        config = DynamicsConfig.parse(
            {
                "name": "dynamics",
                "endpoint_url": server.authority,
                "org_url": server.org_url,
                "client_id": info["client_id"],
                "client_secret": info["client_secret"],
                "public_base_url": "https://sync.example.com",
                "allow_local_emulator": True,
                "ca_bundle": str(server.ca_path),
            }
        )

        async def go() -> list[StreamSpec]:
            tokens = ClientCredentialsProvider(config)
            try:
                async with DynamicsSynapse(config, tokens, tables=list(TABLES)) as synapse:
                    return await synapse.discover()
            finally:
                tokens.close()

        streams = asyncio.run(go())
    CACHE.write_text(streams_to_json(streams))
    return streams


def mapping(streams: list[StreamSpec]) -> MappingSpec:
    """The default mapping limited to Account and User (references to other entities dropped)."""
    spec = default_mapping(streams)
    entities = []
    for entity in spec.entities:
        if entity.entity not in ENTITIES:
            continue
        fields = tuple(f for f in entity.fields if f.reference is None or f.reference in ENTITIES)
        entities.append(dataclasses.replace(entity, fields=fields))
    return dataclasses.replace(spec, entities=tuple(entities), notes=())


def _value(column: ColumnSpec, i: int, users: list[str]) -> Any:
    kind = column.type
    if kind in (ColumnType.STRING, ColumnType.TEXT):
        text = f"{column.name[:6]}{i}@example.com" if "email" in column.name else f"{column.name} {i}"
        return text[: column.max_length] if column.max_length else text
    if kind in (ColumnType.MONEY, ColumnType.DECIMAL):
        return Decimal(i % 100_000) / 100
    if kind is ColumnType.FLOAT:
        return (i % 180) - 90.5
    if kind in (ColumnType.INTEGER, ColumnType.BIGINT):
        return i % 5000
    if kind is ColumnType.BOOLEAN:
        return i % 3 == 0
    if kind is ColumnType.CHOICE:
        return column.options[i % len(column.options)][0] if column.options else None
    if kind is ColumnType.MULTICHOICE:
        return (column.options[0][0],) if column.options else ()
    if kind is ColumnType.DATETIME:
        return dt.datetime(2023, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=i * 37)
    if kind is ColumnType.DATE:
        return dt.date(2023, 1, 1) + dt.timedelta(days=i % 700)
    if kind is ColumnType.LOOKUP:
        if "systemuser" in column.targets and column.name == "ownerid":
            return LookupRef("systemuser", users[i % len(users)])
        return None
    return None


def build_fake(streams: list[StreamSpec], spec: MappingSpec, rows: int, page_size: int) -> FakeSynapse:
    """A fake synapse holding ``rows`` accounts (values for every mapped readable column) and a few users."""
    fake = FakeSynapse("dynamics", streams, page_size=page_size, reconcile=True)
    by_name = {s.name: s for s in streams}
    users = [f"00000000-0000-0000-0000-{n:012d}" for n in range(1, 6)]
    user_stream = by_name["systemuser"]
    for n, uid in enumerate(users):
        fake.insert(
            "systemuser",
            {c: _value(user_stream.columns[c], n, users) for c in _mapped(spec, "systemuser", user_stream)},
            id=uid,
        )
    account = by_name["account"]
    columns = [account.columns[c] for c in _mapped(spec, "account", account)]
    for i in range(rows):
        fake.insert(
            "account",
            {c.name: _value(c, i, users) for c in columns},
            id=f"{i:08d}-0000-4000-8000-000000000000",
        )
    return fake


def build_fake_from_emulator(
    streams: list[StreamSpec], spec: MappingSpec, rows: int, page_size: int
) -> FakeSynapse:
    """A fake synapse holding the emulator's seeded accounts as the Dynamics synapse would read them."""
    from dynasync.emulator.seed import seed
    from dynasync.emulator.store import OrgStore
    from dynasync.synapses.dynamics.row_reader import RowReader
    from dynasync.synapses.dynamics.values import LOOKUP_TABLE, wire_name

    by_name = {s.name: s for s in streams}
    account = by_name["account"]
    org = OrgStore()
    seed(org, accounts=rows, users=5)
    wanted = {*_mapped(spec, "account", account), account.primary_id, "modifiedon", "versionnumber"}
    narrowed = dataclasses.replace(account, columns={k: c for k, c in account.columns.items() if k in wanted})
    reader = RowReader(narrowed, labels="metadata")
    polymorphic = [(wire_name(c), c.targets[0]) for c in narrowed.columns.values() if len(c.targets) > 1]
    fake = FakeSynapse("dynamics", streams, page_size=page_size, reconcile=True)
    after: list[object] | None = None
    owners: set[str] = set()
    while True:
        wire, after = org.query_wire("account", columns=reader.select, after=after, limit=5000)
        if not wire:
            break
        page = orjson.loads(orjson.dumps(wire))  # what the client gets off the wire
        for row in page:
            for key, table in polymorphic:  # query_wire carries no annotations; owners are users here
                if row.get(key) is not None:
                    row[f"{key}@{LOOKUP_TABLE}"] = table
        records, _ = reader.split(page)
        for record in records:
            values = {k: v for k, v in record.values.items() if k not in ("modifiedon", "versionnumber")}
            owner = values.get("ownerid")
            if isinstance(owner, LookupRef):
                owners.add(owner.id)
            fake.insert("account", values, id=record.id)
            if record.modified_on is not None:
                fake.state.rows["account"][record.id].modified_on = record.modified_on
        if after is None:
            break
    org.close()
    for n, uid in enumerate(sorted(owners)):
        fake.insert("systemuser", {"fullname": f"User {n}"}, id=uid)
    return fake


def _mapped(spec: MappingSpec, table: str, stream: StreamSpec) -> list[str]:
    entity = spec.entity_for_table(table)
    assert entity is not None
    names = {f.column for f in entity.fields if f.column and f.direction.reads}
    return [c for c in stream.columns if c in names and stream.columns[c].readable]


def run(rows: int, *, profile: bool, top: int, page_size: int, data: str = "synthetic") -> None:
    streams = [s for s in discovered_streams() if s.name in TABLES]
    spec = mapping(streams)
    if data == "emulator":
        fake = build_fake_from_emulator(streams, spec, rows, page_size)
    else:
        fake = build_fake(streams, spec, rows, page_size)
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/udm.db")
        engine = Engine(store, {"dynamics": fake}, [spec], options=EngineOptions())
        asyncio.run(engine.prepare())
        profiler = cProfile.Profile() if profile else None
        phases = _time_phases()
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        report = engine.run_once()
        if profiler is not None:
            profiler.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        counts = report.entities["Account"].synapses["dynamics"]
        print(
            f"{rows} accounts: created {counts.created}, ok {report.ok}; CPU {cpu:.2f} s, wall {wall:.2f} s"
        )
        print("  CPU by phase: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in phases.items()))
        store.close()
    if profiler is not None:
        stats = pstats.Stats(profiler)
        print(_split(stats))
        stats.sort_stats("tottime").print_stats(top)


def _time_phases() -> dict[str, float]:
    """Wrap the read and write-back pipelines' ``run`` to add up their process CPU (a profiling aid only)."""
    from dynasync.engine import pipeline, writeback

    spent: dict[str, float] = {"read": 0.0, "write-back": 0.0}

    def timed(cls: Any, label: str) -> None:
        original = cls.run

        async def run(self: Any) -> None:
            started = time.process_time()
            try:
                await original(self)
            finally:
                spent[label] += time.process_time() - started

        cls.run = run

    timed(pipeline.ReadPipeline, "read")
    timed(writeback.WriteBack, "write-back")
    return spent


def _split(stats: pstats.Stats) -> str:
    """Inclusive time of the big parts, from the profile (profiler overhead inflates all of them alike)."""
    wanted = {
        "synapse read (fake paging)": ("fake_synapse.py", "read"),
        "mapping to_udm": ("compile.py", "to_udm"),
        "store apply_upserts": ("store_api.py", "apply_upserts"),
        "store get_links": ("store_api.py", "get_links"),
        "store quarantine/release": ("store_api.py", "release_quarantined"),
        "store put_cursor": ("store_api.py", "put_cursor"),
        "store transaction": ("store.py", "transaction"),
        "engine apply_batch (all per page)": ("pipeline.py", "apply_batch"),
        "engine run (total)": ("runner.py", "run"),
    }
    found: dict[str, float] = {}
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, name), (_cc, _nc, _tt, ct, _callers) in raw.items():
        for label, (file_end, func) in wanted.items():
            if filename.endswith(file_end) and name == func:
                found[label] = found.get(label, 0.0) + ct
    return "\n".join(f"  {label:<36} {found.get(label, 0.0):8.2f} s" for label in wanted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=5000)
    parser.add_argument("--data", choices=("synthetic", "emulator"), default="synthetic")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    run(args.rows, profile=args.profile, top=args.top, page_size=args.page_size, data=args.data)


if __name__ == "__main__":
    main()
