"""Value conversion between Web API JSON and seam values (pure functions)."""

from __future__ import annotations

import datetime as dt
import decimal

import pytest

from dynasync.errors import FatalSourceError
from dynasync.synapses.base import ColumnSpec, ColumnType, LookupRef, StreamSpec
from dynasync.synapses.dynamics.values import from_json, read_columns, record_from_row, wire_value

C = ColumnType


def col(name: str, kind: ColumnType, **kw: object) -> ColumnSpec:
    return ColumnSpec(name, kind, **kw)  # type: ignore[arg-type]


def test_json_to_python_per_type() -> None:
    assert from_json(col("m", C.MONEY), 20000.1) == decimal.Decimal("20000.1")
    assert from_json(col("d", C.DATE), "2023-04-07") == dt.date(2023, 4, 7)
    assert from_json(col("t", C.DATETIME), "2023-04-07T21:59:01Z") == dt.datetime(
        2023, 4, 7, 21, 59, 1, tzinfo=dt.UTC
    )
    assert from_json(col("s", C.MULTICHOICE), "100000000,100000001") == (100000000, 100000001)
    assert from_json(col("s", C.MULTICHOICE), "") == ()
    assert from_json(col("c", C.CHOICE), 2) == 2 and from_json(col("x", C.STRING), None) is None
    poly = col("customerid", C.LOOKUP, targets=("account", "contact"))
    assert from_json(poly, "ABC", "contact") == LookupRef("contact", "abc")
    assert from_json(col("p", C.LOOKUP, targets=("contact",)), "abc") == LookupRef("contact", "abc")
    with pytest.raises(FatalSourceError, match="target table"):
        from_json(poly, "abc")


def test_record_from_row_reads_annotations_version_and_modifiedon() -> None:
    stream = StreamSpec(
        "account",
        "accounts",
        "accountid",
        "name",
        {
            "accountid": col("accountid", C.UUID, is_primary_id=True),
            "statuscode": col("statuscode", C.CHOICE),
            "ownerid": col("ownerid", C.LOOKUP, targets=("systemuser", "team")),
            "revenue": col("revenue", C.MONEY),
            "secret": col("secret", C.STRING, readable=False),
        },
    )
    row = {
        "@odata.etag": 'W/"77"',
        "accountid": "A1B2C3D4-0000-0000-0000-000000000001",
        "statuscode@OData.Community.Display.V1.FormattedValue": "Active",
        "statuscode": 1,
        "_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname": "team",
        "_ownerid_value@OData.Community.Display.V1.FormattedValue": "Sales",
        "_ownerid_value": "b1b2c3d4-0000-0000-0000-000000000002",
        "revenue@OData.Community.Display.V1.FormattedValue": "$1.00",
        "revenue": 1.0,
        "modifiedon": "2024-01-02T03:04:05Z",
    }
    record = record_from_row(stream, row, read_columns(stream))
    assert record.id == "a1b2c3d4-0000-0000-0000-000000000001" and record.version == "77"
    assert record.values["ownerid"] == LookupRef("team", "b1b2c3d4-0000-0000-0000-000000000002")
    assert record.labels == {"statuscode": "Active", "ownerid": "Sales"}  # money formatting is not a label
    assert record.modified_on == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert "secret" not in record.values


def test_python_to_json_per_type_and_clear_errors() -> None:
    when = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert wire_value(col("t", C.DATETIME), when) == "2024-05-06T05:08:09Z"
    assert wire_value(col("d", C.DATE), when) == "2024-05-06"
    assert wire_value(col("s", C.MULTICHOICE), (1, 2)) == "1,2"
    assert wire_value(col("s", C.MULTICHOICE), "1;2") == "1,2"
    assert wire_value(col("m", C.MONEY), "12.50") == decimal.Decimal("12.50")
    with pytest.raises(ValueError, match="naive"):
        wire_value(col("t", C.DATETIME), dt.datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="column 'n' \\(integer\\)"):
        wire_value(col("n", C.INTEGER), 1.5)
    with pytest.raises(ValueError, match="true/false"):
        wire_value(col("b", C.BOOLEAN), "yes")
