"""Running syncs for the CLI (and a future web UI): build the engine from the workspace, run, report status."""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from dynasync import setup
from dynasync.activation import load_streams, mapping_repository
from dynasync.dry_run import PlannedWrite, RecordingSynapse, store_copy
from dynasync.engine.report import ProgressCallback, RunReport
from dynasync.engine.runner import Engine
from dynasync.errors import ConfigError
from dynasync.mapping import MappingSpec, MappingValidationError
from dynasync.mapping.validate import conflict_synapse_problems
from dynasync.names import slug
from dynasync.synapses.base import Synapse
from dynasync.synapses.dynamics.synapse import DynamicsSynapse
from dynasync.udm.model import UdmRecord
from dynasync.udm.store import Link, LogEvent, UdmStore, open_store
from dynasync.workspace import ACTIVE, INACTIVE, SynapseRecord, Workspace


@dataclass(slots=True)
class ActiveSynapse:
    """An active synapse ready to sync: its record, live connector and published mapping."""

    record: SynapseRecord
    synapse: Synapse
    mapping: MappingSpec


def active_records(ws: Workspace, names: Sequence[str] | None = None) -> list[SynapseRecord]:
    """The active synapses to sync (the named ones, or all active; deactivated ones are left out)."""
    records = [ws.get(n) for n in names] if names else [r for r in ws.synapses() if r.status == ACTIVE]
    if not records:
        paused = [r.name for r in ws.synapses() if r.status == INACTIVE]
        if paused:
            raise ConfigError(
                f"No active synapse to sync: {', '.join(map(repr, paused))} "
                f"{'is' if len(paused) == 1 else 'are'} deactivated.",
                remedy="`dynasync synapse activate --synapse <name>` resumes one where it stopped.",
            )
        raise ConfigError(
            "No active synapse to sync.",
            remedy="Activate one first: `dynasync synapse activate --default-mapping` (Step 6).",
        )
    for record in records:
        if record.status == INACTIVE:
            since = record.extra.get("deactivated_at")
            raise ConfigError(
                f"Synapse {record.name!r} is deactivated{f' (since {since})' if since else ''}; it does not sync.",
                remedy=f"`dynasync synapse activate --synapse {shlex.quote(record.name)}` resumes it where it "
                "stopped: change tracking brings what changed meanwhile.",
            )
        if record.status != ACTIVE:
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
    client = setup.open_client(ws, record)
    try:
        synapse = DynamicsSynapse(
            client.config,
            client=client,
            tables=sorted({entity.table for entity in mapping.entities}),
            name=slug(record.name),
            # Choice labels come from the discovered option sets instead of a FormattedValue annotation on
            # every value: half the bytes, and the mapping's label fallback needs nothing more.
            labels="metadata",
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
    reload: bool = False,
) -> RunReport:
    """One sync run over the active synapses: read, map, apply, write back (``reload``: a resync)."""
    records = active_records(ws, synapses)
    return await _run(ws, ws.settings.resolved_udm_url(), records, entities, progress, None, reload=reload)


@dataclass(slots=True)
class DryRunResult:
    """What a sync would do: its report (as if run) and the writes it would send, none of which happened."""

    report: RunReport
    planned: list[PlannedWrite]


async def dry_run_sync(
    ws: Workspace,
    *,
    synapses: Sequence[str] | None = None,
    entities: Iterable[str] | None = None,
    progress: ProgressCallback | None = None,
    reload: bool = False,
) -> DryRunResult:
    """A sync run on a private copy of the UDM whose writes are recorded, not sent (see ``dynasync.dry_run``).

    Raises:
        ConfigError: the UDM is not a SQLite file (no private copy can be made), or as ``run_sync``.
    """
    records = active_records(ws, synapses)  # a configuration problem is reported before the copy is made
    planned: list[PlannedWrite] = []
    with store_copy(ws.settings.resolved_udm_url()) as url:
        report = await _run(ws, url, records, entities, progress, planned, reload=reload)
    return DryRunResult(report, planned)


async def _run(
    ws: Workspace,
    udm_url: str,
    records: Sequence[SynapseRecord],
    entities: Iterable[str] | None,
    progress: ProgressCallback | None,
    record_writes: list[PlannedWrite] | None,
    *,
    reload: bool,
) -> RunReport:
    """Run the engine over ``records`` (active synapses) and ``udm_url``.

    With ``record_writes``, the synapses' writes go into that list instead of to the systems.
    """
    async with contextlib.AsyncExitStack() as stack:
        actives = [await stack.enter_async_context(open_active(ws, r)) for r in records]
        keys = ws.synapse_keys()
        problems = [p for a in actives for p in conflict_synapse_problems(a.mapping, keys)]
        if problems:
            # A rule naming no synapse would side with the UDM against every one: refused before anything runs.
            raise MappingValidationError(problems)
        store = stack.enter_context(open_store(udm_url))
        connectors: dict[str, Synapse] = {
            slug(a.record.name): a.synapse
            if record_writes is None
            else RecordingSynapse(a.synapse, record_writes)
            for a in actives
        }
        engine = Engine(store, connectors, [a.mapping for a in actives], progress=progress)
        return await engine.run(entities, reload=reload)


