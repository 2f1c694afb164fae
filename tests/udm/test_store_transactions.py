"""Transaction contract of the UDM store: all-or-nothing with the cursor, persistence across reopen."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from dynasync.errors import StoreError
from dynasync.udm.model import FieldType, UdmEntity, UdmField
from dynasync.udm.store import IncomingRow, UdmStore, WriteLogEntry

from .conftest import account_entity


class Boom(Exception):
    pass


def test_exception_leaves_neither_rows_nor_cursor(store: UdmStore) -> None:
    store.ensure_entity(account_entity())
    store.put_cursor("dynamics", "account", {"delta": "v1"})
    version = store.max_version()
    with pytest.raises(Boom), store.transaction() as tx:
        result = tx.apply_upserts(
            "account", "dynamics", "account", [IncomingRow(f"x{i}", {"name": "n"}) for i in range(50)]
        )
        assert tx.count("account") == 50
        tx.put_cursor("dynamics", "account", {"delta": "v2"})
        tx.quarantine("dynamics", "account", "bad", "boom")
        tx.start_run("run-1")
        assert result.count("created") == 50
        raise Boom
    assert store.count("account", include_deleted=True) == 0
    assert store.get_links("dynamics", "account", [f"x{i}" for i in range(50)]) == {}
    state = store.get_state("dynamics", "account")
    assert state is not None and state.cursor == {"delta": "v1"}
    assert store.search_log(synapse="dynamics", external_id="x1") == []
    assert store.list_quarantined() == [] and store.get_run("run-1") is None
    assert store.max_version() == version


def test_rows_and_cursor_commit_together(store: UdmStore) -> None:
    store.ensure_entity(account_entity())
    with store.transaction() as tx:
        tx.apply_upserts("account", "dynamics", "account", [IncomingRow("x1", {"name": "n"})])
        tx.put_cursor("dynamics", "account", {"delta": "v2", "checkpoint": [1, "a"]}, phase="incremental")
    state = store.get_state("dynamics", "account")
    assert state is not None and state.cursor == {"delta": "v2", "checkpoint": [1, "a"]}
    assert state.phase == "incremental" and store.count("account") == 1


def test_a_finished_transaction_cannot_be_used(store: UdmStore) -> None:
    store.ensure_entity(account_entity())
    with store.transaction() as tx:
        pass
    with pytest.raises(StoreError, match="transaction has ended"):
        tx.count("account")


def test_entity_created_in_a_rolled_back_transaction_is_forgotten(store: UdmStore) -> None:
    with pytest.raises(Boom), store.transaction() as tx:
        tx.ensure_entity(UdmEntity("ghost", {"a": UdmField("a", FieldType.STRING)}))
        assert "ghost" in tx.entities()
        raise Boom
    assert "ghost" not in store.entities()
    with pytest.raises(StoreError, match="unknown UDM entity"):
        store.count("ghost")
    store.ensure_entity(UdmEntity("ghost", {"a": UdmField("a", FieldType.STRING)}))
    assert store.count("ghost") == 0


def test_everything_survives_close_and_reopen(store: UdmStore, opener: Callable[[], UdmStore]) -> None:
    store.ensure_entity(account_entity())
    run = store.start_run()
    with store.transaction() as tx:
        result = tx.apply_upserts(
            "account",
            "dynamics",
            "account",
            [IncomingRow("x1", {"name": "n", "revenue": "12.5"})],
            run_id=run,
        )
        tx.put_cursor("dynamics", "account", {"delta": "v9"})
        tx.put_written_version("dynamics", "account", 3)
        tx.mark_stream_run(
            "dynamics", "account", started_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC), counts={"read": 1}
        )
        tx.quarantine("dynamics", "account", "x2", "bad value", run_id=run)
        tx.log_writes(
            run,
            [
                WriteLogEntry(
                    "dynamics", "account", "x1", "account", result.rows[0].udm_id, {"name": "n"}, "ok"
                )
            ],
        )
    store.finish_run(run, status="succeeded", summary={"created": 1})
    udm_id = result.rows[0].udm_id
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.count("account")

    again = opener()
    record = again.get("account", udm_id)
    assert (
        record is not None
        and record.values["name"] == "n"
        and str(record.values["revenue"]).startswith("12.5")
    )
    link = again.get_link("dynamics", "account", "x1")
    assert link is not None and link.udm_id == udm_id
    state = again.get_state("dynamics", "account")
    assert state is not None and state.cursor == {"delta": "v9"} and state.written_version == 3
    assert state.counts == {"read": 1} and state.last_run_start == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    info = again.get_run(run)
    assert info is not None and info.status == "succeeded" and info.summary == {"created": 1}
    assert [q.external_id for q in again.list_quarantined()] == ["x2"]
    assert [e.direction for e in again.search_log(entity="account", udm_id=udm_id)] == ["out", "in"]


def test_sqlite_store_runs_in_wal_mode(tmp_path: object) -> None:
    from dynasync.udm.store import open_store

    with open_store(f"sqlite:///{tmp_path}/sub/dir/udm.db") as store, store.transaction(write=False) as tx:
        assert tx.connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert tx.connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert tx.connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_unsupported_url_is_refused() -> None:
    from dynasync.udm.store import open_store

    with pytest.raises(StoreError, match="unsupported UDM store database 'mysql'"):
        open_store("mysql://localhost/x")
    with pytest.raises(StoreError, match="invalid UDM store URL"):
        open_store("not a url")
