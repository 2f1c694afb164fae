"""Migration 3: ``ds_tombstones``, the UDM records whose row a synapse deleted (so it is not re-created there).

The definition is a frozen copy of ``dynasync.udm.store_tables.tombstones`` as released; it must not change.
"""

from __future__ import annotations

import sqlalchemy as sa

from dynasync.udm.store_codec import UtcDateTime

VERSION = 3
NAME = "tombstones of rows deleted in a synapse"


def _table() -> sa.Table:
    return sa.Table(
        "ds_tombstones",
        sa.MetaData(),
        sa.Column("synapse", sa.String(200), primary_key=True),
        sa.Column("ext_table", sa.String(200), primary_key=True),
        sa.Column("entity", sa.String(200), primary_key=True),
        sa.Column("udm_id", sa.String(36), primary_key=True),
        sa.Column("ext_id", sa.String(200), nullable=False),
        sa.Column("deleted_at", UtcDateTime, nullable=False),
    )


def upgrade(conn: sa.Connection) -> None:
    """Create ``ds_tombstones`` unless it exists; its primary key serves every lookup (by record, per table)."""
    _table().create(conn, checkfirst=True)
