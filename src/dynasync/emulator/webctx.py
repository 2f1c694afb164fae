"""Per-request context of the emulated Web API: query options, preferences, keys, URLs and response builders."""

from __future__ import annotations

import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from dynasync.emulator import odata
from dynasync.emulator.catalog import EntityDef
from dynasync.emulator.errors import EmulatorError, not_implemented
from dynasync.emulator.http_types import ODataRequest, ODataResponse
from dynasync.emulator.odata_ast import And, Compare, Literal, Node, Property
from dynasync.emulator.paging import Preferences, parse_prefer
from dynasync.emulator.serialize import JSON_TYPE, json_bytes
from dynasync.emulator.values import Row

if TYPE_CHECKING:
    from dynasync.emulator.app import Emulator

SUPPORTED_OPTIONS = frozenset(
    {
        "$select",
        "$filter",
        "$orderby",
        "$top",
        "$expand",
        "$count",
        "$skiptoken",
        "$deltatoken",
        "$apply",
        "$id",
    }
)


# Dataverse query parameters the emulator does not implement: refused by name, never silently ignored.
UNSUPPORTED_PARAMETERS = {
    "fetchXml": "FetchXML queries (?fetchXml=)",
    "sql": "the SQL endpoint (?sql=)",
    "savedQuery": "saved queries (?savedQuery=)",
    "userQuery": "user queries (?userQuery=)",
}


def parse_query(query: str) -> tuple[dict[str, str], dict[str, str]]:
    """Split a raw query string into OData options (``$x``) and parameter aliases (``@p``); others are dropped.

    Raises:
        EmulatorError: 400 for options the service does not support (``$skip``, ``$search``, ``$format``...)
            or given twice.
    """
    options: dict[str, str] = {}
    aliases: dict[str, str] = {}
    for part in query.split("&"):
        if not part:
            continue
        raw_name, _, raw_value = part.partition("=")
        name = urllib.parse.unquote_plus(raw_name)
        value = urllib.parse.unquote_plus(raw_value)
        if name.startswith("$"):
            if name not in SUPPORTED_OPTIONS:
                raise EmulatorError(400, "0x80060888", f"The query parameter '{name}' is not supported.")
            if name in options:
                raise EmulatorError(
                    400,
                    "0x80060888",
                    f"Query option '{name}' was specified more than once, but it must be specified at most once.",
                )
            options[name] = value
        elif name.startswith("@"):
            aliases[name] = value
        elif name in UNSUPPORTED_PARAMETERS:
            raise not_implemented(UNSUPPORTED_PARAMETERS[name])
    return options, aliases


def guid_key_error(entity: EntityDef) -> EmulatorError:
    """The 400 for a key segment that names no declared key."""
    full = f"Microsoft.Dynamics.CRM.{entity.logical_name}"
    return EmulatorError(
        400,
        "0x80060890",
        f"The key in the request URI is not valid for resource '{full}'. Ensure that the names and number of key "
        f"properties match the declared or alternate key properties for the resource '{full}'.",
    )


def not_found(entity: EntityDef, row_id: uuid.UUID | str) -> EmulatorError:
    """The service's 404 for a missing row."""
    return EmulatorError(404, "0x80040217", f"{entity.logical_name} With Id = {row_id} Does Not Exist")


def segment_not_found(segment: str) -> EmulatorError:
    """The service's 404 for a path segment that names nothing."""
    return EmulatorError(404, "0x80060888", f"Resource not found for the segment '{segment}'.")


