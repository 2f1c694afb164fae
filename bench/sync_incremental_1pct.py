"""Benchmark: after a full sync of 100,000 accounts, 1% of them change or go; the incremental sync is cheap."""

from __future__ import annotations

import asyncio
import math
import os
import tempfile
from typing import Any

from bench.common import PAGE, Result
from bench.emuproc import EmulatorProcess, emulator_for
from bench.syncenv import sync_env

NAME = "sync_incremental_1pct"
TITLE = "Incremental sync: 1% of 100,000 accounts updated or deleted after a full sync"
TIMEOUT_S = 1800
ROWS = 100_000
DELETED_SHARE = 0.2  # of the changed rows; the rest are updated
TARGET_TIME_SHARE = 0.03


def core(
    rows: int, *, workdir: str, changed_share: float = 0.01, emulator: EmulatorProcess | None = None
) -> dict[str, Any]:
    """Full sync (new UDM), then update/delete ``changed_share`` of the accounts in the emulator, sync again.

    ``emulator``: an already running one (tests share one); its current accounts are the expected rows.
    """
    udm_path = os.path.join(workdir, "udm.db")
    with emulator_for(emulator, accounts=rows, tls_dir=workdir) as emulator:
        rows = emulator.count()
        changed = max(1, round(rows * changed_share))
        deleted = max(1, round(changed * DELETED_SHARE)) if changed > 1 else 0
        updated = changed - deleted

        async def measure() -> dict[str, Any]:
            async with sync_env(emulator.served, f"sqlite:///{udm_path}") as env:
                full = await env.run()
                done = emulator.command("mutate", update=updated, delete=deleted)
                incremental = await env.run()
                return {
                    "full": full,
                    "incremental": incremental,
                    "mutated": done,
                    "udm_live": env.store.count(env.entity),
                    "udm_all": env.store.count(env.entity, include_deleted=True),
                }

        out = asyncio.run(measure())
    moved = out["mutated"]
    out.update(rows=rows, updated=updated, deleted=deleted)
    out["delta_pages"] = max(1, math.ceil((moved["changed_rows"] + moved["deleted_rows"]) / PAGE))
    return out


def check(out: dict[str, Any]) -> str | None:
    """What is wrong with the outcome (None: the sync did exactly what the changes asked)."""
    full, inc = out["full"], out["incremental"]
    problems = []
    moved = out["mutated"]
    if (moved["updated"], moved["deleted"], moved["deleted_rows"]) != (
        out["updated"],
        out["deleted"],
        out["deleted"],
    ):
        problems.append(f"emulator mutated {moved}")
    if full.counts.get("created") != out["rows"]:
        problems.append(f"full sync created {full.counts.get('created')} of {out['rows']}")
    # changed_rows: the updated rows plus children of deleted accounts (their parent lookup was cleared)
    if inc.counts.get("updated") != moved["changed_rows"] or inc.counts.get("deleted") != out["deleted"]:
        problems.append(
            f"incremental sync updated {inc.counts.get('updated')} (expected {moved['changed_rows']}) and "
            f"deleted {inc.counts.get('deleted')} (expected {out['deleted']})"
        )
    if inc.counts.get("full_load"):
        problems.append("the second sync was a full load")
    if out["udm_live"] != out["rows"] - out["deleted"] or out["udm_all"] != out["rows"]:
        problems.append(f"UDM holds {out['udm_live']} live / {out['udm_all']} records")
    if not (full.report.ok and inc.report.ok):
        problems.append(f"run errors: {full.report.errors + inc.report.errors}")
    return "; ".join(problems) or None


def run(rows: int = ROWS) -> Result:
    """The full benchmark."""
    with tempfile.TemporaryDirectory(prefix="bench-syncinc-") as tmp:
        out = core(rows, workdir=tmp)
    full, inc = out["full"], out["incremental"]
    params = {
        "accounts": rows,
        "updated": out["updated"],
        "deleted": out["deleted"],
        "rows changed in the delta (incl. children of deleted parents)": out["mutated"]["changed_rows"],
        "page": PAGE,
    }
    result = Result(NAME, TITLE, params=params, error=check(out))
    result.add("full sync: time", full.seconds, "s")
    result.add("incremental sync: time", inc.seconds, "s")
    result.add("incremental / full time", inc.seconds / full.seconds, at_most=TARGET_TIME_SHARE)
    result.add("incremental: HTTP requests", inc.requests, equals=out["delta_pages"])
    result.add("delta pages expected", out["delta_pages"])
    result.add("full sync: HTTP requests", full.requests)
    result.note = (
        "Changes are made directly in the emulator's store (telephone1 updated, rows deleted); the incremental "
        "run follows the change-tracking deltaLink saved by the full run."
    )
    return result
