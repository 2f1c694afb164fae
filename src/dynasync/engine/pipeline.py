"""The read half of an entity pipeline: source changes -> mapping -> one UDM transaction per page (+ cursor)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dynasync.engine import echo
from dynasync.engine.bindings import Binding
from dynasync.engine.codec import payload_to_record, record_to_payload
from dynasync.engine.context import RunContext
from dynasync.engine.policy import field_policy
from dynasync.engine.report import SynapseCounts
from dynasync.engine.writeback import WRITE_KEY
from dynasync.errors import CursorExpiredError, DynasyncError, RetriableError
from dynasync.synapses.base import ChangeBatch, LookupRef, SourceRecord
from dynasync.udm.store import StoreTx
from dynasync.udm.store_types import IncomingRow, RowOutcome

PENDING = "pending"
FAILED = "failed"


@dataclass(slots=True)
class _Prepared:
    """One mapped record ready for the store: values to apply, its fingerprint, references still missing."""

    record: SourceRecord
    values: dict[str, Any]
    fingerprint: dict[str, str]
    missing: dict[str, LookupRef] = field(default_factory=dict)


class ReadPipeline:
    """Reads one bound source table into its UDM entity, page by page, each page in one transaction."""

    def __init__(self, ctx: RunContext, binding: Binding) -> None:
        self.ctx = ctx
        self.binding = binding
        self.counts: SynapseCounts = ctx.report.entity(binding.entity).counts(binding.synapse_name)
        self.policy = field_policy(binding.synapse_name, binding.mapping.conflicts)
        self.done = 0

    # -- public ---------------------------------------------------------------------------------------------
    async def run(self) -> None:
        """Retry held-back records, then read every change since the stored cursor.

        Raises:
            DynasyncError: the source failed in a way retries did not fix (the committed pages stay committed).
        """
        self.retry_held(kinds=(FAILED, PENDING))
        attempt = 0
        restarted_full = False
        while True:
            state = self.ctx.store.get_state(self.binding.synapse_name, self.binding.table)
            cursor = state.cursor if state is not None else None
            try:
                async for batch in self.binding.synapse.read(self.binding.stream, cursor):
                    self.counts.requests += 1
                    self.counts.full_load = self.counts.full_load or batch.full_load
                    self.apply_batch(batch)
                    attempt = 0
                return
            except CursorExpiredError:
                if restarted_full:
                    raise
                # The change-tracking token expired: reload everything; the last page reconciles deletes.
                restarted_full = True
                self.ctx.store.put_cursor(
                    self.binding.synapse_name, self.binding.table, None, phase="expired"
                )
            except RetriableError as exc:
                self.counts.throttled += 1
                attempt += 1
                if attempt > self.ctx.options.max_retries:
                    raise
                await self.ctx.sleep(self.ctx.backoff(attempt, exc.retry_after))

    def retry_held(self, kinds: Iterable[str]) -> int:
        """Re-apply failed/pending records kept from earlier pages or runs; return how many are still held."""
        wanted = set(kinds)
        held = [
            q
            for q in self.ctx.store.list_quarantined(
                synapse=self.binding.synapse_name, stream=self.binding.table
            )
            if q.kind in wanted and q.payload is not None
        ]
        if not held:
            return 0
        records = [payload_to_record(q.payload) for q in held if q.payload is not None]
        with self.ctx.store.transaction() as tx:
            still = self._apply_records(tx, records, retry=True)
        return still

    # -- one page -------------------------------------------------------------------------------------------
    def apply_batch(self, batch: ChangeBatch) -> None:
        """Apply one page of changes and its cursor in one transaction."""
        syn, table = self.binding.synapse_name, self.binding.table
        with self.ctx.store.transaction() as tx:
            self._apply_records(tx, batch.upserts)
            deletes = list(batch.deletes)
            if batch.reconcile_ids is not None:
                deletes.extend(self._vanished(tx, batch.reconcile_ids))
            if deletes:
                self._apply_deletes(tx, deletes)
            phase = "full" if batch.full_load and not batch.last else "incremental"
            tx.put_cursor(syn, table, batch.cursor, phase=phase)
        self.done += len(batch.upserts) + len(batch.deletes)
        self.ctx.tick(self.binding.entity, self.done, None)

    def _apply_records(self, tx: StoreTx, records: Sequence[SourceRecord], *, retry: bool = False) -> int:
        syn, table = self.binding.synapse_name, self.binding.table
        prepared: list[_Prepared] = []
        failed: list[tuple[SourceRecord, str]] = []
        for record in records:
            try:
                out = self.binding.mapping.to_udm(record)
            except (DynasyncError, ValueError, TypeError, KeyError) as exc:
                failed.append((record, f"mapping failed: {exc}"))
                continue
            if out.problems:
                failed.append((record, "; ".join(out.problems)))
                continue
            values = dict(out.values)
            missing: dict[str, LookupRef] = {}
            for name, ref in out.references.items():
                if ref is None:
                    values[name] = None
                else:
                    missing[name] = ref
            prepared.append(_Prepared(record, values, {}, missing))
        links = tx.get_links(syn, table, [p.record.id for p in prepared])
        self._resolve(tx, prepared)
        # Pass 1: everything resolvable now. Pass 2: references to records created by pass 1 (same page).
        outcomes: dict[str, RowOutcome] = {}
        rows = [self._row(p, links.get(p.record.id)) for p in prepared]
        if rows:
            result = tx.apply_upserts(
                self.binding.entity, syn, table, rows, run_id=self.ctx.run_id, policy=self.policy
            )
            outcomes.update({o.external_id or "": o for o in result.rows})
        waiting = [p for p in prepared if p.missing]
        if waiting:
            before = {p.record.id: set(p.missing) for p in waiting}
            self._resolve(tx, waiting)
            second = [p for p in waiting if set(p.missing) != before[p.record.id]]
            if second:
                links2 = tx.get_links(syn, table, [p.record.id for p in second])
                result = tx.apply_upserts(
                    self.binding.entity,
                    syn,
                    table,
                    [self._row(p, links2.get(p.record.id)) for p in second],
                    run_id=self.ctx.run_id,
                    policy=self.policy,
                )
                for o in result.rows:
                    key = o.external_id or ""
                    if key not in outcomes or outcomes[key].action in ("unchanged", "echo"):
                        outcomes[key] = o
        by_id = {p.record.id: p.record for p in prepared}
        for key, outcome in outcomes.items():
            if outcome.action == "failed" and key in by_id:
                # The store refused a value (e.g. too long, out of range): the record is held like a mapping error.
                failed.append((by_id[key], f"rejected by the UDM store: {outcome.error}"))
                prepared = [p for p in prepared if p.record.id != key]
        self._count(outcomes.values(), retry=retry)
        if self.binding.writes:
            self._recheck_refused(tx, outcomes.values())
        held = 0
        for record, reason in failed:
            tx.quarantine(
                syn,
                table,
                record.id,
                reason,
                run_id=self.ctx.run_id,
                payload=record_to_payload(record),
                kind=FAILED,
            )
            held += 1
        done_ids: list[str] = []
        for p in prepared:
            if p.missing:
                names = ", ".join(f"{f} -> {r.table} {r.id}" for f, r in sorted(p.missing.items()))
                reason = f"waiting for referenced record(s) not synced yet: {names}"
                tx.quarantine(
                    syn,
                    table,
                    p.record.id,
                    reason,
                    run_id=self.ctx.run_id,
                    payload=record_to_payload(p.record),
                    kind=PENDING,
                )
                held += 1
            else:
                done_ids.append(p.record.id)
        if done_ids:
            tx.release_quarantined(syn, table, done_ids)
        return held

    def _resolve(self, tx: StoreTx, prepared: Sequence[_Prepared]) -> None:
        """Turn references into UDM ids through the synapse's links, one query per target table."""
        wanted: dict[str, set[str]] = {}
        for p in prepared:
            for ref in p.missing.values():
                wanted.setdefault(ref.table, set()).add(ref.id)
        found: dict[tuple[str, str], str] = {}
        for table, ids in wanted.items():
            for ext_id, link in tx.get_links(self.binding.synapse_name, table, ids).items():
                found[(table, ext_id)] = link.udm_id
        for p in prepared:
            for name, ref in list(p.missing.items()):
                udm_id = found.get((ref.table, ref.id))
                if udm_id is not None:
                    p.values[name] = udm_id
                    del p.missing[name]

    def _row(self, p: _Prepared, link: Any) -> IncomingRow:
        """Build the store row: only the fields this source changed since we last synced with it."""
        base = echo.decode(link.last_read_hash) if link is not None else {}
        current = echo.fingerprint(p.values)
        merged = dict(base)
        merged.update(current)
        p.fingerprint = merged
        if link is None:
            values = dict(p.values)
        else:
            values = {name: value for name, value in p.values.items() if base.get(name) != current[name]}
        return IncomingRow(
            external_id=p.record.id,
            values=values,
            modified_on=p.record.modified_on,
            external_version=p.record.version,
            hash=echo.encode(merged),
        )

    def _recheck_refused(self, tx: StoreTx, outcomes: Iterable[RowOutcome]) -> None:
        """Queue for write-back the records where the policy kept the UDM value over this source's value.

        Their UDM version did not move, so only this note makes the write-back send the winning value back.
        """
        syn, table = self.binding.synapse_name, self.binding.table
        for o in outcomes:
            if o.udm_id and any(not c.applied for c in o.changes):
                reason = "the conflict policy kept the UDM value; it is written back to the source"
                tx.quarantine(
                    syn, table, WRITE_KEY + o.udm_id, reason, run_id=self.ctx.run_id, kind="write_recheck"
                )

    def _count(self, outcomes: Iterable[RowOutcome], *, retry: bool) -> None:
        for o in outcomes:
            if o.action == "failed":
                continue  # counted from the held records at the end of the run
            if o.action == "created":
                self.counts.created += 1
            elif o.action in ("updated", "attached"):
                if any(c.applied for c in o.changes) or o.action == "attached":
                    self.counts.updated += 1
                else:
                    self.counts.skipped += 1
            elif o.action == "echo":
                self.counts.echoes += 1
            elif o.changes and not any(c.applied for c in o.changes):
                self.counts.skipped += 1
            elif not retry:
                self.counts.unchanged += 1

    # -- deletes --------------------------------------------------------------------------------------------
    def _vanished(self, tx: StoreTx, still_there: frozenset[str]) -> list[str]:
        """Ids linked to this table that the source no longer has (full-load reconciliation)."""
        gone: list[str] = []
        for link in tx.iter_links(self.binding.synapse_name, self.binding.table):
            # A link made just before a create was sent (never confirmed by a read or a write) is not evidence.
            confirmed = link.last_read_hash is not None or link.external_version is not None
            if confirmed and link.external_id not in still_there:
                gone.append(link.external_id)
        return gone

    def _apply_deletes(self, tx: StoreTx, external_ids: Sequence[str]) -> None:
        syn, table = self.binding.synapse_name, self.binding.table
        if self.binding.mapping.delete_to_udm:
            deleted = tx.apply_deletes(self.binding.entity, syn, table, external_ids, run_id=self.ctx.run_id)
            self.counts.deleted += len(deleted)
        for ext_id in tx.get_links(syn, table, external_ids):
            # The external row is gone: its link means nothing any more, and no delete is sent back to it.
            tx.unlink(syn, table, ext_id)
            if not self.binding.mapping.delete_to_udm:
                self.counts.skipped += 1
                reason = "deleted in the source; UDM record kept and unlinked (deletes.to_udm is off)"
                self.counts.issue("read", ext_id, reason)
        tx.release_quarantined(syn, table, list(external_ids))
