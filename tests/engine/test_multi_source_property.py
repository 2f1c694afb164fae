"""Random edits in two systems and in the UDM converge to one value per field everywhere, then stay quiet.

Guards the write-back's shortcuts (verified links, created records, echoes) where they matter most: one record
linked to two systems, each change coming back from one of them while the other still needs it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .multi_source import CRM, ERP, Duo, assert_quiet

# A longer hunt: DYNASYNC_SYNC_EXAMPLES=500 pytest tests/engine/test_multi_source_property.py
EXAMPLES = int(os.environ.get("DYNASYNC_SYNC_EXAMPLES", "30"))
COMPANIES = 3
VALUES = st.sampled_from(["Oslo", "Paris", "Rome", "Acme", "Beta"])

op = st.one_of(
    st.tuples(
        st.just("edit"),
        st.sampled_from([CRM, ERP]),
        st.integers(0, COMPANIES - 1),
        st.sampled_from(["name", "city"]),
        VALUES,
    ),
    st.tuples(st.just("udm"), st.integers(0, COMPANIES - 1), st.sampled_from(["name", "city"]), VALUES),
    st.tuples(st.just("tick"), st.integers(1, 30)),
    st.tuples(st.just("sync")),
)


def _start(tmp: Path) -> tuple[Duo, list[str]]:
    duo = Duo(tmp)
    for i in range(COMPANIES):
        duo.insert(CRM, f"c-{i}", f"N-{i}", f"Company {i}", "Oslo")
        duo.insert(ERP, f"e-{i}", f"N-{i}", f"Company {i}", "Oslo")
    duo.sync()
    duo.sync()
    return duo, [duo.udm_id(CRM, f"c-{i}") for i in range(COMPANIES)]


def _apply(duo: Duo, ids: list[str], step: tuple[Any, ...]) -> None:
    kind = step[0]
    if kind == "edit":
        _, system, i, field, value = step
        duo.edit(system, f"{'c' if system == CRM else 'e'}-{i}", **{field: value})
    elif kind == "udm":
        _, i, field, value = step
        duo.store.upsert("Account", {field: value}, udm_id=ids[i], source="udm")
    elif kind == "tick":
        duo.tick(step[1])
    else:
        duo.sync()


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(op, max_size=12))
def test_two_systems_and_the_udm_converge_then_stay_quiet(steps: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory(prefix="multi-prop-") as tmp:
        duo, ids = _start(Path(tmp))
        try:
            for step in steps:
                _apply(duo, ids, step)
            for _ in range(6):  # changes, their write-backs, the echoes of those writes
                report = duo.sync()
                if report.udm_changes == 0 and report.writes == 0:
                    break
            udm = duo.udm()
            for i, udm_id in enumerate(ids):
                crm, erp = duo.row(CRM, f"c-{i}"), duo.row(ERP, f"e-{i}")
                assert crm == erp == udm[udm_id], (steps, crm, erp, udm[udm_id])
            assert_quiet(duo)
        finally:
            duo.close()
