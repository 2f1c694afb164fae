"""Benchmark: peak RSS of a process running a full sync of 1,000,000 emulator accounts (streamed page by page)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import REPO, Result, Served, own_peak_rss_mb, proc_memory_mb
from bench.emuproc import EmulatorProcess, emulator_for
from bench.syncenv import sync_env

NAME = "sync_memory_1m"
TITLE = "Sync memory: peak RSS of a full sync of 1,000,000 accounts (sync in its own process)"
TIMEOUT_S = 3600
ROWS = 1_000_000
TARGET_PEAK_MB = 300


def _sync_child(served_json: str, udm_url: str, out: str) -> None:
    """Inside the sync process: one full sync, then report own peak RSS (getrusage) and what was synced."""
    served = Served(**json.loads(served_json))

    async def go() -> dict[str, Any]:
        async with sync_env(served, udm_url) as env:
            ready_rss = own_peak_rss_mb()
            run = await env.run()
            return {
                "seconds": run.seconds,
                "requests": run.requests,
                "created": run.counts.get("created", 0),
                "ok": run.report.ok,
                "errors": run.report.errors,
                "udm_rows": env.store.count(env.entity),
                "peak_before_sync": ready_rss,
            }

    result = asyncio.run(go())
    result["peak_rss"] = own_peak_rss_mb()
    Path(out).write_text(json.dumps(result))


def sync_in_child(served: Served, udm_url: str, workdir: str, timeout: float) -> dict[str, Any]:
    """Run :func:`_sync_child` in a fresh interpreter, sampling its RSS every half second."""
    out = os.path.join(workdir, "sync-result.json")
    args = [
        sys.executable,
        "-m",
        "bench.sync_memory_1m",
        json.dumps(dataclasses.asdict(served)),
        udm_url,
        out,
    ]
    proc = subprocess.Popen(args, cwd=REPO)
    samples: list[tuple[float, float]] = []
    started = time.monotonic()
    try:
        while proc.poll() is None:
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"the sync did not finish within {timeout:.0f} s")
            try:
                samples.append((time.monotonic() - started, proc_memory_mb(proc.pid)["rss"]))
            except (OSError, ValueError):
                pass  # the process just ended
            try:
                proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0 or not os.path.exists(out):
        raise RuntimeError(f"the sync process failed (exit {proc.returncode})")
    result: dict[str, Any] = json.loads(Path(out).read_text())
    result["samples"] = samples
    return result


def core(
    rows: int, *, workdir: str, timeout: float = TIMEOUT_S, emulator: EmulatorProcess | None = None
) -> dict[str, Any]:
    """Seed ``rows`` accounts into a SQLite file, then run the full sync (new UDM) in a child process.

    ``emulator``: an already running one (tests share one); its current accounts are the expected rows.
    """
    options = {"path": os.path.join(workdir, "org.db"), "tls_dir": workdir, "start_timeout": timeout}
    with emulator_for(emulator, accounts=rows, **options) as emulator:
        seeded = emulator.count()
        out = sync_in_child(emulator.served, f"sqlite:///{os.path.join(workdir, 'udm.db')}", workdir, timeout)
        out["seed_seconds"] = emulator.served.seed_seconds
        out["seeded"] = seeded
    return out


def _rss_at(samples: list[tuple[float, float]], share: float) -> float:
    if not samples:
        return 0.0
    return samples[min(len(samples) - 1, int(len(samples) * share))][1]


def run(rows: int = ROWS) -> Result:
    """The full benchmark."""
    with tempfile.TemporaryDirectory(prefix="bench-syncmem-") as tmp:
        out = core(rows, workdir=tmp)
    result = Result(NAME, TITLE, params={"accounts": rows, "page": 5000, "udm": "SQLite file (WAL)"})
    if not out["created"] == out["udm_rows"] == out["seeded"] == rows or not out["ok"]:
        result.error = (
            f"created {out['created']}, UDM holds {out['udm_rows']} of {rows}; errors {out['errors']}"
        )
    samples = out["samples"]
    result.add("sync process peak RSS", out["peak_rss"], "MiB", at_most=TARGET_PEAK_MB)
    result.add("peak RSS before the sync (imports, discovery)", out["peak_before_sync"], "MiB")
    for share in (0.25, 0.5, 0.75):
        result.add(f"RSS at {share:.0%} of the sync time", _rss_at(samples, share), "MiB")
    result.add("full sync: time", out["seconds"], "s")
    result.add("full sync: rows/s", rows / out["seconds"] if out["seconds"] else 0.0, "rows/s")
    result.add("full sync: HTTP requests", out["requests"])
    result.add(f"seeding {rows:,} accounts (emulator process)", out["seed_seconds"], "s")
    result.note = "RSS sampled every 0.5 s from /proc; the peak is the sync process's own getrusage maximum."
    return result


if __name__ == "__main__":
    _sync_child(sys.argv[1], sys.argv[2], sys.argv[3])
