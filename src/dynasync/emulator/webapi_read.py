"""Web API reads: collections with query options and paging, single rows, single properties, ``$count``, ``$expand``."""

from __future__ import annotations

import uuid
from typing import Any

from dynasync.emulator import odata
from dynasync.emulator.catalog import AttributeDef, EntityDef, RelationshipDef
from dynasync.emulator.errors import EmulatorError, not_implemented
from dynasync.emulator.http_types import ODataResponse
from dynasync.emulator.odata_ast import And, Compare, Literal, Node, Property
from dynasync.emulator.paging import (
    ORDER_MISMATCH,
    PagingPosition,
    decode_skiptoken,
    encode_skiptoken,
    next_link,
    page_size,
)
from dynasync.emulator.serialize import (
    column_plan,
    etag_of,
    output_columns,
    resolve_select,
    row_json,
    wire_value,
)
from dynasync.emulator.values import LookupValue, Row
from dynasync.emulator.webapi_wire import wire_eligible, wire_page_key, wire_rows
from dynasync.emulator.webcookie import cookie_text, cookie_value
from dynasync.emulator.webctx import Ctx, not_found, row_id, segment_not_found

TOTAL = "Microsoft.Dynamics.CRM.totalrecordcount"
TOTAL_EXCEEDED = "Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"
GLOBAL_VERSION = "Microsoft.Dynamics.CRM.globalmetadataversion"
MAX_EXPANDS = 15


def names_resolver(ctx: Ctx) -> Any:
    """A (table, id) -> primary name function for FormattedValue on lookups (cached for the request)."""
    store = ctx.emulator.store
    cache: dict[tuple[str, uuid.UUID], str | None] = ctx.names

    def resolve(entity: str, target: uuid.UUID) -> str | None:
        key = (entity, target)
        if key not in cache:
            name = store.primary_name_of(entity, target)
            cache[key] = None if name is None else str(name)
        return cache[key]

    return resolve


def store_select(columns: list[AttributeDef], entity: EntityDef, expands: list[Any]) -> list[str]:
    """Logical names the store must load for these output columns and expansions."""
    names = [a.logical_name for a in columns]
    for item in expands:
        found = single_navigation(entity, item.navigation)
        if found is not None:
            names.append(found[0].logical_name)
    return names


def single_navigation(entity: EntityDef, nav: str) -> tuple[AttributeDef, str] | None:
    """The lookup column and target table of single-valued navigation property ``nav``."""
    for attribute in entity.attributes.values():
        target = attribute.navigation.get(nav)
        if target is not None:
            return attribute, target
    return None


def collection_navigation(ctx: Ctx, entity: EntityDef, nav: str) -> RelationshipDef | None:
    """The one-to-many relationship behind collection-valued navigation property ``nav``."""
    for relationship in ctx.emulator.catalog.relationships_from(entity.logical_name):
        if relationship.referenced_navigation == nav:
            return relationship
    return None


def related_filter(relationship: RelationshipDef, parent_id: uuid.UUID) -> Node:
    """Rows of the many side whose lookup points at ``parent_id``."""
    return Compare(
        "eq", Property((f"_{relationship.referencing_attribute}_value",)), Literal(parent_id, "guid")
    )


def _fragment(select: list[str] | None, expands: list[Any]) -> str:
    parts = list(select or [])
    for item in expands:
        if getattr(item, "ref", False):
            parts.append(f"{item.navigation}/$ref")
        else:
            parts.append(f"{item.navigation}{_fragment(item.select, item.expand) or '()'}")
    return f"({','.join(parts)})" if parts else ""


def context_fragment(ctx: Ctx) -> str:
    """The ``(cols,nav(cols))`` part of a context URL for this request's ``$select``/``$expand``."""
    select = odata.parse_select(ctx.options["$select"]) if "$select" in ctx.options else None
    expands = odata.parse_expand(ctx.options["$expand"]) if "$expand" in ctx.options else []
    return _fragment(select, expands)


def parse_expands(ctx: Ctx, entity: EntityDef) -> list[Any]:
    """``$expand`` items of the request (at most 15), checked against the service's restrictions."""
    if "$expand" not in ctx.options:
        return []
    items = list(odata.parse_expand(ctx.options["$expand"]))
    check_expand_options(entity, ctx, items, nested=_has_nested(items))
    if len(items) > MAX_EXPANDS:
        raise EmulatorError(400, "0x80060888", "The number of $expand options exceeds the limit of 15.")
    return items


