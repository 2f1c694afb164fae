from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from dynasync.engine import EngineOptions
from dynasync.errors import AuthError, ConfigError
from dynasync.mapping.spec import ConflictPolicy, ConflictRule
from dynasync.synapses.base import LookupRef

from .harness import World, make_spec


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path, page_size=3)
    yield w
    w.close()


def _account(w: World, ext_id: str, name: str, parent: str | None = None) -> None:
    w.fake.insert(
        "account",
        {
            "name": name,
            "city": None,
            "revenue": None,
            "parentaccountid": LookupRef("account", parent) if parent else None,
            "ownerid": None,
        },
        id=ext_id,
    )


def test_child_waits_for_a_parent_that_is_not_synced_yet_and_is_never_dropped(world: World) -> None:
    _account(world, "a-1", "Acme")
    world.fake.insert(
        "contact",
        {"name": "Carl", "email": "c@x.io", "parentcustomerid": LookupRef("account", "a-1")},
        id="c-1",
    )
    report = world.sync(["Contact"])  # the Account pipeline does not run: the parent stays unknown
    counts = report.entities["Contact"].synapses["dyn"]
    assert counts.pending == 1 and counts.issues[0].kind == "pending"
    contact_id = world.link_of("contact", "c-1")
    assert world.udm("Contact")[contact_id]["account"] is None  # applied without the reference meanwhile
    report = world.sync()
    assert report.entities["Contact"].synapses["dyn"].pending == 0
    assert world.udm("Contact")[contact_id]["account"] == world.link_of("account", "a-1")
    assert world.store.list_quarantined() == []
    quiet = world.sync()
    assert quiet.writes == 0 and quiet.udm_changes == 0


def test_reference_cycle_within_one_entity_across_pages(world: World) -> None:
    # a-1 -> a-5 -> a-1: each page references the other; both end up resolved in the same run.
    _account(world, "a-1", "One", parent="a-5")
    for i in (2, 3, 4):
        _account(world, f"a-{i}", f"Filler {i}")
    _account(world, "a-5", "Five", parent="a-1")
    report = world.sync()
    assert report.entities["Account"].synapses["dyn"].pending == 0
    accounts = world.udm("Account")
    assert accounts[world.link_of("account", "a-1")]["parent"] == world.link_of("account", "a-5")
    assert accounts[world.link_of("account", "a-5")]["parent"] == world.link_of("account", "a-1")


def test_unmappable_record_is_reported_kept_and_retried(world: World) -> None:
    _account(world, "a-1", "Good")
    world.fake.insert(
        "account",
        {"name": "Bad", "city": None, "revenue": "not a number", "parentaccountid": None, "ownerid": None},
        id="a-2",
    )
    _account(world, "a-3", "Also good")
    report = world.sync()
    counts = report.entities["Account"].synapses["dyn"]
    assert counts.created == 2 and counts.failed == 1
    assert counts.issues[0].record == "a-2" and counts.issues[0].direction == "read"
    [held] = world.store.list_quarantined()
    assert held.external_id == "a-2"
    # The cursor moved on, but the record is not forgotten: it is reported every run until fixed.
    assert world.sync().entities["Account"].synapses["dyn"].failed == 1
    world.fake.update("account", "a-2", {"revenue": Decimal(5)})
    report = world.sync()
    assert report.entities["Account"].synapses["dyn"].failed == 0
    assert world.store.list_quarantined() == []
    assert len(world.udm("Account")) == 3


def test_write_rejected_by_the_destination_is_reported_and_retried(world: World) -> None:
    _account(world, "a-1", "One")
    _account(world, "a-2", "Two")
    world.sync()
    one, two = world.link_of("account", "a-1"), world.link_of("account", "a-2")
    world.store.upsert("Account", {"city": "Bad"}, udm_id=one, source="udm")
    world.store.upsert("Account", {"city": "Fine"}, udm_id=two, source="udm")
    world.fake.write_failures["a-1"] = "city rejected by a plug-in"
    report = world.sync()
    counts = report.entities["Account"].synapses["dyn"]
    assert counts.written_updated == 1 and counts.write_failed == 1
    assert "plug-in" in counts.issues[0].reason
    assert world.fake.rows("account")["a-2"]["city"] == "Fine"
    assert world.sync().entities["Account"].synapses["dyn"].write_failed == 1  # retried, still refused
    del world.fake.write_failures["a-1"]
    report = world.sync()
    assert report.entities["Account"].synapses["dyn"].written_updated == 1
    assert world.fake.rows("account")["a-1"]["city"] == "Bad"
    assert world.store.list_quarantined() == []
    assert world.sync().writes == 0


