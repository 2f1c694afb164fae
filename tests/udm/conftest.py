"""Fixtures for the UDM store: the same contract tests run on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from dynasync.clock import FrozenClock
from dynasync.udm.model import FieldType, UdmEntity, UdmField
from dynasync.udm.store import UdmStore, open_store

PG_URL = os.environ.get("DYNASYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
_pg_problem: list[str | None] = []


def _postgres_problem() -> str | None:
    """Return why PostgreSQL cannot be used (None when it answers); checked once per session."""
    if not _pg_problem:
        try:
            engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            engine.dispose()
            _pg_problem.append(None)
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            _pg_problem.append(f"PostgreSQL at {PG_URL} does not answer: {exc.__class__.__name__}: {exc}")
    return _pg_problem[0]


@dataclass(frozen=True)
class Target:
    url: str
    schema: str | None

    @property
    def kind(self) -> str:
        return "sqlite" if self.url.startswith("sqlite") else "postgresql"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[Target]:
    if request.param == "sqlite":
        yield Target(f"sqlite:///{tmp_path}/udm.db", None)
        return
    problem = _postgres_problem()
    if problem is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{problem} (CI=true: PostgreSQL tests must run)")
        pytest.skip(problem)
    schema = f"udmtest_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield Target(PG_URL, schema)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


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
