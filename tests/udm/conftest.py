"""Fixtures for the UDM store: the same contract tests run on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from db_targets import TARGET_PARAMS, Target, database_target
from dynasync.clock import FrozenClock
from dynasync.udm.model import FieldType, UdmEntity, UdmField
from dynasync.udm.store import UdmStore, open_store


@pytest.fixture(params=TARGET_PARAMS)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    with database_target(request.param, tmp_path, schema_prefix="udmtest") as found:
        yield found


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC))


@pytest.fixture
def opener(target: Target, clock: FrozenClock) -> Iterator[Callable[[], UdmStore]]:
    """Open the target store (again); every store opened is closed at teardown."""
    opened: list[UdmStore] = []

    def open_() -> UdmStore:
        store = open_store(target.url, schema=target.schema, clock=clock)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def store(opener: Callable[[], UdmStore]) -> UdmStore:
    return opener()


def account_entity(**extra: UdmField) -> UdmEntity:
    fields = {
        "name": UdmField("name", FieldType.STRING, max_length=100),
        "accountnumber": UdmField("accountnumber", FieldType.STRING, max_length=20),
        "revenue": UdmField("revenue", FieldType.DECIMAL),
        "employees": UdmField("employees", FieldType.INTEGER),
        "big": UdmField("big", FieldType.BIGINT),
        "score": UdmField("score", FieldType.FLOAT),
        "active": UdmField("active", FieldType.BOOLEAN),
        "lastcontact": UdmField("lastcontact", FieldType.DATETIME),
        "founded": UdmField("founded", FieldType.DATE),
        "industry": UdmField("industry", FieldType.CHOICE),
        "tags": UdmField("tags", FieldType.MULTICHOICE),
        "parent": UdmField("parent", FieldType.REFERENCE, reference="account"),
        "extkey": UdmField("extkey", FieldType.UUID),
        "notes": UdmField("notes", FieldType.TEXT),
        **extra,
    }
    return UdmEntity("account", fields, match_keys=("accountnumber",))


def contact_entity() -> UdmEntity:
    fields = {
        "email": UdmField("email", FieldType.STRING, max_length=200),
        "lastname": UdmField("lastname", FieldType.STRING, max_length=100),
        "account": UdmField("account", FieldType.REFERENCE, reference="account"),
    }
    return UdmEntity("contact", fields, match_keys=("email",))
