"""Record contract of the UDM store: upsert diffs, versions, policy, match keys, deletes, change iteration."""

from __future__ import annotations

import datetime as dt
import tracemalloc

import pytest

from dynasync.clock import FrozenClock
from dynasync.udm import store_codec as codec
from dynasync.udm.store import IncomingRow, UdmStore
from dynasync.udm.store_types import WrittenRow

from .conftest import account_entity, contact_entity

T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def accounts(store: UdmStore) -> UdmStore:
    store.ensure_entity(account_entity())
    store.ensure_entity(contact_entity())
    return store


def test_upsert_reports_old_and_new_per_field_and_bumps_version(accounts: UdmStore) -> None:
    created = accounts.upsert("account", {"name": "A", "employees": 1})
    assert created.action == "created" and created.version > 0
    updated = accounts.upsert("account", {"name": "B", "employees": 1}, udm_id=created.udm_id)
    assert updated.action == "updated" and updated.version > created.version
    assert [(c.field, c.old, c.new, c.applied) for c in updated.changes] == [("name", "A", "B", True)]
    same = accounts.upsert("account", {"name": "B"}, udm_id=created.udm_id)
    assert same.action == "unchanged" and same.version == updated.version and same.changes == ()
    assert accounts.max_version() == updated.version
    record = accounts.get("account", created.udm_id)
    assert record is not None and record.version == updated.version and record.values["name"] == "B"
    assert set(record.field_updated_at) == {"name", "employees"}


def test_latest_update_wins_per_field(accounts: UdmStore) -> None:
    result = accounts.apply_upserts(
        "account", "dynamics", "account", [IncomingRow("x1", {"name": "A", "employees": 1}, modified_on=T0)]
    )
    udm_id = result.rows[0].udm_id
    accounts.upsert(
        "account", {"name": "edited in UDM"}, udm_id=udm_id, changed_at=T0 + dt.timedelta(hours=2)
    )
    late = IncomingRow("x1", {"name": "older source", "employees": 5}, modified_on=T0 + dt.timedelta(hours=1))
    outcome = accounts.apply_upserts("account", "dynamics", "account", [late]).rows[0]
    assert outcome.action == "updated"
    by_field = {c.field: c for c in outcome.changes}
    assert by_field["name"].applied is False and by_field["name"].decision == "latest_update_wins: udm newer"
    assert (
        by_field["employees"].applied is True
        and by_field["employees"].decision == "latest_update_wins: source newer"
    )
    record = accounts.get("account", udm_id)
    assert record is not None and record.values["name"] == "edited in UDM" and record.values["employees"] == 5


def test_match_key_attaches_case_insensitively(accounts: UdmStore) -> None:
    existing = accounts.upsert("contact", {"email": "Ann@Example.COM", "lastname": "Smith"})
    result = accounts.apply_upserts(
        "contact",
        "dynamics",
        "contact",
        [IncomingRow("c1", {"email": "ann@example.com", "lastname": "Smith-Jones"}, modified_on=T0)],
    )
    row = result.rows[0]
    assert row.action == "attached" and row.udm_id == existing.udm_id
    assert accounts.count("contact") == 1
    link = accounts.get_link("dynamics", "contact", "c1")
    assert link is not None and link.udm_id == existing.udm_id
    found = accounts.find_by_match_key("contact", {"email": "ANN@example.com"})
    assert found is not None and found.id == existing.udm_id and found.values["lastname"] == "Smith-Jones"
    assert accounts.find_by_match_key("contact", {"email": "nobody@example.com"}) is None


def test_match_key_never_attaches_two_rows_of_one_synapse(accounts: UdmStore) -> None:
    rows = [
        IncomingRow("c1", {"email": "dup@example.com"}),
        IncomingRow("c2", {"email": "DUP@example.com"}),
    ]
    result = accounts.apply_upserts("contact", "dynamics", "contact", rows)
    assert [r.action for r in result.rows] == ["created", "created"]
    assert result.rows[0].udm_id != result.rows[1].udm_id
    # another synapse attaches to the oldest of them
    other = accounts.apply_upserts(
        "contact", "salesforce", "Contact", [IncomingRow("s1", {"email": "dup@EXAMPLE.com"})]
    )
    assert other.rows[0].action == "attached" and other.rows[0].udm_id == result.rows[0].udm_id


def test_same_external_row_twice_in_one_page(accounts: UdmStore) -> None:
    rows = [
        IncomingRow("x1", {"name": "first"}, modified_on=T0),
        IncomingRow("x1", {"name": "second"}, modified_on=T0),
    ]
    result = accounts.apply_upserts("account", "dynamics", "account", rows)
    assert [r.action for r in result.rows] == ["created", "updated"]
    assert result.rows[0].udm_id == result.rows[1].udm_id
    record = accounts.get("account", result.rows[0].udm_id)
    assert record is not None and record.values["name"] == "second" and accounts.count("account") == 1


