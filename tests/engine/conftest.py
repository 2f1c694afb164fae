"""Fixtures shared by engine tests."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from .harness import World


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """Six accounts synced into the UDM (modules that need another world define their own ``world``)."""
    w = World(tmp_path, page_size=4)
    for i in range(6):
        w.fake.insert(
            "account",
            {
                "name": f"Acc {i}",
                "city": "Oslo",
                "revenue": Decimal(i),
                "parentaccountid": None,
                "ownerid": None,
            },
            id=f"a-{i}",
        )
    w.sync()
    yield w
    w.close()
