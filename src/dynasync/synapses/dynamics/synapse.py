"""The Dynamics 365 synapse: discover tables, read their changes and write records through the Dataverse Web API."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from types import TracebackType
from typing import Any

from dynasync.synapses.base import ChangeBatch, StreamSpec, WriteOp, WriteResult
from dynasync.synapses.dynamics.auth import TokenProvider
from dynasync.synapses.dynamics.changes import ChangeReader, request_reconcile
from dynasync.synapses.dynamics.client import DataverseClient
from dynasync.synapses.dynamics.config import DynamicsConfig
from dynasync.synapses.dynamics.schema import DiscoveryResult, discover
from dynasync.synapses.dynamics.values import LABEL_MODES
from dynasync.synapses.dynamics.writes import RecordWriter

__all__ = ["DynamicsSynapse"]


class DynamicsSynapse:
    """A :class:`~dynasync.synapses.base.Synapse` for one Dynamics 365 / Dataverse org.

    Use as an async context manager (or call :meth:`aclose`); it closes the client it built itself.

    Args:
        config: The validated synapse settings.
        tokens: Where bearer tokens come from (client credentials or the signed-in user's delegated tokens).
        client: A ready client to use instead of building one from ``config`` and ``tokens`` (not closed here).
        client_options: Keyword arguments for the :class:`DataverseClient` built here (retry policy, sleep...).
        tables: Logical names of the tables to replicate (None: every table with an entity set).
        page_size: Rows per read page (``odata.maxpagesize``, at most 5000).
        chunk_size: Operations per bulk request or ``$batch`` (at most 1000).
        reconcile_every: Tables without change tracking reconcile deleted ids every N runs (0: on demand only).
        discovery_concurrency: Tables whose metadata is read at the same time.
        name: The synapse's name (default: ``config.name``).
        labels: Where ``SourceRecord.labels`` come from: ``"service"`` (the ``FormattedValue`` annotation:
            choice, boolean and lookup labels as Dataverse words them) or ``"metadata"`` (the discovered option
            sets: choices and multi-selects only; the service then sends no label annotations, which halves the
            bytes read). See :class:`~.row_reader.RowReader`.

    Raises:
        ValueError: No token provider and no client, or an unknown ``labels`` mode.
    """

    def __init__(
        self,
        config: DynamicsConfig,
        tokens: TokenProvider | None = None,
        *,
        client: DataverseClient | None = None,
        client_options: Mapping[str, Any] | None = None,
        tables: Sequence[str] | None = None,
        page_size: int = 5000,
        chunk_size: int = 1000,
        reconcile_every: int = 24,
        discovery_concurrency: int = 4,
        name: str | None = None,
        labels: str = "service",
    ) -> None:
        if labels not in LABEL_MODES:  # before building a client that would then leak
            raise ValueError(f"labels must be one of {', '.join(LABEL_MODES)}, not {labels!r}")
        if client is None:
            if tokens is None:
                raise ValueError("DynamicsSynapse needs a token provider or a ready client")
            client = DataverseClient(config, tokens, **dict(client_options or {}))
            self._owns_client = True
        else:
            self._owns_client = False
        self.name = name or config.name
        self.config = config
        self.client = client
        self.tables = list(tables) if tables is not None else None
        self.discovery_concurrency = discovery_concurrency
        self.reader = ChangeReader(
            self.client, page_size=page_size, reconcile_every=reconcile_every, labels=labels
        )
        self.writer = RecordWriter(self.client, chunk_size=chunk_size)
        self.last_discovery: DiscoveryResult | None = None

    def __repr__(self) -> str:
        return f"DynamicsSynapse(name={self.name!r}, org={self.config.org_url!r})"

    async def __aenter__(self) -> DynamicsSynapse:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client when this synapse built it."""
        if self._owns_client:
            await self.client.aclose()

    async def activate(self) -> DiscoveryResult:
        """Replicate the schema: streams plus the activation report (tables without change tracking...)."""
        result = await discover(self.client, tables=self.tables, concurrency=self.discovery_concurrency)
        self.writer.entity_sets.update(result.collections)
        self.last_discovery = result
        return result

    async def discover(self) -> list[StreamSpec]:
        """Return every replicated table with its columns (see :meth:`activate` for the report)."""
        return list((await self.activate()).streams)

    def read(self, stream: StreamSpec, cursor: Mapping[str, Any] | None) -> AsyncGenerator[ChangeBatch, None]:
        """Yield change batches from ``cursor`` on (None: a full load); see :mod:`.changes` for the cursor.

        The generator may be closed early (``aclose()``): the cursor of the last batch taken stays valid.
        """
        return self.reader.read(stream, cursor)

    def reload_cursor(self, stream: StreamSpec) -> Mapping[str, Any] | None:
        """A cursor without a token or link, marked to end with a keys-only scan (see :mod:`.changes`)."""
        return request_reconcile(None)

    async def write(self, stream: StreamSpec, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Write records in bulk; one :class:`WriteResult` per op, in order; one bad record fails alone."""
        return await self.writer.write(stream, ops)
