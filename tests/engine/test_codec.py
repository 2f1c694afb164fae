from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from dynasync.engine.codec import payload_to_record, record_to_payload
from dynasync.synapses.base import LookupRef, SourceRecord


def test_source_record_survives_json() -> None:
    record = SourceRecord(
        id="a1",
        values={
            "name": "Contoso",
            "revenue": Decimal("12.50"),
            "parent": LookupRef("account", "p1"),
            "since": dt.date(2020, 1, 2),
            "seen": dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC),
            "tags": (1, 3),
            "none": None,
        },
        version="42",
        modified_on=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        labels={"status": "Active"},
    )
    back = payload_to_record(json.loads(json.dumps(record_to_payload(record))))
    assert back == record
