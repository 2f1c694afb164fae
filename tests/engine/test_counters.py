from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dynasync.engine.context import synapse_counters

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
