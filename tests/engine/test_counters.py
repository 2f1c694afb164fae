from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dynasync.engine.context import synapse_counters
from dynasync.errors import FatalSourceError

from .harness import World


@dataclass
class Counters:
    requests: int = 0
    throttled: int = 0


def test_counters_found_on_the_synapse_or_its_client() -> None:
    class WithCounters:
        counters = Counters(3, 1)

    class WithClient:
        class client:
            counters = Counters(5, 0)

    assert synapse_counters(WithCounters()) == (3, 1)
    assert synapse_counters(WithClient()) == (5, 0)
    assert synapse_counters(object()) is None


def test_report_uses_the_synapses_own_request_counts(tmp_path: Path) -> None:
    w = World(tmp_path)
    try:
        counters = Counters()
        w.fake.counters = counters  # type: ignore[attr-defined]

        def count_page(stream: str, page: int) -> None:
            counters.requests += 2  # e.g. a page plus a token refresh

        w.fake.on_page = count_page
        w.fake.insert(
            "account", {"name": "A", "city": None, "revenue": None, "parentaccountid": None, "ownerid": None}
        )
        report = w.sync()
        assert report.entities["Account"].synapses["dyn"].requests == 2
        assert report.entities["User"].synapses["dyn"].requests == 2
    finally:
        w.close()


def test_each_stream_read_records_its_start_end_and_counts(tmp_path: Path) -> None:
    w = World(tmp_path)
    try:
        w.fake.insert(
            "account", {"name": "A", "city": None, "revenue": None, "parentaccountid": None, "ownerid": None}
        )
        report = w.sync()
        state = w.store.get_state("dyn", "account")
        assert state is not None and state.last_run_start is not None and state.last_run_end is not None
        assert state.last_run_start <= state.last_run_end == report.finished_at
        assert state.counts["created"] == 1 and "issues" not in state.counts
        w.fake.read_error = FatalSourceError("the source refused", remedy="none")
        w.tick(60)
        failed = w.sync(["Account"])
        assert not failed.ok
        after = w.store.get_state("dyn", "account")
        assert after is not None and after.last_run_end == state.last_run_end  # a failed read is not a run
        assert after.last_run_start is not None and after.last_run_start > state.last_run_end
    finally:
        w.close()
