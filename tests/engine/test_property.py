from __future__ import annotations

import os
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynasync.engine.echo import values_equal

from .convergence import mismatches
from .harness import World, make_spec

pytestmark = pytest.mark.slow

# A longer hunt: DYNASYNC_SYNC_EXAMPLES=500 pytest tests/engine/test_property.py
EXAMPLES = int(os.environ.get("DYNASYNC_SYNC_EXAMPLES", "50"))

FIELDS = {
    "name": ["n1", "n2", "n3"],
    "city": ["Oslo", "Rome", None],
    "revenue": [Decimal("1.5"), Decimal(2), None],
}

edit = st.tuples(
    st.sampled_from(["src", "udm"]),
    st.integers(0, 3),
    st.sampled_from(sorted(FIELDS)),
    st.integers(0, 2),
)
op = st.one_of(
    edit,
    st.just(("sync",)),
    st.tuples(st.just("src_new"), st.integers(0, 2)),
    st.tuples(st.just("udm_new"), st.integers(0, 2)),
    st.tuples(st.just("src_del"), st.integers(0, 3)),
    st.tuples(st.just("udm_del"), st.integers(0, 3)),
)


def _apply(world: World, step: tuple[Any, ...], last: dict[tuple[str, str], tuple[str, Any]]) -> None:
    """Run one step; ``last`` keeps, per (source id, field), the side and value of an edit not yet synced."""
    world.tick()
    kind = step[0]
    rows = sorted(world.fake.rows("account"))
    if kind == "sync":
        world.sync()
        last.clear()
    elif kind in ("src", "udm"):
        _, index, field, value_index = step
        if not rows:
            return
        ext_id = rows[index % len(rows)]
        value = FIELDS[field][value_index]
        link = world.store.get_link("dyn", "account", ext_id)
        if kind == "src":
            world.fake.update("account", ext_id, {field: value})
        elif link is not None and link.udm_id in world.udm("Account"):
            world.store.upsert("Account", {field: value}, udm_id=link.udm_id, source="udm")
        else:
            return
        previous = last.get((ext_id, field))
        # Only the first side to edit a field between two syncs is sure to win when the other edits later...
        # so remember a field edited on ONE side only; an edit on the other side makes it a conflict.
        last[(ext_id, field)] = (kind, value) if previous is None or previous[0] == kind else ("both", None)
    elif kind == "src_new":
        world.fake.insert(
            "account",
            {
                "name": f"s{len(rows)}",
                "city": FIELDS["city"][step[1]],
                "revenue": None,
                "parentaccountid": None,
                "ownerid": None,
            },
            id=f"s-{world.fake.state.version}",
        )
    elif kind == "udm_new":
        world.store.upsert("Account", {"name": f"u{step[1]}", "city": FIELDS["city"][step[1]]}, source="udm")
    elif kind == "src_del" and rows:
        ext_id = rows[step[1] % len(rows)]
        world.fake.delete("account", ext_id)
        for key in [k for k in last if k[0] == ext_id]:
            del last[key]
    elif kind == "udm_del":
        live = sorted(world.udm("Account"))
        if live:
            udm_id = live[step[1] % len(live)]
            world.store.mark_deleted("Account", udm_id)
            for key in [
                k
                for k in last
                if world.store.get_link("dyn", "account", k[0]) is not None
                and world.store.get_link("dyn", "account", k[0]).udm_id == udm_id
            ]:  # type: ignore[union-attr]
                del last[key]


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(op, max_size=14))
def test_random_edits_on_both_sides_converge_then_stay_quiet(steps: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        world = World(Path(folder), spec=make_spec(deletes_from_udm=True), page_size=3)
        try:
            for i in range(3):
                world.fake.insert(
                    "account",
                    {
                        "name": f"a{i}",
                        "city": "Oslo",
                        "revenue": Decimal(i),
                        "parentaccountid": None,
                        "ownerid": None,
                    },
                    id=f"a-{i}",
                )
            world.sync()
            last: dict[tuple[str, str], tuple[str, Any]] = {}
            for step in steps:
                _apply(world, step, last)
            world.sync()
            world.sync()
            assert mismatches(world) == []
            # A field edited on one side only since the last sync keeps that edit.
            rows = world.fake.rows("account")
            for (ext_id, field), (side, value) in last.items():
                if side != "both" and ext_id in rows:
                    # A column the row never had is empty (the fake keeps no key for it).
                    assert values_equal(rows[ext_id].get(field), value), (ext_id, field, side, value)
            quiet = world.sync()
            assert quiet.writes == 0 and quiet.udm_changes == 0, quiet.to_dict()
            assert world.store.list_quarantined() == []
        finally:
            world.close()
