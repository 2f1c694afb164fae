"""Operational state in the UDM store: sync cursors per (synapse, stream), runs, and quarantined records."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from dynasync.errors import StoreError
from dynasync.udm import store_codec as codec
from dynasync.udm import store_tables as t
from dynasync.udm.store_session import Session
from dynasync.udm.store_types import QuarantinedRecord, RunInfo, SyncState

S = t.sync_state
R = t.runs
Q = t.quarantine


def get_state(session: Session, synapse: str, stream: str) -> SyncState | None:
    """Return the sync state of one (synapse, stream), or None before its first sync."""
    row = (
        session.conn.execute(sa.select(S).where(S.c.synapse == synapse, S.c.stream == stream))
        .mappings()
        .first()
    )
    if row is None:
        return None
    return SyncState(
        synapse=synapse,
        stream=stream,
        cursor=codec.loads(row["cursor"]),
        phase=row["phase"],
        last_run_start=row["last_run_start"],
        last_run_end=row["last_run_end"],
        counts=codec.loads(row["counts"]) or {},
        written_version=int(row["written_version"]),
        updated_at=row["updated_at"],
    )


def _put(session: Session, synapse: str, stream: str, values: Mapping[str, Any]) -> None:
    # Update first, insert when absent; the caller's transaction makes the pair atomic per (synapse, stream).
    values = {**values, "updated_at": session.now()}
    key = sa.and_(S.c.synapse == synapse, S.c.stream == stream)
    if session.conn.execute(sa.update(S).where(key).values(**values)).rowcount == 0:
        session.conn.execute(sa.insert(S).values(synapse=synapse, stream=stream, **values))


def put_cursor(
    session: Session,
    synapse: str,
    stream: str,
    cursor: Mapping[str, Any] | None,
    *,
    phase: str | None = None,
    counts: Mapping[str, Any] | None = None,
) -> None:
    """Store the cursor (JSON) covering the rows written in the same transaction; None clears it."""
    try:
        encoded = None if cursor is None else codec.dumps(dict(cursor))
    except TypeError as exc:
        raise StoreError(f"cursor of {synapse}/{stream} is not JSON-serialisable: {exc}") from exc
    values: dict[str, Any] = {"cursor": encoded}
    if phase is not None:
        values["phase"] = phase
    if counts is not None:
        values["counts"] = codec.dumps(dict(counts))
    _put(session, synapse, stream, values)


def mark_stream_run(
    session: Session,
    synapse: str,
    stream: str,
    *,
    started_at: dt.datetime | None = None,
    ended_at: dt.datetime | None = None,
    counts: Mapping[str, Any] | None = None,
) -> None:
    """Record when a stream's run started or ended, and its counts."""
    values: dict[str, Any] = {}
    if started_at is not None:
        values["last_run_start"] = started_at
    if ended_at is not None:
        values["last_run_end"] = ended_at
    if counts is not None:
        values["counts"] = codec.dumps(dict(counts))
    _put(session, synapse, stream, values)


def put_written_version(session: Session, synapse: str, stream: str, version: int) -> None:
    """Store the write-back watermark: UDM versions up to ``version`` were written to this stream."""
    _put(session, synapse, stream, {"written_version": int(version)})


def start_run(session: Session, run_id: str | None = None, *, status: str = "running") -> str:
    """Record the start of a run; return its id (a new UUID unless given)."""
    run_id = run_id or str(uuid.uuid4())
    if session.conn.execute(sa.select(R.c.run_id).where(R.c.run_id == run_id)).first() is not None:
        raise StoreError(f"run {run_id} already exists")
    session.conn.execute(
        sa.insert(R).values(run_id=run_id, started_at=session.now(), status=status, summary="{}")
    )
    return run_id


