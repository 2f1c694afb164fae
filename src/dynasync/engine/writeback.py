"""The write half of an entity pipeline: UDM records that moved since last synced -> one destination, in bulk."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dynasync.engine import echo
from dynasync.engine.bindings import Binding
from dynasync.engine.context import RunContext
from dynasync.engine.report import SynapseCounts
from dynasync.errors import RetriableError
from dynasync.synapses.base import LookupRef, WriteKind, WriteOp, WriteResult
from dynasync.udm.model import UdmRecord
from dynasync.udm.store import StoreTx
from dynasync.udm.store_types import Link, WriteLogEntry, WrittenRow

WRITE_KEY = "write:"  # quarantine key prefix of write-back failures (the key space is the UDM id)
_ID_NAMESPACE = uuid.UUID("5f3d1c2e-6a57-4d8e-9f8b-2f1f6d0b9a10")


def deterministic_id(synapse: str, table: str, udm_id: str) -> str:
    """The id a new destination row gets: the same for the same UDM record, so a retried create is an update."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{synapse}/{table}/{udm_id}"))


@dataclass(slots=True)
class _Planned:
    """One write about to be sent and what to remember once it succeeds."""

    record: UdmRecord
    op: WriteOp
    external_id: str
    fingerprint: dict[str, str]
    creating: bool = False
    recheck: bool = (
        False  # some values can only be set once the row exists (e.g. a status): send them next run
    )
    complete: bool = False  # every written value is sent: once it succeeds, the row holds the record