def test_destination_row_changed_meanwhile_is_a_conflict_merged_next_run(world: World) -> None:
    _account(world, "a-1", "One")
    world.sync()
    udm_id = world.link_of("account", "a-1")
    world.store.upsert("Account", {"city": "Udm"}, udm_id=udm_id, source="udm")

    # The row moves on in the source between our read and our write (the hook runs before each write op).
    def meddle(table: str, index: int) -> None:
        world.fake.on_write = None
        world.fake.update("account", "a-1", {"name": "Changed meanwhile"})

    world.fake.on_write = meddle
    report = world.sync()
    assert report.entities["Account"].synapses["dyn"].write_conflicts == 1
    world.sync()
    world.sync()
    row = world.fake.rows("account")["a-1"]
    assert (row["name"], row["city"]) == ("Changed meanwhile", "Udm")
    assert world.udm("Account")[udm_id]["name"] == "Changed meanwhile"
    assert world.sync().writes == 0


def test_throttled_reads_back_off_and_resume(world: World) -> None:
    _account(world, "a-1", "One")
    world.fake.throttle_reads = 2
    report = world.sync()
    assert report.ok
    assert report.entities["User"].synapses["dyn"].throttled == 2
    assert world.slept == [1.0, 2.0]


def test_throttling_that_never_ends_fails_the_entity_not_the_run(tmp_path: Path) -> None:
    w = World(tmp_path, options=EngineOptions(max_retries=1))
    try:
        _account(w, "a-1", "One")
        w.fake.throttle_reads = 2
        report = w.sync()
        assert not report.ok
        assert report.entities["User"].error is not None and "throttled" in report.entities["User"].error
        assert report.entities["Account"].error is None
        assert len(w.udm("Account")) == 1
    finally:
        w.close()


def test_deletes_propagate_only_where_opted_in(tmp_path: Path) -> None:
    w = World(tmp_path, spec=make_spec(deletes_from_udm=True))
    try:
        _account(w, "a-1", "One")
        _account(w, "a-2", "Two")
        w.sync()
        w.store.mark_deleted("Account", w.link_of("account", "a-1"))
        report = w.sync()
        assert report.entities["Account"].synapses["dyn"].written_deleted == 1
        assert "a-1" not in w.fake.rows("account")
        quiet = w.sync()  # the tombstone comes back: nothing to do
        assert quiet.writes == 0 and quiet.udm_changes == 0
    finally:
        w.close()
    w = World(tmp_path / "no", spec=make_spec(deletes_from_udm=False))
    try:
        _account(w, "a-1", "One")
        w.sync()
        w.store.mark_deleted("Account", w.link_of("account", "a-1"))
        assert w.sync().writes == 0
        assert "a-1" in w.fake.rows("account")
    finally:
        w.close()


def test_full_reload_reconciles_deletes_the_source_did_not_report(world: World) -> None:
    for i in range(5):
        _account(world, f"a-{i}", f"A{i}")
    world.sync()
    gone = world.link_of("account", "a-2")
    del world.fake.state.rows["account"]["a-2"]  # vanished without a tombstone (e.g. an expired token window)
    world.store.put_cursor("dyn", "account", None)
    report = world.sync()
    assert report.entities["Account"].synapses["dyn"].deleted == 1
    assert gone not in world.udm("Account") and len(world.udm("Account")) == 4


def test_unknown_entity_is_a_config_error(world: World) -> None:
    with pytest.raises(ConfigError, match="Nope"):
        world.sync(["Nope"])


def test_run_every_stops_on_request(world: World) -> None:
    _account(world, "a-1", "One")
    stop = threading.Event()
    reports = []

    def on_report(report: object) -> None:
        reports.append(report)
        if len(reports) == 2:
            stop.set()

    assert world.engine.run_every(0.01, stop, on_report=on_report) == 2
    assert reports[1].udm_changes == 0  # type: ignore[attr-defined]


def test_expired_change_tracking_token_falls_back_to_a_full_reload(world: World) -> None:
    for i in range(4):
        _account(world, f"a-{i}", f"A{i}")
    world.sync()
    del world.fake.state.rows["account"]["a-1"]  # its tombstone is lost with the expired token window
    world.fake.update("account", "a-2", {"name": "Renamed"})
    world.fake.expired = {"systemuser", "account"}
    report = world.sync()
    counts = report.entities["User"].synapses["dyn"]
    assert counts.full_load and report.ok
    account = report.entities["Account"].synapses["dyn"]
    assert (account.deleted, account.updated, account.full_load) == (1, 1, True)
    assert len(world.udm("Account")) == 3
    quiet = world.sync()
    assert quiet.writes == 0 and quiet.udm_changes == 0


def test_auth_failure_is_reported_once_per_entity_and_nothing_is_written(world: World) -> None:
    _account(world, "a-1", "One")
    world.sync()
    world.store.upsert("Account", {"city": "X"}, udm_id=world.link_of("account", "a-1"), source="udm")
    world.fake.read_error = AuthError(
        "AADSTS7000215: invalid client secret", remedy="Renew the client secret."
    )
    report = world.sync()
    assert not report.ok
    assert all("AADSTS7000215" in (e.error or "") for e in report.entities.values())
    assert world.fake.write_calls == 0
    world.fake.read_error = None
    assert world.sync().entities["Account"].synapses["dyn"].written_updated == 1


