"""Change tracking over the Web API: ``Prefer: odata.track-changes``, delta links, ``$deletedEntity`` rows."""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
from typing import Any

from dynasync.emulator import odata
from dynasync.emulator.catalog import EntityDef
from dynasync.emulator.errors import EmulatorError
from dynasync.emulator.http_types import ODataResponse
from dynasync.emulator.paging import (
    INVALID_COOKIE,
    PagingPosition,
    decode_skiptoken,
    encode_skiptoken,
    next_link,
    page_size,
)
from dynasync.emulator.serialize import output_columns, resolve_select
from dynasync.emulator.webapi_read import applied_preferences, context_fragment, entity_json
from dynasync.emulator.webapi_wire import wire_eligible, wire_rows
from dynasync.emulator.webctx import Ctx

RESTRICTED = ("$filter", "$orderby", "$expand", "$top")
TOKEN_TIME_FORMAT = "%m/%d/%Y %H:%M:%S"
EXPIRED = EmulatorError(
    400, "0x80044352", "Version stamp associated with the client has expired. Please perform a full sync."
)
MAX_CHANGES = 1_000_000_000


def not_tracked(entity: EntityDef) -> EmulatorError:
    """The service's error for a table without change tracking."""
    return EmulatorError(
        400, "0x80072491", f"Entity {entity.logical_name} isn't enabled for change tracking."
    )


def make_token(version: int, at: dt.datetime) -> str:
    """A delta token in the service's form, ``<version>!<MM/dd/yyyy HH:mm:ss>`` (UTC)."""
    return f"{version}!{at.astimezone(dt.UTC).strftime(TOKEN_TIME_FORMAT)}"


def encode_token(token: str) -> str:
    """URL-encode a delta token the way the service writes it (lower-case hex, ``!`` encoded)."""
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), urllib.parse.quote(token, safe=""))


