"""The compiled row reader: same records as the per-value conversion it replaced, label modes, row reuse."""

from __future__ import annotations

import copy
import datetime as dt
import decimal
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from dynasync.errors import FatalSourceError
from dynasync.synapses.base import ColumnSpec, ColumnType, LookupRef, SourceRecord, StreamSpec
from dynasync.synapses.dynamics.row_reader import RowReader
from dynasync.synapses.dynamics.values import (
    ANNOTATIONS,
    FORMATTED,
    LOOKUP_TABLE,
    read_columns,
    record_from_row,
    wire_name,
)

C = ColumnType
F = f"@{FORMATTED}"
T = f"@{LOOKUP_TABLE}"


def col(name: str, kind: ColumnType, **kw: Any) -> ColumnSpec:
    return ColumnSpec(name, kind, **kw)


STREAM = StreamSpec(
    "account",
    "accounts",
    "accountid",
    "name",
    {
        c.name: c
        for c in [
            col("accountid", C.UUID, is_primary_id=True),
            col("name", C.STRING),
            col("description", C.TEXT),
            col("numberofemployees", C.INTEGER),
            col("versionnumber", C.BIGINT),
            col("exchangerate", C.DECIMAL),
            col("address1_latitude", C.FLOAT),
            col("revenue", C.MONEY),
            col("creditlimit", C.MONEY),
            col("donotemail", C.BOOLEAN),
            col("createdon", C.DATETIME),
            col("modifiedon", C.DATETIME),
            col("overriddencreatedon", C.DATETIME),
            col("new_founded", C.DATE),
            col("new_renewal", C.DATE),
            col("industrycode", C.CHOICE, options=((1, "Accounting"), (20, "Insurance"))),
            col("statuscode", C.CHOICE, options=((1, "Active"), (2, "Inactive"))),
            col("new_regions", C.MULTICHOICE, options=((1, "EMEA"), (2, "APAC"), (3, "AMER"))),
            col("new_tags", C.MULTICHOICE, options=((1, "A"),)),
            col("parentaccountid", C.LOOKUP, targets=("account",)),
            col("ownerid", C.LOOKUP, targets=("systemuser", "team")),
            col("primarycontactid", C.LOOKUP, targets=("contact",)),
            col("tickersymbol", C.STRING),
            col("secret", C.STRING, readable=False),
        ]
    },
)

OWNER = "B1B2C3D4-0000-0000-0000-000000000002"
PARENT = "C1B2C3D4-0000-0000-0000-000000000003"
# One annotated row as the service sends it: every type, labels, lookups (with and without a target annotation),
# nulls, a multi-select, DateOnly (also as a midnight timestamp), an offset timestamp.
ROW: dict[str, Any] = {
    "@odata.etag": 'W/"77"',
    "accountid": "A1B2C3D4-0000-0000-0000-000000000001",
    "name": "Fourth Inc",
    "description": "line 1\r\nline 2",
    f"numberofemployees{F}": "61,461",
    "numberofemployees": 61461,
    "versionnumber": 77,
    "exchangerate": 1.0,
    "address1_latitude": 51,  # a whole Double arrives as a JSON integer
    f"revenue{F}": "$424,905,161.10",
    "revenue": 424905161.1,
    "creditlimit": None,
    f"donotemail{F}": "Allow",
    "donotemail": False,
    "createdon": "2025-09-06T02:24:07Z",
    "modifiedon": "2025-11-26T23:41:49+02:00",
    "overriddencreatedon": None,
    "new_founded": "1999-12-31",
    "new_renewal": "2026-01-01T00:00:00Z",
    f"industrycode{F}": "Insurance",
    "industrycode": 20,
    f"statuscode{F}": "Active",
    "statuscode": 1,
    f"new_regions{F}": "EMEA; AMER",
    "new_regions": "1,3",
    "new_tags": "",
    f"_parentaccountid_value{F}": "Parent Co",
    "_parentaccountid_value": PARENT,
    f"_ownerid_value{T}": "team",
    f"_ownerid_value{F}": "Sales",
    "_ownerid_value": OWNER,
    "_primarycontactid_value": None,
    # "tickersymbol" is absent: a partial row leaves it out.
}