def test_deletes_and_resurrection(accounts: UdmStore, clock: FrozenClock) -> None:
    result = accounts.apply_upserts(
        "account", "dynamics", "account", [IncomingRow("x1", {"name": "A"}, modified_on=T0)]
    )
    udm_id = result.rows[0].udm_id
    assert accounts.apply_deletes("account", "dynamics", "account", ["x1", "unknown"]) == [udm_id]
    assert accounts.apply_deletes("account", "dynamics", "account", ["x1"]) == []
    record = accounts.get("account", udm_id)
    assert record is not None and record.deleted
    assert accounts.count("account") == 0 and accounts.count("account", include_deleted=True) == 1
    # a change older than the delete does not bring it back; a newer one does
    older = T0 - dt.timedelta(minutes=1)
    stale = accounts.apply_upserts(
        "account", "dynamics", "account", [IncomingRow("x1", {"name": "B"}, modified_on=older)]
    )
    assert stale.rows[0].action == "unchanged"
    assert stale.rows[0].changes[0].decision == "latest_update_wins: udm delete newer"
    clock.advance(dt.timedelta(minutes=5))
    fresh = IncomingRow("x1", {"name": "C"}, modified_on=T0 + dt.timedelta(hours=1))
    assert accounts.apply_upserts("account", "dynamics", "account", [fresh]).rows[0].action == "updated"
    record = accounts.get("account", udm_id)
    assert record is not None and not record.deleted and record.values["name"] == "C"
    assert accounts.mark_deleted("account", udm_id) is True
    assert accounts.mark_deleted("account", udm_id) is False
    assert accounts.mark_deleted("account", "no-such-id") is False


def test_iter_changed_skips_records_verified_for_the_destination(accounts: UdmStore) -> None:
    start = accounts.max_version()

    def changed_for(destination: str) -> list[str]:
        return [r.id for r in accounts.iter_changed("account", after_version=start, destination=destination)]

    # A create from a row verifies its link only when the caller says the row holds every written value.
    plain = accounts.apply_upserts(
        "account", "dynamics", "account", [IncomingRow("x0", {"name": "partial"}, modified_on=T0)]
    ).rows[0]
    result = accounts.apply_upserts(
        "account",
        "dynamics",
        "account",
        [IncomingRow("x1", {"name": "from dynamics"}, modified_on=T0)],
        verify_creates=True,
    )
    udm_id = result.rows[0].udm_id
    local = accounts.upsert("account", {"name": "made in UDM"})
    assert changed_for("dynamics") == [plain.udm_id, local.udm_id]
    assert changed_for("salesforce") == [plain.udm_id, udm_id, local.udm_id]
    # A change read from a verified row keeps it verified; a UDM edit does not.
    accounts.apply_upserts(
        "account", "dynamics", "account", [IncomingRow("x1", {"name": "renamed there"}, modified_on=T0)]
    )
    assert changed_for("dynamics") == [plain.udm_id, local.udm_id]
    edit = accounts.upsert("account", {"name": "edited"}, udm_id=udm_id, changed_at=T0 + dt.timedelta(days=1))
    assert changed_for("dynamics") == [plain.udm_id, local.udm_id, udm_id]
    # A refused change leaves the row behind the record: not verified.
    older = IncomingRow("x1", {"name": "stale"}, modified_on=T0 + dt.timedelta(hours=1))
    accounts.apply_upserts("account", "dynamics", "account", [older])
    assert changed_for("dynamics")[-1] == udm_id
    # A write that sent only some values is not proof; a complete one is; so is a check that found it equal.
    now = accounts.get("account", udm_id)
    assert now is not None
    accounts.mark_written_many("dynamics", "account", "account", [WrittenRow("x1", udm_id, now.version, "h")])
    assert udm_id in changed_for("dynamics")
    accounts.mark_written_many(
        "dynamics", "account", "account", [WrittenRow("x1", udm_id, now.version, "h", complete=True)]
    )
    assert changed_for("dynamics") == [plain.udm_id, local.udm_id]
    accounts.mark_verified("dynamics", "account", {plain.udm_id: plain.version})
    assert changed_for("dynamics") == [local.udm_id]
    # The row now holds a value the UDM refuses: no longer verified, though the record's version did not move.
    refused = IncomingRow("x1", {"name": "stale again"}, modified_on=T0 + dt.timedelta(hours=2))
    assert accounts.apply_upserts("account", "dynamics", "account", [refused]).rows[0].version == now.version
    assert changed_for("dynamics") == [local.udm_id, udm_id]
    assert [
        r.id for r in accounts.iter_changed("account", after_version=edit.version)
    ] == []  # marks keep versions


def test_streaming_iteration_keeps_memory_flat(accounts: UdmStore) -> None:
    big = "n" * 2000
    for page in range(4):
        rows = [IncomingRow(f"x{page}-{i}", {"name": f"n{i}", "notes": big}) for i in range(1000)]
        with accounts.transaction() as tx:
            tx.apply_upserts("account", "dynamics", "account", rows)
    tracemalloc.start()
    try:
        seen = 0
        last = ""
        for record in accounts.iter_records("account", batch_size=100):
            assert record.id > last
            last = record.id
            seen += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == 4000
    # 4,000 records carry over 8 MB of notes; streaming holds one batch of them at a time.
    assert peak < 3_000_000, peak
    changed = sum(1 for _ in accounts.iter_changed("account", after_version=0, batch_size=250))
    assert changed == 4000


def test_field_times_are_decoded_on_first_use_and_equal_the_eager_ones() -> None:
    when = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    later = when + dt.timedelta(hours=1)
    text = codec.encode_times({"name": when, "employees": later})
    values = {"name": "A", "employees": 3, "city": None}
    lazy = codec.LazyFieldTimes(text, values)
    assert lazy._decoded is None  # nothing decoded yet
    assert lazy == codec.field_times(codec.decode_times(text), values)
    assert dict(lazy) == {"name": when, "employees": later} and len(lazy) == 2 and lazy["name"] == when
    created = codec.LazyFieldTimes(codec.created_times(when), values)
    assert dict(created) == {"name": when, "employees": when}  # the default covers fields with a value
    assert dict(codec.LazyFieldTimes(None, values)) == {}
