"""The emulated Web API as one function, ``handle(emulator, ODataRequest) -> ODataResponse``: routing by path."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dynasync.emulator import changes_http, csdl, functions, metadata, webapi_read, writes_http
from dynasync.emulator.catalog import EntityDef
from dynasync.emulator.errors import EmulatorError
from dynasync.emulator.http_types import ODataRequest, ODataResponse
from dynasync.emulator.paging import decode_skiptoken, parse_prefer
from dynasync.emulator.serialize import JSON_TYPE, error_body, json_bytes
from dynasync.emulator.webctx import Ctx, segment_not_found

if TYPE_CHECKING:
    from dynasync.emulator.app import Emulator

log = logging.getLogger(__name__)

METADATA_ROOTS = frozenset({"EntityDefinitions", "RelationshipDefinitions", "GlobalOptionSetDefinitions"})
BULK_ACTIONS = frozenset(
    {
        "Microsoft.Dynamics.CRM.CreateMultiple",
        "Microsoft.Dynamics.CRM.UpdateMultiple",
        "Microsoft.Dynamics.CRM.UpsertMultiple",
        "Microsoft.Dynamics.CRM.DeleteMultiple",
    }
)


@dataclass(frozen=True, slots=True)
class Segment:
    """One path segment: a name and, when present, the text inside its parentheses."""

    name: str
    key: str | None


def split_path(path: str) -> list[Segment]:
    """Split a resource path on ``/`` outside quotes and parentheses, then each segment into name and key."""
    raw: list[str] = []
    current: list[str] = []
    depth = 0
    quoted = False
    for char in path:
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        if char == "/" and depth == 0 and not quoted:
            raw.append("".join(current))
            current = []
        else:
            current.append(char)
    raw.append("".join(current))
    segments: list[Segment] = []
    for text in raw:
        if not text:
            continue
        if text.endswith(")") and "(" in text:
            name, _, key = text[:-1].partition("(")
            segments.append(Segment(name, key))
        else:
            segments.append(Segment(text, None))
    return segments


def error_response(error: EmulatorError, prefer: str | None = None) -> ODataResponse:
    """Render an :class:`EmulatorError` as the service's JSON error (with error-detail annotations if asked)."""
    headers = {"Content-Type": JSON_TYPE, **error.headers}
    prefs = parse_prefer(prefer) if prefer else None
    if prefs is None or not prefs.annotation_patterns:
        return ODataResponse(error.status, headers, error_body(error))
    details: dict[str, object] = {"code": error.code, "message": error.message}
    code = error.code[2:] if error.code.startswith("0x") else error.code
    extra = {
        "Microsoft.PowerApps.CDS.ErrorDetails.OperationStatus": "0",
        "Microsoft.PowerApps.CDS.ErrorDetails.SubErrorCode": "-2146233088",
        "Microsoft.PowerApps.CDS.HelpLink": (
            "http://go.microsoft.com/fwlink/?LinkID=398563&error=Microsoft.Crm.CrmException%3a"
            f"{code}&client=platform"
        ),
        "Microsoft.PowerApps.CDS.TraceText": "",
        "Microsoft.PowerApps.CDS.InnerError.Message": error.message,
    }
    for term, value in extra.items():
        if prefs.wants(term):
            details[f"@{term}"] = value
    return ODataResponse(error.status, headers, json_bytes({"error": details}))


def handle(emulator: Emulator, request: ODataRequest) -> ODataResponse:
    """Answer one (already authenticated) Web API request; never raises for service errors."""
    try:
        response = dispatch(emulator, request)
    except EmulatorError as error:
        response = error_response(error, request.headers.get("prefer"))
    except Exception:  # a bug must still answer like the service does (and is logged)
        log.exception("unexpected error answering %s %s", request.method, request.path)
        response = error_response(EmulatorError(500, "0x80040216", "An unexpected error occurred."))
    response.headers.setdefault("OData-Version", "4.0")
    return response


def dispatch(emulator: Emulator, request: ODataRequest, ctx: Ctx | None = None) -> ODataResponse:
    """Route ``request``; raises :class:`EmulatorError` for service errors."""
    if ctx is None:
        ctx = Ctx.build(emulator, request)
    segments = split_path(request.path)
    method = request.method.upper()
    if not segments:
        _only(method, "GET")
        return ctx.json(200, csdl.service_document(emulator.catalog, ctx.base_url))
    first = segments[0]
    if first.name == "$metadata" and len(segments) == 1:
        _only(method, "GET")
        annotations = "annotations=true" in request.query.lower()
        text = csdl.render_csdl(emulator.catalog, annotations=annotations)
        return ODataResponse(200, {"Content-Type": "application/xml"}, text.encode())
    if first.name == "$batch" and len(segments) == 1:
        _only(method, "POST")
        from dynasync.emulator import batch

        return batch.handle_batch(emulator, request)
    if first.name in METADATA_ROOTS:
        _only(method, "GET")
        document = metadata.handle_metadata(emulator.catalog, request.path, ctx.options, ctx.base_url)
        return ctx.json(200, document)
    raw_first = _raw_first(request.path)
    if len(segments) == 1 and (functions.is_function(raw_first) or functions.is_unimplemented(raw_first)):
        return functions.call_function(ctx, raw_first)
    entity = ctx.entity_by_set(first.name)
    return _entity_route(ctx, entity, first, segments[1:])


