"""Web API writes: create, update/upsert, delete, single-property PUT/DELETE, ``$ref`` associate/disassociate."""

from __future__ import annotations

import re
import urllib.parse
import uuid
from typing import Any

from dynasync.emulator import payload
from dynasync.emulator.catalog import EntityDef, RelationshipDef
from dynasync.emulator.errors import EmulatorError, not_implemented
from dynasync.emulator.http_types import ODataResponse
from dynasync.emulator.serialize import etag_of
from dynasync.emulator.values import LookupValue, Row
from dynasync.emulator.webapi_read import collection_navigation, single_document, single_navigation
from dynasync.emulator.webctx import Ctx, not_found, row_id, segment_not_found

VERSION_MISMATCH = EmulatorError(
    412, "0x80060882", "The version of the existing record doesn't match the RowVersion property provided."
)
ALREADY_EXISTS = EmulatorError(412, "0x80040237", "A record with matching key values already exists.")
_ETAG = re.compile(r'^\s*(?:W/)?"(\d+)"\s*$')
_REF_PATH = re.compile(r"^(?:.*?/api/data/v9\.[0-2]/|/)?(?P<rest>.+)$")


def _etag_version(value: str) -> int:
    match = _ETAG.match(value)
    if match is None:
        raise EmulatorError(400, "0x80060888", f"The ETag value '{value}' is not valid.")
    return int(match.group(1))


def resolve_ref(ctx: Ctx, text: str) -> tuple[str, uuid.UUID]:
    """Resolve an ``@odata.bind`` / ``@odata.id`` value (absolute, ``/set(key)``, ``set(key)``, ``$n``)."""
    reference = text.strip()
    if reference.startswith("$"):
        target = ctx.content_ids.get(reference[1:].split("/", 1)[0])
        if target is None:
            raise EmulatorError(
                400, "0x80060888", f"Content-ID Reference: '{reference}' does not exist in the batch context."
            )
        reference = target
    match = _REF_PATH.match(reference)
    rest = urllib.parse.unquote(match.group("rest") if match else reference)
    if "(" not in rest or not rest.endswith(")"):
        raise EmulatorError(400, "0x80048d19", f"The entity reference '{text}' is not a valid entity URL.")
    set_name, _, key_text = rest[:-1].partition("(")
    entity = ctx.entity_by_set(set_name)
    row_uuid, _ = ctx.find_key(entity, key_text)
    if row_uuid is None or ctx.emulator.store.get(entity.logical_name, row_uuid) is None:
        raise not_found(entity, row_uuid if row_uuid is not None else key_text)
    return entity.logical_name, row_uuid


def parse_values(ctx: Ctx, entity: EntityDef, body: dict[str, Any], *, for_create: bool) -> dict[str, object]:
    """A JSON body to store values (validated by the data plane)."""
    return payload.parse_payload(
        ctx.emulator.catalog,
        entity.logical_name,
        body,
        for_create=for_create,
        resolve_ref=lambda ref: resolve_ref(ctx, ref),
    )


def _entity_id_headers(ctx: Ctx, entity: EntityDef, new_id: uuid.UUID) -> dict[str, str]:
    url = ctx.entity_url(entity, new_id)
    ctx.created_url = url
    return {"OData-EntityId": url, "Location": url}


def create_row(ctx: Ctx, entity: EntityDef, body: dict[str, Any]) -> Row:
    """Create a row from a JSON body (primary key may be supplied; deep insert and collection binds allowed)."""
    catalog = ctx.emulator.catalog
    store = ctx.emulator.store
    rest, nested = payload.split_deep_insert(catalog, entity.logical_name, body)
    with store.transaction():
        for part in nested:
            target = catalog.entity(part.entity)
            if part.lookup is not None and target is not None:
                child = create_row(ctx, target, part.bodies[0])
                rest[f"{part.navigation}@odata.bind"] = f"/{target.entity_set_name}({row_id(target, child)})"
        values = parse_values(ctx, entity, rest, for_create=True)
        supplied = values.pop(entity.primary_id, None)
        new_id = (
            supplied if isinstance(supplied, uuid.UUID) else (uuid.UUID(str(supplied)) if supplied else None)
        )
        row = store.create(entity.logical_name, values, caller=ctx.caller, id=new_id)
        parent_ref = f"/{entity.entity_set_name}({row_id(entity, row)})"
        for part in nested:
            relationship = part.relationship
            target = catalog.entity(part.entity)
            if relationship is None or target is None:
                continue
            bind = {f"{relationship.referencing_navigation}@odata.bind": parent_ref}
            for child_body in part.bodies:
                create_row(ctx, target, {**child_body, **bind})
            for reference in part.binds:
                _, child_id = resolve_ref(ctx, payload.reference_text(reference))
                _update_fields(ctx, target, child_id, bind)
    return row


