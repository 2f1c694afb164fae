"""Reading changes: full loads and delta syncs through change tracking, or a ``modifiedon`` watermark without it.

Every page becomes one :class:`ChangeBatch` whose cursor is valid once that page is committed: mid-load it holds
the page's ``@odata.nextLink`` (its skiptoken is self-contained), on the last page the ``@odata.deltaLink`` (or the
new watermark). An expired delta token falls back to a full reload that also reconciles deletes; a keys-only scan
of the table (``$select=<pk>``) provides ``reconcile_ids`` on the last batch, so a resumed load stays correct.

Cursor (JSON, opaque to the engine)::

    {"v": 1, "mode": "tracked", "url": <nextLink|deltaLink|null>, "full": bool, "reconcile": bool,
     "select": <column signature>}
    {"v": 1, "mode": "watermark", "url": <nextLink|null>, "since": <iso|null>, "seen": [<pk at since>...],
     "start_since": ..., "start_seen": [...] (mid-run only), "runs": int, "full": bool, "reconcile": bool,
     "select": <column signature>}
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any

from dynasync.errors import FatalSourceError
from dynasync.synapses.base import ChangeBatch, ColumnSpec, SourceRecord, StreamSpec
from dynasync.synapses.dynamics.client import DataverseClient
from dynasync.synapses.dynamics.errors import (
    ChangeTrackingDisabledError,
    DeltaTokenExpiredError,
    change_tracking_remedy,
)
from dynasync.synapses.dynamics.odata import compare, query
from dynasync.synapses.dynamics.row_reader import RowReader
from dynasync.synapses.dynamics.values import LABEL_MODES, read_columns, wire_name

__all__ = ["CURSOR_VERSION", "ChangeReader", "request_reconcile"]

CURSOR_VERSION = 1


def request_reconcile(cursor: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return ``cursor`` marked so the next read ends with a keys-only scan that sets ``reconcile_ids``."""
    marked = dict(cursor or {})
    marked["reconcile"] = True
    return marked


