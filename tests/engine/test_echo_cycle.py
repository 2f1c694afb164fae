"""Our own write read back is an echo even when the source moved its bookkeeping columns (modifiedon)."""

from __future__ import annotations

from decimal import Decimal

from .harness import World


def _edit_in_udm_and_write_back(w: World, ext_id: str, values: dict[str, object]) -> str:
    udm_id = w.link_of("account", ext_id)
    w.tick()
    w.store.upsert("Account", values, udm_id=udm_id, source="udm")
    w.tick()
    pushed = w.sync()
    assert pushed.entities["Account"].synapses["dyn"].written_updated == 1, pushed.to_dict()
    return udm_id


def test_write_back_read_again_is_an_echo_and_refreshes_the_modification_time(world: World) -> None:
    udm_id = _edit_in_udm_and_write_back(world, "a-2", {"city": "Paris"})
    written_at = world.fake.rows("account")["a-2"]["modifiedon"]
    assert world.udm("Account")[udm_id]["modified_on"] != written_at  # our write moved it in the source
    world.tick()
    echo_run = world.sync()
    counts = echo_run.entities["Account"].synapses["dyn"]
    assert (counts.echoes, counts.updated, counts.unchanged) == (1, 0, 0), echo_run.to_dict()
    assert echo_run.udm_changes == 0 and echo_run.writes == 0
    # The UDM holds what the source holds now, including the time our write gave the row.
    record = world.udm("Account")[udm_id]
    assert record["city"] == "Paris" and record["modified_on"] == written_at
    # The transactions log says it was an echo, not somebody's change.
    events = world.store.search_log(run_id=echo_run.run_id)
    decisions = [(f.field, f.decision) for e in events for f in e.fields]
    assert decisions and all(
        field == "modified_on" and "echo of our own write" in d for field, d in decisions
    )
    quiet = world.sync()
    assert quiet.udm_changes == 0 and quiet.writes == 0 and world.fake.write_calls == 1, quiet.to_dict()
    assert quiet.entities["Account"].synapses["dyn"].echoes == 0


def test_edit_by_a_source_user_after_our_write_is_an_update(world: World) -> None:
    udm_id = _edit_in_udm_and_write_back(world, "a-3", {"city": "Paris"})
    world.tick()
    world.fake.update("account", "a-3", {"name": "Renamed in Dynamics"})  # a writable column
    report = world.sync()
    counts = report.entities["Account"].synapses["dyn"]
    assert (counts.updated, counts.echoes) == (1, 0), report.to_dict()
    record = world.udm("Account")[udm_id]
    assert (record["name"], record["city"]) == ("Renamed in Dynamics", "Paris")
    assert world.sync().writes == 0


def test_a_touch_that_only_moves_the_modification_time_is_an_update_when_we_wrote_nothing(
    world: World,
) -> None:
    udm_id = world.link_of("account", "a-1")
    world.tick()
    world.fake.update("account", "a-1", {})  # saved in the source without a change: only modifiedon moves
    report = world.sync()
    counts = report.entities["Account"].synapses["dyn"]
    assert (counts.updated, counts.echoes) == (1, 0), report.to_dict()
    assert world.udm("Account")[udm_id]["modified_on"] == world.fake.rows("account")["a-1"]["modifiedon"]
    assert report.writes == 0


def test_echo_after_the_echo_already_refreshed_is_unchanged_on_a_full_reload(world: World) -> None:
    _edit_in_udm_and_write_back(world, "a-4", {"revenue": Decimal("44.5")})
    world.sync()  # the echo
    world.store.put_cursor("dyn", "account", None)  # a full reload reads every row again
    report = world.sync()
    counts = report.entities["Account"].synapses["dyn"]
    assert (counts.unchanged, counts.updated, counts.echoes) == (6, 0, 0), report.to_dict()
    assert report.udm_changes == 0 and report.writes == 0
