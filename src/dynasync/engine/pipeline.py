"""The read half of an entity pipeline: source changes -> mapping -> one UDM transaction per page (+ cursor)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from dynasync.engine import echo
from dynasync.engine.bindings import Binding
from dynasync.engine.codec import payload_to_record, record_to_payload
from dynasync.engine.context import RunContext
from dynasync.engine.incoming import Prepared, build_row, echo_policy, resolve
from dynasync.engine.policy import field_policy
from dynasync.engine.report import SynapseCounts
from dynasync.engine.writeback import WRITE_KEY
from dynasync.errors import CursorExpiredError, DynasyncError, RetriableError
from dynasync.synapses.base import ChangeBatch, LookupRef, SourceRecord
from dynasync.udm.store import StoreTx
from dynasync.udm.store_codec import invalid_text
from dynasync.udm.store_types import Link, RowOutcome

PENDING = "pending"
FAILED = "failed"


class ReadPipeline:
    """Reads one bound source table into its UDM entity, page by page, each page in one transaction."""

    def __init__(self, ctx: RunContext, binding: Binding) -> None:
        self.ctx = ctx
        self.binding = binding
        self.counts: SynapseCounts = ctx.report.entity(binding.entity).counts(binding.synapse_name)
        self.policy = field_policy(binding.synapse_name, binding.mapping.conflicts)
        self.echo_policy = echo_policy(binding.synapse_name)
        self.done = 0
        # External ids held in the quarantine for this table (read side), once known: only those are released.
        self.held: set[str] | None = None

    # -- public ---------------------------------------------------------------------------------------------
    async def run(self, *, reload: bool = False) -> None:
        """Retry held-back records, then read every change since the stored cursor.

        Args:
            reload: a resync: read every row again from the start, then reconcile deletes.

        Raises:
            DynasyncError: the source failed in a way retries did not fix (the committed pages stay committed).
        """
        if reload:
            # The stored cursor (delta token or a load's checkpoint) is replaced, not kept beside: should this
            # run stop half-way, the next one resumes the reload from its last page, reconciliation included.
            binding = self.binding
            cursor = binding.synapse.reload_cursor(binding.reading)
            self.ctx.store.put_cursor(binding.synapse_name, binding.table, cursor, phase="reload")
        self.retry_held(kinds=(FAILED, PENDING))
        attempt = 0
        restarted_full = False
        while True:
            state = self.ctx.store.get_state(self.binding.synapse_name, self.binding.table)
            cursor = state.cursor if state is not None else None
            try:
                async for batch in self.binding.synapse.read(self.binding.reading, cursor):
                    self.counts.requests += 1
                    self.counts.full_load = self.counts.full_load or batch.full_load
                    for note in batch.notes:
                        if note not in self.counts.notes:
                            self.counts.notes.append(note)
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
        quarantined = self.ctx.store.list_quarantined(
            synapse=self.binding.synapse_name, stream=self.binding.table
        )
        self.held = {q.external_id for q in quarantined if not q.external_id.startswith(WRITE_KEY)}
        held = [q for q in quarantined if q.kind in wanted and q.payload is not None]
        if not held:
            return 0
        records = [payload_to_record(q.payload) for q in held if q.payload is not None]
        with self.ctx.store.transaction() as tx:
            return self._apply_records(tx, records, retry=True)

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

    def _prepare(
        self, records: Sequence[SourceRecord]
    ) -> tuple[list[Prepared], list[tuple[SourceRecord, str]]]:
        """Map records to UDM values; references become UDM ids later (``missing`` until then)."""
        to_udm = self.binding.mapping.to_udm
        prepared: list[Prepared] = []
        failed: list[tuple[SourceRecord, str]] = []
        for record in records:
            try:
                out = to_udm(record)
            except (DynasyncError, ValueError, TypeError, KeyError) as exc:
                failed.append((record, f"mapping failed: {exc}"))
                continue
            if out.problems:
                failed.append((record, "; ".join(out.problems)))
                continue
            values = out.values  # a fresh dict per record: ours to extend
            bad_text = invalid_text(values)
            if bad_text is not None:
                failed.append((record, bad_text))
                continue
            missing: dict[str, LookupRef] = {}
            for name, ref in out.references.items():
                if ref is None:
                    values[name] = None
                else:
                    missing[name] = ref
            prepared.append(Prepared(record, values, missing))
        return prepared, failed

    def _apply(
        self, tx: StoreTx, prepared: Sequence[Prepared], links: Mapping[str, Link]
    ) -> list[RowOutcome]:
        """Send rows to the store: ordinary rows under the field policy, echoes under the echo policy."""
        syn, table, entity = self.binding.synapse_name, self.binding.table, self.binding.entity
        server = self.binding.server_fields
        rows = [build_row(p, links.get(p.record.id), server) for p in prepared]
        plain = [row for row, p in zip(rows, prepared, strict=True) if not p.echo]
        echoes = [row for row, p in zip(rows, prepared, strict=True) if p.echo]
        outcomes: list[RowOutcome] = []
        for part, policy in ((plain, self.policy), (echoes, self.echo_policy)):
            if part:
                result = tx.apply_upserts(
                    entity,
                    syn,
                    table,
                    part,
                    run_id=self.ctx.run_id,
                    policy=policy,
                    hash_value=echo.field_hash,
                    verify_creates=self.binding.synced_on_create,
                )
                outcomes.extend(result.rows)
        return outcomes

    def _apply_records(self, tx: StoreTx, records: Sequence[SourceRecord], *, retry: bool = False) -> int:
        """Apply records in two passes; hold failed and waiting ones; return how many are held."""
        syn, table = self.binding.synapse_name, self.binding.table
        prepared, failed = self._prepare(records)
        links = tx.get_links(syn, table, [p.record.id for p in prepared])
        resolve(tx, syn, prepared)
        # Pass 1: everything resolvable now. Pass 2: references to records created by pass 1 (same page).
        outcomes: dict[str, RowOutcome] = {}
        for o in self._apply(tx, prepared, links):
            outcomes[o.external_id or ""] = o
        waiting = [p for p in prepared if p.missing]
        if waiting:
            before = {p.record.id: set(p.missing) for p in waiting}
            resolve(tx, syn, waiting)
            second = [p for p in waiting if set(p.missing) != before[p.record.id]]
            if second:
                links2 = tx.get_links(syn, table, [p.record.id for p in second])
                for o in self._apply(tx, second, links2):
                    key = o.external_id or ""
                    first = outcomes.get(key)
                    if first is None or first.action in ("unchanged", "echo"):
                        outcomes[key] = o
        by_id = {p.record.id: p for p in prepared}
        refused = {key for key, o in outcomes.items() if o.action == "failed" and key in by_id}
        for key in refused:
            # The store refused a value (e.g. too long, out of range): the record is held like a mapping error.
            failed.append((by_id[key].record, f"rejected by the UDM store: {outcomes[key].error}"))
        self._count(outcomes.values(), by_id, retry=retry)
        if self.binding.writes:
            self._recheck_refused(tx, outcomes.values())
        if refused:
            prepared = [p for p in prepared if p.record.id not in refused]
        return self._hold(tx, failed, prepared, outcomes)

    def _hold(
        self,
        tx: StoreTx,
        failed: Sequence[tuple[SourceRecord, str]],
        prepared: Sequence[Prepared],
        outcomes: Mapping[str, RowOutcome],
    ) -> int:
        """Quarantine failed and waiting records, release the ones applied in full; return how many are held."""
        syn, table, run_id = self.binding.synapse_name, self.binding.table, self.ctx.run_id
        held = 0
        for record, reason in failed:
            # Text that is not valid Unicode cannot be kept as JSON either: such a record is held without its
            # payload (not retried from it); the source's next change of the row brings it back.
            payload = record_to_payload(record) if invalid_text(record.values) is None else None
            tx.quarantine(syn, table, record.id, reason, run_id=run_id, payload=payload, kind=FAILED)
            held += 1
        done_ids: list[str] = []
        for p in prepared:
            if not p.missing:
                done_ids.append(p.record.id)
                continue
            names = ", ".join(f"{f} -> {r.table} {r.id}" for f, r in sorted(p.missing.items()))
            reason = f"waiting for referenced record(s) not synced yet: {names}"
            tx.quarantine(
                syn,
                table,
                p.record.id,
                reason,
                run_id=run_id,
                payload=record_to_payload(p.record),
                kind=PENDING,
            )
            held += 1
            outcome = outcomes.get(p.record.id)
            if outcome is not None and outcome.action in ("created", "updated", "attached"):
                self.ctx.counted_pending.add((syn, table, p.record.id))
        known = self.held
        if known is not None:
            known.update(record.id for record, _ in failed)
            known.update(p.record.id for p in prepared if p.missing)
            done_ids = [i for i in done_ids if i in known]  # nothing else can be in the quarantine
            known.difference_update(done_ids)
        if done_ids:
            tx.release_quarantined(syn, table, done_ids)
        return held

    def _recheck_refused(self, tx: StoreTx, outcomes: Iterable[RowOutcome]) -> None:
        """Queue for write-back the records where the policy kept the UDM value over this source's value.

        Their UDM version did not move, so only this note makes the write-back send the winning value back.
        """
        syn, table = self.binding.synapse_name, self.binding.table
        for o in outcomes:
            if o.udm_id and o.changes and any(not c.applied for c in o.changes):
                reason = "the conflict policy kept the UDM value; it is written back to the source"
                tx.quarantine(
                    syn, table, WRITE_KEY + o.udm_id, reason, run_id=self.ctx.run_id, kind="write_recheck"
                )

    def _count(self, outcomes: Iterable[RowOutcome], by_id: Mapping[str, Prepared], *, retry: bool) -> None:
        counts = self.counts
        syn, table = self.binding.synapse_name, self.binding.table
        for o in outcomes:
            action = o.action
            if action == "failed":
                continue  # counted from the held records at the end of the run
            p = by_id.get(o.external_id or "")
            if action == "created":
                counts.created += 1
            elif p is not None and p.echo:
                counts.echoes += 1  # our own write read back; only server-maintained values were refreshed
            elif action in ("updated", "attached"):
                if action == "attached" and not any(c.applied for c in o.changes):
                    counts.unchanged += 1  # linked to the record it matches, which already held its values
                elif action == "updated" and not any(c.applied for c in o.changes):
                    counts.skipped += 1
                elif retry and (syn, table, o.external_id or "") in self.ctx.counted_pending:
                    # Counted earlier in this run, applied without a reference its parent now provides.
                    self.ctx.counted_pending.discard((syn, table, o.external_id or ""))
                    counts.resolved += 1
                else:
                    counts.updated += 1
            elif action == "echo":
                counts.echoes += 1
            elif o.changes and not any(c.applied for c in o.changes):
                counts.skipped += 1
            elif not retry:
                counts.unchanged += 1

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
        links = tx.get_links(syn, table, external_ids, read_state=False)  # only their records are needed
        linked = list(links)
        # The external rows are gone: their links mean nothing any more, and no delete is sent back to them.
        tx.unlink_many(syn, table, linked)
        if self.binding.writes and links:
            # Should the UDM record live on (another synapse keeps it), the write-back must not create the
            # row here again unless this mapping asks for that (deletes.recreate).
            tx.add_tombstones(
                syn, table, self.binding.entity, [(lk.udm_id, ext) for ext, lk in links.items()]
            )
        for ext_id in linked:
            if not self.binding.mapping.delete_to_udm:
                self.counts.skipped += 1
                reason = "deleted in the source; UDM record kept and unlinked (deletes.to_udm is off)"
                self.counts.issue("read", ext_id, reason, kind="skipped")
        tx.release_quarantined(syn, table, list(external_ids))