# How a Dynamics table is read, from its cursor (see synapses/dynamics/changes.py)
_READ_MODES = {
    "tracked": "change tracking",
    "watermark": "modifiedon watermark (change tracking off: deletes found by a periodic scan of every id)",
}


def status(ws: Workspace) -> dict[str, Any]:
    """Synapses, their streams' sync state and the latest runs."""
    synapses = []
    with open_udm(ws) as store:
        for record in ws.synapses():
            streams = []
            if record.status in (ACTIVE, INACTIVE):
                with contextlib.suppress(ConfigError):
                    for stream in load_streams(ws, record):
                        state = store.get_state(slug(record.name), stream.name)
                        if state is None:
                            continue
                        streams.append(
                            {
                                "stream": stream.name,
                                "phase": state.phase,
                                "read_mode": _READ_MODES.get(str((state.cursor or {}).get("mode"))),
                                "last_run_end": state.last_run_end.isoformat()
                                if state.last_run_end
                                else None,
                                # When the cursor last moved: the latest sync of this table, run or not.
                                "updated_at": state.updated_at.isoformat() if state.updated_at else None,
                                "counts": dict(state.counts or {}),
                            }
                        )
            quarantined = [
                {
                    "stream": q.stream,
                    "record": q.external_id,
                    "kind": q.kind,
                    "error": q.error,
                    "attempts": q.attempts,
                    "last_failed_at": q.last_failed_at.isoformat() if q.last_failed_at else None,
                }
                for q in store.list_quarantined(synapse=slug(record.name))
            ]
            synapses.append(
                {
                    "name": record.name,
                    "org_url": record.org_url,
                    "status": record.status,
                    "auth": record.auth_mode,
                    "streams": streams,
                    "quarantined": quarantined,
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


@dataclass(slots=True)
class RecordHistory:
    """One UDM record, its links to source rows, and its transactions log (newest first)."""

    entity: str
    udm_id: str
    record: UdmRecord | None
    links: list[Link]
    events: list[LogEvent]


def record_history(
    ws: Workspace, record_id: str, *, entity: str | None = None, limit: int = 50
) -> RecordHistory:
    """Find a record by its UDM id or by a source (Dynamics) id, and return its history.

    Raises:
        ConfigError: No UDM record and no linked or logged source record has that id.
    """
    with open_udm(ws) as store:
        name, udm_id = locate_record(store, record_id, entity)
        return RecordHistory(
            entity=name,
            udm_id=udm_id,
            record=store.get(name, udm_id),
            links=store.links_for_record(name, udm_id),
            events=store.search_log(entity=name, udm_id=udm_id, limit=limit),
        )


def locate_record(store: UdmStore, record_id: str, entity: str | None) -> tuple[str, str]:
    """(entity, UDM id) of a record given by its UDM id or by a source (Dynamics) id, braces and case ignored.

    Raises:
        ConfigError: No UDM record and no linked or logged source record has that id.
    """
    found = find_record(store, record_id.strip().strip("{}").lower(), entity)
    if found is None:
        scope = f" in entity {entity!r}" if entity else ""
        raise ConfigError(
            f"No UDM record and no synced source record has the id {record_id!r}{scope}.",
            remedy="Give a UDM id (udm_id column) or a Dynamics record id (GUID) of a record that was "
            "synced; `dynasync status` shows what was synced.",
        )
    return found


def find_record(store: UdmStore, wanted: str, entity: str | None) -> tuple[str, str] | None:
    """(entity, udm id) of a UDM id or of a source row's id, or None."""
    known = sorted(store.entities())
    if entity is not None and entity not in known:
        raise ConfigError(
            f"There is no UDM entity {entity!r}.",
            remedy=f"Known entities: {', '.join(known) or 'none yet (publish a mapping first)'}.",
        )
    for name in [entity] if entity else known:
        if store.get(name, wanted) is not None:
            return name, wanted
    # A source id: the log names the UDM record it was applied to (the log outlives unlinked rows).
    for event in store.search_log(external_id=wanted, limit=20):
        if entity is None or event.entity == entity:
            return event.entity, event.udm_id
    return None
