"""ID link contract of the UDM store: uniqueness, lookups both ways, echo recognition."""

from __future__ import annotations

import pytest

from dynasync.errors import StoreError
from dynasync.udm.store import IncomingRow, UdmStore
from dynasync.udm.store_types import WrittenRow

from .conftest import account_entity


@pytest.fixture
def accounts(store: UdmStore) -> UdmStore:
    store.ensure_entity(account_entity())
    return store


def test_links_are_unique_per_external_row_and_per_record(accounts: UdmStore) -> None:
    a = accounts.upsert("account", {"name": "A"}).udm_id
    b = accounts.upsert("account", {"name": "B"}).udm_id
    link = accounts.link("dynamics", "account", "x1", "account", a, external_version="7")
    assert link.udm_id == a and link.external_version == "7"
    with pytest.raises(StoreError, match="already linked"):
        accounts.link("dynamics", "account", "x1", "account", b)
    with pytest.raises(StoreError, match="at most one row per synapse"):
        accounts.link("dynamics", "account", "x2", "account", a)
    # another synapse may link the same record
    accounts.link("salesforce", "Account", "001", "account", a)
    assert [lk.synapse for lk in accounts.links_for_record("account", a)] == ["dynamics", "salesforce"]
    found = accounts.link_for_record("dynamics", "account", a)
    assert found is not None and found.external_id == "x1"
    assert set(accounts.get_links("dynamics", "account", ["x1", "nope"])) == {"x1"}
    assert accounts.unlink("dynamics", "account", "x1") is True
    assert accounts.unlink("dynamics", "account", "x1") is False
    accounts.link("dynamics", "account", "x2", "account", a)


def test_a_failed_link_does_not_spoil_the_transaction(accounts: UdmStore) -> None:
    a = accounts.upsert("account", {"name": "A"}).udm_id
    accounts.link("dynamics", "account", "x1", "account", a)
    with accounts.transaction() as tx:
        with pytest.raises(StoreError):
            tx.link("dynamics", "account", "x1", "account", a)
        tx.put_cursor("dynamics", "account", {"ok": True})
    state = accounts.get_state("dynamics", "account")
    assert state is not None and state.cursor == {"ok": True}


def test_apply_keeps_links_and_hashes(accounts: UdmStore) -> None:
    rows = [IncomingRow(f"x{i}", {"name": f"n{i}"}, external_version=str(i)) for i in range(1200)]
    result = accounts.apply_upserts("account", "dynamics", "account", rows)
    assert result.count("created") == 1200
    links = accounts.get_links("dynamics", "account", [f"x{i}" for i in range(1200)])
    assert len(links) == 1200
    assert links["x5"].external_version == "5"
    assert links["x5"].last_read_hash == accounts.hash_values("account", {"name": "n5"})
    assert links["x5"].synced_version == result.rows[5].version
    assert sum(1 for _ in accounts.iter_links("dynamics", "account")) == 1200
    again = accounts.apply_upserts("account", "dynamics", "account", rows[:10])
    assert again.counts() == {"unchanged": 10}


def test_echo_of_our_own_write_changes_nothing(accounts: UdmStore) -> None:
    local = accounts.upsert("account", {"name": "UDM name", "employees": 3})
    written = {"name": "UDM name", "employees": 3}
    link = accounts.mark_written(
        "dynamics",
        "account",
        "new-guid",
        entity="account",
        udm_id=local.udm_id,
        values=written,
        udm_version=local.version,
        external_version="100",
    )
    assert link.last_written_hash == accounts.hash_values("account", {"employees": 3, "name": "UDM name"})
    version = accounts.max_version()
    echo = accounts.apply_upserts(
        "account", "dynamics", "account", [IncomingRow("new-guid", written, external_version="101")]
    )
    assert echo.rows[0].action == "echo" and echo.rows[0].udm_id == local.udm_id
    assert accounts.max_version() == version
    link_after = accounts.get_link("dynamics", "account", "new-guid")
    assert link_after is not None and link_after.external_version == "101"
    real = accounts.apply_upserts(
        "account",
        "dynamics",
        "account",
        [IncomingRow("new-guid", {"name": "changed in Dynamics", "employees": 3})],
    )
    assert real.rows[0].action == "updated"
    assert [c.field for c in real.rows[0].changes] == ["name"]


def test_mark_written_refuses_a_link_to_another_record(accounts: UdmStore) -> None:
    a = accounts.upsert("account", {"name": "A"})
    b = accounts.upsert("account", {"name": "B"})
    accounts.mark_written(
        "dynamics", "account", "x1", entity="account", udm_id=a.udm_id, values={}, udm_version=a.version
    )
    with pytest.raises(StoreError, match="is linked to"):
        accounts.mark_written(
            "dynamics", "account", "x1", entity="account", udm_id=b.udm_id, values={}, udm_version=b.version
        )


