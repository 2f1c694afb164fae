"""Value types crossing the UDM store's API: incoming rows, apply results, links, sync state, log, runs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, Protocol

RowAction = Literal["created", "attached", "updated", "unchanged", "echo", "failed"]


@dataclass(frozen=True, slots=True)
class IncomingRow:
    """One external row, already mapped to UDM field values, to apply with ``apply_upserts``.

    Attributes:
        external_id: The row's id in the external table.
        values: UDM field name -> value (plain Python values; coerced to the field's type by the store).
        modified_on: When the source changed the row (aware); "latest update wins" compares it with the
            UDM field's update time. None means "now" (the store's clock).
        external_version: The source's version/etag, kept on the ID link.
        hash: The echo hash of this row; default ``store.hash_values(entity, values)``. When it equals the
            link's ``last_written_hash`` the row is our own write coming back (an echo) and changes nothing.
        synced: Per-field hashes of the values this source held when it was last in sync (from its link), for
            ``apply_upserts(hash_value=...)``: a field whose UDM value still hashes to its entry was changed by
            this source alone, so the policy is told the change is not contested.
    """

    external_id: str
    values: Mapping[str, Any]
    modified_on: dt.datetime | None = None
    external_version: str | None = None
    hash: str | None = None
    synced: Mapping[str, str] | None = None


class FieldChange(NamedTuple):
    """What happened to one field: the source's value, the UDM value before and after, and why.

    ``applied`` is False when the UDM kept its value (e.g. "latest_update_wins: udm newer").
    A named tuple because pages create one per changed field and must stay cheap.
    """

    field: str
    source: Any
    old: Any
    new: Any
    decision: str
    applied: bool


@dataclass(frozen=True, slots=True)
class RowOutcome:
    """The outcome of one incoming row (or one ``upsert`` call).

    ``action``: created (new UDM record), attached (linked to an existing record found by match key, then
    updated like ``updated``), updated (at least one field changed), unchanged (no field changed, or the same
    values as last read), echo (equal to what we last wrote to that system; nothing applied), failed (a value
    did not fit its field; nothing applied, ``error`` says why; ``udm_id`` is empty unless the row is linked).
    ``changes`` lists only fields whose source value differed from the UDM value (applied or not); it is
    empty for created records (their changes are the incoming values; the log holds them per field).
    """

    external_id: str | None
    udm_id: str
    action: RowAction
    version: int
    changes: tuple[FieldChange, ...] = ()
    error: str | None = None


@dataclass(slots=True)
class ApplyResult:
    """The outcome of one ``apply_upserts`` call, one :class:`RowOutcome` per incoming row, in order."""

    rows: list[RowOutcome] = field(default_factory=list)

    def count(self, action: RowAction) -> int:
        """Return how many rows ended with ``action``."""
        return sum(1 for row in self.rows if row.action == action)

    def counts(self) -> dict[str, int]:
        """Return counts by action (only actions that occurred)."""
        out: dict[str, int] = {}
        for row in self.rows:
            out[row.action] = out.get(row.action, 0) + 1
        return out


class FieldPolicy(Protocol):
    """Decides one field conflict: does the incoming source value replace the UDM value?"""

    def __call__(
        self,
        field: str,
        current: Any,
        current_time: dt.datetime | None,
        incoming: Any,
        incoming_time: dt.datetime,
        *,
        contested: bool = True,
    ) -> tuple[bool, str]:
        """Return (source wins, decision text such as ``"latest_update_wins: source newer"``).

        ``contested`` is False when the UDM value is still the one this source last held: only the source
        changed the field since, so there is nothing to settle (rules such as "reject empty" may still refuse).
        """
        ...


def source_is_newer(source_at: dt.datetime, udm_at: dt.datetime) -> bool:
    """True when a source change at ``source_at`` is at least as new as a UDM change at ``udm_at``.

    Dataverse keeps ``modifiedon`` in whole seconds while UDM times have microseconds: a source time without
    sub-second digits is compared with the UDM time at whole seconds, else a Dynamics change made later in the
    same second as a UDM change would always lose. Within one second the order cannot be known, so the tie goes
    to the source, as every tie does (it is the newer delivery).
    """
    if source_at.microsecond == 0:
        udm_at = udm_at.replace(microsecond=0)
    return source_at >= udm_at


def latest_update_wins(
    field: str,
    current: Any,
    current_time: dt.datetime | None,
    incoming: Any,
    incoming_time: dt.datetime,
    *,
    contested: bool = True,
) -> tuple[bool, str]:
    """The default policy: the later change wins; a tie goes to the source (it is the newer delivery)."""
    if not contested:
        return True, "latest_update_wins: only the source changed it"
    if current_time is None:
        return True, "latest_update_wins: no udm time"
    if source_is_newer(incoming_time, current_time):
        return True, "latest_update_wins: source newer"
    return False, "latest_update_wins: udm newer"


@dataclass(frozen=True, slots=True)
class EntityChange:
    """What ``ensure_entity`` did: created the table, and/or added columns for new fields."""

    entity: str
    created: bool
    added_fields: tuple[str, ...] = ()


VALUES_FORM = "="
"""Prefix of a link read state in *values form*: the source's values as JSON (see ``dynasync.engine.echo``)."""

