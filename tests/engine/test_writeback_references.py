"""References in write-back: new records that reference each other, and references to records that are gone."""

from __future__ import annotations

from pathlib import Path

from dynasync.synapses.base import LookupRef

from .harness import World


def _row_of(world: World, udm_id: str) -> dict[str, object]:
    link = world.store.link_for_record("dyn", "Account", udm_id)
    assert link is not None, f"{udm_id} never reached the source"
    return world.fake.rows("account")[link.external_id]


def test_new_records_that_reference_each_other_all_reach_the_source_in_one_run(world: World) -> None:
    a = world.store.upsert("Account", {"name": "Circ A"}, source="udm").udm_id
    b = world.store.upsert("Account", {"name": "Circ B", "parent": a}, source="udm").udm_id
    world.store.upsert("Account", {"parent": b}, udm_id=a, source="udm")
    first = world.sync()
    counts = first.entities["Account"].synapses["dyn"]
    # Both created without the reference to the other, which each gets once the other exists: in the same run.
    assert (counts.written_created, counts.written_updated, counts.pending) == (2, 2, 0)
    assert world.store.list_quarantined() == []
    world.sync()  # reads back the rows
    a_row, b_row = _row_of(world, a), _row_of(world, b)
    a_ext = world.store.link_for_record("dyn", "Account", a)
    b_ext = world.store.link_for_record("dyn", "Account", b)
    assert a_ext is not None and b_ext is not None
    assert a_row["parentaccountid"] == LookupRef("account", b_ext.external_id)
    assert b_row["parentaccountid"] == LookupRef("account", a_ext.external_id)
    quiet = world.sync()
    assert (quiet.writes, quiet.udm_changes, quiet.total("pending")) == (0, 0, 0)


def test_a_reference_to_a_deleted_record_fails_alone_and_the_other_changes_are_written(world: World) -> None:
    gone = world.link_of("account", "a-5")
    world.fake.delete("account", "a-5")
    world.sync()
    assert gone not in world.udm("Account")
    edited = world.link_of("account", "a-2")
    world.store.upsert("Account", {"parent": gone, "city": "Lyon"}, udm_id=edited, source="udm")
    report = world.sync()
    counts = report.entities["Account"].synapses["dyn"]
    assert counts.written_updated == 1 and counts.write_failed == 1
    (issue,) = [i for i in counts.issues if i.record == edited]
    assert "deleted or missing in the UDM: parent -> Account" in issue.reason and "clear it" in issue.reason
    row = world.fake.rows("account")["a-2"]
    assert row["city"] == "Lyon" and row["parentaccountid"] is None
    again = world.sync()  # still reported until fixed, and nothing is sent again
    assert again.entities["Account"].synapses["dyn"].write_failed == 1 and again.writes == 0
    world.store.upsert("Account", {"parent": None}, udm_id=edited, source="udm")
    fixed = world.sync()
    assert fixed.total("write_failed") == 0 and fixed.total("pending") == 0


def test_a_child_before_its_new_parent_in_the_same_table_gets_the_reference_in_the_same_run(
    world: World,
) -> None:
    parent = world.store.upsert("Account", {"name": "Parent"}, source="udm").udm_id
    child = world.store.upsert("Account", {"name": "Child", "parent": parent}, source="udm").udm_id
    world.store.upsert("Account", {"city": "Later"}, udm_id=parent, source="udm")  # now after the child
    report = world.sync()
    assert report.total("pending") == 0 and world.store.list_quarantined() == []
    parent_link = world.store.link_for_record("dyn", "Account", parent)
    assert parent_link is not None
    assert _row_of(world, child)["parentaccountid"] == LookupRef("account", parent_link.external_id)


def test_a_required_column_is_never_cleared_by_a_blank_udm_value(tmp_path: Path) -> None:
    w = World(tmp_path)
    try:
        w.fake.change_column("account", "ownerid", required=True)
        user = w.fake.insert("systemuser", {"name": "Ann"}, id="u-1")
        owner = LookupRef("systemuser", user)
        w.fake.insert("account", {"name": "Acme", "city": "Linz", "ownerid": owner}, id="a-1")
        w.sync()
        udm_id = w.link_of("account", "a-1")
        # e.g. an owner team that no mapping covers reads as a blank owner
        w.store.upsert("Account", {"owner": None, "city": "Graz"}, udm_id=udm_id, source="udm")
        report = w.sync()
        assert report.entities["Account"].synapses["dyn"].written_updated == 1
        row = w.fake.rows("account")["a-1"]
        assert row["city"] == "Graz" and row["ownerid"] == owner
        assert "ownerid" not in w.fake.write_ops[-1].values
    finally:
        w.close()


def test_a_new_records_reference_to_a_deleted_record_is_kept_and_reported_every_run(world: World) -> None:
    gone = world.link_of("account", "a-5")
    world.fake.delete("account", "a-5")
    world.sync()
    born = world.store.upsert("Account", {"name": "Orphan", "parent": gone}, source="udm").udm_id
    first = world.sync()
    counts = first.entities["Account"].synapses["dyn"]
    assert counts.written_created == 1 and counts.write_failed == 1
    for _ in range(2):  # reading our own create back (no parent there) must not clear the UDM's reference
        again = world.sync()
        assert again.entities["Account"].synapses["dyn"].write_failed == 1
        assert world.udm("Account")[born]["parent"] == gone