def _no_nested(ctx: Ctx, entity: EntityDef, body: dict[str, Any]) -> dict[str, Any]:
    rest, nested = payload.split_deep_insert(ctx.emulator.catalog, entity.logical_name, body)
    if nested:
        raise not_implemented(f"deep update through '{nested[0].navigation}' (PATCH with nested entities)")
    return rest


def create(ctx: Ctx, entity: EntityDef, body: dict[str, Any] | None = None) -> ODataResponse:
    """``POST <set>``: 204 + OData-EntityId, or 201 + body with ``return=representation``."""
    row = create_row(ctx, entity, ctx.json_body() if body is None else body)
    new_id = row_id(entity, row)
    ctx.created_url = ctx.entity_url(entity, new_id)
    if ctx.prefs.return_representation:
        return ctx.json(
            201,
            single_document(ctx, entity, row),
            {"ETag": etag_of(row), "Preference-Applied": "return=representation"},
        )
    return ctx.no_content(_entity_id_headers(ctx, entity, new_id))


def upsert(ctx: Ctx, entity: EntityDef, key_text: str) -> ODataResponse:
    """``PATCH <set>(<key>)``: update, or create when missing (unless ``If-Match``), with the service's 404/412."""
    store = ctx.emulator.store
    body = ctx.json_body()
    found_id, key_values = ctx.find_key(entity, key_text)
    current = store.get(entity.logical_name, found_id) if found_id is not None else None
    if_match = ctx.header("if-match")
    if_none_match = ctx.header("if-none-match")
    expected: int | None = None
    if if_match is not None:
        if current is None:
            raise not_found(entity, found_id if found_id is not None else key_text)
        if if_match.strip() != "*":
            expected = _etag_version(if_match)
            if int(str(current.get("versionnumber"))) != expected:
                raise VERSION_MISMATCH
    if if_none_match is not None and if_none_match.strip() == "*" and current is not None:
        raise ALREADY_EXISTS
    if current is not None and found_id is not None:
        for name in key_values:
            body.pop(name, None)
        values = parse_values(ctx, entity, _no_nested(ctx, entity, body), for_create=False)
        values.pop(entity.primary_id, None)
        row = store.update(entity.logical_name, found_id, values, caller=ctx.caller, if_match=expected)
        status = 200
    else:
        values = parse_values(ctx, entity, _no_nested(ctx, entity, body), for_create=True)
        supplied = values.pop(entity.primary_id, None)
        for name, value in key_values.items():
            attribute = entity.attribute(name)
            if attribute is not None and attribute.is_lookup and attribute.targets:
                value = LookupValue(attribute.targets[0], uuid.UUID(str(value)))
            values[name] = value
        new_id = found_id or (uuid.UUID(str(supplied)) if supplied else None)
        row = store.create(entity.logical_name, values, caller=ctx.caller, id=new_id)
        status = 201
    new_row_id = row_id(entity, row)
    ctx.created_url = ctx.entity_url(entity, new_row_id)
    if ctx.prefs.return_representation:
        saved_expand = ctx.options.pop("$expand", None)  # the service ignores $expand on PATCH
        try:
            document = single_document(ctx, entity, row)
        finally:
            if saved_expand is not None:
                ctx.options["$expand"] = saved_expand
        return ctx.json(
            status, document, {"ETag": etag_of(row), "Preference-Applied": "return=representation"}
        )
    return ctx.no_content(_entity_id_headers(ctx, entity, new_row_id))


def delete(ctx: Ctx, entity: EntityDef, key_text: str) -> ODataResponse:
    """``DELETE <set>(<key>)`` with optional ``If-Match``."""
    store = ctx.emulator.store
    found_id, _ = ctx.find_key(entity, key_text)
    current = store.get(entity.logical_name, found_id) if found_id is not None else None
    if current is None or found_id is None:
        raise not_found(entity, found_id if found_id is not None else key_text)
    expected: int | None = None
    if_match = ctx.header("if-match")
    if if_match is not None and if_match.strip() != "*":
        expected = _etag_version(if_match)
        if int(str(current.get("versionnumber"))) != expected:
            raise VERSION_MISMATCH
    store.delete(entity.logical_name, found_id, caller=ctx.caller, if_match=expected)
    return ctx.no_content()