def finish_run(session: Session, run_id: str, *, status: str, summary: Mapping[str, Any]) -> None:
    """Record the end of a run, its final status and summary counts."""
    done = session.conn.execute(
        sa.update(R)
        .where(R.c.run_id == run_id)
        .values(ended_at=session.now(), status=status, summary=codec.dumps(dict(summary)))
    )
    if done.rowcount == 0:
        raise StoreError(f"unknown run {run_id}")


def end_interrupted_runs(session: Session) -> int:
    """Mark every run still "running" as "interrupted": under the run lock, no other run can be going on."""
    done = session.conn.execute(
        sa.update(R).where(R.c.status == "running").values(ended_at=session.now(), status="interrupted")
    )
    return int(done.rowcount or 0)


def _to_run(row: Mapping[Any, Any]) -> RunInfo:
    return RunInfo(
        run_id=row["run_id"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        status=row["status"],
        summary=codec.loads(row["summary"]) or {},
    )


def get_run(session: Session, run_id: str) -> RunInfo | None:
    """Return one run, or None."""
    row = session.conn.execute(sa.select(R).where(R.c.run_id == run_id)).mappings().first()
    return None if row is None else _to_run(row)


def list_runs(session: Session, *, limit: int = 20) -> list[RunInfo]:
    """Return the latest runs, newest first."""
    stmt = sa.select(R).order_by(R.c.started_at.desc(), R.c.run_id.desc()).limit(limit)
    return [_to_run(row) for row in session.conn.execute(stmt).mappings()]


def quarantine(
    session: Session,
    synapse: str,
    stream: str,
    external_id: str,
    error: str,
    *,
    run_id: str | None = None,
    kind: str = "failed",
    payload: Any = None,
) -> None:
    """Record (or re-record, counting attempts) a failed record, with a kind and a JSON payload to retry it."""
    now = session.now()
    try:
        encoded = None if payload is None else codec.dumps(payload)
    except TypeError as exc:
        raise StoreError(
            f"quarantine payload of {synapse}/{stream} {external_id} is not JSON: {exc}"
        ) from exc
    key = sa.and_(Q.c.synapse == synapse, Q.c.stream == stream, Q.c.ext_id == external_id)
    changes = {"error": error, "run_id": run_id, "kind": kind, "payload": encoded, "last_failed_at": now}
    updated = session.conn.execute(sa.update(Q).where(key).values(attempts=Q.c.attempts + 1, **changes))
    if updated.rowcount == 0:
        session.conn.execute(
            sa.insert(Q).values(
                synapse=synapse, stream=stream, ext_id=external_id, first_failed_at=now, attempts=1, **changes
            )
        )


def list_quarantined(
    session: Session, *, synapse: str | None = None, stream: str | None = None
) -> list[QuarantinedRecord]:
    """Return quarantined records, oldest failure first."""
    stmt = sa.select(Q).order_by(Q.c.first_failed_at, Q.c.ext_id)
    if synapse is not None:
        stmt = stmt.where(Q.c.synapse == synapse)
    if stream is not None:
        stmt = stmt.where(Q.c.stream == stream)
    return [
        QuarantinedRecord(
            synapse=r["synapse"],
            stream=r["stream"],
            external_id=r["ext_id"],
            error=r["error"],
            run_id=r["run_id"],
            first_failed_at=r["first_failed_at"],
            last_failed_at=r["last_failed_at"],
            attempts=int(r["attempts"]),
            kind=r["kind"],
            payload=codec.loads(r["payload"]),
        )
        for r in session.conn.execute(stmt).mappings()
    ]


def release_quarantined(session: Session, synapse: str, stream: str, external_ids: Iterable[str]) -> int:
    """Remove records from quarantine (after a successful retry); return how many were there."""
    ids = list(dict.fromkeys(external_ids))
    removed = 0
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        stmt = sa.delete(Q).where(Q.c.synapse == synapse, Q.c.stream == stream, Q.c.ext_id.in_(part))
        removed += session.conn.execute(stmt).rowcount
    return removed
