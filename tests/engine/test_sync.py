from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from dynasync.synapses.base import LookupRef

from .harness import World


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path, page_size=4)
    yield w
    w.close()


def seed(w: World) -> dict[str, str]:
    ids: dict[str, str] = {}
    f = w.fake
    ids["u1"] = f.insert("systemuser", {"name": "Ann"}, id="u-1")
    # The child sorts before its parent, which is on a later page: it waits, then resolves in the same run.
    ids["a_child"] = f.insert(
        "account",
        {
            "name": "Child",
            "city": "Oslo",
            "revenue": Decimal("10.5"),
            "parentaccountid": LookupRef("account", "a-9"),
            "ownerid": LookupRef("systemuser", "u-1"),
        },
        id="a-1",
    )
    ids["a_parent"] = f.insert(
        "account",
        {"name": "Parent", "city": "Bergen", "revenue": None, "parentaccountid": None, "ownerid": None},
        id="a-9",
    )
    for i in range(2, 8):
        f.insert(
            "account",
            {
                "name": f"Acc {i}",
                "city": "X",
                "revenue": Decimal(i),
                "parentaccountid": None,
                "ownerid": LookupRef("systemuser", "u-1"),
            },
            id=f"a-{i}",
        )
    ids["c1"] = f.insert(
        "contact",
        {"name": "Carl", "email": "carl@x.io", "parentcustomerid": LookupRef("account", "a-1")},
        id="c-1",
    )
    ids["o1"] = f.insert(
        "opportunity",
        {
            "name": "Deal",
            "amount": Decimal("99.95"),
            "customerid": LookupRef("account", "a-9"),
            "contactid": LookupRef("contact", "c-1"),
        },
        id="o-1",
    )
    return ids


def test_full_load_then_quiet_cycle(world: World) -> None:
    seed(world)
    report = world.sync()
    assert report.ok, report.to_dict()
    acc = report.entities["Account"].synapses["dyn"]
    # The child waited for its parent (a later page) and was completed later in the run: resolved, not updated.
    assert (acc.created, acc.updated, acc.resolved, acc.failed, acc.pending) == (8, 0, 1, 0, 0)
    assert acc.full_load and report.udm_changes == 8 + 1 + 1 + 1  # accounts, user, contact, opportunity
    accounts = world.udm("Account")
    assert len(accounts) == 8
    child = accounts[world.link_of("account", "a-1")]
    assert child["parent"] == world.link_of("account", "a-9")
    assert child["owner"] == world.link_of("systemuser", "u-1")
    assert child["revenue"] == Decimal("10.5")
    opp = world.udm("Opportunity")[world.link_of("opportunity", "o-1")]
    assert opp["account"] == world.link_of("account", "a-9")
    assert opp["contact"] == world.link_of("contact", "c-1")
    assert report.writes == 0 and world.fake.write_calls == 0
    # The same data again: nothing moves anywhere.
    quiet = world.sync()
    assert quiet.ok and quiet.writes == 0 and quiet.udm_changes == 0 and world.fake.write_calls == 0
    json.dumps(quiet.to_dict())
    assert world.progress and world.progress[0][0] == "User"


def test_udm_edit_is_written_back_once_and_its_echo_is_recognised(world: World) -> None:
    seed(world)
    world.sync()
    udm_id = world.link_of("account", "a-2")
    world.tick()
    world.store.upsert("Account", {"city": "Paris"}, udm_id=udm_id, source="udm")
    report = world.sync()
    acc = report.entities["Account"].synapses["dyn"]
    assert acc.written_updated == 1 and report.writes == 1
    assert world.fake.rows("account")["a-2"]["city"] == "Paris"
    # Only the changed column is sent, with the last known version as If-Match.
    op = world.fake.write_ops[-1]
    assert dict(op.values) == {"city": "Paris"} and op.if_match is not None
    echo_run = world.sync()
    acc = echo_run.entities["Account"].synapses["dyn"]
    assert acc.echoes == 1 and echo_run.udm_changes == 0 and echo_run.writes == 0
    assert world.sync().writes == 0
    assert world.fake.write_calls == 1


def test_record_created_in_udm_reaches_the_source_without_duplicates(world: World) -> None:
    seed(world)
    world.sync()
    parent = world.link_of("account", "a-9")
    outcome = world.store.upsert(
        "Account", {"name": "New Co", "city": "Rome", "parent": parent}, source="udm"
    )
    report = world.sync()
    assert report.entities["Account"].synapses["dyn"].written_created == 1
    link = world.store.link_for_record("dyn", "Account", outcome.udm_id)
    assert link is not None
    row = world.fake.rows("account")[link.external_id]
    assert row["name"] == "New Co" and row["parentaccountid"] == LookupRef("account", "a-9")
    again = world.sync()
    assert again.writes == 0 and again.udm_changes == 0
    assert len(world.udm("Account")) == 9 and len(world.fake.rows("account")) == 9


