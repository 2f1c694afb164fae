"""The engine runs under the UDM's sync lock: a second run at the same time does nothing and says why."""

from __future__ import annotations

from pathlib import Path

import pytest

from dynasync.errors import AuthError, SyncBusyError
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


def test_a_killed_runs_record_is_ended_by_the_next_run_and_failed_records_make_a_run_partial(
    world: World,
) -> None:
    killed = world.store.start_run()  # what a run killed before its end leaves behind
    world.fake.write_failures["a-2"] = "invalid phone"
    world.store.upsert("Account", {"city": "Graz"}, udm_id=world.link_of("account", "a-2"), source="udm")
    report = world.sync()
    assert report.total("write_failed") == 1
    runs = {r.run_id: r for r in world.store.list_runs()}
    assert runs[killed].status == "interrupted" and runs[killed].ended_at is not None
    assert runs[report.run_id].status == "partial"


def test_a_run_that_cannot_start_is_recorded_as_failed(tmp_path: Path) -> None:
    w = World(tmp_path)
    try:
        w.fake.discover_error = AuthError("AADSTS7000215: Invalid client secret provided.")
        with pytest.raises(AuthError):
            w.sync()
        (run,) = w.store.list_runs()
        assert run.status == "failed" and run.ended_at is not None
        assert "run could not start: AADSTS7000215" in run.summary["errors"][0]
    finally:
        w.close()


class _Killed(BaseException):
    """What the process sees of a kill in the middle of discovery: nothing after it runs."""


def test_a_run_killed_while_it_discovers_is_on_record_and_ended_by_the_next_one(tmp_path: Path) -> None:
    w = World(tmp_path)
    try:
        w.fake.discover_error = _Killed()
        with pytest.raises(_Killed):
            w.sync()
        (killed,) = w.store.list_runs()
        assert killed.status == "running"  # what `status` shows while a run discovers, or after a kill
        w.fake.discover_error = None
        w.sync()
        runs = {r.run_id: r.status for r in w.store.list_runs()}
        assert runs[killed.run_id] == "interrupted" and list(runs.values()).count("ok") == 1
    finally:
        w.close()
