"""Migration 6: ``ds_writer``, the flag that tells the SQL-edit triggers a write is the store's own.

Every store write transaction raises the flag at its start and lowers it before it commits, so other sessions
never see it raised (SQLite has one writer at a time; PostgreSQL shows them the committed row). The triggers
of the entity tables act only when it is down: a person's ``UPDATE`` is tracked whatever it sets, a change of
``udm_version`` by hand is refused, and so is an ``INSERT``.
"""

from __future__ import annotations

import sqlalchemy as sa

VERSION = 6
NAME = "a flag marks the store's own writes for the SQL-edit triggers"


def upgrade(conn: sa.Connection) -> None:
    """Create the one-row table (flag down)."""
    conn.exec_driver_sql(
        "CREATE TABLE IF NOT EXISTS ds_writer (id INTEGER PRIMARY KEY, active INTEGER NOT NULL)"
    )
    if conn.exec_driver_sql("SELECT count(*) FROM ds_writer").scalar_one() == 0:
        conn.exec_driver_sql("INSERT INTO ds_writer (id, active) VALUES (1, 0)")
