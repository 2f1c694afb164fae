"""Running syncs for the CLI (and a future web UI): build the engine from the workspace, run, report status."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from dynasync import setup
from dynasync.activation import load_streams, mapping_repository
from dynasync.engine.report import ProgressCallback, RunReport
from dynasync.engine.runner import Engine
from dynasync.errors import ConfigError
from dynasync.mapping import MappingSpec
from dynasync.synapses.base import Synapse
from dynasync.synapses.dynamics.synapse import DynamicsSynapse
from dynasync.udm.store import UdmStore, open_store
from dynasync.workspace import SynapseRecord, Workspace, slug


@dataclass(slots=True)
class ActiveSynapse:
    """An active synapse ready to sync: its record, live connector and published mapping."""

    record: SynapseRecord
    synapse: Synapse
    mapping: MappingSpec


def active_records(ws: Workspace, names: Sequence[str] | None = None) -> list[SynapseRecord]:
    """The active synapses to sync (the named ones, or all active)."""
    records = [ws.get(n) for n in names] if names else [r for r in ws.synapses() if r.status == "active"]
    if not records:
        raise ConfigError(
            "No active synapse to sync.",
            remedy="Activate one first: `dynasync synapse activate --default-mapping` (Step 6).",
        )
    for record in records:
        if record.status != "active":
            raise ConfigError(
                f"Synapse {record.name!r} is {record.status}, not active.",
                remedy="Run `dynasync synapse auth` and `dynasync synapse activate` first.",
            )
    return records


@contextlib.asynccontextmanager
async def open_active(ws: Workspace, record: SynapseRecord) -> AsyncIterator[ActiveSynapse]:
    """Open the live connector of an active synapse (closed on exit)."""
    mapping = mapping_repository(ws, record).published()
    if mapping is None:
        raise ConfigError(
            f"Synapse {record.name!r} has no published mapping.",
            remedy="Publish one: `dynasync mapping publish` (or activate with --default-mapping).",
        )
    load_streams(ws, record)  # activation must have replicated the schema
    client = setup.open_client(ws, record)
    try:
        synapse = DynamicsSynapse(
            client.config,
            client=client,
            tables=sorted({entity.table for entity in mapping.entities}),
            name=slug(record.name),
        )
        yield ActiveSynapse(record, synapse, mapping)
    finally:
        await client.aclose()


def open_udm(ws: Workspace) -> UdmStore:
    """The UDM store of this workspace."""
    return open_store(ws.settings.resolved_udm_url())


async def run_sync(
    ws: Workspace,
    *,
    synapses: Sequence[str] | None = None,
    entities: Iterable[str] | None = None,
    progress: ProgressCallback | None = None,
) -> RunReport:
    """One sync run over the active synapses: read, map, apply, write back."""
    records = active_records(ws, synapses)
    async with contextlib.AsyncExitStack() as stack:
        actives = [await stack.enter_async_context(open_active(ws, r)) for r in records]
        store = stack.enter_context(open_udm(ws))
        engine = Engine(
            store,
            {slug(a.record.name): a.synapse for a in actives},
            [a.mapping for a in actives],
            progress=progress,
        )
        return await engine.run(entities)


def status(ws: Workspace) -> dict[str, Any]:
    """Synapses, their streams' sync state and the latest runs."""
    synapses = []
    with open_udm(ws) as store:
        for record in ws.synapses():
            streams = []
            if record.status == "active":
                with contextlib.suppress(ConfigError):
                    for stream in load_streams(ws, record):
                        state = store.get_state(slug(record.name), stream.name)
                        if state is None:
                            continue
                        streams.append(
                            {
                                "stream": stream.name,
                                "phase": state.phase,
                                "last_run_end": state.last_run_end.isoformat()
                                if state.last_run_end
                                else None,
                                "counts": dict(state.counts or {}),
                            }
                        )
            synapses.append(
                {
                    "name": record.name,
                    "org_url": record.org_url,
                    "status": record.status,
                    "auth": record.auth_mode,
                    "streams": streams,
                }
            )
        runs = [
            {
                "run_id": run.run_id,
                "status": run.status,
                "started_at": run.started_at.isoformat() if run.started_at else None,
                "ended_at": run.ended_at.isoformat() if run.ended_at else None,
                "totals": (run.summary or {}).get("totals", {}),
            }
            for run in store.list_runs(limit=5)
        ]
        entities = {name: store.count(name) for name in store.entities()}
    return {"synapses": synapses, "runs": runs, "udm_counts": entities}
