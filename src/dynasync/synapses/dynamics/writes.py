"""Writing records: create, update, upsert and delete in bulk, with per-record outcomes.

Routing (chunks of at most ``chunk_size`` operations, one request each):

* creates -> ``CreateMultiple`` (every create carries a client-generated primary key, so a retry is safe and the
  id is known without reading the answer), updates by id -> ``UpdateMultiple``, upserts by id ->
  ``UpsertMultiple`` (``@odata.id``), on tables that support them;
* upserts by alternate key (their id is only learnt from ``OData-EntityId``), updates by alternate key, writes
  with ``If-Match`` and deletes -> ``$batch`` with ``odata.continue-on-error`` (one independent part each);
* ``*Multiple`` is all-or-nothing on standard tables: when one fails, that chunk is re-sent as a ``$batch`` with
  continue-on-error, so only the bad rows fail, each with the service's own reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dynasync.errors import DynasyncError, RetriableError
from dynasync.synapses.base import (
    ColumnSpec,
    ColumnType,
    LookupRef,
    StreamSpec,
    WriteKind,
    WriteOp,
    WriteResult,
)
from dynasync.synapses.dynamics.batch import BatchPart, BatchResult, send_batch
from dynasync.synapses.dynamics.client import DataverseClient
from dynasync.synapses.dynamics.errors import (
    ConcurrencyConflictError,
    DynamicsError,
    RequestRejectedError,
    ResourceNotFoundError,
)
from dynasync.synapses.dynamics.odata import entity_path, literal
from dynasync.synapses.dynamics.values import parse_version, wire_value

__all__ = ["RecordWriter"]

_DUPLICATE_KEY = "0x80040237"
_NOT_IMPLEMENTED = "0x80040219"


@dataclass(slots=True)
class _Planned:
    """One validated operation and how it is sent."""

    index: int
    op: WriteOp
    body: dict[str, Any]
    route: str  # CreateMultiple | UpdateMultiple | UpsertMultiple | batch
    record_id: str | None = None
    generated_id: bool = False
    headers: dict[str, str] = field(default_factory=dict)


def _etag(version: str) -> str:
    return version if version.startswith(("W/", '"')) or version == "*" else f'W/"{version}"'


class RecordWriter:
    """Writes operations of one table and reports one :class:`WriteResult` per operation, in order.

    Args:
        client: The Web API client.
        chunk_size: Operations per bulk request or ``$batch`` (the service allows 1000 per batch).
        entity_sets: Known entity set names by table (lookup targets); others are read from metadata once.
    """

    def __init__(
        self,
        client: DataverseClient,
        *,
        chunk_size: int = 1000,
        entity_sets: Mapping[str, str] | None = None,
    ) -> None:
        if not 1 <= chunk_size <= 1000:
            raise ValueError("chunk_size must be between 1 and 1000")
        self.client = client
        self.chunk_size = chunk_size
        self.entity_sets: dict[str, str] = dict(entity_sets or {})
        self.no_bulk: set[str] = set()  # tables that answered that *Multiple is not available

    async def entity_set(self, table: str) -> str:
        """The entity set name of ``table`` (from discovery, else one metadata read, cached)."""
        if table not in self.entity_sets:
            body = await self.client.get_json(
                f"EntityDefinitions(LogicalName={literal(table)})?$select=EntitySetName", table=table
            )
            self.entity_sets[table] = str(body["EntitySetName"])
        return self.entity_sets[table]

    async def write(self, stream: StreamSpec, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Write ``ops`` to ``stream``; a failed record never fails the others."""
        self.entity_sets.setdefault(stream.name, stream.collection)
        results: list[WriteResult | None] = [None] * len(ops)
        plans: list[_Planned] = []
        for index, op in enumerate(ops):
            try:
                plans.append(await self._plan(stream, index, op))
            except (ValueError, DynasyncError) as error:
                results[index] = WriteResult(ok=False, id=op.id, error_code="invalid", error=str(error))
        for route in ("CreateMultiple", "UpdateMultiple", "UpsertMultiple", "batch"):
            group = [p for p in plans if p.route == route]
            for start in range(0, len(group), self.chunk_size):
                chunk = group[start : start + self.chunk_size]
                if route == "batch":
                    outcomes = await self._batch(stream, chunk)
                else:
                    outcomes = await self._bulk(stream, route, chunk)
                for plan, outcome in zip(chunk, outcomes, strict=True):
                    results[plan.index] = outcome
        return [r if r is not None else WriteResult(ok=False, error="not written") for r in results]

    # -- planning -----------------------------------------------------------------------------------------------

    async def _plan(self, stream: StreamSpec, index: int, op: WriteOp) -> _Planned:
        if op.table != stream.name:
            raise ValueError(f"operation for table '{op.table}' sent to stream '{stream.name}'")
        pk = stream.primary_id
        record_id = str(uuid.UUID(op.id)) if op.id else None
        if op.kind is WriteKind.DELETE:
            if record_id is None and not op.alternate_key:
                raise ValueError("a delete needs an id or an alternate key")
            plan = _Planned(index, op, {}, "batch", record_id)
        else:
            body = await self._payload(stream, op)
            if op.kind is WriteKind.CREATE:
                generated = record_id is None
                record_id = record_id or str(uuid.uuid4())
                body[pk] = record_id
                bulk = "CreateMultiple"
                plan = _Planned(index, op, body, bulk, record_id, generated)
            elif op.kind is WriteKind.UPDATE:
                if record_id is None and not op.alternate_key:
                    raise ValueError("an update needs an id or an alternate key")
                plan = _Planned(index, op, body, "UpdateMultiple" if record_id else "batch", record_id)
                plan.headers["If-Match"] = _etag(op.if_match) if op.if_match else "*"
            elif op.kind is WriteKind.UPSERT:
                if record_id is None and not op.alternate_key:
                    raise ValueError("an upsert needs an id or an alternate key")
                plan = _Planned(index, op, body, "UpsertMultiple" if record_id else "batch", record_id)
                if op.if_match:
                    plan.headers["If-Match"] = _etag(op.if_match)
            else:  # pragma: no cover - WriteKind is closed
                raise ValueError(f"unknown write kind {op.kind!r}")
        if op.kind is WriteKind.DELETE and op.if_match:
            plan.headers["If-Match"] = _etag(op.if_match)
        if op.if_match or not stream.supports_bulk or stream.name in self.no_bulk:
            plan.route = "batch"
        return plan

    async def _payload(self, stream: StreamSpec, op: WriteOp) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for name, value in op.values.items():
            column = stream.columns.get(name)
            if column is None:
                raise ValueError(f"table '{stream.name}' has no column '{name}'")
            if column.is_primary_id:
                if value is not None and op.id and str(value).lower() != op.id.lower():
                    raise ValueError(f"the primary key value {value} contradicts the operation's id {op.id}")
                continue
            self._check_writable(stream, column, op.kind)
            if column.type is ColumnType.LOOKUP:
                bound = await self._bind(stream, column, value, op.kind)
                if bound is not None:
                    body[bound[0]] = bound[1]
            else:
                body[name] = wire_value(column, value)
        return body

    @staticmethod
    def _check_writable(stream: StreamSpec, column: ColumnSpec, kind: WriteKind) -> None:
        allowed = {
            WriteKind.CREATE: column.creatable,
            WriteKind.UPDATE: column.updatable,
            WriteKind.UPSERT: column.creatable or column.updatable,
        }.get(kind, False)
        if not allowed:
            verb = {WriteKind.CREATE: "create", WriteKind.UPDATE: "update"}.get(kind, "create or update")
            raise ValueError(f"column '{column.name}' of table '{stream.name}' is not valid for {verb}")

    async def _bind(
        self, stream: StreamSpec, column: ColumnSpec, value: Any, kind: WriteKind
    ) -> tuple[str, str | None] | None:
        """``(<nav>@odata.bind, "/<set>(<id>)")``; None clears the lookup (nothing to send on a create)."""
        if value is None:
            if kind is WriteKind.CREATE:
                return None
            navs = [column.navigation[t] for t in column.targets if t in column.navigation]
            navs = navs or list(column.navigation.values())
            if not navs:
                raise ValueError(f"lookup '{column.name}' has no navigation property to clear it through")
            return f"{navs[0]}@odata.bind", None
        if isinstance(value, LookupRef):
            table, target_id = value.table, value.id
        elif len(column.targets) == 1:
            table, target_id = column.targets[0], str(value)
        else:
            raise ValueError(
                f"lookup '{column.name}' can point to {', '.join(column.targets)}; give LookupRef(table, id)"
            )
        nav = column.navigation.get(table)
        if nav is None:
            raise ValueError(
                f"lookup '{column.name}' of table '{stream.name}' cannot point to table '{table}' "
                f"(targets: {', '.join(column.targets) or 'none'})"
            )
        collection = await self.entity_set(table)
        return f"{nav}@odata.bind", "/" + entity_path(collection, str(uuid.UUID(str(target_id))))

    # -- bulk actions -------------------------------------------------------------------------------------------

    async def _bulk(self, stream: StreamSpec, action: str, chunk: list[_Planned]) -> list[WriteResult]:
        odata_type = f"Microsoft.Dynamics.CRM.{stream.name}"
        targets: list[dict[str, Any]] = []
        for plan in chunk:
            target = {"@odata.type": odata_type, **plan.body}
            if action == "UpdateMultiple":
                target[stream.primary_id] = plan.record_id
            elif action == "UpsertMultiple":
                target["@odata.id"] = entity_path(stream.collection, str(plan.record_id))
            targets.append(target)
        try:
            response = await self.client.post(
                f"{stream.collection}/Microsoft.Dynamics.CRM.{action}",
                {"Targets": targets},
                idempotent=True,  # creates carry their own ids; updates and upserts repeat harmlessly
                table=stream.name,
                record_write=False,
            )
        except RetriableError as error:
            # Not a record problem: the chunk is reported as failed (retriable) and the next run tries again.
            return [self._failure(plan, error) for plan in chunk]
        except DynamicsError as error:
            if isinstance(error, ResourceNotFoundError) or error.code == _NOT_IMPLEMENTED:
                self.no_bulk.add(stream.name)
            # All-or-nothing: nothing was written; find the bad rows by sending each on its own.
            return await self._batch(stream, chunk)
        ids: list[Any] = []
        if action == "CreateMultiple":
            body = response.json() or {}
            ids = list(body.get("Ids") or [])
        return [
            WriteResult(ok=True, id=str(ids[i]).lower() if i < len(ids) else plan.record_id)
            for i, plan in enumerate(chunk)
        ]

    # -- $batch ---------------------------------------------------------------------------------------------------

    def _part(self, stream: StreamSpec, plan: _Planned) -> BatchPart:
        op = plan.op
        key: str | Mapping[str, Any] = plan.record_id or dict(op.alternate_key or {})
        select = f"?$select={stream.primary_id}"
        headers = dict(plan.headers)
        if op.kind is WriteKind.DELETE:
            return BatchPart("DELETE", entity_path(stream.collection, key), headers=headers)
        headers["Prefer"] = "return=representation"
        if op.kind is WriteKind.CREATE:
            return BatchPart("POST", stream.collection + select, plan.body, headers)
        return BatchPart("PATCH", entity_path(stream.collection, key) + select, plan.body, headers)

    async def _batch(self, stream: StreamSpec, chunk: list[_Planned]) -> list[WriteResult]:
        parts = [self._part(stream, plan) for plan in chunk]
        try:
            answers = await send_batch(self.client, parts, idempotent=True, table=stream.name)
        except RetriableError as error:
            return [self._failure(plan, error) for plan in chunk]
        except DynamicsError as error:
            if isinstance(error, RequestRejectedError):
                return [self._failure(plan, error) for plan in chunk]
            raise
        outcomes: list[WriteResult] = []
        for position, plan in enumerate(chunk):
            if position >= len(answers):
                outcomes.append(
                    WriteResult(ok=False, id=plan.record_id, error="not run: the batch stopped early")
                )
                continue
            outcomes.append(self._outcome(stream, plan, answers[position]))
        return outcomes

    def _outcome(self, stream: StreamSpec, plan: _Planned, answer: BatchResult) -> WriteResult:
        if answer.status < 300:
            body = answer.json()
            record_id = plan.record_id
            version = None
            if isinstance(body, Mapping):
                record_id = str(body.get(stream.primary_id) or record_id or "").lower() or None
                version = parse_version(body)
            if record_id is None:
                record_id = _id_from_location(answer)
            if version is None and answer.headers.get("ETag"):
                version = parse_version({"@odata.etag": answer.headers["ETag"]})
            return WriteResult(ok=True, id=record_id, version=version)
        error = self.client.mapped_error(answer.status, answer.headers, answer.body)
        if plan.generated_id and error.code == _DUPLICATE_KEY and plan.op.kind is WriteKind.CREATE:
            # The id was generated for this write: an earlier attempt of the same create landed.
            return WriteResult(ok=True, id=plan.record_id)
        return self._failure(plan, error)

    @staticmethod
    def _failure(plan: _Planned, error: DynasyncError) -> WriteResult:
        return WriteResult(
            ok=False,
            id=plan.record_id if plan.op.kind is not WriteKind.CREATE or not plan.generated_id else None,
            error_code=getattr(error, "code", None) or type(error).__name__,
            error=error.message,
            conflict=isinstance(error, ConcurrencyConflictError),
        )


def _id_from_location(answer: BatchResult) -> str | None:
    for name in ("OData-EntityId", "Location"):
        text = answer.headers.get(name, "")
        if "(" in text and text.endswith(")"):
            candidate = text[text.rindex("(") + 1 : -1]
            try:
                return str(uuid.UUID(candidate))
            except ValueError:
                continue
    return None
