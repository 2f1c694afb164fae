"""Benchmark: a full sync of 100,000 emulator accounts into the SQLite UDM, against a bare client's paging rate."""

from __future__ import annotations

import asyncio
import os
import tempfile
from typing import Any

from bench.common import Result, own_peak_rss_mb, proc_cpu_seconds
from bench.emuproc import EmulatorProcess, emulator_for
from bench.sqlite_floor import replay_cpu_per_row
from bench.syncenv import sync_env

NAME = "sync_full_100k"
TITLE = "Full sync: 100,000 accounts from the emulator into the SQLite UDM vs a bare client"
TIMEOUT_S = 1800
ROWS = 100_000
TARGET_RATIO = 0.8


def core(rows: int, *, workdir: str, emulator: EmulatorProcess | None = None) -> dict[str, Any]:
    """Seed, run a full sync (into a new UDM), then repeat its read with a bare client (as is and plain).

    ``emulator``: an already running one (tests share one); its current accounts are the expected rows.
    """
    udm_path = os.path.join(workdir, "udm.db")
    with emulator_for(emulator, accounts=rows, tls_dir=workdir) as emulator:
        seeded = emulator.count()

        async def measure() -> dict[str, Any]:
            async with sync_env(emulator.served, f"sqlite:///{udm_path}") as env:
                served_cpu = proc_cpu_seconds(emulator.served.pid)
                full = await env.run()
                served_cpu = proc_cpu_seconds(emulator.served.pid) - served_cpu
                # Then the same read with a bare client: the synapse's exact request, and without annotations.
                return {
                    "full": full,
                    "bare": env.bare_read(),
                    "bare_plain": env.bare_read(annotations=False),
                    "udm_rows": env.store.count(env.entity),
                    "entity_table": env.store.entity(env.entity).table,
                    "columns": env.read_columns,
                    "prefer": env.read_prefer,
                    "mapped_fields": len(env.spec.entities[0].fields),
                    "emulator_cpu": served_cpu,
                }

        out = asyncio.run(measure())
        out["seed_seconds"] = emulator.served.seed_seconds
        out["seeded"] = seeded
    out["udm_mb"] = sum(os.path.getsize(p) for p in (udm_path, udm_path + "-wal") if os.path.exists(p)) / 1e6
    out["peak_rss"] = own_peak_rss_mb()
    # Last: the replay holds every stored row in memory, which the peak above must not include.
    out["sqlite_floor"] = replay_cpu_per_row(udm_path, out["entity_table"])
    return out


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def run(rows: int = ROWS) -> Result:
    """The full benchmark."""
    result = Result(NAME, TITLE, params={"accounts": rows, "page": 5000, "udm": "SQLite file (WAL)"})
    with tempfile.TemporaryDirectory(prefix="bench-syncfull-") as tmp:
        out = core(rows, workdir=tmp)
    bare, plain, full = out["bare"], out["bare_plain"], out["full"]
    created = full.counts.get("created", 0)
    if out["udm_rows"] != out["seeded"] or created != out["seeded"] or not full.report.ok:
        result.error = (
            f"UDM holds {out['udm_rows']} of {out['seeded']} accounts (created {created}; "
            f"errors {full.report.errors})"
        )
    sync_rate = rows / full.seconds if full.seconds else 0.0
    result.params["columns read"] = out["columns"]
    result.params["UDM fields"] = out["mapped_fields"]
    result.params["Prefer"] = out["prefer"]
    result.add("seeding (bulk insert_many)", out["seed_seconds"], "s")
    result.add("bare client, the synapse's request: rows/s", bare.rows_per_second, "rows/s")
    result.add("bare client, same $select without annotations: rows/s", plain.rows_per_second, "rows/s")
    result.add("full sync: rows/s", sync_rate, "rows/s")
    result.add("full sync / bare rate (same request)", _ratio(sync_rate, bare.rows_per_second),
               at_least=TARGET_RATIO)  # fmt: skip
    result.add("full sync / bare rate without annotations", _ratio(sync_rate, plain.rows_per_second))
    result.add("full sync: time", full.seconds, "s")
    result.add("full sync: CPU of the sync process", full.cpu, "s")
    result.add("full sync: HTTP requests", full.requests)
    # The CPU budget behind the target: at 0.8 x the bare rate a row may take this much wall time, and the sync is
    # one Python process, so its CPU per row must fit in it (the emulator needs its own share of the 2 cores).
    if bare.rows_per_second:
        result.add("target: wall time per row at 0.8 x the bare rate", 1e6 / (TARGET_RATIO * bare.rows_per_second),
                   "us")  # fmt: skip
    result.add("full sync: CPU per row, sync process", full.cpu / rows * 1e6, "us")
    result.add("full sync: CPU per row, emulator", out["emulator_cpu"] / rows * 1e6, "us")
    if bare.rows_per_second:
        # The whole machine's CPU in that wall time, less the emulator's share: what the sync's processes and
        # threads could use together if they kept every core busy.
        budget = len(os.sched_getaffinity(0)) * 1e6 / (TARGET_RATIO * bare.rows_per_second)
        result.add("target: CPU per row left for the sync on all cores", budget - out["emulator_cpu"] / rows * 1e6,
                   "us")  # fmt: skip
    result.add(
        "SQLite floor: the same rows inserted from prebuilt tuples, CPU per row", out["sqlite_floor"], "us"
    )
    result.add(
        "bare read: CPU per row, client + emulator", (bare.client_cpu + bare.server_cpu) / rows * 1e6, "us"
    )
    result.add("bytes per page read by the sync", bare.bytes / max(bare.pages, 1) / 1e6, "MB")
    result.add("UDM database size", out["udm_mb"], "MB")
    result.add("benchmark process peak RSS (sync, then the bare reads)", out["peak_rss"], "MiB")
    result.note = (
        "Mapping: the default account mapping without reference fields. After the sync, a bare httpx client "
        "repeats the synapse's first read request (recorded by its transport: URL, $select, Prefer) and pages "
        "through it; the target compares the sync with that like-for-like read. The SQLite floor replays the rows "
        "the sync stored (entity rows, links, log events) into a fresh database with the same schema and pragmas, "
        "one transaction per page: the cost of this store design before any other work."
    )
    return result
