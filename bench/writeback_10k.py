"""Benchmark: 10,000 UDM records changed locally are written back to the emulator in a handful of requests."""

from __future__ import annotations

import asyncio
import itertools
import os
import tempfile
from typing import Any

from bench.common import Result, bare_client, client_credentials_token, iter_pages
from bench.emuproc import EmulatorProcess, emulator_for
from bench.syncenv import SyncEnv, sync_env

NAME = "writeback_10k"
TITLE = "Write-back: 10,000 changed UDM accounts written to the emulator"
TIMEOUT_S = 900
ROWS = 10_000
MAX_REQUESTS = 15
MARK = "WB-"


def _phone_field(env: SyncEnv) -> str:
    for mapping in env.spec.entities[0].fields:
        if mapping.column == "telephone1" and mapping.direction.writes and mapping.field:
            return mapping.field
    raise RuntimeError("the account mapping does not write telephone1")


def change_udm(env: SyncEnv, count: int) -> int:
    """Change ``telephone1``'s field on ``count`` UDM accounts, as a user or another synapse would."""
    field = _phone_field(env)
    records = env.store.iter_records(env.entity)
    ids = [record.id for record in itertools.islice(records, count)]
    records.close()  # type: ignore[attr-defined]
    with env.store.transaction() as tx:
        for i, udm_id in enumerate(ids):
            tx.upsert(env.entity, {field: f"{MARK}{i:06d}"}, udm_id=udm_id, source="udm")
    return len(ids)


def marked_in_emulator(env: SyncEnv) -> int:
    """Accounts in the emulator whose telephone1 carries the mark (read with a bare client)."""
    found = 0
    with bare_client(env.served) as client:
        token = client_credentials_token(client, env.served)
        url = f"{env.served.api_url}accounts?$select=telephone1"
        for body, _, _ in iter_pages(client, url, token):
            found += sum(1 for row in body["value"] if str(row.get("telephone1") or "").startswith(MARK))
    return found


def core(
    rows: int, *, workdir: str, changes: int | None = None, emulator: EmulatorProcess | None = None
) -> dict[str, Any]:
    """Full sync of ``rows`` accounts (new UDM), change ``changes`` of them in the UDM, run again (which writes
    them). ``emulator``: an already running one (tests share one)."""
    udm_path = os.path.join(workdir, "udm.db")
    with emulator_for(emulator, accounts=rows, tls_dir=workdir) as emulator:

        async def measure() -> dict[str, Any]:
            async with sync_env(emulator.served, f"sqlite:///{udm_path}") as env:
                full = await env.run()
                changed = change_udm(env, full.counts.get("created", 0) if changes is None else changes)
                write = await env.run()
                return {"full": full, "write": write, "changed": changed, "marked": marked_in_emulator(env)}

        out = asyncio.run(measure())
    return out


def run(rows: int = ROWS) -> Result:
    """The full benchmark."""
    with tempfile.TemporaryDirectory(prefix="bench-writeback-") as tmp:
        out = core(rows, workdir=tmp)
    write = out["write"]
    counts = write.counts
    problems = []
    if out["changed"] != rows or out["marked"] != rows:
        problems.append(
            f"changed {out['changed']} UDM records, {out['marked']} carry the change in the emulator"
        )
    if counts.get("written_updated") != rows or counts.get("write_failed"):
        problems.append(f"written {counts.get('written_updated')}, failed {counts.get('write_failed')}")
    if not write.report.ok:
        problems.append(f"run errors: {write.report.errors}")
    result = Result(NAME, TITLE, params={"accounts": rows, "changed in the UDM": out["changed"]})
    result.error = "; ".join(problems) or None
    result.add("write-back run: HTTP requests (read + write)", write.requests, at_most=MAX_REQUESTS)
    result.add("write-back run: time", write.seconds, "s")
    result.add("records written per second", rows / write.seconds if write.seconds else 0.0, "rows/s")
    result.add("records written", counts.get("written_updated", 0))
    result.note = "One engine run after the UDM change: a delta read of accounts, then the write-back phase."
    return result