def _signature(columns: list[ColumnSpec]) -> str:
    text = ",".join(sorted(wire_name(c) for c in columns))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ChangeReader:
    """Reads a table's changes page by page.

    Args:
        client: The Web API client.
        page_size: ``odata.maxpagesize`` for data pages (at most 5000).
        key_page_size: Page size of the keys-only reconciliation scan.
        reconcile_every: Tables without change tracking run an id reconciliation every N runs (0: only on
            demand, see :func:`request_reconcile`).
        labels: Where record labels come from, ``"service"`` or ``"metadata"`` (see
            :class:`~.row_reader.RowReader`); ``"metadata"`` spares the service the ``FormattedValue`` annotation.

    Raises:
        ValueError: An unknown ``labels`` mode.
    """

    def __init__(
        self,
        client: DataverseClient,
        *,
        page_size: int = 5000,
        key_page_size: int = 5000,
        reconcile_every: int = 24,
        labels: str = "service",
    ) -> None:
        if labels not in LABEL_MODES:
            raise ValueError(f"labels must be one of {', '.join(LABEL_MODES)}, not {labels!r}")
        self.client = client
        self.labels = labels
        self.page_size = page_size
        self.key_page_size = key_page_size
        self.reconcile_every = reconcile_every

    async def read(
        self, stream: StreamSpec, cursor: Mapping[str, Any] | None
    ) -> AsyncGenerator[ChangeBatch, None]:
        """Yield change batches of ``stream`` from ``cursor`` on (None: a full load)."""
        columns = read_columns(stream)
        state = dict(cursor or {})
        notes: list[str] = []
        signature = _signature(columns)
        mode = "tracked" if stream.change_tracking else "watermark"
        known = state.get("v") == CURSOR_VERSION and bool(state.get("mode"))
        if known and state.get("mode") != mode:
            if stream.change_tracking:
                notes.append(
                    f"Table '{stream.name}': change tracking is now on; reloading in full and reconciling deletes."
                )
            else:
                notes.append(
                    f"Table '{stream.name}': change tracking is not enabled any more; reloading in full, then syncing "
                    "by the modifiedon watermark, which finds deletes only by a periodic scan of every id. "
                    + change_tracking_remedy(stream.name)
                )
            state = {"reconcile": True}
        elif known and state.get("select") != signature:
            notes.append(f"Table '{stream.name}': the read columns changed; reloading in full.")
            state = {"reconcile": True}
        elif not known:
            state = {"reconcile": bool(state.get("reconcile"))}
        reader = RowReader(stream, columns, labels=self.labels, reuse_rows=True)  # page rows are ours
        if mode == "tracked":
            generator = self._tracked(reader, signature, state, notes)
        else:
            generator = self._watermark(reader, signature, state, notes)
        # Inner generators are closed with this one (not at garbage collection): they may hold a page request.
        async with aclosing(generator):
            async for batch in generator:
                yield batch

    # -- change tracking --------------------------------------------------------------------------------------

    @staticmethod
    def _initial_url(reader: RowReader) -> str:
        return f"{reader.stream.collection}?{query(select_=reader.select)}"

    async def _tracked(
        self,
        reader: RowReader,
        signature: str,
        state: dict[str, Any],
        notes: list[str],
    ) -> AsyncGenerator[ChangeBatch, None]:
        stream = reader.stream
        url = state.get("url") or self._initial_url(reader)
        full = bool(state.get("full", True)) if state.get("url") else True
        reconcile = bool(state.get("reconcile"))
        try:
            async with aclosing(self._tracked_pages(reader, signature, url, full, reconcile, notes)) as pages:
                async for batch in pages:
                    yield batch
            return
        except DeltaTokenExpiredError as error:
            if full:
                raise
            notes.append(
                f"Table '{stream.name}': the change-tracking token expired ({error.message}); reloading in "
                "full and marking rows deleted meanwhile."
            )
        except ChangeTrackingDisabledError as error:
            notes.append(
                f"Table '{stream.name}': change tracking is not enabled ({error.message}); syncing by the "
                f"modifiedon watermark instead. {error.remedy or ''}".strip()
            )
            async with aclosing(self._watermark(reader, signature, {"reconcile": True}, notes)) as batches:
                async for batch in batches:
                    yield batch
            return
        initial = self._initial_url(reader)
        async with aclosing(self._tracked_pages(reader, signature, initial, True, True, notes)) as pages:
            async for batch in pages:
                yield batch

    async def _tracked_pages(
        self,
        reader: RowReader,
        signature: str,
        url: str,
        full: bool,
        reconcile: bool,
        notes: list[str],
    ) -> AsyncGenerator[ChangeBatch, None]:
        stream = reader.stream
        pages = self.client.iter_pages(
            url,
            maxpagesize=self.page_size,
            annotations=reader.annotations,
            track_changes=True,
            table=stream.name,
        )
        # Closed explicitly when this generator is: the client may hold a prefetched page request.
        async with aclosing(pages):
            async for page in pages:
                upserts, deletes = reader.split(page.rows)
                base = {"v": CURSOR_VERSION, "mode": "tracked", "select": signature}
                if page.next_link:
                    cursor = {**base, "url": page.next_link, "full": full, "reconcile": reconcile}
                    yield self._batch(stream, upserts, deletes, cursor, notes, full_load=full)
                    continue
                if not page.delta_link:
                    raise FatalSourceError(
                        f"Dataverse returned the last change-tracking page of '{stream.name}' without a deltaLink.",
                        remedy="Delta sync cannot continue without it; check that change tracking is enabled.",
                    )
                ids = await self.all_ids(stream) if reconcile else None
                cursor = {**base, "url": page.delta_link, "full": False, "reconcile": False}
                yield self._batch(stream, upserts, deletes, cursor, notes, full_load=full, last=True, ids=ids)

    @staticmethod
    def _batch(
        stream: StreamSpec,
        upserts: list[SourceRecord],
        deletes: list[str],
        cursor: dict[str, Any],
        notes: list[str],
        *,
        full_load: bool,
        last: bool = False,
        ids: frozenset[str] | None = None,
    ) -> ChangeBatch:
        batch = ChangeBatch(
            stream=stream.name,
            upserts=upserts,
            deletes=deletes,
            cursor=cursor,
            full_load=full_load,
            last=last,
            reconcile_ids=ids,
            notes=tuple(notes),
        )
        notes.clear()  # each note is reported once, on the first batch after it arose
        return batch

    # -- keys-only reconciliation -----------------------------------------------------------------------------

    async def all_ids(self, stream: StreamSpec) -> frozenset[str]:
        """Every primary id the table has now (``$select=<pk>``, all pages)."""
        ids: set[str] = set()
        pk = stream.primary_id
        url = f"{stream.collection}?{query(select_=[pk])}"
        pages = self.client.iter_pages(url, maxpagesize=self.key_page_size, table=stream.name)
        async with aclosing(pages):
            async for page in pages:
                ids.update(str(row[pk]).lower() for row in page.rows)
        return frozenset(ids)

    # -- modifiedon watermark -----------------------------------------------------------------------------------

    @staticmethod
    def _watermark_url(reader: RowReader, since: str | None) -> str:
        stream = reader.stream
        pk = stream.primary_id
        if "modifiedon" not in stream.columns:
            return f"{stream.collection}?{query(select_=reader.select, orderby=[(pk, False)])}"
        # "ge", not "gt": rows sharing the watermark's second (or committed late within it) are read again and
        # dropped by id (the cursor's "seen"), so none is lost and none repeats run after run.
        filter_ = compare("modifiedon", "ge", _parse_time(since)) if since else None
        text = query(select_=reader.select, filter_=filter_, orderby=[("modifiedon", False), (pk, False)])
        return f"{stream.collection}?{text}"

    async def _watermark(
        self,
        reader: RowReader,
        signature: str,
        state: dict[str, Any],
        notes: list[str],
    ) -> AsyncGenerator[ChangeBatch, None]:
        stream = reader.stream
        runs = int(state.get("runs", 0))
        resuming = bool(state.get("url"))
        # The watermark this run started from filters every page of the run, also after a resume.
        start_since = state.get("start_since") if resuming else state.get("since")
        start_seen = set((state.get("start_seen") if resuming else state.get("seen")) or ())
        start_time = _parse_time(start_since) if start_since else None
        since: str | None = state.get("since")
        since_time = _parse_time(since) if since else None
        seen = set(state.get("seen") or ())
        full = bool(state.get("full", True)) if resuming else not since
        timed = "modifiedon" in stream.columns
        reconcile = bool(state.get("reconcile")) or not timed
        if self.reconcile_every and (runs + 1) % self.reconcile_every == 0 and since:
            reconcile = True
        url = state.get("url") or self._watermark_url(reader, since)
        base = {"v": CURSOR_VERSION, "mode": "watermark", "select": signature}
        pages = self.client.iter_pages(
            url, maxpagesize=self.page_size, annotations=reader.annotations, table=stream.name
        )
        async with aclosing(pages):
            async for page in pages:
                upserts, _ = reader.split(page.rows)
                if timed:
                    fresh = []
                    for record in upserts:
                        stamp = record.modified_on
                        if stamp is not None and stamp == start_time and record.id in start_seen:
                            continue  # read by an earlier run at the same watermark second
                        fresh.append(record)
                        if stamp is not None and (since_time is None or stamp > since_time):
                            since, since_time, seen = stamp.isoformat(), stamp, {record.id}
                        elif stamp is not None and stamp == since_time:
                            seen.add(record.id)
                    upserts = fresh
                progress = {"since": since, "seen": sorted(seen), "runs": runs}
                if page.next_link:
                    cursor = {**base, "url": page.next_link, **progress, "full": full, "reconcile": reconcile}
                    cursor.update(start_since=start_since, start_seen=sorted(start_seen))
                    yield self._batch(stream, upserts, [], cursor, notes, full_load=full)
                    continue
                ids = await self.all_ids(stream) if reconcile else None
                if not timed:
                    progress.update(since=None, seen=[])
                cursor = {
                    **base,
                    "url": None,
                    **progress,
                    "runs": runs + 1,
                    "full": False,
                    "reconcile": False,
                }
                yield self._batch(stream, upserts, [], cursor, notes, full_load=full, last=True, ids=ids)


def _parse_time(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