def _old_datetime(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _old_from_json(column: ColumnSpec, raw: Any, lookup_table: str | None = None) -> Any:
    if raw is None:
        return None
    kind = column.type
    if kind in (C.MONEY, C.DECIMAL):
        return decimal.Decimal(str(raw))
    if kind is C.FLOAT:
        return float(raw)
    if kind in (C.INTEGER, C.BIGINT, C.CHOICE):
        return int(raw)
    if kind is C.BOOLEAN:
        return bool(raw)
    if kind is C.DATETIME:
        return _old_datetime(str(raw))
    if kind is C.DATE:
        return dt.date.fromisoformat(str(raw)[:10])
    if kind is C.MULTICHOICE:
        text = str(raw).strip()
        return tuple(int(part) for part in text.split(",") if part.strip()) if text else ()
    if kind is C.LOOKUP:
        table = lookup_table or (column.targets[0] if len(column.targets) == 1 else None)
        assert table is not None
        return LookupRef(table, str(raw).lower())
    if kind is C.UUID:
        return str(raw).lower()
    return str(raw)


def reference_record(
    stream: StreamSpec, row: Mapping[str, Any], columns: Iterable[ColumnSpec]
) -> SourceRecord:
    """The per-value conversion the compiled reader replaced, as it was (kept here as the oracle)."""
    labelled = {C.CHOICE, C.MULTICHOICE, C.BOOLEAN, C.LOOKUP}
    values: dict[str, Any] = {}
    labels: dict[str, str] = {}
    for column in columns:
        name = wire_name(column)
        if name not in row:
            continue
        table = row.get(f"{name}{T}")
        values[column.name] = _old_from_json(column, row[name], str(table) if table else None)
        label = row.get(f"{name}{F}")
        if label is not None and column.type in labelled:
            labels[column.name] = str(label)
    modified = row.get("modifiedon")
    version = row.get("versionnumber")
    etag = str(row.get("@odata.etag") or "")
    return SourceRecord(
        id=str(row[stream.primary_id]).lower(),
        values=values,
        version=str(version) if version is not None else (etag.removeprefix("W/").strip('"') or None),
        modified_on=_old_datetime(str(modified)) if modified else None,
        labels=labels,
    )


def test_compiled_reader_matches_the_per_value_conversion_on_a_representative_row() -> None:
    columns = read_columns(STREAM)
    expected = reference_record(STREAM, ROW, columns)
    record = RowReader(STREAM).record(ROW)
    assert record == expected
    assert record_from_row(STREAM, ROW, columns) == expected

    values = record.values
    assert record.id == "a1b2c3d4-0000-0000-0000-000000000001" and record.version == "77"
    assert values["accountid"] == record.id
    assert values["numberofemployees"] == 61461 and values["versionnumber"] == 77
    assert (
        values["exchangerate"] == decimal.Decimal("1.0") and type(values["exchangerate"]) is decimal.Decimal
    )
    assert values["revenue"] == decimal.Decimal("424905161.1")  # the shortest text, not the binary expansion
    assert values["address1_latitude"] == 51.0 and type(values["address1_latitude"]) is float
    assert values["donotemail"] is False and values["creditlimit"] is None
    assert values["createdon"] == dt.datetime(2025, 9, 6, 2, 24, 7, tzinfo=dt.UTC)
    assert values["modifiedon"] == dt.datetime(2025, 11, 26, 21, 41, 49, tzinfo=dt.UTC)
    assert values["modifiedon"].tzinfo is dt.UTC and record.modified_on == values["modifiedon"]
    assert values["overriddencreatedon"] is None
    assert values["new_founded"] == dt.date(1999, 12, 31) and values["new_renewal"] == dt.date(2026, 1, 1)
    assert values["industrycode"] == 20 and values["new_regions"] == (1, 3) and values["new_tags"] == ()
    assert values["parentaccountid"] == LookupRef("account", PARENT.lower())
    assert values["ownerid"] == LookupRef("team", OWNER.lower())
    assert values["primarycontactid"] is None
    assert "tickersymbol" not in values and "secret" not in values
    assert record.labels == {
        "donotemail": "Allow",
        "industrycode": "Insurance",
        "statuscode": "Active",
        "new_regions": "EMEA; AMER",
        "parentaccountid": "Parent Co",
        "ownerid": "Sales",
    }  # number and money formatting are not labels


def test_version_falls_back_to_the_etag_and_modified_on_to_the_row() -> None:
    stream = StreamSpec("account", "accounts", "accountid", None, {"accountid": STREAM.columns["accountid"]})
    row = {"@odata.etag": 'W/"12"', "accountid": "X", "modifiedon": "2024-01-02T03:04:05Z"}
    record = RowReader(stream).record(row)
    assert record == reference_record(stream, row, read_columns(stream))
    assert record.version == "12" and record.modified_on == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def test_reused_plain_rows_give_the_same_records_and_annotated_rows_stay_untouched() -> None:
    columns = [c for c in read_columns(STREAM) if c.name != "ownerid"]  # no polymorphic lookup: no annotation
    plain = {k: v for k, v in ROW.items() if "@" not in k or k == "@odata.etag"}
    plain.pop("_ownerid_value")
    plain["tickersymbol"] = None
    expected = reference_record(STREAM, plain, columns)
    reader = RowReader(STREAM, columns, labels="metadata", reuse_rows=True)
    row = copy.deepcopy(plain)
    record = reader.record(row)
    assert record.values == expected.values and record.version == "77" and record.id == expected.id
    assert record.values is row  # reused, not copied

    annotated = copy.deepcopy(ROW)
    again = RowReader(STREAM, reuse_rows=True).record(annotated)
    assert again == reference_record(STREAM, ROW, read_columns(STREAM)) and annotated == ROW


def test_metadata_labels_come_from_the_option_sets() -> None:
    reader = RowReader(STREAM, labels="metadata")
    record = reader.record({**ROW, "new_tags": "1,9", "statuscode": 7})
    # Choices and multi-selects only; an option the metadata does not list (7, 9) gets no label.
    assert record.labels == {"industrycode": "Insurance", "new_regions": "EMEA; AMER"}
    assert reader.record(ROW).labels["new_regions"] == "EMEA; AMER"  # from the per-reader cache
    assert reader.record({**ROW, "industrycode": None}).labels.get("industrycode") is None


def test_annotations_asked_for_are_only_the_ones_the_columns_need() -> None:
    assert RowReader(STREAM).annotations == ANNOTATIONS
    assert RowReader(STREAM, labels="metadata").annotations == LOOKUP_TABLE  # ownerid is polymorphic
    single = [c for c in read_columns(STREAM) if c.name != "ownerid"]
    assert RowReader(STREAM, single, labels="metadata").annotations is None
    assert RowReader(STREAM, single).annotations == FORMATTED
    assert RowReader(STREAM).select == [wire_name(c) for c in read_columns(STREAM)]
    with pytest.raises(ValueError, match="labels must be one of"):
        RowReader(STREAM, labels="pretty")


def test_polymorphic_lookup_without_its_target_annotation_is_fatal() -> None:
    row = {k: v for k, v in ROW.items() if k != f"_ownerid_value{T}"}
    with pytest.raises(FatalSourceError, match="target table annotation"):
        RowReader(STREAM).record(row)


def test_split_separates_deleted_rows_and_keeps_page_order() -> None:
    deleted = {
        "@odata.context": "https://org.example.com/api/data/v9.2/$metadata#accounts/$deletedEntity",
        "id": "D1B2C3D4-0000-0000-0000-000000000009",
        "reason": "deleted",
    }
    second = {**ROW, "accountid": "E1B2C3D4-0000-0000-0000-000000000005"}
    upserts, deletes = RowReader(STREAM).split([ROW, deleted, second])
    assert [r.id for r in upserts] == [ROW["accountid"].lower(), second["accountid"].lower()]
    assert deletes == ["d1b2c3d4-0000-0000-0000-000000000009"]