class WriteBack:
    """Writes one UDM entity's changed records to one bound destination table."""

    def __init__(self, ctx: RunContext, binding: Binding) -> None:
        self.ctx = ctx
        self.binding = binding
        self.counts: SynapseCounts = ctx.report.entity(binding.entity).counts(binding.synapse_name)
        self.in_sync: list[str] = []  # UDM ids found already in sync while planning
        # Planned again once before the run ends: records created with values only an existing row takes (a
        # state), so the next read finds the record's values there, not the row's defaults; and records whose
        # reference waited for a record this run may have brought here (a parent later in the same table, or
        # two new records that reference each other).
        self.follow_up: list[str] = []

    async def run(self) -> None:
        """Write the records whose values this destination does not hold yet.

        Candidates are the records held from earlier runs (failed, conflicted, waiting for a parent, or whose
        source value the conflict policy refused) and every record whose UDM version moved past the write-back
        watermark. Each is compared, field by field, with the fingerprint of what the destination holds (from
        our reads and writes); only differing fields are sent. Held records stay held until they are in sync.
        """
        syn, table, entity = self.binding.synapse_name, self.binding.table, self.binding.entity
        store = self.ctx.store
        size = max(1, min(self.ctx.options.write_chunk, 1000))
        held = [
            q.external_id.removeprefix(WRITE_KEY)
            for q in store.list_quarantined(synapse=syn, stream=table)
            if q.external_id.startswith(WRITE_KEY)
        ]
        for start in range(0, len(held), size):
            part = held[start : start + size]
            with store.transaction() as tx:
                records = tx.get_many(entity, part)
                vanished = [WRITE_KEY + i for i in part if i not in records]
                if vanished:
                    tx.release_quarantined(syn, table, vanished)
                planned = self._plan(tx, list(records.values()))
                if self.in_sync:
                    tx.release_quarantined(syn, table, [WRITE_KEY + i for i in self.in_sync])
            await self._write(planned)
        done = set(held)
        state = store.get_state(syn, table)
        after = saved = state.written_version if state is not None else 0
        # Every version up to here is committed: records the scan below passes over (verified for this table at
        # their version, e.g. every record a full load just created from it) lie below it, so the watermark moves
        # up to it at the end. It never goes above it: a version beyond the counter is not the store's.
        top = store.max_version()
        if after > top:
            # Left by a record someone gave a version by hand; it would hide every later change. Which versions
            # below it were written is unknown, so all are compared (the verified ones cost nothing).
            after = saved = 0
        while True:
            with store.transaction() as tx:
                changed = tx.iter_changed(entity, after_version=after, batch_size=size, destination=syn)
                page = list(itertools.islice(changed, size))
                if not page:
                    break
                todo = [r for r in page if r.id not in done]
                planned = self._plan(tx, todo) if todo else []
            after = page[-1].version
            saved = min(after, top)  # a change made since the scan began is compared again next run
            await self._write(planned, watermark=saved)
        if saved != top:
            with store.transaction() as tx:
                tx.put_written_version(syn, table, top)
        if self.follow_up:
            await self._follow_up()

    async def retry_pending(self) -> None:
        """Plan again the records held waiting for a reference.

        Another entity's write-back of this run may have brought the target to the destination (an account's new
        primary contact is written after the account).
        """
        syn, table = self.binding.synapse_name, self.binding.table
        self.follow_up = [
            q.external_id.removeprefix(WRITE_KEY)
            for q in self.ctx.store.list_quarantined(synapse=syn, stream=table)
            if q.external_id.startswith(WRITE_KEY) and q.kind == "write_pending"
        ]
        if self.follow_up:
            await self._follow_up()

    async def _follow_up(self) -> None:
        """Plan the records noted in ``follow_up`` once more (what they still wait for is reported again)."""
        syn, table, entity = self.binding.synapse_name, self.binding.table, self.binding.entity
        ids = set(self.follow_up)
        # Their waits were counted when first planned; planning again counts what is still waited for.
        issues = self.counts.issues
        kept = [i for i in issues if not (i.direction == "write" and i.kind == "pending" and i.record in ids)]
        self.counts.pending -= len(issues) - len(kept)
        self.counts.issues = kept
        with self.ctx.store.transaction() as tx:
            planned = self._plan(tx, list(tx.get_many(entity, ids).values()))
            if self.in_sync:
                tx.release_quarantined(syn, table, [WRITE_KEY + i for i in self.in_sync])
        self.follow_up = []  # noted again while planning: what is still open now waits for the next run
        await self._write(planned)

    async def _write(self, planned: Sequence[_Planned], watermark: int | None = None) -> None:
        """Send planned writes, then record outcomes (and the watermark) in one transaction."""
        results = await self._send(planned)
        with self.ctx.store.transaction() as tx:
            self._record(tx, planned, results)
            if watermark is not None:
                tx.put_written_version(self.binding.synapse_name, self.binding.table, watermark)

    # -- planning -------------------------------------------------------------------------------------------
    def _plan(self, tx: StoreTx, page: Sequence[UdmRecord]) -> list[_Planned]:
        syn, table, entity = self.binding.synapse_name, self.binding.table, self.binding.entity
        links = tx.get_links_for_records(syn, entity, [r.id for r in page])
        targets, live = self._references(tx, page)
        unlinked = [r.id for r in page if r.id not in links and not r.deleted]
        deleted_here = tx.tombstoned(syn, table, entity, unlinked) if unlinked else {}
        recreated: list[str] = []
        planned: list[_Planned] = []
        self.in_sync = []
        verified: dict[str, int] = {}  # of those, the ones compared equal: passed over until they change
        for record in page:
            link = links.get(record.id)
            if link is None and record.id in deleted_here:
                if not self.binding.mapping.recreate_deleted:
                    # This table deleted the row; another synapse kept the record alive. Not brought back.
                    self.counts.skipped += 1
                    reason = f"deleted in {syn} ({deleted_here[record.id]}); not created again (deletes.recreate is off)"
                    self.counts.issue("write", record.id, reason, kind="skipped")
                    self.in_sync.append(record.id)
                    continue
                recreated.append(record.id)
            if record.deleted:
                if (
                    link is not None
                    and self.binding.mapping.delete_from_udm
                    and not self._in_sync(link, record)
                ):
                    op = WriteOp(WriteKind.DELETE, table, id=link.external_id)
                    planned.append(_Planned(record, op, link.external_id, echo.decode(link.last_read_hash)))
                continue
            udm_values = {f: record.values.get(f) for f in self.binding.write_fields}
            if (
                link is not None
                and not self._unconfirmed(link)
                and echo.values_in_sync(link.last_read_hash, udm_values)
            ):
                # The values-form state shows the destination holds these values: no per-field hashing.
                self.in_sync.append(record.id)
                verified[record.id] = record.version
                continue
            base = echo.decode(link.last_read_hash) if link is not None else {}
            current = echo.fingerprint(udm_values)
            if link is None or self._unconfirmed(link):
                changed = [f for f in sorted(udm_values) if base.get(f) != current[f]]
            else:
                # A field we never read a value of and hold none for says nothing: sending it would clear the
                # destination's value (e.g. a lookup whose target is not synced yet, waiting on the read side).
                changed = [
                    f
                    for f in sorted(udm_values)
                    if base.get(f) != current[f] and (f in base or current[f] != echo.EMPTY_HASH)
                ]
            if link is not None and not changed:
                self.in_sync.append(record.id)  # the destination holds these values (the change came from it)
                verified[record.id] = record.version
                continue
            references: dict[str, LookupRef | None] = {}
            scalars: dict[str, Any] = {}
            waiting: list[str] = []  # the target is in the UDM, not in this table yet
            dangling: list[str] = []  # the target is deleted or unknown in the UDM
            creating = link is None or self._unconfirmed(link)
            must_wait = False
            for name in changed:
                target = self.binding.mapping.reference_targets.get(name)
                value = udm_values[name]
                if target is None:
                    scalars[name] = value
                elif value is None:
                    references[name] = None
                else:
                    ref_link = targets.get((target, str(value)))
                    if ref_link is not None:
                        references[name] = LookupRef(ref_link.table, ref_link.external_id)
                    elif (target, str(value)) in live:
                        waiting.append(name)
                        must_wait = must_wait or (creating and self._required(name))
                    else:
                        dangling.append(name)
            if waiting:
                self.follow_up.append(record.id)
                reason = (
                    f"waiting for referenced record(s) to reach {syn}: {self._named(waiting, udm_values)}"
                )
                if must_wait:
                    # The row cannot be created without it: the whole record waits for the referenced one.
                    self._hold(tx, record, reason, kind="write_pending")
                    continue
                # Written without the reference, which follows once its target is in this table: two new
                # records that reference each other (account <-> primary contact) would otherwise wait forever.
                self._hold(tx, record, f"{reason}; the other values are written", kind="write_pending")
            if dangling:
                reason = (
                    f"references record(s) deleted or missing in the UDM: {self._named(dangling, udm_values)}; "
                    "the reference is not written (the other values are): point it at a live record or clear it"
                )
                self._hold(tx, record, reason, kind="write_failed")
            held_back = {*waiting, *dangling}
            out = self.binding.mapping.from_udm(scalars, references)
            if out.problems:
                self._hold(tx, record, "; ".join(out.problems), kind="write_failed")
                continue
            values, unsent, later = self._sendable(out.values, creating=creating)
            complete = not unsent and not later and not held_back
            new_fp = dict(base)
            new_fp.update({f: current[f] for f in changed if f not in unsent and f not in held_back})
            if creating:
                # A row created without a reference holds none: reading it back then is no change to apply
                # over the UDM's value, which is still to be written.
                new_fp.update(dict.fromkeys(held_back, echo.EMPTY_HASH))
            if later:
                # Some values can only be set once the row exists (e.g. a status): re-check after the create.
                self._hold(
                    tx, record, "values settable only after create are sent next run", kind="write_recheck"
                )
            if not values:
                if not held_back:
                    self.in_sync.append(record.id)
                continue
            if link is None:
                ext_id = (
                    deterministic_id(syn, table, record.id) if self.ctx.options.deterministic_ids else None
                )
                if ext_id is not None:
                    # Linked before the write is sent: a crash after the write leaves a link, never a duplicate.
                    tx.link(syn, table, ext_id, entity, record.id)
                op = WriteOp(
                    WriteKind.UPSERT if ext_id else WriteKind.CREATE, table, values=values, id=ext_id
                )
                planned.append(
                    _Planned(record, op, op.id or "", new_fp, creating=True, recheck=later, complete=complete)
                )
            elif self._unconfirmed(link):
                op = WriteOp(WriteKind.UPSERT, table, values=values, id=link.external_id)
                planned.append(
                    _Planned(
                        record, op, link.external_id, new_fp, creating=True, recheck=later, complete=complete
                    )
                )
            else:
                if_match = link.external_version if self.ctx.options.use_if_match else None
                op = WriteOp(WriteKind.UPDATE, table, values=values, id=link.external_id, if_match=if_match)
                planned.append(_Planned(record, op, link.external_id, new_fp, complete=complete))
        if recreated:
            tx.drop_tombstones(syn, table, entity, recreated)
        if verified:
            tx.mark_verified(syn, entity, verified)
        return planned

    def _sendable(
        self, values: Mapping[str, Any], *, creating: bool
    ) -> tuple[dict[str, Any], set[str], bool]:
        """Drop what the destination refuses, and empty values on create (the row starts empty anyway).

        Columns not creatable are dropped from creates, columns not updatable from updates.

        Returns:
            The values to send, the UDM fields whose values were not sent (the destination does not hold them),
            and whether a dropped value could be sent by an update once the row exists.
        """
        columns = self.binding.stream.columns
        sendable: dict[str, Any] = {}
        unsent: set[str] = set()
        deferred: set[str] = set()  # columns sent by an update once the row exists
        for name, value in values.items():
            spec = columns.get(name)
            if creating and value is None:
                continue
            if value is None and spec is not None and spec.required:
                # A column the destination requires cannot be cleared (Dataverse refuses a null owner): a UDM
                # value it could not resolve (e.g. an owner team no mapping covers) leaves the row's value alone.
                unsent.update(self.binding.column_fields.get(name, ()))
                continue
            allowed = spec is None or (spec.creatable if creating else spec.updatable)
            if allowed:
                sendable[name] = value
                continue
            unsent.update(self.binding.column_fields.get(name, ()))
            if creating and spec is not None and spec.updatable:
                deferred.add(name)
        for name in list(sendable):
            spec = columns.get(name)
            if spec is not None and spec.depends_on in deferred:
                # e.g. a status of Inactive cannot be created while the state waits: both follow in one update.
                del sendable[name]
                unsent.update(self.binding.column_fields.get(name, ()))
                deferred.add(name)
        return sendable, unsent, bool(deferred)

    def _named(self, fields: Sequence[str], values: Mapping[str, Any]) -> str:
        """``field -> Entity udm_id`` of reference fields, for a reason."""
        targets = self.binding.mapping.reference_targets
        return ", ".join(f"{name} -> {targets[name]} {values[name]}" for name in fields)

    def _references(
        self, tx: StoreTx, page: Sequence[UdmRecord]
    ) -> tuple[dict[tuple[str, str], Link], set[tuple[str, str]]]:
        """Return the records the page references, each keyed by (entity, UDM id).

        That is their links to this synapse, and the unlinked ones that are live in the UDM (their rows are still
        to be written); one query per target entity for each.
        """
        wanted: dict[str, set[str]] = {}
        for record in page:
            for name, target in self.binding.mapping.reference_targets.items():
                value = record.values.get(name)
                if name in self.binding.write_fields and value is not None:
                    wanted.setdefault(target, set()).add(str(value))
        found: dict[tuple[str, str], Link] = {}
        live: set[tuple[str, str]] = set()
        for target, ids in wanted.items():
            links = tx.get_links_for_records(self.binding.synapse_name, target, ids)
            found.update(((target, udm_id), link) for udm_id, link in links.items())
            unlinked = ids - links.keys()
            if unlinked:
                live.update((target, r.id) for r in tx.get_many(target, unlinked).values() if not r.deleted)
        return found, live

    def _required(self, field_name: str) -> bool:
        """True when the column a UDM field is written to must have a value on create."""
        columns = self.binding.stream.columns
        return any(
            field_name in fields and (spec := columns.get(column)) is not None and spec.required
            for column, fields in self.binding.column_fields.items()
        )

    @staticmethod
    def _unconfirmed(link: Link) -> bool:
        # Made just before a create was sent; the row may or may not exist, so upsert on its id.
        return (
            link.external_version is None and link.last_read_hash is None and link.last_written_hash is None
        )

    @staticmethod
    def _in_sync(link: Link, record: UdmRecord) -> bool:
        # Set by the store when the delete came from this synapse, and by us after writing the delete.
        return link.synced_version is not None and link.synced_version >= record.version

    # -- sending --------------------------------------------------------------------------------------------
    async def _send(self, planned: Sequence[_Planned]) -> list[WriteResult]:
        if not planned:
            return []
        ops = [p.op for p in planned]
        attempt = 0
        while True:
            self.counts.requests += 1
            try:
                results = await self.binding.synapse.write(self.binding.stream, ops)
            except RetriableError as exc:
                self.counts.throttled += 1
                attempt += 1
                if attempt > self.ctx.options.max_retries:
                    reason = f"throttled: {exc.message}"
                    return [
                        WriteResult(False, p.op.id, error_code="throttled", error=reason) for p in planned
                    ]
                await self.ctx.sleep(self.ctx.backoff(attempt, exc.retry_after))
                continue
            if len(results) != len(ops):
                reason = f"synapse returned {len(results)} results for {len(ops)} writes"
                return [WriteResult(False, p.op.id, error_code="protocol", error=reason) for p in planned]
            return results

    # -- recording ------------------------------------------------------------------------------------------
    def _record(self, tx: StoreTx, planned: Sequence[_Planned], results: Sequence[WriteResult]) -> None:
        syn, table, entity = self.binding.synapse_name, self.binding.table, self.binding.entity
        log: list[WriteLogEntry] = []
        released: list[str] = []
        marks: list[WrittenRow] = []
        for item, result in zip(planned, results, strict=True):
            op = item.op
            ext_id = result.id or item.external_id or None
            if result.ok and ext_id:
                if op.kind is WriteKind.DELETE:
                    self.counts.written_deleted += 1
                    marks.append(self._mark(item.record, ext_id, item.fingerprint, None, complete=True))
                else:
                    if item.creating:
                        self.counts.written_created += 1
                    else:
                        self.counts.written_updated += 1
                    marks.append(
                        self._mark(
                            item.record, ext_id, item.fingerprint, result.version, complete=item.complete
                        )
                    )
                if item.recheck:
                    reason = "created; values settable only on an existing row follow in an update"
                    self._hold(tx, item.record, reason, kind="write_recheck")
                    self.follow_up.append(item.record.id)
                else:
                    released.append(WRITE_KEY + item.record.id)
                outcome = "ok"
            elif result.conflict:
                self.counts.write_conflicts += 1
                outcome = "conflict: the row changed in the destination; it is re-read and merged next run"
                self._hold(tx, item.record, outcome, kind="write_conflict")
            else:
                reason = f"{result.error_code or 'error'}: {result.error or 'rejected'}"
                self._hold(tx, item.record, f"rejected by {syn}: {reason}", kind="write_failed")
                outcome = "error: " + reason
            log.append(
                WriteLogEntry(
                    syn, table, ext_id, entity, item.record.id, _loggable(op.values), outcome, op.kind.value
                )
            )
        tx.mark_written_many(syn, table, entity, marks)
        if released:
            tx.release_quarantined(syn, table, released)
        if log:
            tx.log_writes(self.ctx.run_id, log)

    @staticmethod
    def _mark(
        record: UdmRecord,
        external_id: str,
        fingerprint: Mapping[str, str],
        external_version: str | None,
        *,
        complete: bool,
    ) -> WrittenRow:
        # What we wrote is now both the last thing written and the last state known of the row.
        text = echo.encode(fingerprint)
        return WrittenRow(
            external_id,
            record.id,
            record.version,
            text,
            external_version=external_version,
            read_hash=text,
            complete=complete,
        )

    def _hold(self, tx: StoreTx, record: UdmRecord, reason: str, *, kind: str) -> None:
        """Keep a record for the next run's write-back, and report it (conflicts are counted by the caller)."""
        if kind == "write_failed":
            self.counts.write_failed += 1
            self.counts.issue("write", record.id, reason, kind="failed")
        elif kind == "write_pending":
            self.counts.pending += 1
            self.counts.issue("write", record.id, reason, kind="pending")
        tx.quarantine(
            self.binding.synapse_name,
            self.binding.table,
            WRITE_KEY + record.id,
            reason,
            run_id=self.ctx.run_id,
            kind=kind,
        )


def _loggable(values: Mapping[str, Any]) -> dict[str, Any]:
    """Values as the transactions log can hold them (lookups as "table:id", tuples as lists)."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, LookupRef):
            out[name] = f"{value.table}:{value.id}"
        elif isinstance(value, tuple):
            out[name] = list(value)
        else:
            out[name] = value
    return out