def test_links_by_record_and_long_caller_hashes(accounts: UdmStore) -> None:
    rows = [IncomingRow(f"x{i}", {"name": f"n{i}"}, hash="{" + "f" * 500 + str(i) + "}") for i in range(3)]
    result = accounts.apply_upserts("account", "dynamics", "account", rows)
    ids = [r.udm_id for r in result.rows]
    links = accounts.get_links_for_records("dynamics", "account", [*ids, "missing"])
    assert set(links) == set(ids) and links[ids[2]].last_read_hash == rows[2].hash
    record = accounts.get("account", ids[0])
    assert record is not None
    link = accounts.mark_written(
        "dynamics",
        "account",
        "x0",
        entity="account",
        udm_id=ids[0],
        values={"name": "n0"},
        udm_version=record.version,
        hash="written-fingerprint",
        read_hash="read-fingerprint",
    )
    assert link.last_written_hash == "written-fingerprint" and link.last_read_hash == "read-fingerprint"


def test_unlink_many_removes_only_the_given_rows_of_that_table(accounts: UdmStore) -> None:
    ids = [accounts.upsert("account", {"name": f"A{i}"}).udm_id for i in range(4)]
    for i, udm_id in enumerate(ids[:3]):
        accounts.link("dynamics", "account", f"x{i}", "account", udm_id)
    accounts.link("salesforce", "Account", "x0", "account", ids[3])  # same id, other synapse: kept
    assert accounts.unlink_many("dynamics", "account", ["x0", "x2", "x2", "unknown"]) == 2
    assert set(accounts.get_links("dynamics", "account", ["x0", "x1", "x2"])) == {"x1"}
    assert accounts.get_link("salesforce", "Account", "x0") is not None
    assert accounts.unlink_many("dynamics", "account", []) == 0


def test_tombstones_remember_deleted_rows_per_synapse_table_and_record(accounts: UdmStore) -> None:
    a, b = (accounts.upsert("account", {"name": n}).udm_id for n in ("A", "B"))
    assert accounts.add_tombstones("dynamics", "account", "account", [(a, "x1"), (b, "x2")]) == 2
    assert accounts.tombstoned("dynamics", "account", "account", [a, b, "other"]) == {a: "x1", b: "x2"}
    assert (
        accounts.tombstoned("salesforce", "account", "account", [a]) == {}
    )  # another synapse deleted nothing
    # Deleted again under a new external id (after a re-create): the tombstone is renewed, not duplicated.
    assert accounts.add_tombstones("dynamics", "account", "account", [(a, "x3")]) == 1
    assert accounts.tombstoned("dynamics", "account", "account", [a]) == {a: "x3"}
    assert accounts.drop_tombstones("dynamics", "account", "account", [a, "other"]) == 1
    assert accounts.tombstoned("dynamics", "account", "account", [a, b]) == {b: "x2"}
    assert accounts.add_tombstones("dynamics", "account", "account", []) == 0


def test_mark_written_many_equals_marking_one_by_one(accounts: UdmStore) -> None:
    ids = [accounts.upsert("account", {"name": n}).udm_id for n in ("A", "B", "C")]
    accounts.link("dynamics", "account", "x0", "account", ids[0], external_version="1")
    accounts.link("dynamics", "account", "x1", "account", ids[1], external_version="1")
    rows = [
        WrittenRow("x0", ids[0], 5, "h0", external_version="2", read_hash="h0"),
        WrittenRow("x1", ids[1], 6, "h1"),  # no version or read state known: the stored ones stay
        WrittenRow(
            "x2", ids[2], 7, "h2", external_version="9", read_hash="h2"
        ),  # created by the write: linked
    ]
    accounts.mark_written_many("dynamics", "account", "account", rows)
    got = {x: accounts.get_link("dynamics", "account", x) for x in ("x0", "x1", "x2")}
    summary = {
        x: (lk.udm_id, lk.last_written_hash, lk.last_read_hash, lk.external_version, lk.synced_version)
        for x, lk in got.items()
        if lk is not None
    }
    assert summary == {
        "x0": (ids[0], "h0", "h0", "2", 5),
        "x1": (ids[1], "h1", None, "1", 6),
        "x2": (ids[2], "h2", "h2", "9", 7),
    }
    # The same rules as mark_written: a row linked to another record is refused, and nothing is recorded.
    with pytest.raises(StoreError, match="is linked to account"):
        accounts.mark_written_many(
            "dynamics",
            "account",
            "account",
            [WrittenRow("x1", ids[1], 8, "h9"), WrittenRow("x0", ids[2], 8, "h9")],
        )
    x1 = accounts.get_link("dynamics", "account", "x1")
    assert x1 is not None and x1.last_written_hash == "h1"
