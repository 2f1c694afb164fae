"""SQL table definitions of the UDM store: the ``ds_`` system tables and one ``udm_<entity>`` table per entity."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from dynasync.errors import StoreError
from dynasync.udm.model import FieldType, UdmEntity, UdmField
from dynasync.udm.store_codec import Coercer, UtcDateTime, coercer, column_type

# Portable auto-increment 64-bit key: SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

SYSTEM_COLUMNS = (
    "udm_id",
    "udm_deleted",
    "udm_created_at",
    "udm_updated_at",
    "udm_version",
    "udm_source",
    "udm_field_times",
)
VERSION_SEQUENCE = "udm_version"

metadata = sa.MetaData()

schema_version = sa.Table(
    "ds_schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("applied_at", UtcDateTime, nullable=False),
)

sequence = sa.Table(
    "ds_sequence",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

catalog = sa.Table(
    "ds_catalog",
    metadata,
    sa.Column("entity", sa.String(200), primary_key=True),
    sa.Column("table_name", sa.String(200), nullable=False, unique=True),
    sa.Column("definition", sa.Text, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

links = sa.Table(
    "ds_links",
    metadata,
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
    # The record's udm_version at which the row was known to hold every value the synapse's mapping writes
    # (migration 5): the write-back passes over a record while this equals its version.
    sa.Column("verified_version", sa.BigInteger),
    # One link per record and synapse; led by (entity, udm_id) it also finds all links of a record.
    sa.UniqueConstraint("entity", "udm_id", "synapse", name="uq_ds_links_record"),
)

# A synapse deleted the row of a UDM record that lives on (another synapse still has it): the write-back does not
# create the row there again unless that mapping opts in (deletes.recreate).
tombstones = sa.Table(
    "ds_tombstones",
    metadata,
    sa.Column("synapse", sa.String(200), primary_key=True),
    sa.Column("ext_table", sa.String(200), primary_key=True),
    sa.Column("entity", sa.String(200), primary_key=True),
    sa.Column("udm_id", sa.String(36), primary_key=True),
    sa.Column("ext_id", sa.String(200), nullable=False),
    sa.Column("deleted_at", UtcDateTime, nullable=False),
)

sync_state = sa.Table(
    "ds_sync_state",
    metadata,
    sa.Column("synapse", sa.String(200), primary_key=True),
    sa.Column("stream", sa.String(200), primary_key=True),
    sa.Column("cursor", sa.Text),
    sa.Column("phase", sa.String(100)),
    sa.Column("last_run_start", UtcDateTime),
    sa.Column("last_run_end", UtcDateTime),
    sa.Column("counts", sa.Text),
    sa.Column("written_version", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

runs = sa.Table(
    "ds_runs",
    metadata,
    sa.Column("run_id", sa.String(100), primary_key=True),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("ended_at", UtcDateTime),
    sa.Column("status", sa.String(50), nullable=False),
    sa.Column("summary", sa.Text),
    sa.Index("ix_ds_runs_started", "started_at"),
)

log = sa.Table(
    "ds_log",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(100)),
    sa.Column("at", UtcDateTime, nullable=False),
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
    sa.Index("ix_ds_log_external", "ext_id", "id"),
    sa.Index("ix_ds_log_run", "run_id", "id"),
)

quarantine = sa.Table(
    "ds_quarantine",
    metadata,
    sa.Column("synapse", sa.String(200), primary_key=True),
    sa.Column("stream", sa.String(200), primary_key=True),
    sa.Column("ext_id", sa.String(200), primary_key=True),
    sa.Column("run_id", sa.String(100)),
    sa.Column("kind", sa.String(50), nullable=False, server_default="failed"),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("payload", sa.Text),
    sa.Column("first_failed_at", UtcDateTime, nullable=False),
    sa.Column("last_failed_at", UtcDateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
)

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,58}$")


def check_name(kind: str, name: str) -> None:
    """Refuse names that cannot be SQL identifiers or that clash with the store's system columns."""
    if not _NAME.match(name):
        raise StoreError(
            f"UDM {kind} name {name!r} is not a valid SQL identifier",
            remedy="Use letters, digits and underscores (at most 59 characters), not starting with a digit.",
        )
    if kind == "field" and name.lower().startswith("udm_"):
        raise StoreError(
            f"UDM field name {name!r} uses the reserved prefix 'udm_'", remedy="Rename the field."
        )


