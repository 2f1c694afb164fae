"""Reads ask the synapse for the mapped columns only (plus the id and the bookkeeping columns)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from dynasync.engine.bindings import narrow_stream
from dynasync.synapses.base import ColumnSpec, ColumnType

from .fake_synapse import make_stream
from .harness import STREAMS, World


def test_narrowed_stream_keeps_the_stream_order_and_the_bookkeeping_columns() -> None:
    stream = make_stream(
        "account",
        {
            "name": ColumnType.STRING,
            "fax": ColumnType.STRING,
            "city": ColumnType.STRING,
            "versionnumber": ColumnSpec("versionnumber", ColumnType.BIGINT, creatable=False, updatable=False),
            "modifiedon": ColumnSpec("modifiedon", ColumnType.DATETIME, creatable=False, updatable=False),
        },
    )
    narrowed = narrow_stream(stream, ["city", "name"])
    assert list(narrowed.columns) == ["accountid", "name", "city", "versionnumber", "modifiedon"]
    assert narrow_stream(stream, ["name", "city"]) == narrowed  # mapping order does not matter
    assert dataclasses.replace(narrowed, columns=stream.columns) == stream  # nothing else changes
    plain = make_stream("contact", {"name": ColumnType.STRING, "email": ColumnType.STRING})
    assert list(narrow_stream(plain, ["email"]).columns) == ["contactid", "email"]


def test_engine_reads_only_mapped_columns_and_the_same_set_every_run(tmp_path: Path) -> None:
    w = World(tmp_path)
    try:
        w.fake.insert(
            "account",
            {
                "name": "A",
                "city": "Oslo",
                "revenue": None,
                "parentaccountid": None,
                "ownerid": None,
                "notes": "not mapped",
            },
            id="a-1",
        )
        w.sync()
        w.fake.update("account", "a-1", {"notes": "changed, still not mapped"})
        w.sync()
        asked = [s for s in w.fake.read_streams if s.name == "account"]
        assert len(asked) == 2 and asked[0] == asked[1]
        full = next(s for s in STREAMS if s.name == "account")
        assert set(full.columns) - set(asked[0].columns) == {"notes"}
        assert list(asked[0].columns) == [c for c in full.columns if c != "notes"]
        users = [s for s in w.fake.read_streams if s.name == "systemuser"]
        assert list(users[0].columns) == ["systemuserid", "name"]
        record = w.udm("Account")[w.link_of("account", "a-1")]
        assert record["name"] == "A" and "notes" not in record
    finally:
        w.close()
