"""The engine runs under the UDM's sync lock: a second run at the same time does nothing and says why."""

from __future__ import annotations

import pytest

from dynasync.errors import SyncBusyError
from dynasync.udm.store import open_store

from .harness import World


def test_a_run_while_another_holds_the_udm_reads_and_writes_nothing(world: World) -> None:
    world.fake.update("account", "a-1", {"name": "Changed meanwhile"})
    runs_before = len(world.store.list_runs())
    reads = world.fake.reads
    other = open_store(world.store_url)  # another process's view of the same UDM
    try:
        with other.run_lock(), pytest.raises(SyncBusyError, match="Another dynasync sync is running"):
            world.sync()
        assert world.fake.reads == reads and len(world.store.list_runs()) == runs_before
    finally:
        other.close()
    report = world.sync()  # free again: the change comes in
    assert report.ok and report.entities["Account"].synapses["dyn"].updated == 1