@dataclass(slots=True)
class Ctx:
    """Everything one Web API request handler needs."""

    emulator: Emulator
    request: ODataRequest
    options: dict[str, str]
    aliases: dict[str, str]
    prefs: Preferences
    content_ids: dict[str, str] = field(default_factory=dict)  # $batch: Content-ID -> entity URL
    created_url: str | None = None  # set by writes: the URL of the row created or updated
    plans: dict[int, Any] = field(default_factory=dict)  # serialisation plans per column list (one request)
    names: dict[Any, str | None] = field(
        default_factory=dict
    )  # primary names of lookup targets (one request)

    @classmethod
    def build(cls, emulator: Emulator, request: ODataRequest) -> Ctx:
        """Parse options and preferences of ``request``."""
        options, aliases = parse_query(request.query)
        return cls(emulator, request, options, aliases, parse_prefer(request.headers.get("prefer")))

    @property
    def base_url(self) -> str:
        """The absolute service root, ending with ``/``."""
        return self.request.base_url

    @property
    def org_url(self) -> str:
        """The environment URL (scheme and host), without trailing slash."""
        parts = urllib.parse.urlsplit(self.request.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def request_url(self) -> str:
        """The absolute URL of this request, query string verbatim."""
        url = self.base_url + urllib.parse.quote(self.request.path, safe="/()=',:@$!*;+&-._~")
        return f"{url}?{self.request.query}" if self.request.query else url

    @property
    def caller(self) -> uuid.UUID | None:
        """The systemuserid the auth check resolved (None for control-plane writes)."""
        return uuid.UUID(self.request.caller_id) if self.request.caller_id else None

    def header(self, name: str) -> str | None:
        """A request header by lower-case name."""
        return self.request.headers.get(name)

    def entity_url(self, entity: EntityDef, row_id: uuid.UUID) -> str:
        """``<service root><set>(<id>)``."""
        return f"{self.base_url}{entity.entity_set_name}({row_id})"

    def entity_by_set(self, name: str) -> EntityDef:
        """The table behind entity set ``name`` (case-sensitive); 404 otherwise."""
        entity = self.emulator.catalog.by_set_name(name)
        if entity is None:
            raise segment_not_found(name)
        return entity

    def json_body(self) -> dict[str, Any]:
        """The request body as a JSON object; 400 when it is not one."""
        if not self.request.body.strip():
            raise EmulatorError(400, "0x80048d19", "The request body is empty; a JSON object was expected.")
        try:
            body = orjson.loads(self.request.body)
        except orjson.JSONDecodeError as exc:
            raise EmulatorError(400, "0x80048d19", f"Invalid JSON. {exc}") from None
        if not isinstance(body, dict):
            raise EmulatorError(400, "0x80048d19", "Invalid JSON. A JSON object was expected.")
        return body

    # -- keys -------------------------------------------------------------------------------------------

    def find_key(self, entity: EntityDef, key_text: str) -> tuple[uuid.UUID | None, dict[str, object]]:
        """Resolve a key segment's text (inside the parentheses) to an existing row id.

        Returns:
            ``(id, alternate_key_values)``: id is None when an alternate key matches no row; the dict holds
            the alternate key's column values by logical name (empty for primary-key addressing).
        """
        key = odata.parse_key(key_text)
        if isinstance(key, uuid.UUID):
            return key, {}
        if set(key) == {entity.primary_id}:
            value = key[entity.primary_id]
            if isinstance(value, uuid.UUID):
                return value, {}
            try:
                return uuid.UUID(str(value)), {}
            except ValueError:
                raise guid_key_error(entity) from None
        values = self.alternate_key_values(entity, key)
        return self.find_alternate(entity, values), values

    def find_alternate(self, entity: EntityDef, values: Mapping[str, object]) -> uuid.UUID | None:
        """The id of the row whose alternate-key columns (logical names) hold ``values``, or None."""
        rows = self.emulator.store.query(
            entity.logical_name, filter=key_filter(entity, values), orderby=[], after=None, limit=2
        )
        return _row_id(entity, rows[0]) if rows else None

    def alternate_key_values(self, entity: EntityDef, key: Mapping[str, object]) -> dict[str, object]:
        """Map key segment names (``_x_value`` allowed for lookups) to a declared alternate key's columns."""
        values: dict[str, object] = {}
        for name, value in key.items():
            logical = name[1:-6] if name.startswith("_") and name.endswith("_value") else name
            values[logical] = value
        for declared in entity.keys:
            if set(declared.attributes) == set(values):
                return values
        raise guid_key_error(entity)

    def existing_id(self, entity: EntityDef, key_text: str) -> uuid.UUID:
        """Like :meth:`find_key` but 404 when no row matches."""
        row_id, _ = self.find_key(entity, key_text)
        if row_id is None or self.emulator.store.get(entity.logical_name, row_id) is None:
            raise not_found(entity, row_id if row_id is not None else key_text)
        return row_id

    # -- responses --------------------------------------------------------------------------------------

    def json(self, status: int, document: object, headers: Mapping[str, str] | None = None) -> ODataResponse:
        """A JSON response with the service's content type."""
        all_headers = {"Content-Type": JSON_TYPE}
        if headers:
            all_headers.update(headers)
        return ODataResponse(status, all_headers, json_bytes(document))

    def no_content(self, headers: Mapping[str, str] | None = None) -> ODataResponse:
        """204."""
        return ODataResponse(204, dict(headers or {}))


def _row_id(entity: EntityDef, row: Row) -> uuid.UUID:
    value = row[entity.primary_id]
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def row_id(entity: EntityDef, row: Row) -> uuid.UUID:
    """The primary key of ``row``."""
    return _row_id(entity, row)


def key_filter(entity: EntityDef, values: Mapping[str, object]) -> Node:
    """A ``$filter`` tree matching every column (by logical name) of an alternate key."""
    nodes: list[Node] = []
    for name, value in values.items():
        attribute = entity.attribute(name)
        wire = attribute.odata_name if attribute is not None else name
        nodes.append(Compare("eq", Property((wire,)), _literal(value)))
    node = nodes[0]
    for extra in nodes[1:]:
        node = And(node, extra)
    return node


def _literal(value: object) -> Literal:
    if value is None:
        return Literal(None, "null")
    if isinstance(value, bool):
        return Literal(value, "bool")
    if isinstance(value, int):
        return Literal(value, "int")
    if isinstance(value, uuid.UUID):
        return Literal(value, "guid")
    if isinstance(value, float):
        return Literal(value, "float")
    return Literal(value, "string")