def test_selected_synapse_wins_even_against_a_newer_udm_value(tmp_path: Path) -> None:
    w = World(tmp_path, spec=make_spec(conflict=ConflictPolicy(ConflictRule.SYNAPSE_WINS, synapse="dyn")))
    try:
        _account(w, "a-1", "One")
        w.sync()
        udm_id = w.link_of("account", "a-1")
        w.tick()
        w.fake.update("account", "a-1", {"name": "From Dynamics"})
        w.tick()
        w.store.upsert("Account", {"name": "From UDM"}, udm_id=udm_id, source="udm")
        report = w.sync()
        assert w.udm("Account")[udm_id]["name"] == "From Dynamics"
        assert w.fake.rows("account")["a-1"]["name"] == "From Dynamics"
        assert report.writes == 0
        assert w.sync().writes == 0
    finally:
        w.close()


def test_reject_empty_keeps_the_value_and_restores_it_in_the_source(tmp_path: Path) -> None:
    w = World(tmp_path, spec=make_spec(conflict=ConflictPolicy(reject_empty=True)))
    try:
        _account(w, "a-1", "One")
        w.sync()
        udm_id = w.link_of("account", "a-1")
        w.fake.update("account", "a-1", {"name": ""})
        report = w.sync()
        counts = report.entities["Account"].synapses["dyn"]
        # The name lost to the policy; the row's new modification time (not contested) still counts as an update.
        assert counts.updated == 1 and counts.written_updated == 1
        assert w.udm("Account")[udm_id]["name"] == "One"
        assert w.fake.rows("account")["a-1"]["name"] == "One"
        events = w.store.search_log(entity="Account", udm_id=udm_id)
        assert any("reject_empty" in f.decision for e in events for f in e.fields)
        quiet = w.sync()
        assert quiet.writes == 0 and quiet.udm_changes == 0
        assert w.store.list_quarantined() == []
    finally:
        w.close()


def test_values_settable_only_on_an_existing_row_follow_the_create(tmp_path: Path) -> None:
    w = World(tmp_path)
    try:
        w.fake.change_column("account", "city", creatable=False)
        w.sync()
        born = w.store.upsert("Account", {"name": "Born", "city": "Rome"}, source="udm")
        first = w.sync()
        counts = first.entities["Account"].synapses["dyn"]
        # Created without the value, which follows in an update in the same run: the next read finds it there.
        assert (counts.written_created, counts.written_updated) == (1, 1)
        ext_id = w.store.link_for_record("dyn", "Account", born.udm_id).external_id  # type: ignore[union-attr]
        create, update = w.fake.write_ops[-2:]
        assert "city" not in create.values and update.values == {"city": "Rome"}
        assert w.fake.rows("account")[ext_id]["city"] == "Rome"
        w.sync()  # the echo
        quiet = w.sync()
        assert quiet.writes == 0 and quiet.udm_changes == 0
        assert w.store.list_quarantined() == []
    finally:
        w.close()


def test_write_back_never_clears_a_reference_that_waits_on_the_read_side(world: World) -> None:
    _account(world, "a-1", "Acme")
    world.fake.insert(
        "contact",
        {"name": "Carl", "email": "c@x.io", "parentcustomerid": LookupRef("account", "a-1")},
        id="c-1",
    )
    world.sync(["Contact"])  # the parent is not read: the contact's reference waits
    contact_id = world.link_of("contact", "c-1")
    world.store.upsert("Contact", {"name": "Carl (udm)"}, udm_id=contact_id, source="udm")
    report = world.sync(["Contact"])
    assert report.entities["Contact"].synapses["dyn"].written_updated == 1
    row = world.fake.rows("contact")["c-1"]
    # Only the UDM's change is sent; the source's reference (not known to the UDM yet) stays as it is.
    assert row["name"] == "Carl (udm)" and row["parentcustomerid"] == LookupRef("account", "a-1")
    assert all("parentcustomerid" not in op.values for op in world.fake.write_ops)
    world.sync()
    assert world.udm("Contact")[contact_id]["account"] == world.link_of("account", "a-1")
    assert world.sync().writes == 0


def test_record_with_text_that_is_not_valid_unicode_is_held_with_the_reason(world: World) -> None:
    _account(world, "a-1", "Good")
    _account(
        world, "a-2", "Bad \ud83d name"
    )  # half of a surrogate pair: neither JSON nor a database holds it
    _account(world, "a-3", "Also good")
    report = world.sync()
    counts = report.entities["Account"].synapses["dyn"]
    assert counts.created == 2 and counts.failed == 1
    assert counts.issues[0].record == "a-2"
    [held] = world.store.list_quarantined()
    assert held.external_id == "a-2" and "unpaired surrogate" in held.error and held.payload is None
    # Fixed in the source: the change brings the record in and releases it.
    world.fake.update("account", "a-2", {"name": "Bad \U0001f600 name"})
    report = world.sync()
    assert report.entities["Account"].synapses["dyn"].failed == 0
    assert world.store.list_quarantined() == []
    assert sorted(r["name"] for r in world.udm("Account").values()) == [
        "Also good",
        "Bad \U0001f600 name",
        "Good",
    ]
