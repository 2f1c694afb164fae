from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import random
import signal
import time
from decimal import Decimal
from pathlib import Path

import pytest

from dynasync.clock import FrozenClock
from dynasync.synapses.base import LookupRef

from .convergence import mismatches
from .crash_child import CRASH_EXIT, run_child
from .fake_synapse import FakeSynapse
from .harness import START, STREAMS, World, make_spec

pytestmark = pytest.mark.slow

SEEDED = START - dt.timedelta(days=1)  # source rows predate every sync


def _seed(fake: FakeSynapse, rng: random.Random, accounts: int = 60, contacts: int = 40) -> None:
    fake.insert("systemuser", {"name": "Ann"}, id="u-0")
    for i in range(accounts):
        # Some parents sort after their children (and sit on later pages): they resolve later in the run.
        parent = LookupRef("account", f"a-{rng.randrange(accounts):03d}") if i % 3 == 0 else None
        fake.insert(
            "account",
            {
                "name": f"Acc {i}",
                "city": rng.choice(["Oslo", "Rome", None]),
                "revenue": Decimal(i),
                "parentaccountid": parent,
                "ownerid": LookupRef("systemuser", "u-0"),
            },
            id=f"a-{i:03d}",
        )
    for i in range(contacts):
        fake.insert(
            "contact",
            {
                "name": f"Con {i}",
                "email": f"c{i}@x.io",
                "parentcustomerid": LookupRef("account", f"a-{rng.randrange(accounts):03d}"),
            },
            id=f"c-{i:03d}",
        )


def _run_with_crashes(folder: Path, rng: random.Random, *, deletes_from_udm: bool, offset: int) -> int:
    """Run children crashing at random points until one completes; return the number of crashes."""
    ctx = multiprocessing.get_context("spawn")
    for attempt in range(12):
        crash_at = rng.randint(1, 30) if attempt < 5 else 10**9
        proc = ctx.Process(
            target=run_child, args=(str(folder), crash_at, offset + attempt * 60, deletes_from_udm)
        )
        proc.start()
        proc.join(60)
        assert proc.exitcode in (0, CRASH_EXIT), proc.exitcode
        if proc.exitcode == 0:
            return attempt  # every earlier attempt crashed
    raise AssertionError("the sync never completed")


def _world(folder: Path, offset: int, *, deletes_from_udm: bool) -> World:
    return World(
        folder,
        spec=make_spec(deletes_from_udm=deletes_from_udm),
        page_size=7,
        fake_path=folder / "fake.json",
        store_path=folder / "udm.db",
        clock=FrozenClock(START + dt.timedelta(seconds=offset)),
    )


@pytest.mark.timeout(120)
def test_full_sync_killed_at_random_points_resumes_without_loss_or_duplicates(tmp_path: Path) -> None:
    rng = random.Random(1234)
    fake = FakeSynapse("dyn", STREAMS, path=tmp_path / "fake.json", page_size=7, clock=FrozenClock(SEEDED))
    _seed(fake, rng)
    crashes = _run_with_crashes(tmp_path, rng, deletes_from_udm=False, offset=0)
    assert crashes >= 3
    world = _world(tmp_path, 100_000, deletes_from_udm=False)
    world.sync()
    assert mismatches(world) == []
    assert world.store.list_quarantined() == []
    quiet = world.sync()
    assert quiet.writes == 0 and quiet.udm_changes == 0
    world.close()


@pytest.mark.timeout(120)
def test_incremental_sync_with_write_back_killed_at_random_points(tmp_path: Path) -> None:
    rng = random.Random(99)
    fake = FakeSynapse("dyn", STREAMS, path=tmp_path / "fake.json", page_size=7, clock=FrozenClock(SEEDED))
    _seed(fake, rng, accounts=30, contacts=20)
    world = _world(tmp_path, 0, deletes_from_udm=True)
    world.sync()
    assert mismatches(world) == []
    # Edits on both sides, then a sync that is killed again and again.
    world.tick(5)
    fake = world.fake
    for i in range(0, 30, 4):
        fake.update("account", f"a-{i:03d}", {"city": f"Src {i}"})
    fake.delete("contact", "c-003")
    fake.insert(
        "contact",
        {"name": "New", "email": "new@x.io", "parentcustomerid": LookupRef("account", "a-001")},
        id="c-900",
    )
    world.tick(5)
    accounts = world.udm("Account")
    for n, udm_id in enumerate(sorted(accounts)[:12]):
        world.store.upsert("Account", {"name": f"Udm {n}"}, udm_id=udm_id, source="udm")
    parent = world.link_of("account", "a-002")
    for n in range(5):
        world.store.upsert("Account", {"name": f"Born in UDM {n}", "parent": parent}, source="udm")
    world.store.mark_deleted("Contact", world.link_of("contact", "c-010"))
    world.close()
    crashes = _run_with_crashes(tmp_path, rng, deletes_from_udm=True, offset=1_000)
    assert crashes >= 3
    world = _world(tmp_path, 100_000, deletes_from_udm=True)
    world.sync()
    world.sync()
    assert mismatches(world) == []
    assert world.store.list_quarantined() == []
    names = [r["name"] for r in world.fake.rows("account").values()]
    assert sorted(n for n in names if n.startswith("Born")) == [f"Born in UDM {n}" for n in range(5)]
    assert "c-010" not in world.fake.rows("contact")
    quiet = world.sync()
    assert quiet.writes == 0 and quiet.udm_changes == 0, quiet.to_dict()
    world.close()


@pytest.mark.timeout(120)
def test_sigkill_from_outside_during_sync(tmp_path: Path) -> None:
    rng = random.Random(7)
    fake = FakeSynapse("dyn", STREAMS, path=tmp_path / "fake.json", page_size=7, clock=FrozenClock(SEEDED))
    _seed(fake, rng)
    ctx = multiprocessing.get_context("spawn")
    killed = 0
    for attempt in range(3):
        proc = ctx.Process(target=run_child, args=(str(tmp_path), 10**9, attempt * 60, False, 0.03))
        proc.start()
        time.sleep(rng.uniform(1.0, 2.5))  # spawn start-up plus a random slice of the sync
        if proc.pid is not None and proc.is_alive():
            os.kill(proc.pid, signal.SIGKILL)
        proc.join(30)
        assert proc.exitcode in (0, -signal.SIGKILL)
        killed += proc.exitcode == -signal.SIGKILL
    assert killed >= 1
    world = _world(tmp_path, 100_000, deletes_from_udm=False)
    world.sync()
    assert mismatches(world) == []
    assert world.sync().writes == 0
    world.close()
