"""Batching contract of the UDM store: a page costs a bounded number of SQL statements, whatever its size."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from dynasync.udm.store import IncomingRow, UdmStore

from .conftest import account_entity

T0 = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)


@contextmanager
def counting(store: UdmStore) -> Iterator[list[str]]:
    statements: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", before)


def page(start: int, size: int, suffix: str = "") -> list[IncomingRow]:
    return [
        IncomingRow(
            f"x{i}",
            {
                "name": f"n{i}{suffix}",
                "accountnumber": f"AN{i}",
                "revenue": i,
                "lastcontact": T0,
                "tags": (1, 2),
            },
            modified_on=T0 + dt.timedelta(seconds=len(suffix)),
            external_version=str(i),
        )
        for i in range(start, start + size)
    ]


def statements_for(store: UdmStore, rows: list[IncomingRow]) -> int:
    with counting(store) as seen, store.transaction() as tx:
        tx.apply_upserts("account", "dynamics", "account", rows)
        tx.put_cursor("dynamics", "account", {"n": len(rows)})
    return len(seen)


def test_statements_per_page_do_not_grow_with_rows(store: UdmStore) -> None:
    store.ensure_entity(account_entity())
    small = statements_for(store, page(0, 10))
    large = statements_for(store, page(10, 5000))
    # IN (...) lookups go in chunks of 500, so 5,000 rows add a few lookups, never one per row.
    assert large <= small + 40, (small, large)
    updates = statements_for(store, page(10, 5000, "!"))
    assert updates <= small + 50, (small, updates)
    assert store.count("account") == 5010


@pytest.mark.slow
def test_full_load_in_pages_keeps_every_row_and_the_last_cursor(store: UdmStore) -> None:
    # Throughput is measured by bench/ (docs/benchmarks.md), never asserted in tests.
    store.ensure_entity(account_entity())
    total = 20_000
    rows = page(0, total)
    for start in range(0, total, 5000):
        with store.transaction() as tx:
            tx.apply_upserts("account", "dynamics", "account", rows[start : start + 5000])
            tx.put_cursor("dynamics", "account", {"at": start})
    assert store.count("account") == total
    state = store.get_state("dynamics", "account")
    assert state is not None and state.cursor == {"at": 15_000}
