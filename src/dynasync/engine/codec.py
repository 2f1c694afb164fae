"""JSON form of a source record, kept with a failed or pending record so it is retried without a re-fetch."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from dynasync.synapses.base import LookupRef, SourceRecord

_TAG = "$t"


def _enc(value: Any) -> Any:
    if isinstance(value, LookupRef):
        return {_TAG: "ref", "table": value.table, "id": value.id}
    if isinstance(value, Decimal):
        return {_TAG: "dec", "v": str(value)}
    if isinstance(value, dt.datetime):
        return {_TAG: "dt", "v": value.isoformat()}
    if isinstance(value, dt.date):
        return {_TAG: "date", "v": value.isoformat()}
    if isinstance(value, tuple | list):
        return {_TAG: "tuple", "v": [_enc(v) for v in value]}
    return value


def _dec(value: Any) -> Any:
    if isinstance(value, dict) and _TAG in value:
        tag = value[_TAG]
        if tag == "ref":
            return LookupRef(str(value["table"]), str(value["id"]))
        if tag == "dec":
            return Decimal(value["v"])
        if tag == "dt":
            return dt.datetime.fromisoformat(value["v"])
        if tag == "date":
            return dt.date.fromisoformat(value["v"])
        if tag == "tuple":
            return tuple(_dec(v) for v in value["v"])
    return value


def record_to_payload(record: SourceRecord) -> dict[str, Any]:
    """Return a JSON-safe dict holding everything of a source record."""
    return {
        "id": record.id,
        "values": {k: _enc(v) for k, v in record.values.items()},
        "version": record.version,
        "modified_on": record.modified_on.isoformat() if record.modified_on else None,
        "labels": dict(record.labels),
    }


def payload_to_record(payload: Mapping[str, Any]) -> SourceRecord:
    """Rebuild a source record from :func:`record_to_payload`'s output."""
    modified = payload.get("modified_on")
    return SourceRecord(
        id=str(payload["id"]),
        values={str(k): _dec(v) for k, v in dict(payload.get("values") or {}).items()},
        version=payload.get("version"),
        modified_on=dt.datetime.fromisoformat(modified) if modified else None,
        labels={str(k): str(v) for k, v in dict(payload.get("labels") or {}).items()},
    )