def test_source_change_is_applied_and_not_written_back(world: World) -> None:
    seed(world)
    world.sync()
    world.tick()
    world.fake.update("account", "a-3", {"name": "Renamed", "revenue": Decimal("3.25")})
    report = world.sync()
    assert report.entities["Account"].synapses["dyn"].updated == 1
    assert report.writes == 0
    rec = world.udm("Account")[world.link_of("account", "a-3")]
    assert rec["name"] == "Renamed" and rec["revenue"] == Decimal("3.25")


def test_latest_update_wins_per_field_and_is_logged(world: World) -> None:
    seed(world)
    world.sync()
    udm_id = world.link_of("account", "a-4")
    world.tick()
    world.fake.update("account", "a-4", {"city": "Source City"})
    world.tick()
    world.store.upsert("Account", {"city": "Udm City"}, udm_id=udm_id, source="udm")
    report = world.sync()
    assert world.udm("Account")[udm_id]["city"] == "Udm City"
    assert world.fake.rows("account")["a-4"]["city"] == "Udm City"
    assert report.entities["Account"].synapses["dyn"].written_updated == 1
    events = world.store.search_log(entity="Account", udm_id=udm_id, synapse="dyn")
    decisions = [f.decision for e in events for f in e.fields if f.field == "city"]
    assert any(d.startswith("udm wins: latest_update_wins") for d in decisions), decisions
    assert world.sync().writes == 0


def test_stale_field_of_a_newer_source_row_never_overwrites_a_newer_udm_value(world: World) -> None:
    seed(world)
    world.sync()
    udm_id = world.link_of("account", "a-5")
    world.tick()
    world.store.upsert("Account", {"city": "Udm City"}, udm_id=udm_id, source="udm")
    world.tick(10)
    # Later than the UDM edit, but of another field: the source's old city must not come back.
    world.fake.update("account", "a-5", {"name": "Source Name"})
    world.sync()
    rec = world.udm("Account")[udm_id]
    assert (rec["name"], rec["city"]) == ("Source Name", "Udm City")
    assert world.fake.rows("account")["a-5"]["city"] == "Udm City"
    quiet = world.sync()
    assert quiet.writes == 0 and quiet.udm_changes == 0


def test_source_delete_marks_udm_deleted(world: World) -> None:
    seed(world)
    world.sync()
    udm_id = world.link_of("contact", "c-1")
    world.fake.delete("contact", "c-1")
    report = world.sync()
    assert report.entities["Contact"].synapses["dyn"].deleted == 1
    assert udm_id not in world.udm("Contact")
    assert world.udm("Contact", include_deleted=True)[udm_id]["name"] == "Carl"
    assert world.sync().writes == 0


def test_source_record_attaches_to_a_udm_record_with_the_same_match_key(world: World) -> None:
    seed(world)
    world.sync()
    mine = world.store.upsert("Contact", {"name": "Dora (udm)", "email": "DORA@x.io"}, source="udm")
    world.tick()
    world.fake.insert("contact", {"name": "Dora", "email": "dora@x.io", "parentcustomerid": None}, id="c-2")
    report = world.sync()
    counts = report.entities["Contact"].synapses["dyn"]
    assert counts.created == 0 and counts.updated == 1 and counts.written_created == 0
    assert world.link_of("contact", "c-2") == mine.udm_id
    assert len(world.udm("Contact")) == 2 and len(world.fake.rows("contact")) == 2
    assert world.udm("Contact")[mine.udm_id]["name"] == "Dora"  # the newer source value won
    quiet = world.sync()
    assert quiet.writes == 0 and quiet.udm_changes == 0


def test_an_attached_rows_blanks_never_wipe_the_records_values(world: World) -> None:
    seed(world)
    world.sync()
    parent = world.link_of("account", "a-9")
    mine = world.store.upsert(
        "Contact", {"name": "Eve", "email": "eve@x.io", "account": parent}, source="udm"
    )
    world.tick()
    # The row that attaches (same email) is newer but has never held an account: its blank is no change.
    world.fake.insert("contact", {"name": "Eve", "email": "eve@x.io", "parentcustomerid": None}, id="c-3")
    report = world.sync()
    assert world.link_of("contact", "c-3") == mine.udm_id
    assert world.udm("Contact")[mine.udm_id]["account"] == parent
    assert world.fake.rows("contact")["c-3"]["parentcustomerid"] == LookupRef("account", "a-9")  # filled in
    assert report.entities["Contact"].synapses["dyn"].written_updated == 1
    world.sync()  # its echo
    quiet = world.sync()
    assert quiet.writes == 0 and quiet.udm_changes == 0