CANONICAL_KEY = "$c"
"""The key of a tagged value in values form: a value JSON has no type for, kept as its canonical text."""

CREATED_STATE = "@"
"""The read state a link made by a fast create stores instead of its values form: the record's ``created`` log event
holds that very text, so the values are stored once; every link read hands the text out in its place."""


@dataclass(frozen=True, slots=True)
class Link:
    """One ID link: an external row <-> a UDM record, with echo-detection state.

    The hashes are opaque text (any length) chosen by the caller or by ``hash_values``.

    ``synced_version`` is the UDM version the external row is known to match (set when we read a change from
    it with no field lost, and by ``mark_written``); write-back selects records whose version is newer.
    """

    synapse: str
    table: str
    external_id: str
    entity: str
    udm_id: str
    last_read_hash: str | None = None
    last_written_hash: str | None = None
    external_version: str | None = None
    synced_version: int | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class WrittenRow:
    """One successful write-back to record on its link (see ``mark_written_many``)."""

    external_id: str
    udm_id: str
    udm_version: int
    hash: str
    external_version: str | None = None
    read_hash: str | None = None
    complete: bool = False  # every value the mapping writes was sent: the row now holds the record (verified)


@dataclass(frozen=True, slots=True)
class SyncState:
    """Sync state of one (synapse, stream): cursor, phase, last run times, counts, write-back watermark."""

    synapse: str
    stream: str
    cursor: Mapping[str, Any] | None = None
    phase: str | None = None
    last_run_start: dt.datetime | None = None
    last_run_end: dt.datetime | None = None
    counts: Mapping[str, Any] = field(default_factory=dict)
    written_version: int = 0
    updated_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class FieldLog:
    """One field of a log event (JSON-decoded values: datetimes and decimals come back as strings)."""

    field: str
    source: Any = None
    old: Any = None
    new: Any = None
    winning: Any = None
    decision: str = ""


@dataclass(frozen=True, slots=True)
class LogEvent:
    """One transactions-log event: one record read from (``direction="in"``) or written to (``"out"``) a system.

    For ``"in"`` events ``synapse`` is the source; for ``"out"`` events it is the destination and
    ``outcome`` says what happened ("ok", "error: ...", "conflict").
    """

    id: int
    run_id: str | None
    at: dt.datetime
    direction: Literal["in", "out", "udm"]
    synapse: str | None
    table: str | None
    external_id: str | None
    entity: str
    udm_id: str
    action: str
    outcome: str | None
    fields: tuple[FieldLog, ...]


@dataclass(frozen=True, slots=True)
class WriteLogEntry:
    """A write-back to log: the values written to ``synapse`` for one UDM record, and the outcome."""

    synapse: str
    table: str
    external_id: str | None
    entity: str
    udm_id: str
    values: Mapping[str, Any]
    outcome: str  # "ok", "conflict", "error: <message>"
    action: str = "write"


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One sync run."""

    run_id: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    status: str
    summary: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class QuarantinedRecord:
    """A record that failed and must be retried or reported; the cursor never silently passes it."""

    synapse: str
    stream: str
    external_id: str
    error: str
    run_id: str | None
    first_failed_at: dt.datetime
    last_failed_at: dt.datetime
    attempts: int
    kind: str = "failed"  # the caller's category, e.g. "failed", "pending", "write_failed"
    payload: Any = None  # JSON the caller stored to retry the record later (e.g. the source record)
