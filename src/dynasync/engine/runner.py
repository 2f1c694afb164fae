"""The engine: runs every entity pipeline of the published mappings, parents first, once or on a schedule."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

from dynasync.clock import Clock, SystemClock
from dynasync.engine.bindings import Binding, Bindings, bind
from dynasync.engine.context import EngineOptions, RunContext, Sleep, synapse_counters
from dynasync.engine.order import dependency_order
from dynasync.engine.pipeline import FAILED, PENDING, ReadPipeline
from dynasync.engine.report import ProgressCallback, RunReport
from dynasync.engine.schedule import run_every
from dynasync.engine.writeback import WriteBack
from dynasync.errors import AuthError, ConfigError, DynasyncError
from dynasync.mapping.compile import CompiledMapping
from dynasync.mapping.spec import MappingSpec
from dynasync.synapses.base import Synapse
from dynasync.udm.store import UdmStore


class Engine:
    """Bidirectional sync between synapses and the UDM.

    Args:
        store: the UDM store (``open_store(url)``).
        synapses: live synapses by name; each mapping's ``synapse`` must be one of them.
        mappings: the published mapping specs (or compiled mappings), one per synapse.
        options: tunables (chunk size, retries, If-Match...).
        clock: the time source of run reports.
        progress: ``progress(entity, done, total_or_None)`` while records are read.
        sleep: how back-off waits (tests pass a fake).
    """

    def __init__(
        self,
        store: UdmStore,
        synapses: Mapping[str, Synapse],
        mappings: Sequence[MappingSpec | CompiledMapping],
        *,
        options: EngineOptions | None = None,
        clock: Clock | None = None,
        progress: ProgressCallback | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        self.store = store
        self.synapses = dict(synapses)
        self.mappings = list(mappings)
        self.options = options or EngineOptions()
        self.clock = clock or SystemClock()
        self.progress = progress
        self.sleep: Sleep = sleep or asyncio.sleep
        self._bindings: Bindings | None = None

    async def prepare(self) -> Bindings:
        """Discover the synapses, compile the mappings and create/extend the UDM tables (once per engine)."""
        if self._bindings is None:
            bindings = await bind(self.synapses, self.mappings)
            with self.store.transaction() as tx:
                for entity in bindings.entities.values():
                    tx.ensure_entity(entity)
            self._bindings = bindings
        return self._bindings

    async def run(self, entities: Iterable[str] | None = None, *, reload: bool = False) -> RunReport:
        """Run one sync over ``entities`` (UDM entity names; None: all mapped) and return its report.

        Phases: read every source (parents first; each page and its cursor in one transaction), retry records
        that waited for a parent, then write changed UDM records to every destination (parents first).
        ``reload``: a resync; every source table of these entities is read in full again (rows that did not
        change are left alone) and rows the source no longer has are handled as deletes.

        Raises:
            ConfigError: an unknown entity was asked for, or a mapping names a missing synapse.
            MappingValidationError: a published mapping no longer fits the synapse's schema.
            SyncBusyError: another run holds this UDM (nothing was done).
        """
        with self.store.run_lock():
            # A run that held the lock and is not running any more was killed: its record says so now.
            self.store.end_interrupted_runs()
            return await self._locked_run(entities, reload=reload)

    async def _locked_run(self, entities: Iterable[str] | None, *, reload: bool) -> RunReport:
        # Recorded from its start: `status` shows it while it discovers, and a run killed then is found later.
        run_id = self.store.start_run()
        started = self.clock.now()
        try:
            bindings = await self.prepare()
            order = self._order(bindings, entities)
        except DynasyncError as exc:
            # A run that could not start (sign-in refused, the service unreachable) is part of the history too.
            failed = RunReport(run_id=run_id, started_at=started, finished_at=self.clock.now())
            failed.errors.append(f"run could not start: {exc.explain()}")
            self.store.finish_run(run_id, status="failed", summary=failed.to_dict())
            raise
        report = RunReport(run_id=run_id, started_at=started)
        ctx = RunContext(self.store, run_id, report, self.options, self.clock, self.progress, self.sleep)
        read_ok: list[Binding] = []
        try:
            await self._run_phases(ctx, bindings, order, read_ok, reload=reload)
        except BaseException as exc:
            report.errors.append(f"run aborted: {exc}")
            report.finished_at = self.clock.now()
            self.store.finish_run(run_id, status="aborted", summary=report.to_dict())
            raise
        self._collect_held(ctx, bindings, order)
        report.finished_at = self.clock.now()
        self._mark_streams(ctx, read_ok, report.finished_at)
        summary = report.to_dict()
        clean = report.ok and not summary["totals"]["failed"]
        self.store.finish_run(run_id, status="ok" if clean else "partial", summary=summary)
        return report

    def run_once(self, entities: Iterable[str] | None = None, *, reload: bool = False) -> RunReport:
        """Run one sync synchronously (for the CLI); see :meth:`run`."""
        return asyncio.run(self.run(entities, reload=reload))

    def run_every(
        self,
        seconds: float,
        stop_event: threading.Event,
        entities: Iterable[str] | None = None,
        *,
        on_report: Callable[[RunReport], None] | None = None,
        on_error: Callable[[DynasyncError], None] | None = None,
        max_runs: int | None = None,
    ) -> int:
        """Run :meth:`run_once` every ``seconds`` until ``stop_event`` is set; return the number of runs."""
        chosen = None if entities is None else list(entities)
        return run_every(
            lambda: self.run_once(chosen),
            seconds,
            stop_event,
            on_report=on_report,
            on_error=on_error,
            max_runs=max_runs,
        )

    @staticmethod
    def _order(bindings: Bindings, entities: Iterable[str] | None) -> list[str]:
        """The entities to run, parents first; ``entities`` are matched without regard to case."""
        by_lower = {name.lower(): name for name in bindings.entities}
        selected = None if entities is None else [by_lower.get(e.lower(), e) for e in entities]
        if selected is not None:
            unknown = sorted(set(selected) - set(bindings.entities))
            if unknown:
                raise ConfigError(
                    f"unknown UDM entit{'y' if len(unknown) == 1 else 'ies'}: {', '.join(unknown)}",
                    remedy="Known entities: " + ", ".join(sorted(bindings.entities)) + ".",
                )
        return dependency_order(bindings.entities, selected)

    # -- phases ---------------------------------------------------------------------------------------------
    async def _run_phases(
        self,
        ctx: RunContext,
        bindings: Bindings,
        order: Sequence[str],
        read_ok: list[Binding],
        *,
        reload: bool,
    ) -> None:
        broken: dict[str, str] = {}  # synapse -> why it cannot be used for the rest of this run
        read_failed: set[str] = set()
        for entity in order:
            for binding in bindings.for_entity(entity):
                if not binding.reads:
                    continue
                if binding.synapse_name not in broken:
                    self.store.mark_stream_run(
                        binding.synapse_name, binding.table, started_at=ctx.clock.now()
                    )
                if await self._guard(ctx, binding, broken, ReadPipeline(ctx, binding).run(reload=reload)):
                    read_ok.append(binding)
                else:
                    read_failed.add(entity)
        for _ in range(self.options.pending_passes):
            held = 0
            for entity in order:
                for binding in bindings.for_entity(entity):
                    if binding.reads and binding.synapse_name not in broken:
                        held += ReadPipeline(ctx, binding).retry_held(kinds=(PENDING,))
            if held == 0:
                break
        for entity in order:
            if entity in read_failed:
                continue  # never write what we could not read first: the destination may hold newer values
            for binding in bindings.for_entity(entity):
                if binding.writes:
                    await self._guard(ctx, binding, broken, WriteBack(ctx, binding).run())
        # References across entities: a record written before the one it references (an account before its new
        # primary contact) gets the reference now, in this run.
        for entity in order:
            if entity in read_failed:
                continue
            for binding in bindings.for_entity(entity):
                if binding.writes and ctx.report.entity(entity).counts(binding.synapse_name).pending:
                    await self._guard(ctx, binding, broken, WriteBack(ctx, binding).retry_pending())

    @staticmethod
    async def _guard(
        ctx: RunContext, binding: Binding, broken: dict[str, str], work: Coroutine[Any, Any, None]
    ) -> bool:
        """Await one pipeline step; record its error on the entity instead of failing the run."""
        entity_report = ctx.report.entity(binding.entity)
        if binding.synapse_name in broken:
            work.close()
            entity_report.error = broken[binding.synapse_name]
            return False
        before = synapse_counters(binding.synapse)
        own = entity_report.counts(binding.synapse_name)
        step_requests, step_throttled = own.requests, own.throttled
        try:
            await work
        except (AuthError, ConfigError) as exc:
            broken[binding.synapse_name] = f"{binding.synapse_name}: {exc.explain()}"
            entity_report.error = broken[binding.synapse_name]
            return False
        except DynasyncError as exc:
            entity_report.error = f"{binding.synapse_name} {binding.table}: {exc.explain()}"
            return False
        finally:
            after = synapse_counters(binding.synapse)
            if before is not None and after is not None:
                # The synapse's own HTTP counts replace the engine's page/call counts for this step.
                counts = entity_report.counts(binding.synapse_name)
                counts.requests = step_requests + (after[0] - before[0])
                counts.throttled = step_throttled + (after[1] - before[1])
        return True

    def _mark_streams(self, ctx: RunContext, read: Sequence[Binding], ended_at: dt.datetime) -> None:
        """Record the end of each stream read in full this run, with its counts (``dynasync status``)."""
        for binding in read:
            counts = asdict(ctx.report.entity(binding.entity).counts(binding.synapse_name))
            counts.pop("issues", None)
            self.store.mark_stream_run(binding.synapse_name, binding.table, ended_at=ended_at, counts=counts)

    def _collect_held(self, ctx: RunContext, bindings: Bindings, order: Sequence[str]) -> None:
        """Report the read-side records still held (failed or pending), from the store: the lasting truth."""
        for entity in order:
            for binding in bindings.for_entity(entity):
                if not binding.reads:
                    continue
                counts = ctx.report.entity(entity).counts(binding.synapse_name)
                held = self.store.list_quarantined(synapse=binding.synapse_name, stream=binding.table)
                for q in held:
                    if q.kind == FAILED:
                        counts.failed += 1
                        counts.issue("read", q.external_id, q.error)
                    elif q.kind == PENDING:
                        counts.pending += 1
                        counts.issue("read", q.external_id, q.error, kind=PENDING)
