"""``$batch``: multipart/mixed parsing, atomic changesets with Content-ID references, the multipart response."""

from __future__ import annotations

import http
import re
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dynasync.emulator.errors import EmulatorError
from dynasync.emulator.http_types import ODataRequest, ODataResponse
from dynasync.emulator.paging import parse_prefer
from dynasync.emulator.webapi import dispatch, error_response
from dynasync.emulator.webctx import Ctx

if TYPE_CHECKING:
    from dynasync.emulator.app import Emulator

_BOUNDARY = re.compile(r'boundary="?([^";,\s]+)"?', re.IGNORECASE)
_REQUEST_LINE = re.compile(r"^(GET|POST|PATCH|PUT|DELETE)\s+(.+?)(?:\s+HTTP/1\.[01])?$", re.IGNORECASE)
# Outer-request headers that apply to every inner request unless the part sets them itself.
PROPAGATED = (
    "callerobjectid",
    "mscrmcallerid",
    "mscrm.bypasscustompluginexecution",
    "mscrm.suppressduplicatedetection",
    "mscrm.bypassbusinesslogicexecution",
    "mscrm.solutionuniquename",
    "consistency",
)
STREAMING_JSON = "application/json; odata.metadata=minimal; odata.streaming=true"


def _bad(message: str) -> EmulatorError:
    return EmulatorError(400, "0x80060888", message)