NESTED_EXPAND_ONLY = EmulatorError(
    400,
    "0x80060888",
    "Only $select and $filter clause can be provided while doing $expand on many-to-one relationship or nested "
    "one-to-many relationship.",
)


def _has_nested(items: list[Any]) -> bool:
    return any(item.expand for item in items)


def check_expand_options(entity: EntityDef, ctx: Ctx, items: list[Any], *, nested: bool) -> None:
    """The service's restrictions: no ``$top``/``$orderby`` on single-valued or nested collection expands."""
    for item in items:
        single = single_navigation(entity, item.navigation)
        if (item.top is not None or item.orderby) and (single is not None or nested):
            raise NESTED_EXPAND_ONLY
        target_name = single[1] if single is not None else None
        if single is None:
            relationship = collection_navigation(ctx, entity, item.navigation)
            target_name = relationship.referencing_entity if relationship is not None else None
        target = ctx.emulator.catalog.entity(target_name) if target_name else None
        if target is not None and item.expand:
            check_expand_options(target, ctx, list(item.expand), nested=nested)


def entity_json(
    ctx: Ctx, entity: EntityDef, row: Row, columns: list[AttributeDef], expands: list[Any]
) -> dict[str, Any]:
    """A row as JSON with its expansions appended."""
    plan = ctx.plans.get(id(columns))
    if plan is None:
        plan = ctx.plans[id(columns)] = column_plan(columns, ctx.prefs)
    out = row_json(entity, row, columns, ctx.prefs, names_resolver(ctx), plan)
    for item in expands:
        out[item.navigation] = _expand(ctx, entity, row, item, out)
    return out


def _expand(ctx: Ctx, entity: EntityDef, row: Row, item: Any, out: dict[str, Any]) -> object:
    nav = item.navigation
    store = ctx.emulator.store
    single = single_navigation(entity, nav)
    if single is not None:
        attribute, target_name = single
        value = row.get(attribute.logical_name)
        if not isinstance(value, LookupValue) or value.entity != target_name:
            return None
        target = ctx.emulator.catalog.entity(target_name)
        if target is None:
            return None
        if getattr(item, "ref", False):
            return {"@odata.id": f"{ctx.base_url}{target.entity_set_name}({value.id})"}
        related = store.get(target_name, value.id)
        if related is None:
            return None
        columns = output_columns(target, resolve_select(target, item.select))
        return entity_json(ctx, target, related, columns, list(item.expand or []))
    relationship = collection_navigation(ctx, entity, nav)
    if relationship is None:
        raise EmulatorError(
            400,
            "0x80060888",
            f"Could not find a property named '{nav}' on type 'Microsoft.Dynamics.CRM.{entity.logical_name}'.",
        )
    if getattr(item, "ref", False):
        raise EmulatorError(
            400, "0x80060888", "Expand with $ref is only supported on lookup type navigation property."
        )
    target = ctx.emulator.catalog.entity(relationship.referencing_entity)
    if target is None:
        raise segment_not_found(nav)
    parent_id = row_id(entity, row)
    condition = related_filter(relationship, parent_id)
    if item.filter is not None:
        condition = And(condition, item.filter)
    limit = ctx.emulator.settings.max_page_size
    if item.top is not None:
        limit = min(limit, int(item.top))
    rows = store.query(
        target.logical_name, filter=condition, orderby=list(item.orderby or []), after=None, limit=limit
    )
    columns = output_columns(target, resolve_select(target, item.select))
    link = f"{ctx.base_url}{entity.entity_set_name}({parent_id})/{nav}"
    if item.select:
        link += "?$select=" + ",".join(item.select)
    out[f"{nav}@odata.nextLink"] = link
    return [entity_json(ctx, target, r, columns, list(item.expand or [])) for r in rows]


def applied_preferences(ctx: Ctx, *extra: str) -> dict[str, str]:
    """The ``Preference-Applied`` header for the preferences honoured, if any."""
    applied = list(extra)
    if ctx.prefs.include_annotations is not None:
        applied.append(f"odata.include-annotations={ctx.prefs.include_annotations}")
    return {"Preference-Applied": ",".join(applied)} if applied else {}


