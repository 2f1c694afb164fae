"""Transactions log, runs, quarantine and sync-state contract of the UDM store."""

from __future__ import annotations

import datetime as dt

import pytest

from dynasync.clock import FrozenClock
from dynasync.errors import StoreError
from dynasync.udm.store import IncomingRow, UdmStore, WriteLogEntry

from .conftest import account_entity

T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def accounts(store: UdmStore) -> UdmStore:
    store.ensure_entity(account_entity())
    return store


def test_log_search_by_record_and_by_external_id(accounts: UdmStore, clock: FrozenClock) -> None:
    first = accounts.apply_upserts(
        "account",
        "dynamics",
        "account",
        [
            IncomingRow("x1", {"name": "A", "revenue": "10"}, modified_on=T0),
            IncomingRow("x2", {"name": "Other"}),
        ],
        run_id="r1",
    )
    udm_id = first.rows[0].udm_id
    clock.advance(dt.timedelta(minutes=1))
    accounts.apply_upserts(
        "account",
        "dynamics",
        "account",
        [IncomingRow("x1", {"name": "B"}, modified_on=T0 + dt.timedelta(minutes=1))],
        run_id="r2",
    )
    accounts.log_writes(
        "r2",
        [
            WriteLogEntry(
                "salesforce", "Account", "001", "account", udm_id, {"name": "B"}, "error: 400 bad request"
            )
        ],
    )
    events = accounts.search_log(entity="account", udm_id=udm_id)
    assert [(e.direction, e.action, e.run_id) for e in events] == [
        ("out", "write", "r2"),
        ("in", "updated", "r2"),
        ("in", "created", "r1"),
    ]
    assert events[0].outcome == "error: 400 bad request" and events[0].synapse == "salesforce"
    update = events[1]
    assert update.fields[0].field == "name" and update.fields[0].old == "A" and update.fields[0].new == "B"
    assert update.fields[0].source == "B" and update.fields[0].winning == "B"
    assert update.fields[0].decision == "latest_update_wins: source newer"
    created = {f.field: f for f in events[2].fields}
    assert created["revenue"].new == "10" and created["name"].decision == "create"
    assert [e.action for e in accounts.search_log(synapse="dynamics", external_id="x1")] == [
        "updated",
        "created",
    ]
    assert len(accounts.search_log(entity="account", udm_id=udm_id, limit=1)) == 1
    assert {e.external_id for e in accounts.search_log(run_id="r1")} == {"x1", "x2"}
    with pytest.raises(StoreError):
        accounts.search_log(udm_id=udm_id)


def test_runs(accounts: UdmStore, clock: FrozenClock) -> None:
    first = accounts.start_run()
    clock.advance(dt.timedelta(seconds=1))
    second = accounts.start_run("fixed-id")
    assert second == "fixed-id"
    with pytest.raises(StoreError, match="already exists"):
        accounts.start_run("fixed-id")
    clock.advance(dt.timedelta(seconds=5))
    accounts.finish_run(first, status="failed", summary={"errors": 2})
    runs = accounts.list_runs()
    assert [r.run_id for r in runs] == ["fixed-id", first]
    assert runs[1].status == "failed" and runs[1].summary == {"errors": 2}
    assert runs[1].ended_at == T0 + dt.timedelta(seconds=6) and runs[0].ended_at is None
    with pytest.raises(StoreError, match="unknown run"):
        accounts.finish_run("nope", status="x", summary={})


def test_quarantine_counts_attempts_and_releases(accounts: UdmStore, clock: FrozenClock) -> None:
    accounts.quarantine("dynamics", "account", "x1", "bad revenue", run_id="r1")
    clock.advance(dt.timedelta(minutes=1))
    accounts.quarantine("dynamics", "account", "x1", "still bad", run_id="r2")
    accounts.quarantine("dynamics", "contact", "c1", "bad email")
    items = accounts.list_quarantined(synapse="dynamics", stream="account")
    assert len(items) == 1
    item = items[0]
    assert item.attempts == 2 and item.error == "still bad" and item.run_id == "r2"
    assert item.first_failed_at == T0 and item.last_failed_at == T0 + dt.timedelta(minutes=1)
    assert len(accounts.list_quarantined()) == 2
    assert accounts.release_quarantined("dynamics", "account", ["x1", "x9"]) == 1
    assert [q.external_id for q in accounts.list_quarantined()] == ["c1"]


def test_cursor_state(accounts: UdmStore) -> None:
    assert accounts.get_state("dynamics", "account") is None
    accounts.put_cursor(
        "dynamics", "account", {"deltaLink": "https://x/api?$deltatoken=1"}, phase="full_load"
    )
    accounts.put_cursor(
        "dynamics", "account", {"deltaLink": "https://x/api?$deltatoken=2"}, counts={"upserts": 3}
    )
    state = accounts.get_state("dynamics", "account")
    assert state is not None
    assert state.cursor == {"deltaLink": "https://x/api?$deltatoken=2"}
    assert state.phase == "full_load" and state.counts == {"upserts": 3} and state.written_version == 0
    accounts.put_cursor("dynamics", "account", None)
    cleared = accounts.get_state("dynamics", "account")
    assert cleared is not None and cleared.cursor is None
    with pytest.raises(StoreError, match="not JSON-serialisable"):
        accounts.put_cursor("dynamics", "account", {"bad": object()})


def test_quarantine_keeps_kind_and_payload(accounts: UdmStore) -> None:
    payload = {"id": "x1", "values": {"name": "A", "revenue": "1.5"}, "version": "9"}
    accounts.quarantine("dynamics", "account", "x1", "waiting for parent", kind="pending", payload=payload)
    item = accounts.list_quarantined()[0]
    assert item.kind == "pending" and item.payload == payload
    accounts.quarantine("dynamics", "account", "x1", "bad", kind="failed")
    item = accounts.list_quarantined()[0]
    assert item.kind == "failed" and item.payload is None and item.attempts == 2
    with pytest.raises(StoreError, match="not JSON"):
        accounts.quarantine("dynamics", "account", "x2", "bad", payload={"x": object()})


def test_write_log_keeps_values_it_cannot_coerce(accounts: UdmStore) -> None:
    udm_id = accounts.upsert("account", {"name": "A"}).udm_id
    odd = {"name": "A", "parent": ("account", "guid-1"), "extra": object.__name__}
    accounts.log_writes(None, [WriteLogEntry("dynamics", "account", "x1", "account", udm_id, odd, "ok")])
    event = accounts.search_log(synapse="dynamics", external_id="x1")[0]
    assert {f.field: f.new for f in event.fields} == {
        "name": "A",
        "parent": ["account", "guid-1"],
        "extra": "object",
    }
