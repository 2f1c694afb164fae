"""What every synapse promises the engine: discover its tables, read changes in batches, write records.

Values crossing this seam are plain Python values: str, int, float, Decimal, bool, datetime (aware, UTC),
date, None; multi-select choices as ``tuple[int, ...]``; lookups as :class:`LookupRef`.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


class ColumnType(enum.StrEnum):
    """Source column types, normalised across synapses."""

    STRING = "string"
    TEXT = "text"  # long text (Dataverse Memo)
    INTEGER = "integer"
    BIGINT = "bigint"
    DECIMAL = "decimal"
    FLOAT = "float"
    MONEY = "money"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    DATE = "date"  # Dataverse DateOnly behaviour
    CHOICE = "choice"  # Picklist, State, Status
    MULTICHOICE = "multichoice"
    LOOKUP = "lookup"  # Lookup, Customer (polymorphic), Owner
    UUID = "uuid"


@dataclass(frozen=True, slots=True)
class LookupRef:
    """A reference to a row of another table: ``LookupRef("account", "<guid>")``."""

    table: str
    id: str


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One source column.

    ``options`` lists (value, label) of a choice column; ``targets`` the tables a lookup may point to and
    ``navigation`` the write-side navigation property per target (``{"account": "parentcustomerid_account"}``).
    """

    name: str
    type: ColumnType
    source_type: str = ""  # the synapse's own type name, e.g. Dataverse "Customer"
    display_name: str = ""
    max_length: int | None = None
    precision: int | None = None
    options: tuple[tuple[int, str], ...] = ()
    targets: tuple[str, ...] = ()
    navigation: Mapping[str, str] = field(default_factory=dict)
    required: bool = False
    readable: bool = True
    creatable: bool = True
    updatable: bool = True
    is_primary_id: bool = False
    is_primary_name: bool = False
    is_custom: bool = False
    # A column whose value decides which values this one may take (Dataverse: statuscode on statecode); a
    # writer never sends this one without that one's value in force.
    depends_on: str | None = None


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """One source table."""

    name: str  # logical name, e.g. "account"
    collection: str  # Dataverse entity set name, e.g. "accounts"
    primary_id: str
    primary_name: str | None
    columns: Mapping[str, ColumnSpec]
    display_name: str = ""
    alternate_keys: tuple[tuple[str, ...], ...] = ()
    change_tracking: bool = True
    supports_bulk: bool = True
    is_custom: bool = False


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One row read from a source.

    ``labels`` holds display labels (choice labels, lookup primary names) by column, when the source gave them.
    """

    id: str
    values: Mapping[str, Any]
    version: str | None = None  # Dataverse versionnumber / etag number
    modified_on: dt.datetime | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    """One page of changes and the cursor that is valid once this page is committed.

    ``cursor`` is JSON-serialisable and opaque to the engine. ``full_load`` is True while an initial
    (or fallback) load is running; ``reconcile_ids`` is set on the last batch of a full load that must also
    find rows deleted meanwhile: every id the source still has (the engine deletes the ones it holds beyond).
    """

    stream: str
    upserts: Sequence[SourceRecord]
    deletes: Sequence[str]
    cursor: Mapping[str, Any]
    full_load: bool = False
    last: bool = False
    reconcile_ids: frozenset[str] | None = None
    notes: Sequence[str] = ()


class WriteKind(enum.StrEnum):
    """What a write does."""

    CREATE = "create"
    UPDATE = "update"
    UPSERT = "upsert"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class WriteOp:
    """One record to write; ``id`` or ``alternate_key`` address it (neither for a create with a server id)."""

    kind: WriteKind
    table: str
    values: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None
    alternate_key: Mapping[str, Any] | None = None
    if_match: str | None = None  # a version; the write fails with a conflict when the row moved on


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The outcome of one :class:`WriteOp`, in the order given."""

    ok: bool
    id: str | None = None
    version: str | None = None
    error_code: str | None = None
    error: str | None = None
    conflict: bool = False


class Synapse(Protocol):
    """A connector to one external system."""

    name: str

    async def discover(self) -> list[StreamSpec]:
        """Return every table the credentials can read, with its columns."""
        ...

    def read(self, stream: StreamSpec, cursor: Mapping[str, Any] | None) -> AsyncIterator[ChangeBatch]:
        """Yield change batches from ``cursor`` on (None: a full load)."""
        ...

    def reload_cursor(self, stream: StreamSpec) -> Mapping[str, Any] | None:
        """Return the cursor from which :meth:`read` loads every row again, ending with ``reconcile_ids``.

        That is a resync: rows the UDM links to that the source no longer has are found too.
        """
        ...

    async def write(self, stream: StreamSpec, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Write records; one failed record never fails the others."""
        ...
