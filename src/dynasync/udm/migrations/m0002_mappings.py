"""Migration 2: ``ds_mappings``, the draft (version 0) and immutable published versions of each synapse's mapping.

The definition is a frozen copy: the query-side table in ``dynasync.mapping.store_repository`` may gain
conveniences, this module must not change once released.
"""

from __future__ import annotations

import sqlalchemy as sa

VERSION = 2
NAME = "mapping drafts and published versions"


def _table() -> sa.Table:
    return sa.Table(
        "ds_mappings",
        sa.MetaData(),
        sa.Column("synapse", sa.String(200), primary_key=True),
        # 0 is the draft; published versions count up from 1 and are never rewritten.
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("yaml", sa.Text, nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),  # sha256 hex of the UTF-8 YAML
        sa.Column("summary", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.String(200)),
        sa.CheckConstraint("version >= 0", name="ck_ds_mappings_version"),
    )


def upgrade(conn: sa.Connection) -> None:
    """Create ``ds_mappings`` unless it exists (so a half-applied run or a hand-made table is not fatal).

    The composite primary key (synapse, version) serves every query: the draft, one version, and the history
    in version order, so no further index is needed.
    """
    _table().create(conn, checkfirst=True)
