from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dynasync.engine.versions import VersionSet

from .harness import World


def test_version_set_keeps_ranges_and_skips_over_them() -> None:
    versions = VersionSet()
    assert not versions and versions.skip_from(0) == 0
    versions.add_all([5, 3, 4, 9, 10, 7])
    assert [v for v in range(12) if v in versions] == [3, 4, 5, 7, 9, 10]
    assert len(versions) == 6
    assert versions.skip_from(2) == 5  # 3, 4, 5 follow 2
    assert versions.skip_from(3) == 5
    assert versions.skip_from(5) == 5  # 6 is not in the set
    assert versions.skip_from(6) == 7
    versions.add(6)  # joins [3, 5] and [7, 7]
    assert versions.skip_from(2) == 7 and versions.skip_from(8) == 10
    versions.add(8)
    assert versions.skip_from(0) == 0 and versions.skip_from(2) == 10
    assert "3" not in versions and 11 not in versions


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
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


def test_full_load_write_back_skips_created_records_but_not_ones_edited_meanwhile(world: World) -> None:
    _accounts(world, 9)
    edited: list[str] = []

    def edit_in_udm(stream: str, page: int) -> None:
        # Runs before a page is served: the first account page is committed by the time the second is asked for.
        if stream == "account" and world.store.count("Account") == 3 and not edited:
            udm_id = world.link_of("account", "a-1")
            world.store.upsert("Account", {"city": "Edited mid-run"}, udm_id=udm_id, source="udm")
            edited.append(udm_id)

    world.fake.on_page = edit_in_udm
    report = world.sync()
    assert edited and report.entities["Account"].synapses["dyn"].created == 9
    assert report.writes == 1 and world.fake.rows("account")["a-1"]["city"] == "Edited mid-run"
    state = world.store.get_state("dyn", "account")
    assert state is not None and state.written_version == world.store.max_version()
    world.fake.on_page = None
    later = world.link_of("account", "a-7")
    world.store.upsert("Account", {"city": "Edited later"}, udm_id=later, source="udm")
    report = world.sync()
    assert report.writes == 1 and world.fake.rows("account")["a-7"]["city"] == "Edited later"
    world.sync()  # the echoes
    quiet = world.sync()
    assert quiet.writes == 0 and quiet.udm_changes == 0, quiet.to_dict()