def _tracking_page(ctx: Ctx) -> bool:
    """A nextLink of a change-tracking read (cookie ``istracking="True"``) stays a change-tracking read."""
    token = ctx.options.get("$skiptoken")
    if token is None:
        return False
    try:
        return decode_skiptoken(token).tracking
    except EmulatorError:
        return False


def _raw_first(path: str) -> str:
    return path.strip("/")


def _only(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise EmulatorError(405, "0x80040315", f"The HTTP method '{method}' is not allowed on this resource.")


def _entity_route(ctx: Ctx, entity: EntityDef, first: Segment, rest: list[Segment]) -> ODataResponse:
    method = ctx.request.method.upper()
    if first.key is None:
        if not rest:
            if method == "GET":
                if ctx.prefs.track_changes or "$deltatoken" in ctx.options or _tracking_page(ctx):
                    return changes_http.read_changes(ctx, entity)
                return webapi_read.read_collection(ctx, entity)
            if method == "POST":
                return writes_http.create(ctx, entity)
            raise _not_allowed(method)
        if len(rest) == 1 and rest[0].name == "$count" and rest[0].key is None:
            _only(method, "GET")
            if "$deltatoken" in ctx.options:
                return changes_http.count_changes(ctx, entity)
            return webapi_read.read_count(ctx, entity)
        if len(rest) == 1 and rest[0].name in BULK_ACTIONS and rest[0].key is None:
            _only(method, "POST")
            from dynasync.emulator import bulk

            return bulk.handle_bulk(ctx, entity, rest[0].name.rsplit(".", 1)[1])
        raise segment_not_found(rest[0].name)
    key = first.key
    if not rest:
        if method == "GET":
            return webapi_read.read_single(ctx, entity, ctx.existing_id(entity, key))
        if method == "PATCH":
            return writes_http.upsert(ctx, entity, key)
        if method == "DELETE":
            return writes_http.delete(ctx, entity, key)
        raise _not_allowed(method)
    second = rest[0]
    tail = rest[1:]
    if tail and tail[-1].name == "$ref" and len(tail) == 1:
        return writes_http.ref(ctx, entity, key, second.name, second.key)
    single = webapi_read.single_navigation(entity, second.name)
    collection = webapi_read.collection_navigation(ctx, entity, second.name)
    if collection is not None and not tail:
        if method == "GET":
            parent = ctx.existing_id(entity, key)
            child = ctx.emulator.catalog.entity(collection.referencing_entity)
            if child is None:
                raise segment_not_found(second.name)
            if second.key is not None:
                return webapi_read.read_single(ctx, child, ctx.existing_id(child, second.key))
            return webapi_read.read_collection(
                ctx, child, base_filter=webapi_read.related_filter(collection, parent)
            )
        if method == "POST":
            return writes_http.create_related(ctx, entity, key, second.name)
        raise _not_allowed(method)
    if single is not None and not tail and second.key is None:
        _only(method, "GET")
        return _read_single_nav(ctx, entity, key, second.name)
    if second.key is None and (not tail or (len(tail) == 1 and tail[0].name == "$value")):
        raw = bool(tail)
        if method == "GET":
            return webapi_read.read_property(ctx, entity, ctx.existing_id(entity, key), second.name, raw)
        if method == "PUT" and not raw:
            return writes_http.put_property(ctx, entity, key, second.name)
        if method == "DELETE" and not raw:
            return writes_http.delete_property(ctx, entity, key, second.name)
        raise _not_allowed(method)
    raise segment_not_found(second.name)


def _read_single_nav(ctx: Ctx, entity: EntityDef, key: str, nav: str) -> ODataResponse:
    row = ctx.emulator.store.get(entity.logical_name, ctx.existing_id(entity, key))
    found = webapi_read.single_navigation(entity, nav)
    assert row is not None and found is not None
    attribute, target_name = found
    value = row.get(attribute.logical_name)
    target = ctx.emulator.catalog.entity(target_name)
    from dynasync.emulator.values import LookupValue

    if not isinstance(value, LookupValue) or value.entity != target_name or target is None:
        return ODataResponse(204)
    return webapi_read.read_single(ctx, target, value.id)


def _not_allowed(method: str) -> EmulatorError:
    return EmulatorError(405, "0x80040315", f"The HTTP method '{method}' is not allowed on this resource.")
