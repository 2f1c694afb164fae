"""Versioned DDL of the UDM store: numbered migrations applied in order, recorded in ``ds_schema_version``."""

from __future__ import annotations

import datetime as dt
from types import ModuleType

import sqlalchemy as sa

from dynasync.udm.migrations import (
    m0001_initial,
    m0002_mappings,
    m0003_tombstones,
    m0004_lean_indexes,
    m0005_verified_links,
    m0006_writer_flag,
)

# Explicit order; a new migration is a new module m000N_<name>.py with VERSION, NAME and upgrade(conn).
MIGRATIONS: tuple[ModuleType, ...] = (
    m0001_initial,
    m0002_mappings,
    m0003_tombstones,
    m0004_lean_indexes,
    m0005_verified_links,
    m0006_writer_flag,
)

_version_table = sa.Table(
    "ds_schema_version",
    sa.MetaData(),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)
_PG_LOCK_KEY = 0x64796E6173796E63 & 0x7FFFFFFFFFFFFFFF  # "dynasync"; serialises concurrent openers


def latest_version() -> int:
    """Return the version the newest migration brings the schema to."""
    return max(int(m.VERSION) for m in MIGRATIONS)


def migrate(conn: sa.Connection, now: dt.datetime) -> list[int]:
    """Apply every migration not yet recorded, in order, on ``conn`` (inside the caller's transaction).

    Idempotent: running it again applies nothing. Returns the versions applied now.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    _version_table.create(conn, checkfirst=True)
    applied = set(conn.execute(sa.select(_version_table.c.version)).scalars())
    newer = [v for v in applied if v > latest_version()]
    if newer:
        from dynasync.errors import StoreError

        raise StoreError(
            f"the UDM store has schema version {max(newer)}, newer than this dynasync ({latest_version()})",
            remedy="Upgrade dynasync before opening this store.",
        )
    done: list[int] = []
    for module in sorted(MIGRATIONS, key=lambda m: int(m.VERSION)):
        version = int(module.VERSION)
        if version in applied:
            continue
        module.upgrade(conn)
        # Stored as naive UTC on SQLite; this table is written only here.
        stamp = now if conn.dialect.name != "sqlite" else now.replace(tzinfo=None)
        conn.execute(
            sa.insert(_version_table).values(version=version, name=str(module.NAME), applied_at=stamp)
        )
        done.append(version)
    return done
