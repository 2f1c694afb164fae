"""Applying changes to UDM records in batches: link or match or create, per-field policy, links and log.

A page costs a fixed number of statements: one lookup of its links (joined with the linked records' versions),
one load of the records that really changed, one match-key lookup for unlinked rows, then one bulk write per
table. Rows that created nothing (echoes, unchanged re-deliveries) never load their record; new records are built
straight as insert tuples (the *fast* creates, their field columns made while coercing: see store_fastrow) unless
their external id occurs twice in the page, in which case the general, dict-based path keeps the later occurrence
able to update them.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import gc
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from dynasync.udm import store_batch, store_bulk, store_fastrow, store_log
from dynasync.udm import store_codec as codec
from dynasync.udm import store_tables as t
from dynasync.udm.store_links import LinkState, page_link_states
from dynasync.udm.store_records import find_candidates, get_rows, match_key_of
from dynasync.udm.store_schema import coerce_values
from dynasync.udm.store_session import Session
from dynasync.udm.store_types import (
    CREATED_STATE,
    VALUES_FORM,
    ApplyResult,
    FieldPolicy,
    IncomingRow,
    RowAction,
    RowOutcome,
)

# Re-exported for store_deletes, which shares the batch machinery.
L = store_batch.L
_TIMES = store_batch.TIMES
_Batch = store_batch.Batch
_start = store_batch.start

# Coerce rows with the generated row code, and build new records as insert tuples when nothing else in the
# page can touch them. Tests switch it off to check that both paths store the same records, links and log.
FAST_CREATES = True


_Prepared = store_fastrow.Prepared
_SYSTEM_TAIL = list(t.SYSTEM_COLUMNS[1:])  # the system columns after the fields, in table order


@dataclass
class _Page:
    """What ``apply_upserts`` looked up for one page: link states, match candidates, duplicate ids."""

    synapse: str
    table: str
    run_id: str | None
    states: dict[str, LinkState]
    candidates: dict[tuple[Any, ...], list[dict[str, Any]]]
    taken: set[str]
    keys: list[tuple[Any, ...] | None]
    repeated: set[str]
    loaded: set[str] = field(default_factory=set)  # UDM ids fetched, or known to be missing
    verify_creates: bool = False  # see apply_upserts


def apply_upserts(
    session: Session,
    entity: str,
    synapse: str,
    table: str,
    rows: Sequence[IncomingRow],
    *,
    run_id: str | None = None,
    policy: FieldPolicy | None = None,
    hash_value: Callable[[Any], str] | None = None,
    verify_creates: bool = False,
) -> ApplyResult:
    """Apply one page of mapped external rows; see ``UdmStore.apply_upserts``."""
    with _collector_paused():
        return _apply_page(
            session,
            entity,
            synapse,
            table,
            rows,
            run_id=run_id,
            policy=policy,
            hash_value=hash_value,
            verify_creates=verify_creates,
        )


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a page is applied.

    A page allocates a few hundred thousand short-lived dicts and tuples (none cyclic, so reference counting
    frees them); each burst of allocations otherwise triggers collections that walk every live object of the
    process, which cost as much as the page's own work. Collection resumes (and catches up) right after.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _apply_page(
    session: Session,
    entity: str,
    synapse: str,
    table: str,
    rows: Sequence[IncomingRow],
    *,
    run_id: str | None,
    policy: FieldPolicy | None,
    hash_value: Callable[[Any], str] | None,
    verify_creates: bool,
) -> ApplyResult:
    batch = _start(session, entity, policy)
    batch.hash_value = hash_value
    info = batch.info
    ext_ids = [row.external_id for row in rows]
    # A created link's state (values form, kept in the log) can only equal a values-form hash, and the engine's
    # rows that carry changes (values, with what the source held before as ``synced``) differ from it anyway:
    # it is looked up for the other rows alone.
    maybe_same = {
        row.external_id
        for row in rows
        if row.hash is not None
        and row.hash.startswith(VALUES_FORM)
        and (not row.values or row.synced is None)
    }
    states = page_link_states(session, synapse, table, info.entity.name, info.table, ext_ids, maybe_same)
    creator = _Creator(batch, synapse, table, run_id, verify_creates) if FAST_CREATES else None
    # Rows not linked yet are likely creates: their insert columns are made while coercing.
    prepared = store_fastrow.prepare(
        info,
        session.dialect,
        batch.now,
        rows,
        states if creator is not None and creator.direct else None,
        generated=FAST_CREATES,
    )
    # Only linked rows that differ from what was last read or written need their record.
    changed = {
        state[0]
        for row, p in zip(rows, prepared, strict=True)
        if not isinstance(p, str)
        for state in [states.get(row.external_id)]
        if state is not None and state[5] is not None and p[2] != state[1] and p[2] != state[2]
    }
    # Records fetched below, or known to be missing (a link whose record was dropped by hand).
    loaded = changed | {state[0] for state in states.values() if state[5] is None}
    page = _Page(synapse, table, run_id, states, {}, set(), [], set(), loaded, verify_creates)
    batch.rows.update(get_rows(session, info, changed))
    match_keys = info.entity.match_keys
    if match_keys:
        page.keys = [
            None if isinstance(p, str) or row.external_id in states else match_key_of(info, p[0], match_keys)
            for row, p in zip(rows, prepared, strict=True)
        ]
        wanted = [k for k in page.keys if k is not None]
        if wanted:
            page.candidates = find_candidates(session, info, wanted, match_keys)
            ids = [r["udm_id"] for rows_ in page.candidates.values() for r in rows_]
            if ids:
                page.taken = {
                    r[0]
                    for r in session.select_in(
                        sa.select(L.c.udm_id).where(L.c.synapse == synapse, L.c.entity == info.entity.name),
                        L.c.udm_id,
                        ids,
                    )
                }
    if len(set(ext_ids)) != len(ext_ids):
        page.repeated = {x for x, n in collections.Counter(ext_ids).items() if n > 1}
    result = ApplyResult()
    out = result.rows
    for i, (row, p) in enumerate(zip(rows, prepared, strict=True)):
        if isinstance(p, str):
            lk = batch.links.get(row.external_id)
            state = states.get(row.external_id)
            udm_id = lk["udm_id"] if lk is not None else state[0] if state is not None else ""
            out.append(RowOutcome(row.external_id, udm_id, "failed", 0, error=p))
            continue
        if (
            creator is not None
            and row.external_id not in states
            and row.external_id not in page.repeated
            and (not page.candidates or page.keys[i] is None or page.keys[i] not in page.candidates)
        ):
            out.append(creator.create(row, p))
            continue
        out.append(_apply_one(batch, page, i, row, p))
    batch.flush()
    return result


class _Creator:
    """Fast creates: a new record, its link and its log row built directly as insert tuples."""

    def __init__(
        self, batch: store_batch.Batch, synapse: str, table: str, run_id: str | None, verify: bool
    ) -> None:
        self.batch = batch
        self.verify = verify
        self.synapse = synapse
        self.table = table
        self.run_id = run_id
        session = batch.session
        tbl = batch.info.table
        names = [c.name for c in tbl.columns]
        # Rows are built in the driver's form: the few conversions SQLite needs happen here, once per value.
        self.converters = [
            (name, conv)
            for name, conv in store_bulk.driver_converters(session, tbl, names)
            if name in batch.info.fields
        ]
        self.now = self._driver_value(tbl, "udm_created_at", batch.now)
        self.live = self._driver_value(tbl, "udm_deleted", False)
        self.template: dict[str, Any] = dict.fromkeys(names)
        self.template.update(
            udm_deleted=self.live, udm_created_at=self.now, udm_updated_at=self.now, udm_source=synapse
        )
        self.getter = operator.itemgetter(*names)
        # Prepared rows carry their field columns in table order when the table has the standard layout.
        code = store_fastrow.row_code(batch.info, session.dialect)
        self.direct = names == ["udm_id", *code.columns, *_SYSTEM_TAIL]
        self.entity = batch.info.entity.name
        self.link_now = self._driver_value(L, "created_at", batch.now)
        self.log_now = self._driver_value(t.log, "at", batch.now)

    def _driver_value(self, table: sa.Table, column: str, value: Any) -> Any:
        for _name, conv in store_bulk.driver_converters(self.batch.session, table, [column]):
            return conv(value)
        return value

    def create(self, row: IncomingRow, prepared: _Prepared) -> RowOutcome:
        values, when, digest, columns = prepared
        batch = self.batch
        udm_id = batch.new_id()
        batch.version += 1
        version = batch.version
        if columns is not None and self.direct:
            now = self.now
            batch.created.append(
                (udm_id, *columns, self.live, now, now, version, self.synapse, codec.created_times(when))
            )
        else:
            data = self.template.copy()
            data.update(values)
            for name, conv in self.converters:
                value = data[name]
                if value is not None:
                    data[name] = conv(value)
            data["udm_id"] = udm_id
            data["udm_version"] = version
            data["udm_field_times"] = codec.created_times(when)
            batch.created.append(self.getter(data))
        ext_id = row.external_id
        now = self.link_now
        if digest.startswith(VALUES_FORM):
            # The source's values, stored once: in the log event; the link points there (CREATED_STATE).
            state, logged = CREATED_STATE, digest
        else:
            state, logged = digest, store_log.created_fields(values)
        batch.link_rows.append(
            (self.synapse, self.table, ext_id, self.entity, udm_id, state, None, row.external_version,
             version, now, now, version if self.verify else None)
        )  # fmt: skip
        batch.log.append(
            (self.run_id, self.log_now, "in", self.synapse, self.table, ext_id, self.entity, udm_id, "created",
             None, logged)
        )  # fmt: skip
        return RowOutcome(ext_id, udm_id, "created", version)


def _db_link(batch: store_batch.Batch, page: _Page, ext_id: str, state: LinkState) -> dict[str, Any]:
    """Make a working copy of a stored link (it is written back when it changes)."""
    lk = {
        "synapse": page.synapse,
        "ext_table": page.table,
        "ext_id": ext_id,
        "udm_id": state[0],
        "last_read_hash": state[1],
        "last_written_hash": state[2],
        "external_version": state[3],
        "synced_version": state[4],
        "updated_at": batch.now,
        "verified_version": state[6],
    }
    batch.links[ext_id] = lk
    return lk


def _new_link(batch: store_batch.Batch, page: _Page, external_id: str, udm_id: str) -> dict[str, Any]:
    lk = {
        "synapse": page.synapse,
        "ext_table": page.table,
        "ext_id": external_id,
        "entity": batch.info.entity.name,
        "udm_id": udm_id,
        "last_read_hash": None,
        "last_written_hash": None,
        "external_version": None,
        "synced_version": None,
        "created_at": batch.now,
        "updated_at": batch.now,
        "verified_version": None,
    }
    batch.links[external_id] = lk
    batch.new_links.add(external_id)
    return lk


def _record(batch: store_batch.Batch, page: _Page, udm_id: str) -> dict[str, Any] | None:
    """Return the working row of a linked record, fetching it if this page has not yet."""
    rec = batch.rows.get(udm_id)
    if rec is None and udm_id not in page.loaded:
        page.loaded.add(udm_id)
        rec = get_rows(batch.session, batch.info, [udm_id]).get(udm_id)
        if rec is not None:
            batch.rows[udm_id] = rec
    return rec


def _apply_one(
    batch: store_batch.Batch, page: _Page, index: int, row: IncomingRow, item: _Prepared
) -> RowOutcome:
    values, when, digest, _columns = item
    ext_id = row.external_id
    lk = batch.links.get(ext_id)  # changed or made earlier in this page
    state = page.states.get(ext_id)  # as stored
    action: RowAction
    if lk is not None or state is not None:
        if lk is None:
            assert state is not None
            udm_id, read_hash, written_hash = state[0], state[1], state[2]
        else:
            udm_id, read_hash, written_hash = lk["udm_id"], lk["last_read_hash"], lk["last_written_hash"]
        if digest in (written_hash, read_hash):
            action = "echo" if digest == written_hash else "unchanged"
            rec = batch.rows.get(udm_id)
            stored = state[5] if state is not None else None
            version = int(rec["udm_version"]) if rec is not None else int(stored or 0)
            external_version = row.external_version
            if lk is None:
                assert state is not None
                if digest == read_hash and (external_version is None or external_version == state[3]):
                    # Nothing to record: the link already says exactly this (no write for a re-delivery).
                    return RowOutcome(ext_id, udm_id, action, version)
                lk = _db_link(batch, page, ext_id, state)
            lk.update(last_read_hash=digest, updated_at=batch.now)
            if external_version is not None:
                lk["external_version"] = external_version
            batch.dirty_links.add(ext_id)
            return RowOutcome(ext_id, udm_id, action, version)
        if lk is None:
            assert state is not None
            lk = _db_link(batch, page, ext_id, state)
        found = _record(batch, page, udm_id)
        created = found is None
        # A link whose record vanished (dropped by hand) is repaired by re-creating the record under its id.
        rec = batch.new_row(udm_id) if found is None else found
        action = "created" if created else "updated"
    else:
        rec = None
        key = page.keys[index] if page.keys else None
        for cand in page.candidates.get(key, []) if key is not None else []:
            if cand["udm_id"] not in page.taken:
                rec = batch.rows.setdefault(cand["udm_id"], cand)
                break
        created = rec is None
        if rec is None:
            rec = batch.new_row(batch.new_id())
        action = "created" if created else "attached"
        page.taken.add(rec["udm_id"])
        lk = _new_link(batch, page, ext_id, rec["udm_id"])
    before = rec["udm_version"]
    changes, applied, lost = batch.merge(
        rec, values, when, page.synapse, created, row.synced, attaching=action == "attached"
    )
    if action == "updated" and not applied:
        action = "unchanged"
    lk.update(last_read_hash=digest, updated_at=batch.now)
    if row.external_version is not None:
        lk["external_version"] = row.external_version
    if not lost:
        # Nothing of the source was refused: the external row now matches the UDM record.
        lk["synced_version"] = rec["udm_version"]
        # Verified: the row held every written value when the record was at ``before``, and every change read
        # now was applied, so it still does (a record created from the row holds what the row holds when every
        # written field is also read). Otherwise the old mark stays behind the record's version.
        still = page.verify_creates if created else (before is not None and lk["verified_version"] == before)
        if still:
            lk["verified_version"] = rec["udm_version"]
    else:
        # The row holds a value the UDM refused: whatever was verified, it is not any more (even at this version).
        lk["verified_version"] = None
    batch.dirty_links.add(ext_id)
    if changes or created or action == "attached":  # an attach is logged even when it changed no value
        batch.log.append(
            store_log.event(
                batch.session,
                run_id=page.run_id,
                direction="in",
                synapse=page.synapse,
                table=page.table,
                external_id=ext_id,
                entity=batch.info.entity.name,
                udm_id=rec["udm_id"],
                action=action,
                outcome=None,
                fields=store_log.created_fields(values) if created else store_log.change_fields(changes),
                at=batch.now,
            )
        )
    return RowOutcome(ext_id, rec["udm_id"], action, int(rec["udm_version"] or 0), tuple(changes))


def upsert(
    session: Session,
    entity: str,
    values: Mapping[str, Any],
    *,
    udm_id: str | None = None,
    source: str = "udm",
    changed_at: dt.datetime | None = None,
    run_id: str | None = None,
    policy: FieldPolicy | None = None,
) -> RowOutcome:
    """Create or update one record directly (a UDM-side edit); see ``UdmStore.upsert``."""
    batch = _start(session, entity, policy)
    info = batch.info
    canonical = coerce_values(info, values)
    when = (changed_at or batch.now).astimezone(dt.UTC)
    rec: dict[str, Any] | None = None
    if udm_id is not None:
        rec = get_rows(session, info, [udm_id]).get(udm_id)
    elif info.entity.match_keys:
        key = match_key_of(info, canonical, info.entity.match_keys)
        if key is not None:
            found = find_candidates(session, info, [key], info.entity.match_keys).get(key, [])
            rec = found[0] if found else None
    created = rec is None
    if rec is None:
        rec = batch.new_row(udm_id or batch.new_id())
    else:
        batch.rows[rec["udm_id"]] = rec
    changes, applied, _lost = batch.merge(rec, canonical, when, source, created)
    action: RowAction = "created" if created else ("updated" if applied else "unchanged")
    if changes or created:
        batch.log.append(
            store_log.event(
                session,
                run_id=run_id,
                direction="udm",
                synapse=source,
                table=None,
                external_id=None,
                entity=entity,
                udm_id=rec["udm_id"],
                action=action,
                outcome=None,
                fields=store_log.created_fields(canonical) if created else store_log.change_fields(changes),
                at=batch.now,
            )
        )
    batch.flush()
    return RowOutcome(None, rec["udm_id"], action, int(rec["udm_version"] or 0), tuple(changes))
