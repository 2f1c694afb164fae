"""The fast path of plain collection pages: JSON-ready rows straight from the store (``OrgStore.query_wire``).

A page without annotations or ``$expand`` needs no typed rows: the store's generated wire decoder gives each row
exactly as the Web API writes it, so ``json_bytes`` only concatenates. Typed rows are loaded only for the
first and last row of a page, and only when an ``$orderby`` needs their keyset values for the paging cookie.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from dynasync.emulator.catalog import AttributeDef, EntityDef
from dynasync.emulator.odata_ast import Node
from dynasync.emulator.webctx import Ctx


def wire_eligible(ctx: Ctx, expands: Sequence[Any]) -> bool:
    """True when the page can be served from wire rows: no annotations asked for and nothing to expand."""
    return not ctx.prefs.annotation_patterns and not expands


def wire_rows(
    ctx: Ctx,
    entity: EntityDef,
    columns: Sequence[AttributeDef],
    *,
    filter: Node | None,
    orderby: Sequence[tuple[str, bool]],
    after: Sequence[object] | None,
    limit: int,
) -> tuple[list[dict[str, Any]], bool]:
    """Up to ``limit`` JSON-ready rows in page order, and whether more rows follow."""
    rows, _ = ctx.emulator.store.query_wire(
        entity.logical_name,
        columns=[a.logical_name for a in columns],
        filter=filter,
        orderby=orderby,
        after=after,
        limit=limit + 1,
        caller=ctx.caller,
    )
    return rows[:limit], len(rows) > limit


def wire_page_key(
    ctx: Ctx, entity: EntityDef, row: dict[str, Any], orderby: Sequence[tuple[str, bool]]
) -> list[object]:
    """The keyset values (``OrgStore.page_key``) of a wire row; the primary id is always among its columns."""
    row_id = uuid.UUID(str(row[entity.primary_id]))
    if not orderby:
        return [row_id]
    store = ctx.emulator.store
    typed = store.get(entity.logical_name, row_id, select=[name for name, _ in orderby])
    if typed is None:  # pragma: no cover - the row was read under the same lock a moment ago
        raise LookupError(f"{entity.logical_name} {row_id} vanished while paging")
    return store.page_key(entity.logical_name, typed, orderby)
