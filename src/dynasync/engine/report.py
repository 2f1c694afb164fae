"""The run report: per entity and synapse counts, failures with reasons, and progress callbacks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

ProgressCallback = Callable[[str, int, "int | None"], None]
"""Called as ``progress(entity, done, total_or_None)`` while an entity is processed (records read so far)."""


@dataclass(slots=True)
class RecordIssue:
    """One record that was skipped, failed or left pending, and why."""

    direction: str  # "read" (source -> UDM) or "write" (UDM -> destination)
    record: str  # external id (read) or UDM id (write)
    reason: str
    kind: str = "failed"  # "failed", "pending" (waits for a parent record) or "skipped" (by a setting)


@dataclass(slots=True)
class SynapseCounts:
    """What happened between one UDM entity and one synapse during a run."""

    created: int = 0
    updated: int = 0  # UDM records changed by an incoming change (not counting ``resolved``)
    deleted: int = 0
    unchanged: int = 0
    echoes: int = 0  # our own writes read back: not applied again (only source-maintained values refreshed)
    skipped: int = 0  # incoming changes that lost every field to the conflict policy
    failed: int = 0
    pending: int = 0  # held back until a referenced parent record is linked
    resolved: int = 0  # records counted earlier in this run whose waiting reference was filled in later in it
    written_created: int = 0
    written_updated: int = 0
    written_deleted: int = 0
    write_failed: int = 0
    write_conflicts: int = 0  # the destination row moved on (If-Match); retried next run
    requests: int = 0
    throttled: int = 0
    full_load: bool = False
    issues: list[RecordIssue] = field(default_factory=list)
    # What the synapse said about how it read (change tracking off, a token expired, a reload): shown to the user
    notes: list[str] = field(default_factory=list)

    MAX_ISSUES = 200  # keep reports small; counts stay exact

    def issue(self, direction: str, record: str, reason: str, kind: str = "failed") -> None:
        """Record a failed or pending record (the list is capped; counts are kept by the caller)."""
        if len(self.issues) < self.MAX_ISSUES:
            self.issues.append(RecordIssue(direction, record, reason, kind))


@dataclass(slots=True)
class EntityReport:
    """One UDM entity's part of a run."""

    entity: str
    synapses: dict[str, SynapseCounts] = field(default_factory=dict)
    error: str | None = None  # set when the entity stopped early (e.g. the source refused)

    def counts(self, synapse: str) -> SynapseCounts:
        """Return (creating it) the counts of one synapse."""
        found = self.synapses.get(synapse)
        if found is None:
            found = self.synapses[synapse] = SynapseCounts()
        return found


@dataclass(slots=True)
class RunReport:
    """The outcome of one run over some entities."""

    run_id: str
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    entities: dict[str, EntityReport] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def entity(self, name: str) -> EntityReport:
        """Return (creating it) one entity's report."""
        found = self.entities.get(name)
        if found is None:
            found = self.entities[name] = EntityReport(name)
        return found

    @property
    def ok(self) -> bool:
        """True when no entity stopped early and the run itself raised nothing."""
        return not self.errors and all(e.error is None for e in self.entities.values())

    def total(self, attribute: str) -> int:
        """Sum one counter (e.g. ``"written_updated"``) over all entities and synapses."""
        return sum(int(getattr(c, attribute)) for e in self.entities.values() for c in e.synapses.values())

    @property
    def writes(self) -> int:
        """Records written to destinations (created, updated and deleted there)."""
        return self.total("written_created") + self.total("written_updated") + self.total("written_deleted")

    @property
    def udm_changes(self) -> int:
        """UDM records created, updated or deleted by this run (echoes and ``resolved`` are not new changes)."""
        return self.total("created") + self.total("updated") + self.total("deleted")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable form (for ``--json``)."""
        return {
            "run_id": self.run_id,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "ok": self.ok,
            "errors": list(self.errors),
            "totals": {
                "udm_changes": self.udm_changes,
                "writes": self.writes,
                "failed": self.total("failed") + self.total("write_failed"),
                "pending": self.total("pending"),
                "resolved": self.total("resolved"),
                "echoes": self.total("echoes"),
            },
            "entities": {
                name: {
                    "error": report.error,
                    "synapses": {syn: asdict(counts) for syn, counts in report.synapses.items()},
                }
                for name, report in self.entities.items()
            },
        }
