"""The databases store tests run on: a SQLite file always, PostgreSQL when it answers (required under CI=true)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_URL = os.environ.get("DYNASYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TARGET_PARAMS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
_pg_problem: list[str | None] = []


def postgres_problem() -> str | None:
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
    """A database URL, plus the PostgreSQL schema a test owns (None on SQLite)."""

    url: str
    schema: str | None

    @property
    def kind(self) -> str:
        return "sqlite" if self.url.startswith("sqlite") else "postgresql"

    def engine(self) -> sa.Engine:
        """A bare engine on the target (search_path set), for building stores by hand."""
        if self.schema is None:
            return sa.create_engine(self.url)
        return sa.create_engine(self.url, connect_args={"options": f"-csearch_path={self.schema}"})


@contextmanager
def database_target(kind: str, tmp_path: Path, *, schema_prefix: str) -> Iterator[Target]:
    """A fresh SQLite file, or a fresh PostgreSQL schema dropped afterwards; skips (fails under CI) without one."""
    if kind == "sqlite":
        yield Target(f"sqlite:///{tmp_path}/udm.db", None)
        return
    problem = postgres_problem()
    if problem is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{problem} (CI=true: PostgreSQL tests must run)")
        pytest.skip(problem)
    schema = f"{schema_prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield Target(PG_URL, schema)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
