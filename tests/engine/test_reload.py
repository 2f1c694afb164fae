"""A resync (``Engine.run(reload=True)``, ``dynasync sync --full``): every row read again, drift repaired."""

from __future__ import annotations

import pytest

from dynasync.errors import ConfigError, FatalSourceError

from .harness import World


def _lose_behind_change_tracking(world: World) -> None:
    """Drift that no delta reports: a row removed without a tombstone, another changed without a new version
    (what a restore from backup or lost change-tracking data leaves behind)."""
    fake = world.fake
    del fake.state.rows["account"]["a-1"]
    world.tick()
    row = fake.state.rows["account"]["a-4"]
    row.values["name"] = "Restored 4"
    row.modified_on = world.clock.now()
    fake.save()


def test_a_resync_in_step_with_the_source_reads_everything_and_changes_nothing(world: World) -> None:
    pages = world.fake.reads
    report = world.engine.run_once(reload=True)
    counts = report.entities["Account"].synapses["dyn"]
    assert report.ok and counts.full_load
    assert world.fake.reads - pages >= 2  # six rows, four per page: the table again from the start
    assert (report.udm_changes, report.writes, world.fake.write_calls) == (0, 0, 0)
    # Then the source's change tracking goes on from the reload's end.
    after = world.sync()
    assert not after.entities["Account"].synapses["dyn"].full_load
    assert (after.udm_changes, after.writes) == (0, 0)


def test_a_resync_repairs_what_change_tracking_never_reported(world: World) -> None:
    gone, restored = world.link_of("account", "a-1"), world.link_of("account", "a-4")
    _lose_behind_change_tracking(world)
    plain = world.sync()
    assert plain.udm_changes == 0  # invisible to an incremental run
    assert gone in world.udm("Account") and world.udm("Account")[restored]["name"] == "Acc 4"

    report = world.sync_reload()
    counts = report.entities["Account"].synapses["dyn"]
    assert (counts.deleted, counts.updated, counts.unchanged) == (1, 1, 4)
    accounts = world.udm("Account")
    assert gone not in accounts and accounts[restored]["name"] == "Restored 4"
    assert world.store.get_link("dyn", "account", "a-1") is None
    assert report.writes == 0 and world.fake.write_calls == 0  # the source is where the values came from


def test_a_resync_of_one_entity_leaves_the_others_on_their_delta(world: World) -> None:
    world.fake.insert("contact", {"name": "Carl", "email": "carl@x.io", "parentcustomerid": None}, id="c-1")
    world.sync()
    report = world.sync_reload(["Contact"])
    assert report.entities["Contact"].synapses["dyn"].full_load
    assert "Account" not in report.entities
    state = world.store.get_state("dyn", "account")
    assert state is not None and state.cursor is not None and "after" not in state.cursor


def test_an_interrupted_resync_resumes_from_its_last_page_and_still_reconciles(world: World) -> None:
    gone = world.link_of("account", "a-1")
    _lose_behind_change_tracking(world)
    served: list[int] = []

    def fail_second_page(stream: str, page: int) -> None:
        if stream == "account":
            served.append(page)
        if len(served) == 2:
            raise FatalSourceError("connection lost in the middle of the reload")

    world.fake.on_page = fail_second_page
    broken = world.sync_reload()
    assert not broken.ok and "connection lost" in (broken.entities["Account"].error or "")
    assert gone in world.udm("Account")  # the reconciliation comes with the last page, not read yet
    state = world.store.get_state("dyn", "account")
    assert (
        state is not None
        and state.phase == "full"
        and state.cursor
        == {
            "phase": "full",
            "after": "a-4",
            "start_version": world.fake.state.version,
        }
    )

    world.fake.on_page = None
    resumed = world.sync()  # a plain run: it finishes the reload instead of starting a delta
    counts = resumed.entities["Account"].synapses["dyn"]
    assert resumed.ok and counts.full_load and counts.requests == 1  # the page after the last one committed
    assert counts.deleted == 1 and gone not in world.udm("Account")


@pytest.mark.parametrize("reload", [False, True])
def test_the_engine_asks_the_synapse_for_its_resync_cursor_only_on_a_resync(
    world: World, reload: bool
) -> None:
    asked: list[str] = []
    fake = world.fake
    real = fake.reload_cursor

    def spy(stream):  # type: ignore[no-untyped-def]
        asked.append(stream.name)
        return real(stream)

    fake.reload_cursor = spy  # type: ignore[method-assign]
    world.engine.run_once(["Account"], reload=reload)
    assert asked == (["account"] if reload else [])


def test_entities_are_named_without_regard_to_case(world: World) -> None:
    report = world.engine.run_once(["account"])
    assert set(report.entities) == {"Account"}
    with pytest.raises(ConfigError, match="unknown UDM entity: Acount"):
        world.engine.run_once(["Acount"])
