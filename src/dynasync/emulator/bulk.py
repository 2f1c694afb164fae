"""Bulk actions bound to an entity set: CreateMultiple, UpdateMultiple, UpsertMultiple (all-or-nothing), DeleteMultiple."""

from __future__ import annotations

import uuid
from typing import Any

from dynasync.emulator.catalog import EntityDef
from dynasync.emulator.errors import EmulatorError
from dynasync.emulator.http_types import ODataResponse
from dynasync.emulator.webctx import Ctx, row_id, segment_not_found
from dynasync.emulator.writes_http import create_row, parse_values


def _targets(ctx: Ctx, entity: EntityDef) -> list[dict[str, Any]]:
    body = ctx.json_body()
    targets = body.get("Targets")
    if not isinstance(targets, list):
        raise EmulatorError(
            400, "0x80040203", "The 'Targets' parameter is required and must be a collection."
        )
    if not targets:
        raise EmulatorError(400, "0x80040203", "The 'Targets' collection must contain at least one entity.")
    expected = f"Microsoft.Dynamics.CRM.{entity.logical_name}"
    result: list[dict[str, Any]] = []
    for index, target in enumerate(targets):
        if not isinstance(target, dict):
            raise EmulatorError(400, "0x80048d19", f"Targets[{index}] is not an entity object.")
        odata_type = str(target.get("@odata.type", "")).lstrip("#")
        if not odata_type:
            raise EmulatorError(
                400,
                "0x80048d19",
                f"Targets[{index}] has no '@odata.type'; each target must declare "
                f"'@odata.type': '{expected}'.",
            )
        if odata_type != expected:
            raise EmulatorError(
                400,
                "0x80048d19",
                f"Targets[{index}] has '@odata.type' '{odata_type}', but this action is bound to '{expected}'.",
            )
        result.append({k: v for k, v in target.items() if k != "@odata.type"})
    return result


def _guid(entity: EntityDef, value: object) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise EmulatorError(
            400, "0x80048d19", f"Cannot convert the literal '{value}' to the expected type 'Edm.Guid'."
        ) from None


def _duplicate(entity: EntityDef, key: object) -> EmulatorError:
    return EmulatorError(
        400,
        "0x80040237",
        f"The Targets collection contains more than one {entity.logical_name} with the key {key}.",
    )


def handle_bulk(ctx: Ctx, entity: EntityDef, action: str) -> ODataResponse:
    """Run one bulk action; standard tables are all-or-nothing (any failure rolls everything back)."""
    if action == "DeleteMultiple":
        raise EmulatorError(400, "0x80040219", "DeleteMultiple has not yet been implemented.")
    if not entity.supports_multiple:
        raise segment_not_found(f"Microsoft.Dynamics.CRM.{action}")
    targets = _targets(ctx, entity)
    store = ctx.emulator.store
    if action == "CreateMultiple":
        ids: list[str] = []
        with store.transaction():
            for target in targets:
                ids.append(str(row_id(entity, create_row(ctx, entity, target))))
        context = f"{ctx.base_url}$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse"
        return ctx.json(200, {"@odata.context": context, "Ids": ids})
    if action == "UpdateMultiple":
        _update_multiple(ctx, entity, targets)
        return ctx.no_content()
    if action == "UpsertMultiple":
        _upsert_multiple(ctx, entity, targets)
        return ctx.no_content()
    raise segment_not_found(f"Microsoft.Dynamics.CRM.{action}")


def _update_multiple(ctx: Ctx, entity: EntityDef, targets: list[dict[str, Any]]) -> None:
    store = ctx.emulator.store
    seen: set[uuid.UUID] = set()
    plans: list[tuple[uuid.UUID, dict[str, Any]]] = []
    for index, target in enumerate(targets):
        if entity.primary_id not in target:
            raise EmulatorError(
                400, "0x80040203", f"Targets[{index}] must contain the primary key '{entity.primary_id}'."
            )
        target_id = _guid(entity, target.pop(entity.primary_id))
        if target_id in seen:
            raise _duplicate(entity, target_id)
        seen.add(target_id)
        plans.append((target_id, target))
    missing = [str(i) for i, _ in plans if store.get(entity.logical_name, i) is None]
    if missing:
        raise EmulatorError(
            404, "0x80040217", f"{entity.logical_name} With Ids = {','.join(missing)} Do Not Exist"
        )
    with store.transaction():
        for target_id, target in plans:
            values = parse_values(ctx, entity, target, for_create=False)
            store.update(entity.logical_name, target_id, values, caller=ctx.caller)


def _upsert_key(
    ctx: Ctx, entity: EntityDef, target: dict[str, Any]
) -> tuple[uuid.UUID | None, dict[str, object], str]:
    reference = target.pop("@odata.id", None)
    if isinstance(reference, str):
        text = reference.rsplit("/", 1)[-1]
        set_name, _, key_text = text.partition("(")
        if set_name and set_name != entity.entity_set_name:
            raise EmulatorError(
                400,
                "0x80048d19",
                f"The '@odata.id' '{reference}' does not address the '{entity.entity_set_name}' set.",
            )
        found, key_values = ctx.find_key(entity, key_text.rstrip(")"))
        return found, key_values, key_text.rstrip(")")
    if entity.primary_id in target:
        target_id = _guid(entity, target[entity.primary_id])
        return target_id, {}, str(target_id)
    for declared in entity.keys:
        if all(name in target for name in declared.attributes):
            values: dict[str, object] = {name: target[name] for name in declared.attributes}
            return ctx.find_alternate(entity, values), values, repr(sorted(values.items()))
    raise EmulatorError(
        400,
        "0x80040203",
        "Each UpsertMultiple target needs '@odata.id', the primary key or an alternate key.",
    )


def _upsert_multiple(ctx: Ctx, entity: EntityDef, targets: list[dict[str, Any]]) -> None:
    store = ctx.emulator.store
    seen: set[str] = set()
    with store.transaction():
        for target in targets:
            found, key_values, label = _upsert_key(ctx, entity, target)
            if label in seen:
                raise _duplicate(entity, label)
            seen.add(label)
            exists = found is not None and store.get(entity.logical_name, found) is not None
            if exists and found is not None:
                body = {k: v for k, v in target.items() if k not in key_values and k != entity.primary_id}
                values = parse_values(ctx, entity, body, for_create=False)
                store.update(entity.logical_name, found, values, caller=ctx.caller)
            else:
                body = dict(target)
                body.update({k: v for k, v in key_values.items() if k in body or entity.attribute(k)})
                if found is not None:
                    body[entity.primary_id] = str(found)
                create_row(ctx, entity, body)
