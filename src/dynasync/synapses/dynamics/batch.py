"""``$batch`` on the wire: build a multipart/mixed request of independent operations and parse the answer."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from dynasync.synapses.dynamics.client import DataverseClient, encode_json

__all__ = ["BatchPart", "BatchResult", "build_batch", "parse_batch_response", "send_batch"]

_BOUNDARY = re.compile(r'boundary="?([^";,\s]+)"?', re.IGNORECASE)
_STATUS = re.compile(r"^HTTP/1\.[01]\s+(\d{3})")


@dataclass(frozen=True, slots=True)
class BatchPart:
    """One inner request; ``url`` relative to the API base (or absolute on the org)."""

    method: str
    url: str
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BatchResult:
    """One inner response."""

    status: int
    headers: httpx.Headers
    body: bytes

    def json(self) -> Any:
        """The parsed JSON body, or None when empty or not JSON."""
        try:
            return orjson.loads(self.body) if self.body.strip() else None
        except orjson.JSONDecodeError:
            return None


def build_batch(parts: Sequence[BatchPart], api_base: str, boundary: str) -> bytes:
    """Render ``parts`` as independent operations of one ``$batch`` body (CRLF lines, absolute inner URLs)."""
    chunks: list[bytes] = []
    base = httpx.URL(api_base)
    for part in parts:
        lines = [f"--{boundary}", "Content-Type: application/http", "Content-Transfer-Encoding: binary", ""]
        lines.append(f"{part.method.upper()} {base.join(part.url)} HTTP/1.1")
        headers = dict(part.headers)
        payload = b""
        if part.body is not None:
            headers.setdefault("Content-Type", "application/json; type=entry")
            payload = encode_json(part.body)
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines += ["", ""]
        chunks.append("\r\n".join(lines).encode() + payload + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks)


def _split(text: str, boundary: str) -> list[str]:
    parts: list[str] = []
    current: list[str] | None = None
    for raw in text.split("\n"):
        line = raw.rstrip("\r")
        if line.strip() == f"--{boundary}--":
            break
        if line.strip() == f"--{boundary}":
            if current is not None:
                parts.append("\n".join(current))
            current = []
        elif current is not None:
            current.append(line)
    if current is not None:
        parts.append("\n".join(current))
    return parts


def _headers(block: str) -> httpx.Headers:
    headers = httpx.Headers()
    for line in block.split("\n"):
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip()] = value.strip()
    return headers


def parse_batch_response(content_type: str, body: bytes) -> list[BatchResult]:
    """Parse a multipart ``$batch`` answer into inner responses, in order (changesets flattened)."""
    found = _BOUNDARY.search(content_type)
    if found is None:
        raise ValueError(f"the $batch answer is not multipart ({content_type!r})")
    results: list[BatchResult] = []
    for part in _split(body.decode("utf-8", "replace"), found.group(1)):
        part_head, _, content = part.lstrip("\n").partition("\n\n")
        part_headers = _headers(part_head)
        if "multipart/mixed" in part_headers.get("content-type", "").lower():
            results += parse_batch_response(part_headers["content-type"], content.encode())
            continue
        content = content.lstrip("\n")
        status_line, _, rest = content.partition("\n")
        matched = _STATUS.match(status_line.strip())
        if matched is None:
            raise ValueError(f"a $batch answer part has no status line: {status_line[:80]!r}")
        head, _, inner_body = rest.partition("\n\n")
        results.append(BatchResult(int(matched.group(1)), _headers(head), inner_body.strip().encode()))
    return results


async def send_batch(
    client: DataverseClient,
    parts: Sequence[BatchPart],
    *,
    continue_on_error: bool = True,
    idempotent: bool | None = None,
    table: str | None = None,
) -> list[BatchResult]:
    """POST one ``$batch`` of independent operations; return one result per part (missing ones: not run).

    The batch is retried after a dropped connection or 5xx only when ``idempotent`` (default: no part is a
    POST; creates that carry their own primary key are safe to repeat too).
    """
    boundary = f"batch_{uuid.uuid4()}"
    content = build_batch(parts, client.api_base, boundary)
    response = await client.post(
        "$batch",
        content=content,
        content_type=f'multipart/mixed; boundary="{boundary}"',
        prefer="odata.continue-on-error" if continue_on_error else None,
        idempotent=all(p.method.upper() != "POST" for p in parts) if idempotent is None else idempotent,
        table=table,
        record_write=False,
    )
    return parse_batch_response(response.headers.get("Content-Type", ""), response.body)
