"""Migration 4: fewer, better-ordered indexes on ``ds_links`` and ``ds_log``.

- ``ds_links``: the unique key per record becomes (entity, udm_id, synapse), which also serves lookups of every
  link of a record, so the separate ``ix_ds_links_udm`` (entity, udm_id) goes: one B-tree less per created link.
  SQLite cannot alter a table constraint, so there the table is rebuilt (same columns, rows copied).
- ``ds_log``: the external-id index becomes (ext_id, id), so a search by external id alone (``dynasync log
  <external id>``) is an index lookup; (synapse, ext_id, id) served only searches naming the synapse.

The definitions are frozen copies of the tables as released; they must not change.
"""

from __future__ import annotations

import sqlalchemy as sa

from dynasync.udm.store_codec import UtcDateTime

VERSION = 4
NAME = "lean link and log indexes"

_LINK_COLUMNS = (
    "synapse, ext_table, ext_id, entity, udm_id, last_read_hash, last_written_hash, external_version, "
    "synced_version, created_at, updated_at"
)


def _links(name: str) -> sa.Table:
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("synapse", sa.String(200), primary_key=True),
        sa.Column("ext_table", sa.String(200), primary_key=True),
        sa.Column("ext_id", sa.String(200), primary_key=True),
        sa.Column("entity", sa.String(200), nullable=False),
        sa.Column("udm_id", sa.String(36), nullable=False),
        sa.Column("last_read_hash", sa.Text),
        sa.Column("last_written_hash", sa.Text),
        sa.Column("external_version", sa.String(200)),
        sa.Column("synced_version", sa.BigInteger),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.UniqueConstraint("entity", "udm_id", "synapse", name="uq_ds_links_record"),
    )


def upgrade(conn: sa.Connection) -> None:
    """Rebuild the link keys (SQLite: a new table; PostgreSQL: constraints in place) and re-key the log index."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("DROP INDEX IF EXISTS ix_ds_links_udm")
        _links("ds_links_v4").create(conn)
        conn.exec_driver_sql(
            f"INSERT INTO ds_links_v4 ({_LINK_COLUMNS}) SELECT {_LINK_COLUMNS} FROM ds_links"
        )
        conn.exec_driver_sql("DROP TABLE ds_links")
        conn.exec_driver_sql("ALTER TABLE ds_links_v4 RENAME TO ds_links")
    else:
        conn.exec_driver_sql("DROP INDEX IF EXISTS ix_ds_links_udm")
        conn.exec_driver_sql("ALTER TABLE ds_links DROP CONSTRAINT uq_ds_links_record")
        conn.exec_driver_sql(
            "ALTER TABLE ds_links ADD CONSTRAINT uq_ds_links_record UNIQUE (entity, udm_id, synapse)"
        )
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_ds_log_external")
    conn.exec_driver_sql("CREATE INDEX ix_ds_log_external ON ds_log (ext_id, id)")
