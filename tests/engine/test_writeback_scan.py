"""The write-back reads only records the destination may not hold: changes read from it are passed over.

What the write-back looks at is counted through ``WriteBack._plan``; the outcome (what is written) is checked too,
so skipping never costs a needed write.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from dynasync.engine.writeback import WriteBack
from dynasync.udm.model import UdmRecord

from .harness import World


@pytest.fixture
def planned(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The UDM ids of the account records the write-back compares, in order."""
    seen: list[str] = []
    plan = WriteBack._plan

    def counting(self: WriteBack, tx: Any, page: Sequence[UdmRecord]) -> Any:
        if self.binding.entity == "Account":
            seen.extend(r.id for r in page)
        return plan(self, tx, page)

    monkeypatch.setattr(WriteBack, "_plan", counting)
    return seen


def _account_counts(w: World) -> Any:
    w.tick()
    return w.sync().entities["Account"].synapses["dyn"]


def test_changes_read_from_the_source_are_not_compared_again(world: World, planned: list[str]) -> None:
    world.fake.update("account", "a-1", {"city": "Bergen"})
    world.fake.update("account", "a-2", {"name": "Renamed there"})
    counts = _account_counts(world)
    assert counts.updated == 2 and counts.written_updated == 0
    assert planned == []


def test_a_udm_edit_is_compared_written_and_then_passed_over_again(world: World, planned: list[str]) -> None:
    udm_id = world.link_of("account", "a-3")
    world.tick()
    world.store.upsert("Account", {"city": "Paris"}, udm_id=udm_id, source="udm")
    counts = _account_counts(world)
    assert counts.written_updated == 1 and planned == [udm_id]
    planned.clear()
    echo = _account_counts(world)  # our write comes back (modifiedon moved): an echo, not compared again
    assert echo.echoes == 1 and echo.written_updated == 0 and planned == []
    world.fake.update("account", "a-3", {"name": "Edited there later"})
    later = _account_counts(world)
    assert later.updated == 1 and later.written_updated == 0 and planned == []


def test_a_refused_source_value_is_written_back(world: World, planned: list[str]) -> None:
    """An older source edit loses to a newer UDM edit: the record is compared and the UDM's value sent back."""
    udm_id = world.link_of("account", "a-4")
    world.fake.update("account", "a-4", {"city": "Older edit"})
    world.tick(60)
    world.store.upsert("Account", {"city": "Rome"}, udm_id=udm_id, source="udm")
    counts = _account_counts(world)
    assert counts.written_updated == 1 and planned == [udm_id]
    assert world.fake.rows("account")["a-4"]["city"] == "Rome" == world.udm("Account")[udm_id]["city"]


@pytest.fixture
def empty_world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path, page_size=3)
    yield w
    w.close()


def _accounts(w: World, count: int) -> None:
    for i in range(count):
        w.fake.insert(
            "account",
            {"name": f"Acc {i}", "city": None, "revenue": None, "parentaccountid": None, "ownerid": None},
            id=f"a-{i}",
        )


def test_full_load_write_back_skips_created_records_but_not_ones_edited_meanwhile(
    empty_world: World, planned: list[str]
) -> None:
    _accounts(empty_world, 9)
    edited: list[str] = []

    def edit_in_udm(stream: str, page: int) -> None:
        # Runs before a page is served: the first account page is committed by the time the second is asked for.
        if stream == "account" and empty_world.store.count("Account") == 3 and not edited:
            udm_id = empty_world.link_of("account", "a-1")
            empty_world.store.upsert("Account", {"city": "Edited mid-run"}, udm_id=udm_id, source="udm")
            edited.append(udm_id)

    empty_world.fake.on_page = edit_in_udm
    report = empty_world.sync()
    assert edited and report.entities["Account"].synapses["dyn"].created == 9
    assert planned == edited  # the other eight hold what Dynamics holds: not compared
    assert report.writes == 1 and empty_world.fake.rows("account")["a-1"]["city"] == "Edited mid-run"
    state = empty_world.store.get_state("dyn", "account")
    assert state is not None and state.written_version == empty_world.store.max_version()
    empty_world.fake.on_page = None
    later = empty_world.link_of("account", "a-7")
    empty_world.store.upsert("Account", {"city": "Edited later"}, udm_id=later, source="udm")
    report = empty_world.sync()
    assert report.writes == 1 and empty_world.fake.rows("account")["a-7"]["city"] == "Edited later"
    empty_world.sync()  # the echoes
    quiet = empty_world.sync()
    assert quiet.writes == 0 and quiet.udm_changes == 0, quiet.to_dict()


def test_a_version_set_by_hand_above_the_counter_never_hides_later_changes(world: World) -> None:
    b = world.link_of("account", "a-2")
    # A watermark above the counter, as a version set by hand used to leave (the triggers refuse that now)
    with world.store.transaction() as tx:
        tx.put_written_version("dyn", "account", 999999)
    world.store.upsert("Account", {"city": "Later"}, udm_id=b, source="udm")
    report = world.sync()
    assert report.entities["Account"].synapses["dyn"].written_updated == 1
    assert world.fake.rows("account")["a-2"]["city"] == "Later"
    state = world.store.get_state("dyn", "account")
    assert state is not None and state.written_version <= world.store.max_version()
