"""The UDM store's public operations, shared by the store (one transaction per call) and by a transaction."""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

from dynasync.udm import (
    store_apply,
    store_deletes,
    store_links,
    store_log,
    store_records,
    store_schema,
    store_state,
    store_tombstones,
)
from dynasync.udm.model import UdmEntity, UdmRecord
from dynasync.udm.store_session import Session
from dynasync.udm.store_types import (
    ApplyResult,
    EntityChange,
    FieldPolicy,
    IncomingRow,
    Link,
    LogEvent,
    QuarantinedRecord,
    RowOutcome,
    RunInfo,
    SyncState,
    WriteLogEntry,
    WrittenRow,
)

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class StoreOps(abc.ABC):
    """Every store operation; subclasses decide which transaction runs it."""

    @abc.abstractmethod
    def _read(self, fn: Callable[Concatenate[Session, P], R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run a read-only operation."""

    @abc.abstractmethod
    def _write(self, fn: Callable[Concatenate[Session, P], R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run a writing operation."""

    @abc.abstractmethod
    def _iterate(
        self, fn: Callable[Concatenate[Session, P], Iterator[T]], *args: P.args, **kwargs: P.kwargs
    ) -> Iterator[T]:
        """Run a streaming read; the transaction stays open while the iterator is consumed."""

    # --- schema -----------------------------------------------------------------------------------------
    def ensure_entity(self, entity: UdmEntity) -> EntityChange:
        """Create the entity's table or add columns for new fields; StoreError on a changed field type."""
        return self._write(store_schema.ensure_entity, entity)

    def entities(self) -> dict[str, UdmEntity]:
        """Return every UDM entity in the catalog, by name."""
        return self._read(store_schema.entities)

    def entity(self, name: str) -> UdmEntity:
        """Return one entity's definition; StoreError when unknown."""
        return self._read(lambda s: s.info(name).entity)

    def hash_values(self, entity: str, values: Mapping[str, Any]) -> str:
        """Return the echo hash of values (coerced to the entity's field types; field order irrelevant)."""
        return self._read(store_schema.hash_values, entity, values)

    # --- records ----------------------------------------------------------------------------------------
    def value_problems(self, entity: str, values: Mapping[str, Any]) -> dict[str, str]:
        """Why each value cannot be stored in its field (unknown fields included); empty when all can."""
        return self._read(store_schema.value_problems, entity, values)

    def get(self, entity: str, udm_id: str) -> UdmRecord | None:
        """Return one record (deleted too), or None."""
        return self._read(store_records.get, entity, udm_id)

    def get_many(self, entity: str, udm_ids: Iterable[str]) -> dict[str, UdmRecord]:
        """Return the records found among ``udm_ids``, by id."""
        return self._read(store_records.get_many, entity, list(udm_ids))

    def find_by_match_key(
        self, entity: str, values: Mapping[str, Any], *, fields: Sequence[str] | None = None
    ) -> UdmRecord | None:
        """Return the oldest live record matching ``values`` on the match keys (text case-insensitive)."""
        return self._read(store_records.find_by_match_key, entity, values, fields)

    def upsert(
        self,
        entity: str,
        values: Mapping[str, Any],
        *,
        udm_id: str | None = None,
        source: str = "udm",
        changed_at: dt.datetime | None = None,
        run_id: str | None = None,
        policy: FieldPolicy | None = None,
    ) -> RowOutcome:
        """Create or update one record (by id, else by match key, else new); return what changed."""
        return self._write(
            store_apply.upsert,
            entity,
            values,
            udm_id=udm_id,
            source=source,
            changed_at=changed_at,
            run_id=run_id,
            policy=policy,
        )

    def mark_deleted(
        self, entity: str, udm_id: str, *, source: str = "udm", run_id: str | None = None
    ) -> bool:
        """Soft-delete one record (bumps its version); False when absent or already deleted."""
        return self._write(store_deletes.mark_deleted, entity, udm_id, source=source, run_id=run_id)

    def count(self, entity: str, *, include_deleted: bool = False) -> int:
        """Return the number of (live) records of an entity."""
        return self._read(store_records.count, entity, include_deleted=include_deleted)

    def max_version(self) -> int:
        """Return the highest UDM version handed out so far."""
        return self._read(store_records.max_version)

    def iter_records(
        self, entity: str, *, include_deleted: bool = False, batch_size: int = 1000
    ) -> Iterator[UdmRecord]:
        """Stream an entity's records ordered by UDM id."""
        return self._iterate(
            store_records.iter_records, entity, include_deleted=include_deleted, batch_size=batch_size
        )

    def iter_changed(
        self, entity: str, *, after_version: int, destination: str | None = None, batch_size: int = 1000
    ) -> Iterator[UdmRecord]:
        """Stream records changed after a version, in version order; see the contract for ``destination``."""
        return self._iterate(
            store_records.iter_changed,
            entity,
            after_version=after_version,
            destination=destination,
            batch_size=batch_size,
        )

    def apply_upserts(
        self,
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
        """Apply a page of mapped external rows: link, else match key, else create; diff, policy, links, log.

        ``hash_value`` hashes a UDM value the way ``IncomingRow.synced`` entries were made; with it, a change
        to a field whose UDM value is still the one the source last held reaches the policy as uncontested.
        ``verify_creates``: a record created from a row holds every value the synapse's mapping writes (it
        reads every field it writes), so its link is verified at once (see ``iter_changed(destination=)``).
        """
        return self._write(
            store_apply.apply_upserts,
            entity,
            synapse,
            table,
            rows,
            run_id=run_id,
            policy=policy,
            hash_value=hash_value,
            verify_creates=verify_creates,
        )

    def apply_deletes(
        self, entity: str, synapse: str, table: str, external_ids: Iterable[str], *, run_id: str | None = None
    ) -> list[str]:
        """Soft-delete the records linked to these external ids; return the UDM ids deleted."""
        return self._write(
            store_deletes.apply_deletes, entity, synapse, table, list(external_ids), run_id=run_id
        )

    # --- links ------------------------------------------------------------------------------------------
    def link(
        self,
        synapse: str,
        table: str,
        external_id: str,
        entity: str,
        udm_id: str,
        *,
        external_version: str | None = None,
        read_hash: str | None = None,
        synced_version: int | None = None,
    ) -> Link:
        """Link an external row to a UDM record; StoreError when either side is already linked."""
        return self._write(
            store_links.link,
            synapse,
            table,
            external_id,
            entity,
            udm_id,
            external_version=external_version,
            read_hash=read_hash,
            synced_version=synced_version,
        )

    def get_link(self, synapse: str, table: str, external_id: str) -> Link | None:
        """Return the link of an external row, or None."""
        return self._read(store_links.get_link, synapse, table, external_id)

    def get_links(
        self, synapse: str, table: str, external_ids: Iterable[str], *, read_state: bool = True
    ) -> dict[str, Link]:
        """Return links of many external rows, by external id.

        ``read_state=False``: for callers that need no read state (one query less); a link made by a fast create
        then shows ``CREATED_STATE`` as its ``last_read_hash``.
        """
        return self._read(store_links.get_links, synapse, table, list(external_ids), read_state=read_state)

    def get_links_for_records(self, synapse: str, entity: str, udm_ids: Iterable[str]) -> dict[str, Link]:
        """Return links of many UDM records to one synapse, by UDM id."""
        return self._read(store_links.get_links_for_records, synapse, entity, list(udm_ids))

    def link_for_record(self, synapse: str, entity: str, udm_id: str) -> Link | None:
        """Return a UDM record's link to one synapse, or None."""
        return self._read(store_links.link_for_record, synapse, entity, udm_id)

    def links_for_record(self, entity: str, udm_id: str) -> list[Link]:
        """Return all links of a UDM record."""
        return self._read(store_links.links_for_record, entity, udm_id)

    def iter_links(self, synapse: str, table: str) -> Iterator[Link]:
        """Stream all links of an external table."""
        return self._iterate(store_links.iter_links, synapse, table)

    def unlink(self, synapse: str, table: str, external_id: str) -> bool:
        """Remove a link; return whether it existed."""
        return self._write(store_links.unlink, synapse, table, external_id)

    def unlink_many(self, synapse: str, table: str, external_ids: Iterable[str]) -> int:
        """Remove the links of these external ids; return how many existed."""
        return self._write(store_links.unlink_many, synapse, table, list(external_ids))

    # --- tombstones -------------------------------------------------------------------------------------
    def add_tombstones(
        self, synapse: str, table: str, entity: str, deleted: Iterable[tuple[str, str]]
    ) -> int:
        """Remember that ``synapse`` deleted these (udm_id, external id) rows of ``table``; return how many."""
        return self._write(store_tombstones.add_tombstones, synapse, table, entity, list(deleted))

    def tombstoned(self, synapse: str, table: str, entity: str, udm_ids: Iterable[str]) -> dict[str, str]:
        """Return udm_id -> deleted external id for the given records ``synapse`` deleted from ``table``."""
        return self._read(store_tombstones.tombstoned, synapse, table, entity, list(udm_ids))

    def drop_tombstones(self, synapse: str, table: str, entity: str, udm_ids: Iterable[str]) -> int:
        """Forget the tombstones of these records; return how many there were."""
        return self._write(store_tombstones.drop_tombstones, synapse, table, entity, list(udm_ids))

    def mark_written(
        self,
        synapse: str,
        table: str,
        external_id: str,
        *,
        entity: str,
        udm_id: str,
        values: Mapping[str, Any],
        udm_version: int,
        external_version: str | None = None,
        hash: str | None = None,
        read_hash: str | None = None,
    ) -> Link:
        """Record a successful write-back (creates the link when absent; sets written hash and synced version)."""
        return self._write(
            store_links.mark_written,
            synapse,
            table,
            external_id,
            entity=entity,
            udm_id=udm_id,
            values=values,
            udm_version=udm_version,
            external_version=external_version,
            hash=hash,
            read_hash=read_hash,
        )

    def mark_written_many(self, synapse: str, table: str, entity: str, rows: Sequence[WrittenRow]) -> None:
        """Record many successful write-backs of one table at once (each as ``mark_written`` with its hash)."""
        self._write(store_links.mark_written_many, synapse, table, entity, list(rows))

    def mark_verified(self, synapse: str, entity: str, versions: Mapping[str, int]) -> None:
        """Record that the synapse's rows hold every written value of these records at these versions (by UDM id)."""
        self._write(store_links.mark_verified, synapse, entity, dict(versions))

    # --- sync state, runs, quarantine -------------------------------------------------------------------
    def get_state(self, synapse: str, stream: str) -> SyncState | None:
        """Return the sync state of (synapse, stream), or None."""
        return self._read(store_state.get_state, synapse, stream)

    def put_cursor(
        self,
        synapse: str,
        stream: str,
        cursor: Mapping[str, Any] | None,
        *,
        phase: str | None = None,
        counts: Mapping[str, Any] | None = None,
    ) -> None:
        """Store the cursor; call it on the transaction that writes the rows it covers."""
        self._write(store_state.put_cursor, synapse, stream, cursor, phase=phase, counts=counts)

    def mark_stream_run(
        self,
        synapse: str,
        stream: str,
        *,
        started_at: dt.datetime | None = None,
        ended_at: dt.datetime | None = None,
        counts: Mapping[str, Any] | None = None,
    ) -> None:
        """Record a stream run's start/end time and counts."""
        self._write(
            store_state.mark_stream_run,
            synapse,
            stream,
            started_at=started_at,
            ended_at=ended_at,
            counts=counts,
        )

    def put_written_version(self, synapse: str, stream: str, version: int) -> None:
        """Store the write-back watermark of (synapse, stream)."""
        self._write(store_state.put_written_version, synapse, stream, version)

    def start_run(self, run_id: str | None = None, *, status: str = "running") -> str:
        """Record a run's start; return its id."""
        return self._write(store_state.start_run, run_id, status=status)

    def finish_run(self, run_id: str, *, status: str, summary: Mapping[str, Any]) -> None:
        """Record a run's end, status and summary."""
        self._write(store_state.finish_run, run_id, status=status, summary=summary)

    def end_interrupted_runs(self) -> int:
        """Mark runs still "running" as "interrupted" (call it holding the run lock); return how many."""
        return self._write(store_state.end_interrupted_runs)

    def get_run(self, run_id: str) -> RunInfo | None:
        """Return one run, or None."""
        return self._read(store_state.get_run, run_id)

    def list_runs(self, *, limit: int = 20) -> list[RunInfo]:
        """Return the latest runs, newest first."""
        return self._read(store_state.list_runs, limit=limit)

    def quarantine(
        self,
        synapse: str,
        stream: str,
        external_id: str,
        error: str,
        *,
        run_id: str | None = None,
        kind: str = "failed",
        payload: Any = None,
    ) -> None:
        """Record a failed record (attempts counted) with a kind and JSON payload, so it is reported and retried."""
        self._write(
            store_state.quarantine,
            synapse,
            stream,
            external_id,
            error,
            run_id=run_id,
            kind=kind,
            payload=payload,
        )

    def list_quarantined(
        self, *, synapse: str | None = None, stream: str | None = None
    ) -> list[QuarantinedRecord]:
        """Return quarantined records."""
        return self._read(store_state.list_quarantined, synapse=synapse, stream=stream)

    def release_quarantined(self, synapse: str, stream: str, external_ids: Iterable[str]) -> int:
        """Remove records from quarantine; return how many were there."""
        return self._write(store_state.release_quarantined, synapse, stream, list(external_ids))

    # --- transactions log -------------------------------------------------------------------------------
    def log_writes(self, run_id: str | None, entries: Sequence[WriteLogEntry]) -> None:
        """Log write-backs (values written per destination record and the outcome)."""
        self._write(store_log.log_writes, run_id, entries)

    def search_log(
        self,
        *,
        entity: str | None = None,
        udm_id: str | None = None,
        synapse: str | None = None,
        external_id: str | None = None,
        run_id: str | None = None,
        limit: int = 100,
    ) -> list[LogEvent]:
        """Search the transactions log, newest first."""
        return self._read(
            store_log.search_log,
            entity=entity,
            udm_id=udm_id,
            synapse=synapse,
            external_id=external_id,
            run_id=run_id,
            limit=limit,
        )