def parse_token(token: str) -> tuple[int, dt.datetime]:
    """Split a delta token into (version, issue time); 400 when it is not one of ours."""
    version_text, _, time_text = token.partition("!")
    try:
        version = int(version_text)
        at = dt.datetime.strptime(time_text, TOKEN_TIME_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError:
        raise EmulatorError(400, "0x80040203", f"The delta token '{token}' is not valid.") from None
    return version, at


def check_token(ctx: Ctx, token: str) -> int:
    """Return the token's version; 400 ExpiredVersionStamp when the emulated clock says it is too old."""
    version, at = parse_token(token)
    emulator = ctx.emulator
    now = emulator.clock.now()
    if now - at > dt.timedelta(days=emulator.store.change_tracking_expiry_days):
        raise EXPIRED
    cutoff = emulator.tokens_expired_before
    if cutoff is not None and at < cutoff:
        raise EXPIRED
    return version


def _raw_select(ctx: Ctx) -> str | None:
    for part in ctx.request.query.split("&"):
        name, _, _ = part.partition("=")
        if urllib.parse.unquote_plus(name) == "$select":
            return part
    return None


def delta_link(ctx: Ctx, entity: EntityDef, token: str) -> str:
    """``<root><set>?$select=...&$deltatoken=<token>``."""
    parts = [p for p in (_raw_select(ctx),) if p]
    parts.append(f"$deltatoken={encode_token(token)}")
    return f"{ctx.base_url}{entity.entity_set_name}?{'&'.join(parts)}"


def read_changes(ctx: Ctx, entity: EntityDef) -> ODataResponse:
    """Answer an initial change-tracking read or a delta read, paged with nextLinks, deltaLink on the last page."""
    if not entity.change_tracking:
        raise not_tracked(entity)
    for option in RESTRICTED:
        if option in ctx.options:
            raise EmulatorError(
                400,
                "0x80060888",
                f'The "{option}" query parameter isn\'t supported when Change Tracking is enabled.',
            )
    if "$deltatoken" in ctx.options:
        return _delta(ctx, entity, check_token(ctx, ctx.options["$deltatoken"]))
    return _initial(ctx, entity)


def _window(ctx: Ctx, position: PagingPosition | None) -> tuple[int, dt.datetime]:
    if position is None:
        return ctx.emulator.store.version, ctx.emulator.clock.now()
    try:
        upto = int(position.extra["upto"])
        at = dt.datetime.fromisoformat(position.extra["at"])
    except (KeyError, ValueError):
        raise INVALID_COOKIE from None
    return upto, at


def _columns(ctx: Ctx, entity: EntityDef) -> Any:
    select = odata.parse_select(ctx.options["$select"]) if "$select" in ctx.options else None
    return output_columns(entity, resolve_select(entity, select))


def _initial(ctx: Ctx, entity: EntityDef) -> ODataResponse:
    store = ctx.emulator.store
    size, _, applied = page_size(ctx.prefs, None, ctx.emulator.settings)
    position = decode_skiptoken(ctx.options["$skiptoken"]) if "$skiptoken" in ctx.options else None
    upto, at = _window(ctx, position)
    pk = entity.primary_id
    after = None
    if position is not None:
        if position.columns != [pk] or position.last[0] is None:
            raise INVALID_COOKIE
        import uuid

        try:
            after = (uuid.UUID(position.last[0].strip("{}")),)
        except ValueError:
            raise INVALID_COOKIE from None
    columns = _columns(ctx, entity)
    values: list[dict[str, Any]]
    if wire_eligible(ctx, ()):  # plain pages skip typed rows (see webapi_wire)
        values, more = wire_rows(ctx, entity, columns, filter=None, orderby=[], after=after, limit=size)
    else:
        rows = store.query(entity.logical_name, filter=None, orderby=[], after=after, limit=size + 1)
        more = len(rows) > size
        values = [entity_json(ctx, entity, r, columns, []) for r in rows[:size]]
    document: dict[str, Any] = {
        "@odata.context": f"{ctx.base_url}$metadata#{entity.entity_set_name}{context_fragment(ctx)}"
    }
    if not more:
        document["@odata.deltaLink"] = delta_link(ctx, entity, make_token(upto, at))
    document["value"] = values
    if more:
        page = position.page + 1 if position is not None else 1
        cookie = PagingPosition(
            page=page,
            columns=[pk],
            last=[str(values[-1][pk])],
            first=[str(values[0][pk])],
            tracking=True,
            extra={"upto": str(upto), "at": at.isoformat()},
        )
        document["@odata.nextLink"] = next_link(ctx.request_url, encode_skiptoken(cookie, pk=pk))
    extra = ["odata.track-changes"] + ([f"odata.maxpagesize={size}"] if applied else [])
    return ctx.json(200, document, applied_preferences(ctx, *extra))


def _delta(ctx: Ctx, entity: EntityDef, since: int) -> ODataResponse:
    store = ctx.emulator.store
    size, _, applied = page_size(ctx.prefs, None, ctx.emulator.settings)
    position = decode_skiptoken(ctx.options["$skiptoken"]) if "$skiptoken" in ctx.options else None
    upto, at = _window(ctx, position)
    phase = "changed"
    after_version = since
    if position is not None:
        phase = position.extra.get("phase", "changed")
        try:
            after_version = int(position.last[0] or since)
        except ValueError:
            raise INVALID_COOKIE from None
        if phase not in ("changed", "deleted") or position.columns != ["versionnumber"]:
            raise INVALID_COOKIE
    columns = _columns(ctx, entity)
    items: list[dict[str, Any]] = []
    more = False
    last_version = after_version
    if phase == "changed":
        changed = store.changed_rows(
            entity.logical_name, since=since, upto=upto, after_version=after_version, limit=size + 1
        )
        if len(changed) > size:
            more = True
            changed = changed[:size]
        items.extend(entity_json(ctx, entity, r, columns, []) for r in changed)
        if changed:
            last_version = int(str(changed[-1]["versionnumber"]))
        if not more:
            phase, last_version = "deleted", since
    if phase == "deleted" and not more:
        budget = size - len(items)
        deleted = store.deleted_ids(
            entity.logical_name, since=since, upto=upto, after_version=last_version, limit=budget + 1
        )
        if len(deleted) > budget:
            more = True
            deleted = deleted[:budget]
        context = f"{ctx.base_url}$metadata#{entity.entity_set_name}/$deletedEntity"
        items.extend({"@odata.context": context, "id": str(i), "reason": "deleted"} for i, _ in deleted)
        if deleted:
            last_version = deleted[-1][1]
    document: dict[str, Any] = {
        "@odata.context": f"{ctx.base_url}$metadata#{entity.entity_set_name}{context_fragment(ctx)}/$delta"
    }
    if not more:
        document["@odata.deltaLink"] = delta_link(ctx, entity, make_token(upto, at))
    document["value"] = items
    if more:
        cookie = PagingPosition(
            page=position.page + 1 if position is not None else 1,
            columns=["versionnumber"],
            last=[str(last_version)],
            first=[str(after_version)],
            tracking=True,
            extra={"phase": phase, "upto": str(upto), "at": at.isoformat()},
        )
        document["@odata.nextLink"] = next_link(ctx.request_url, encode_skiptoken(cookie, pk="versionnumber"))
    extra = (["odata.track-changes"] if ctx.prefs.track_changes else []) + (
        [f"odata.maxpagesize={size}"] if applied else []
    )
    return ctx.json(200, document, applied_preferences(ctx, *extra))


def count_changes(ctx: Ctx, entity: EntityDef) -> ODataResponse:
    """``GET <set>/$count?$deltatoken=...``: how many changes (new/updated + deleted) the token would return."""
    if not entity.change_tracking:
        raise not_tracked(entity)
    since = check_token(ctx, ctx.options["$deltatoken"])
    store = ctx.emulator.store
    upto = store.version
    changed = store.changed_rows(
        entity.logical_name, since=since, upto=upto, after_version=since, limit=MAX_CHANGES
    )
    deleted = store.deleted_ids(
        entity.logical_name, since=since, upto=upto, after_version=since, limit=MAX_CHANGES
    )
    return ODataResponse(200, {"Content-Type": "text/plain"}, str(len(changed) + len(deleted)).encode())