@dataclass(frozen=True, slots=True)
class CatalogField:
    """A field as kept in the catalog; ``retired`` fields left the entity but keep their column."""

    field: UdmField
    retired: bool = False


@dataclass(frozen=True, slots=True)
class EntityInfo:
    """Everything the store needs about one entity: its definition, SQL table and value coercers."""

    entity: UdmEntity
    fields: Mapping[str, CatalogField]  # active and retired
    table: sa.Table
    coercers: Mapping[str, Coercer]

    @property
    def active(self) -> Mapping[str, UdmField]:
        """The entity's current fields."""
        return self.entity.fields


MAX_IDENTIFIER = 63
"""PostgreSQL's longest identifier; it cuts longer ones short, which could make two names one."""


def identifier(stem: str, suffix: str) -> str:
    """``stem + suffix``, or when that is too long, the stem's start and a digest of it (stable, distinct)."""
    name = stem + suffix
    if len(name) <= MAX_IDENTIFIER:
        return name
    return f"{stem[:40]}_{hashlib.sha1(stem.encode()).hexdigest()[:8]}{suffix}"


def build_info(
    name: str, fields: Mapping[str, CatalogField], match_keys: tuple[str, ...], dialect: str
) -> EntityInfo:
    """Build the SQL table object and coercers of an entity from its catalog fields."""
    entity = UdmEntity(
        name=name,
        fields={k: cf.field for k, cf in fields.items() if not cf.retired},
        match_keys=match_keys,
    )
    table = sa.Table(
        entity.table,
        sa.MetaData(),
        sa.Column("udm_id", sa.String(36), primary_key=True),
        *(sa.Column(cf.field.name, column_type(cf.field)) for cf in fields.values()),
        sa.Column("udm_deleted", sa.Boolean, nullable=False, default=False),
        sa.Column("udm_created_at", UtcDateTime, nullable=False),
        sa.Column("udm_updated_at", UtcDateTime, nullable=False),
        sa.Column("udm_version", sa.BigInteger, nullable=False),
        sa.Column("udm_source", sa.String(200)),
        sa.Column("udm_field_times", sa.Text, nullable=False),
        sa.Index(identifier(f"ix_{entity.table}", "_version"), "udm_version"),
    )
    coercers = {k: coercer(f, dialect) for k, f in entity.fields.items()}
    return EntityInfo(entity=entity, fields=dict(fields), table=table, coercers=coercers)


def match_key_index(info: EntityInfo) -> sa.Index | None:
    """Return the (case-insensitive) index serving the entity's match keys, bound to its table."""
    keys = info.entity.match_keys
    if not keys:
        return None
    exprs: list[Any] = []
    for key in keys:
        col = info.table.c[key]
        exprs.append(sa.func.lower(col) if is_textual(info.entity.fields[key]) else col)
    return sa.Index(f"ix_{info.entity.table}_mk_{'_'.join(keys)}"[:63], *exprs)


def is_textual(field: UdmField) -> bool:
    """Whether match-key comparison on this field is case-insensitive text comparison."""
    return field.type in (FieldType.STRING, FieldType.TEXT, FieldType.CHOICE)


def encode_definition(
    entity_name: str, fields: Mapping[str, CatalogField], match_keys: tuple[str, ...]
) -> dict[str, Any]:
    """Return the JSON-able catalog definition of an entity."""
    return {
        "name": entity_name,
        "match_keys": list(match_keys),
        "fields": [
            {
                "name": cf.field.name,
                "type": str(cf.field.type),
                "reference": cf.field.reference,
                "max_length": cf.field.max_length,
                "description": cf.field.description,
                "retired": cf.retired,
            }
            for cf in fields.values()
        ],
    }


def decode_definition(data: Mapping[str, Any]) -> tuple[str, dict[str, CatalogField], tuple[str, ...]]:
    """Parse a catalog definition back into (name, fields, match keys)."""
    fields = {
        f["name"]: CatalogField(
            UdmField(
                name=f["name"],
                type=FieldType(f["type"]),
                reference=f.get("reference"),
                max_length=f.get("max_length"),
                description=f.get("description", ""),
            ),
            retired=bool(f.get("retired", False)),
        )
        for f in data["fields"]
    }
    return data["name"], fields, tuple(data.get("match_keys", ()))