def parse_top(ctx: Ctx) -> int | None:
    """``$top`` as an int; 400 when it is not a non-negative integer."""
    text = ctx.options.get("$top")
    if text is None:
        return None
    try:
        top = int(text)
    except ValueError:
        top = -1
    if top < 0:
        raise EmulatorError(400, "0x80060888", f"Invalid value '{text}' for $top query option found.")
    return top


def parse_order(ctx: Ctx, entity: EntityDef) -> list[tuple[str, bool]]:
    """``$orderby`` pairs; duplicate columns give the service's OrderByColumnsMustBeUnique error."""
    if "$orderby" not in ctx.options:
        return []
    order = list(odata.parse_orderby(ctx.options["$orderby"], ctx.aliases))
    names = [name for name, _ in order]
    if len(set(names)) != len(names):
        raise EmulatorError(400, "0x80048d16", "The order by columns must be unique.")
    return order


def request_filter(ctx: Ctx, base: Node | None = None) -> Node | None:
    """``$filter`` of the request, AND-ed with ``base`` (a related-collection condition)."""
    node = odata.parse_filter(ctx.options["$filter"], ctx.aliases) if "$filter" in ctx.options else None
    if base is None:
        return node
    return base if node is None else And(base, node)


def _order_attribute(entity: EntityDef, name: str) -> AttributeDef:
    for attribute in entity.attributes.values():
        if attribute.odata_name == name or attribute.logical_name == name:
            return attribute
    raise EmulatorError(
        400,
        "0x80060888",
        f"Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{entity.logical_name}'.",
    )


def read_collection(ctx: Ctx, entity: EntityDef, *, base_filter: Node | None = None) -> ODataResponse:
    """``GET <set>`` (or a related collection): the page the query options and the skiptoken select."""
    if "$apply" in ctx.options:
        raise not_implemented("$apply (aggregation)")
    settings = ctx.emulator.settings
    store = ctx.emulator.store
    selected = resolve_select(
        entity, odata.parse_select(ctx.options["$select"]) if "$select" in ctx.options else None
    )
    columns = output_columns(entity, selected)
    expands = parse_expands(ctx, entity)
    condition = request_filter(ctx, base_filter)
    order = parse_order(ctx, entity)
    size, top, size_applied = page_size(ctx.prefs, parse_top(ctx), settings)
    pk = entity.primary_id
    order_attributes = [_order_attribute(entity, name) for name, _ in order]
    if all(a.logical_name != pk for a in order_attributes):
        pk_attribute = entity.attribute(pk)
        assert pk_attribute is not None
        order_attributes.append(pk_attribute)
    cookie_columns = [a.logical_name for a in order_attributes]
    position = decode_skiptoken(ctx.options["$skiptoken"]) if "$skiptoken" in ctx.options else None
    after: tuple[object, ...] | None = None
    if position is not None:
        if position.columns != cookie_columns:
            raise ORDER_MISMATCH
        after = tuple(cookie_value(a, v) for a, v in zip(order_attributes, position.last, strict=True))
    already = position.page * size if position is not None else 0
    limit = size if top is None else min(size, max(top - already, 0))
    fast = wire_eligible(ctx, expands)  # plain pages skip typed rows (see webapi_wire)
    wire: list[dict[str, Any]] = []
    rows: list[Row] = []
    if fast:
        wire, more = wire_rows(
            ctx, entity, columns, filter=condition, orderby=order, after=after, limit=limit
        )
    else:
        rows = store.query(
            entity.logical_name,
            filter=condition,
            orderby=order,
            after=after,
            limit=limit + 1,
            caller=ctx.caller,
            select=store_select(columns, entity, expands) if selected is not None else None,
        )
        more = len(rows) > limit
        rows = rows[:limit]
    if top is not None and already + len(wire if fast else rows) >= top:
        more = False
    document: dict[str, Any] = {
        "@odata.context": f"{ctx.base_url}$metadata#{entity.entity_set_name}{context_fragment(ctx)}"
    }
    counted: int | None = None
    if ctx.options.get("$count") == "true":
        counted = store.count(entity.logical_name, condition, caller=ctx.caller)
    if ctx.prefs.wants(TOTAL):
        document[f"@{TOTAL}"] = -1 if counted is None else min(counted, settings.count_cap)
    if ctx.prefs.wants(TOTAL_EXCEEDED):
        document[f"@{TOTAL_EXCEEDED}"] = counted is not None and counted > settings.count_cap
    if ctx.prefs.wants(GLOBAL_VERSION):
        document[f"@{GLOBAL_VERSION}"] = str(ctx.emulator.catalog.metadata_version)
    if counted is not None:
        document["@odata.count"] = min(counted, settings.count_cap)
    document["value"] = wire if fast else [entity_json(ctx, entity, r, columns, expands) for r in rows]
    if more and (wire if fast else rows):
        page = position.page + 1 if position is not None else 1
        if fast:
            first_key = wire_page_key(ctx, entity, wire[0], order)
            last_key = wire_page_key(ctx, entity, wire[-1], order)
        else:
            first_key = store.page_key(entity.logical_name, rows[0], order)
            last_key = store.page_key(entity.logical_name, rows[-1], order)
        new_position = PagingPosition(
            page=page,
            columns=cookie_columns,
            last=[cookie_text(v) for v in last_key],
            first=[cookie_text(v) for v in first_key],
        )
        document["@odata.nextLink"] = next_link(ctx.request_url, encode_skiptoken(new_position, pk=pk))
    extra = [f"odata.maxpagesize={size}"] if size_applied else []
    return ctx.json(200, document, applied_preferences(ctx, *extra))


