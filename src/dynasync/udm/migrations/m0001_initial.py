"""Migration 1: the store's system tables (catalog, sequence, links, sync state, runs, log, quarantine).

The definitions are a frozen copy: later migrations alter these tables, so this module must never follow
``store_tables`` as it changes.
"""

from __future__ import annotations

import sqlalchemy as sa

VERSION = 1
NAME = "initial system tables"

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Time = sa.DateTime(timezone=True)


def _tables() -> sa.MetaData:
    md = sa.MetaData()
    sa.Table(
        "ds_sequence",
        md,
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    sa.Table(
        "ds_catalog",
        md,
        sa.Column("entity", sa.String(200), primary_key=True),
        sa.Column("table_name", sa.String(200), nullable=False, unique=True),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("updated_at", _Time, nullable=False),
    )
    sa.Table(
        "ds_links",
        md,
        sa.Column("synapse", sa.String(200), primary_key=True),
        sa.Column("ext_table", sa.String(200), primary_key=True),
        sa.Column("ext_id", sa.String(200), primary_key=True),
        sa.Column("entity", sa.String(200), nullable=False),
        sa.Column("udm_id", sa.String(36), nullable=False),
        sa.Column("last_read_hash", sa.Text),
        sa.Column("last_written_hash", sa.Text),
        sa.Column("external_version", sa.String(200)),
        sa.Column("synced_version", sa.BigInteger),
        sa.Column("created_at", _Time, nullable=False),
        sa.Column("updated_at", _Time, nullable=False),
        sa.UniqueConstraint("synapse", "entity", "udm_id", name="uq_ds_links_record"),
        sa.Index("ix_ds_links_udm", "entity", "udm_id"),
    )
    sa.Table(
        "ds_sync_state",
        md,
        sa.Column("synapse", sa.String(200), primary_key=True),
        sa.Column("stream", sa.String(200), primary_key=True),
        sa.Column("cursor", sa.Text),
        sa.Column("phase", sa.String(100)),
        sa.Column("last_run_start", _Time),
        sa.Column("last_run_end", _Time),
        sa.Column("counts", sa.Text),
        sa.Column("written_version", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("updated_at", _Time, nullable=False),
    )
    sa.Table(
        "ds_runs",
        md,
        sa.Column("run_id", sa.String(100), primary_key=True),
        sa.Column("started_at", _Time, nullable=False),
        sa.Column("ended_at", _Time),
        sa.Column("status", sa.String(50), nullable=False),
        sa.Column("summary", sa.Text),
        sa.Index("ix_ds_runs_started", "started_at"),
    )
    sa.Table(
        "ds_log",
        md,
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(100)),
        sa.Column("at", _Time, nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("synapse", sa.String(200)),
        sa.Column("ext_table", sa.String(200)),
        sa.Column("ext_id", sa.String(200)),
        sa.Column("entity", sa.String(200), nullable=False),
        sa.Column("udm_id", sa.String(36), nullable=False),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("outcome", sa.Text),
        sa.Column("fields", sa.Text, nullable=False),
        sa.Index("ix_ds_log_record", "entity", "udm_id", "id"),
        sa.Index("ix_ds_log_external", "synapse", "ext_id", "id"),
        sa.Index("ix_ds_log_run", "run_id", "id"),
    )
    sa.Table(
        "ds_quarantine",
        md,
        sa.Column("synapse", sa.String(200), primary_key=True),
        sa.Column("stream", sa.String(200), primary_key=True),
        sa.Column("ext_id", sa.String(200), primary_key=True),
        sa.Column("run_id", sa.String(100)),
        sa.Column("kind", sa.String(50), nullable=False, server_default="failed"),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("payload", sa.Text),
        sa.Column("first_failed_at", _Time, nullable=False),
        sa.Column("last_failed_at", _Time, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
    )
    return md


def upgrade(conn: sa.Connection) -> None:
    """Create the system tables (skipping any that exist) and the UDM version counter."""
    md = _tables()
    md.create_all(conn, checkfirst=True)
    seq = md.tables["ds_sequence"]
    if conn.execute(sa.select(seq.c.name).where(seq.c.name == "udm_version")).first() is None:
        conn.execute(sa.insert(seq).values(name="udm_version", value=0))