def _update_fields(ctx: Ctx, entity: EntityDef, target: uuid.UUID, body: dict[str, Any]) -> None:
    values = parse_values(ctx, entity, body, for_create=False)
    ctx.emulator.store.update(entity.logical_name, target, values, caller=ctx.caller)


def put_property(ctx: Ctx, entity: EntityDef, key_text: str, name: str) -> ODataResponse:
    """``PUT <set>(<key>)/<property>`` with ``{"value": ...}``."""
    target = ctx.existing_id(entity, key_text)
    body = ctx.json_body()
    if "value" not in body:
        raise EmulatorError(400, "0x80048d19", "The request body must contain a 'value' property.")
    _check_property(entity, name)
    _update_fields(ctx, entity, target, {name: body["value"]})
    return ctx.no_content()


def delete_property(ctx: Ctx, entity: EntityDef, key_text: str, name: str) -> ODataResponse:
    """``DELETE <set>(<key>)/<property>``: set the column to null."""
    target = ctx.existing_id(entity, key_text)
    _check_property(entity, name)
    _update_fields(ctx, entity, target, {name: None})
    return ctx.no_content()


def _check_property(entity: EntityDef, name: str) -> None:
    for attribute in entity.attributes.values():
        if attribute.logical_name == name and not attribute.is_lookup and attribute.is_odata_property:
            return
    raise segment_not_found(name)


def _relationship(ctx: Ctx, entity: EntityDef, nav: str) -> RelationshipDef:
    relationship = collection_navigation(ctx, entity, nav)
    if relationship is None:
        raise segment_not_found(nav)
    return relationship


def ref(ctx: Ctx, entity: EntityDef, key_text: str, nav: str, nav_key: str | None) -> ODataResponse:
    """``$ref`` on a navigation property: PUT/POST associate, DELETE disassociate."""
    method = ctx.request.method
    parent = ctx.existing_id(entity, key_text)
    if single_navigation(entity, nav) is not None:
        if method == "PUT":
            target = ctx.json_body().get("@odata.id")
            if not isinstance(target, str):
                raise EmulatorError(
                    400, "0x80048d19", "The request body must contain an '@odata.id' property."
                )
            _update_fields(ctx, entity, parent, {f"{nav}@odata.bind": target})
            return ctx.no_content()
        if method == "DELETE":
            _update_fields(ctx, entity, parent, {f"{nav}@odata.bind": None})
            return ctx.no_content()
        raise _method_not_allowed(method)
    relationship = _relationship(ctx, entity, nav)
    child_entity = ctx.emulator.catalog.entity(relationship.referencing_entity)
    if child_entity is None:
        raise segment_not_found(nav)
    parent_ref = f"/{entity.entity_set_name}({parent})"
    if method in ("POST", "PUT"):
        target = ctx.json_body().get("@odata.id")
        if not isinstance(target, str):
            raise EmulatorError(400, "0x80048d19", "The request body must contain an '@odata.id' property.")
        _, child = resolve_ref(ctx, target)
        _update_fields(
            ctx, child_entity, child, {f"{relationship.referencing_navigation}@odata.bind": parent_ref}
        )
        return ctx.no_content()
    if method == "DELETE":
        if nav_key is None:
            target_text = ctx.options.get("$id")
            if target_text is None:
                raise EmulatorError(
                    400, "0x80060888", "The $id query option is required to remove a reference."
                )
            _, child = resolve_ref(ctx, target_text)
        else:
            child = ctx.existing_id(child_entity, nav_key)
        row = ctx.emulator.store.get(child_entity.logical_name, child)
        current = row.get(relationship.referencing_attribute) if row else None
        if isinstance(current, LookupValue) and current.id == parent:
            _update_fields(
                ctx, child_entity, child, {f"{relationship.referencing_navigation}@odata.bind": None}
            )
        return ctx.no_content()
    raise _method_not_allowed(method)


def create_related(ctx: Ctx, entity: EntityDef, key_text: str, nav: str) -> ODataResponse:
    """``POST <set>(<key>)/<collection nav>``: create a child row bound to the parent."""
    parent = ctx.existing_id(entity, key_text)
    relationship = _relationship(ctx, entity, nav)
    child_entity = ctx.emulator.catalog.entity(relationship.referencing_entity)
    if child_entity is None:
        raise segment_not_found(nav)
    body = ctx.json_body()
    body[f"{relationship.referencing_navigation}@odata.bind"] = f"/{entity.entity_set_name}({parent})"
    return create(ctx, child_entity, body)


def _method_not_allowed(method: str) -> EmulatorError:
    return EmulatorError(405, "0x80040315", f"The HTTP method '{method}' is not allowed on this resource.")
