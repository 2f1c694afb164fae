"""Migration 5: ``ds_links.verified_version``, the record version at which a linked row held every written value.

The write-back passes over a record while its link's ``verified_version`` equals the record's ``udm_version``;
links made before this migration have none, so their records are compared once as before.
"""

from __future__ import annotations

import sqlalchemy as sa

VERSION = 5
NAME = "links remember the record version their row was verified at"


def upgrade(conn: sa.Connection) -> None:
    """Add the nullable column (no table rebuild on either database)."""
    columns = {c["name"] for c in sa.inspect(conn).get_columns("ds_links")}
    if "verified_version" not in columns:
        conn.exec_driver_sql("ALTER TABLE ds_links ADD COLUMN verified_version BIGINT")