@dataclass(slots=True)
class Operation:
    """One inner request of a batch."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    content_id: str | None


@dataclass(slots=True)
class Changeset:
    """An atomic group of write operations."""

    operations: list[Operation] = field(default_factory=list)


def boundary_of(content_type: str | None) -> str:
    """The multipart boundary of a Content-Type value; 400 when absent."""
    match = _BOUNDARY.search(content_type or "")
    if match is None or "multipart/mixed" not in (content_type or "").lower():
        raise _bad("The batch request must have a 'Content-Type' of 'multipart/mixed' with a boundary.")
    return match.group(1)


def _split_parts(text: str, boundary: str) -> list[str]:
    lines = text.split("\n")
    parts: list[str] = []
    current: list[str] | None = None
    closed = False
    for raw in lines:
        line = raw[:-1] if raw.endswith("\r") else raw
        if line.rstrip() == f"--{boundary}--":
            if current is not None:
                parts.append("\n".join(current))
            current = None
            closed = True
            break
        if line.rstrip() == f"--{boundary}":
            if current is not None:
                parts.append("\n".join(current))
            current = []
            continue
        if current is not None:
            current.append(line)
    if not closed:
        raise _bad(f"The batch body is missing the closing boundary '--{boundary}--'.")
    return parts


def _headers_and_rest(text: str) -> tuple[dict[str, str], str]:
    head, sep, rest = text.partition("\n\n")
    if not sep and not text.strip():
        return {}, ""
    headers: dict[str, str] = {}
    for line in head.split("\n"):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise _bad(f"The batch part header line '{line}' is not valid.")
        headers[name.strip().lower()] = value.strip()
    return headers, rest


def _operation(part: str) -> Operation:
    part_headers, content = _headers_and_rest(part.lstrip("\n"))
    if "application/http" not in part_headers.get("content-type", "").lower():
        raise _bad("Each batch part must have 'Content-Type: application/http'.")
    content = content.lstrip("\n")
    request_line, _, remainder = content.partition("\n")
    match = _REQUEST_LINE.match(request_line.strip())
    if match is None:
        raise _bad(f"The batch request line '{request_line.strip()}' is not valid.")
    inner_headers, body = _headers_and_rest(remainder) if remainder.strip() else ({}, "")
    if remainder.startswith("\n"):  # no headers at all: the body follows the blank line directly
        inner_headers, body = {}, remainder[1:]
    content_id = part_headers.get("content-id") or inner_headers.get("content-id")
    return Operation(
        match.group(1).upper(), match.group(2), inner_headers, body.strip("\n").encode(), content_id
    )


def parse_batch(body: bytes, content_type: str | None, limit: int) -> list[Operation | Changeset]:
    """Parse a ``$batch`` body (CRLF or LF, quoted or bare boundaries) into operations and changesets."""
    boundary = boundary_of(content_type)
    items: list[Operation | Changeset] = []
    count = 0
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("The batch body is not valid UTF-8.") from None
    for part in _split_parts(text, boundary):
        headers, content = _headers_and_rest(part.lstrip("\n"))
        if "multipart/mixed" in headers.get("content-type", "").lower():
            changeset = Changeset()
            for inner in _split_parts(content, boundary_of(headers["content-type"])):
                inner_headers, _ = _headers_and_rest(inner.lstrip("\n"))
                if "multipart/mixed" in inner_headers.get("content-type", "").lower():
                    raise _bad("Nested change sets are not supported.")
                operation = _operation(inner)
                if operation.method == "GET":
                    raise _bad("GET requests are not allowed inside a change set.")
                changeset.operations.append(operation)
            count += len(changeset.operations)
            items.append(changeset)
        else:
            operation = _operation(part)
            if "$batch" in operation.url:
                raise _bad("Nested batch requests are not supported.")
            items.append(operation)
            count += 1
    if count > limit:
        raise _bad(f"The number of requests in the batch exceeds the maximum allowed ({limit}).")
    return items


def _inner_request(outer: ODataRequest, operation: Operation, content_ids: dict[str, str]) -> ODataRequest:
    url = operation.url
    if url.startswith("$"):
        ref, _, rest = url[1:].partition("/")
        target = content_ids.get(ref)
        if target is None:
            raise _bad(f"Content-ID Reference: '${ref}' does not exist in the batch context.")
        url = target + (f"/{rest}" if rest else "")
    parts = urllib.parse.urlsplit(url)
    path = urllib.parse.unquote(parts.path)
    match = re.search(r"/api/data/v9\.[0-2]/", path)
    if match is not None:
        path = path[match.end() :]
    elif parts.scheme:
        raise _bad(f"The batch request URL '{operation.url}' is not under the Web API.")
    headers = {k: v for k, v in outer.headers.items() if k in PROPAGATED}
    headers.update(operation.headers)
    return ODataRequest(
        method=operation.method,
        path=path.lstrip("/"),
        query=parts.query,
        headers=headers,
        body=operation.body,
        base_url=outer.base_url,
        caller_id=outer.caller_id,
        client_ip=outer.client_ip,
    )


def _run(
    emulator: Emulator, outer: ODataRequest, operation: Operation, content_ids: dict[str, str]
) -> ODataResponse:
    ctx: Ctx | None = None
    try:
        request = _inner_request(outer, operation, content_ids)
        ctx = Ctx.build(emulator, request)
        ctx.content_ids = content_ids
        response = dispatch(emulator, request, ctx)
    except EmulatorError as error:
        response = error_response(error)
    response.headers.setdefault("OData-Version", "4.0")
    created = ctx.created_url if ctx is not None else None
    if response.status < 400 and operation.content_id is not None and created is not None:
        content_ids[operation.content_id] = created
    if operation.method == "GET" and response.headers.get("Content-Type", "").startswith("application/json"):
        response.headers["Content-Type"] = STREAMING_JSON
    return response


class _Rollback(Exception):
    def __init__(self, response: ODataResponse, content_id: str | None) -> None:
        super().__init__("changeset failed")
        self.response = response
        self.content_id = content_id


def _render_part(response: ODataResponse, content_id: str | None) -> str:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        lines.append(f"Content-ID: {content_id}")
    phrase = http.HTTPStatus(response.status).phrase
    lines += ["", f"HTTP/1.1 {response.status} {phrase}"]
    lines += [f"{k}: {v}" for k, v in response.headers.items()]
    lines += ["", response.body.decode("utf-8")]
    return "\r\n".join(lines)


def handle_batch(emulator: Emulator, request: ODataRequest) -> ODataResponse:
    """Answer ``POST $batch``: run parts in order; stop at the first failure unless continue-on-error."""
    items = parse_batch(
        request.body, request.headers.get("content-type"), emulator.settings.max_batch_operations
    )
    continue_on_error = parse_prefer(request.headers.get("prefer")).continue_on_error
    boundary = f"batchresponse_{uuid.uuid4()}"
    content_ids: dict[str, str] = {}
    chunks: list[str] = []
    failed = False
    for item in items:
        if isinstance(item, Operation):
            response = _run(emulator, request, item, content_ids)
            chunks.append(_render_part(response, item.content_id))
            failed = response.status >= 400
        else:
            inner = f"changesetresponse_{uuid.uuid4()}"
            try:
                with emulator.store.transaction():
                    parts = []
                    for operation in item.operations:
                        response = _run(emulator, request, operation, content_ids)
                        if response.status >= 400:
                            raise _Rollback(response, operation.content_id)
                        parts.append(_render_part(response, operation.content_id))
                body = "".join(f"--{inner}\r\n{p}\r\n" for p in parts) + f"--{inner}--"
                chunks.append(f"Content-Type: multipart/mixed; boundary={inner}\r\n\r\n{body}")
                failed = False
            except _Rollback as rollback:
                chunks.append(_render_part(rollback.response, rollback.content_id))
                failed = True
        if failed and not continue_on_error:
            break
    text = "".join(f"--{boundary}\r\n{chunk}\r\n" for chunk in chunks) + f"--{boundary}--\r\n"
    headers = {"Content-Type": f"multipart/mixed; boundary={boundary}"}
    if continue_on_error:
        headers["Preference-Applied"] = "odata.continue-on-error"
    status = 400 if failed and not continue_on_error else 200
    return ODataResponse(status, headers, text.encode("utf-8"))