def read_single(ctx: Ctx, entity: EntityDef, row_uuid: uuid.UUID) -> ODataResponse:
    """``GET <set>(<key>)``: one row with ``ETag``; 304 when ``If-None-Match`` matches."""
    row = ctx.emulator.store.get(entity.logical_name, row_uuid)
    if row is None:
        raise not_found(entity, row_uuid)
    etag = etag_of(row)
    if_none_match = ctx.header("if-none-match")
    if (
        if_none_match
        and if_none_match.strip() in (etag, "*")
        and "$expand" not in ctx.options
        and ctx.prefs.include_annotations is None
    ):
        return ODataResponse(304, {"ETag": etag})
    return ctx.json(200, single_document(ctx, entity, row), {"ETag": etag, **applied_preferences(ctx)})


def single_document(ctx: Ctx, entity: EntityDef, row: Row) -> dict[str, Any]:
    """The body of a single-row response (also used by ``return=representation``)."""
    selected = resolve_select(
        entity, odata.parse_select(ctx.options["$select"]) if "$select" in ctx.options else None
    )
    document: dict[str, Any] = {
        "@odata.context": f"{ctx.base_url}$metadata#{entity.entity_set_name}{context_fragment(ctx)}/$entity"
    }
    document.update(
        entity_json(ctx, entity, row, output_columns(entity, selected), parse_expands(ctx, entity))
    )
    return document


def read_property(ctx: Ctx, entity: EntityDef, row_uuid: uuid.UUID, name: str, raw: bool) -> ODataResponse:
    """``GET <set>(<key>)/<property>`` (``{"value": ...}``) or ``.../$value`` (plain text)."""
    attribute = None
    for candidate in entity.attributes.values():
        if candidate.is_odata_property and candidate.odata_name == name:
            attribute = candidate
    if attribute is None:
        raise segment_not_found(name)
    row = ctx.emulator.store.get(entity.logical_name, row_uuid)
    if row is None:
        raise not_found(entity, row_uuid)
    value = wire_value(attribute, row.get(attribute.logical_name))
    if raw:
        if value is None:
            return ODataResponse(204)
        text = str(value).lower() if isinstance(value, bool) else str(value)
        return ODataResponse(200, {"Content-Type": "text/plain"}, text.encode())
    document = {
        "@odata.context": f"{ctx.base_url}$metadata#{entity.entity_set_name}({row_uuid})/{name}",
        "value": value,
    }
    return ctx.json(200, document)


def read_count(ctx: Ctx, entity: EntityDef, base_filter: Node | None = None) -> ODataResponse:
    """``GET <set>/$count``: the number of matching rows (capped like ``$count``) as plain text."""
    count = ctx.emulator.store.count(entity.logical_name, request_filter(ctx, base_filter), caller=ctx.caller)
    count = min(count, ctx.emulator.settings.count_cap)
    return ODataResponse(200, {"Content-Type": "text/plain"}, str(count).encode())
