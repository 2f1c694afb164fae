"""The options of an engine and the state one run shares between its pipelines."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from dynasync.clock import Clock, SystemClock
from dynasync.engine.report import ProgressCallback, RunReport
from dynasync.udm.store import UdmStore


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """Tunables of the engine.

    Attributes:
        write_chunk: records per ``synapse.write`` call (Dataverse allows at most 1000 per batch).
        max_retries: attempts after a retriable error (429, 5xx) before an entity gives up for this run.
        retry_base_delay: first back-off in seconds when the source gave no ``Retry-After``; doubles each time.
        max_retry_delay: cap of one back-off wait, seconds.
        use_if_match: send the last known external version with updates, so a row changed meanwhile is not
            overwritten (it is re-read and merged next run).
        deterministic_ids: create destination rows by upsert on an id derived from the UDM id, so a create
            retried after a crash never makes a duplicate.
        pending_passes: how many times a run retries records waiting for a parent after all reads.
    """

    write_chunk: int = 1000
    max_retries: int = 5
    retry_base_delay: float = 1.0
    max_retry_delay: float = 60.0
    use_if_match: bool = True
    deterministic_ids: bool = True
    pending_passes: int = 2


Sleep = Callable[[float], Awaitable[None]]


@dataclass(slots=True)
class RunContext:
    """What one run's pipelines share."""

    store: UdmStore
    run_id: str
    report: RunReport
    options: EngineOptions
    clock: Clock = field(default_factory=SystemClock)
    progress: ProgressCallback | None = None
    sleep: Sleep = asyncio.sleep
    # (synapse, table, external id) of records counted this run and left waiting for a referenced record: when a
    # retry fills the reference in, the record counts as resolved, not as a second change
    counted_pending: set[tuple[str, str, str]] = field(default_factory=set)

    def tick(self, entity: str, done: int, total: int | None = None) -> None:
        """Report progress of an entity to the callback, if any."""
        if self.progress is not None:
            self.progress(entity, done, total)

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Return the wait before retry ``attempt`` (1-based): the server's Retry-After, else exponential."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.options.max_retry_delay)
        return min(self.options.retry_base_delay * (2.0 ** (attempt - 1)), self.options.max_retry_delay)


def synapse_counters(synapse: object) -> tuple[int, int] | None:
    """Return (requests, throttled) a synapse counted itself, when it exposes them.

    A synapse may offer ``counters`` (or ``client.counters``, as ``DynamicsSynapse`` does) with ``requests`` and
    ``throttled``; the run report then shows real HTTP requests instead of pages read plus write calls.
    """
    counters = getattr(synapse, "counters", None)
    if counters is None:
        counters = getattr(getattr(synapse, "client", None), "counters", None)
    requests = getattr(counters, "requests", None)
    throttled = getattr(counters, "throttled", None)
    if isinstance(requests, int) and isinstance(throttled, int):
        return requests, throttled
    return None
