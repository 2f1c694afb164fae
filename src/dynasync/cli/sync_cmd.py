"""``dynasync sync``, ``dynasync status`` and ``dynasync log``: run syncs and see what happened."""

from __future__ import annotations

import asyncio
import re
import signal
import threading
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from dynasync.cli.context import state_of
from dynasync.cli.output import (
    EXIT_OK,
    EXIT_RECORDS_FAILED,
    Output,
    error_payload,
    escape,
    exit_code_for,
    jsonable,
    reported,
)
from dynasync.dry_run import PlannedWrite
from dynasync.engine.report import ProgressCallback, RunReport
from dynasync.errors import ConfigError, DynasyncError

_EVERY = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h)?$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, None: 1}

# The run summary: (header, how to read it off one entity/synapse's counts).
_SUMMARY_COLUMNS: tuple[tuple[str, Callable[[Any], int]], ...] = (
    ("created", lambda c: c.created),
    ("updated", lambda c: c.updated),
    ("deleted", lambda c: c.deleted),
    ("skipped", lambda c: c.skipped),
    ("unchanged", lambda c: c.unchanged),
    ("failed", lambda c: c.failed + c.write_failed),
    ("pending", lambda c: c.pending),
    ("written back", lambda c: c.written_created + c.written_updated + c.written_deleted),
    ("requests", lambda c: c.requests),
    ("throttled", lambda c: c.throttled),
)


def parse_every(text: str) -> float:
    """Parse ``60s`` / ``5m`` / ``1h`` / ``90`` (seconds) into seconds.

    Raises:
        ConfigError: Not a positive duration.
    """
    match = _EVERY.match(text.strip().lower())
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(
            f"--every {text!r} is not a duration.",
            remedy="Use a positive number with s, m or h, e.g. --every 60s, --every 5m or --every 1h.",
        )
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def sync(
    ctx: typer.Context,
    entity: list[str] | None = typer.Option(None, "--entity", help="Sync only this UDM entity (repeatable)."),
    synapse: list[str] | None = typer.Option(None, "--synapse", help="Sync only this synapse (repeatable)."),
    every: str | None = typer.Option(None, "--every", help="Run continuously, e.g. --every 60s, 5m, 1h."),
    count: int | None = typer.Option(
        None, "--count", min=1, help="With --every: stop after this many runs (default: until Ctrl+C)."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show what a run would change in the UDM and write back; change nothing."
    ),
    full: bool = typer.Option(
        False,
        "--full",
        help="Resync: read every row of the chosen tables again (the stored delta token is dropped), apply "
        "what differs, treat rows the source no longer has as deleted, then go on incrementally. With --every, "
        "only the first run.",
    ),
) -> None:
    """Synchronize: read changes from Dynamics into the UDM and write UDM changes back.

    Prints a summary per entity after each run (created, updated, deleted, skipped, written back, requests,
    throttled). Exit code 1 when records failed, 2 for a configuration or authentication problem.
    """
    from dynasync.sync_service import active_records, dry_run_sync, run_sync

    state = state_of(ctx)
    out = state.out
    with reported(out):
        seconds = parse_every(every) if every is not None else None
        if count is not None and seconds is None:
            raise ConfigError("--count only applies with --every.", remedy="Add --every, e.g. --every 60s.")
        if dry_run and seconds is not None:
            raise ConfigError("--dry-run shows one run; it does not repeat.", remedy="Leave out --every.")
        active_records(state.workspace, synapse)  # fail fast (exit 2) before any progress output
        if dry_run:
            with _ProgressBars(out) as progress:
                result = asyncio.run(
                    dry_run_sync(
                        state.workspace, synapses=synapse, entities=entity, progress=progress, reload=full
                    )
                )
            _print_dry_run(out, result.report, result.planned)
            if _failed(result.report):
                raise typer.Exit(EXIT_RECORDS_FAILED)  # as the real run would: scripts gate on it
            return

        def one_run() -> RunReport:
            nonlocal full  # --full applies to the first run that completes; later ones go on incrementally
            with _ProgressBars(out) as progress:
                report = asyncio.run(
                    run_sync(
                        state.workspace, synapses=synapse, entities=entity, progress=progress, reload=full
                    )
                )
            full = False
            return report

        if seconds is None:
            report = one_run()
            _print_report(out, report)
            if _failed(report):
                raise typer.Exit(EXIT_RECORDS_FAILED)
            return
        code = _run_every(out, one_run, seconds, every or "", count)
        if code != EXIT_OK:
            raise typer.Exit(code)


def _print_dry_run(out: Output, report: RunReport, planned: Sequence[PlannedWrite]) -> None:
    """The run's summary and every write it would send, saying that nothing was changed."""
    writes = [
        {"synapse": w.synapse, "table": w.table, "kind": w.kind, "external_id": w.external_id,
         "values": {k: jsonable(v) for k, v in w.values.items()}}
        for w in planned
    ]  # fmt: skip

    def human() -> None:
        _print_report(out, report, title="Dry run")
        out.say(
            "[bold]Dry run: nothing was changed[/] (the UDM, its cursors and the systems are as before); "
            "'written back' and 'requests' count what a real run would send."
        )
        if not writes:
            out.say("No writes would be sent.")
        for w in planned:
            fields = ", ".join(f"{k}={jsonable(v)!r}" for k, v in w.values.items())
            line = f"  would {w.kind} {w.synapse} {w.table} {w.external_id or '(new row)'}"
            out.say(escape(f"{line}: {fields}" if fields else line))

    out.emit({**report.to_dict(), "dry_run": True, "planned_writes": writes}, human)


def _failed(report: RunReport) -> bool:
    return not report.ok or bool(report.to_dict()["totals"]["failed"])


def _run_every(
    out: Output, one_run: Callable[[], RunReport], seconds: float, every: str, count: int | None
) -> int:
    """Run until Ctrl+C (or ``count`` runs); a failed run is reported and the next one still happens.

    Returns:
        The exit code: that of the last run (0, 1 with failed records, or the code of the error that stopped
        it), so a script running ``--count`` sees how it ended.
    """
    stop = threading.Event()
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in handlers:
        signal.signal(sig, lambda *_: stop.set())
    out.say(f"Syncing every {escape(every)}; Ctrl+C stops after the current run.")
    runs = 0
    code = EXIT_OK
    try:
        while not stop.is_set():
            try:
                report = one_run()
                _print_report(out, report)
                code = EXIT_RECORDS_FAILED if _failed(report) else EXIT_OK
            except DynasyncError as error:
                code = exit_code_for(error)
                if out.json:
                    out.emit(error_payload(error))
                else:
                    out.say(f"[red]Run failed:[/] {escape(error.explain())}")
            runs += 1
            if count is not None and runs >= count:
                break
            stop.wait(seconds)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    return code


class _ProgressBars:
    """Rich progress bars per entity (records read, rate) when a person watches a terminal; else nothing."""

    def __init__(self, out: Output) -> None:
        self._progress = (
            Progress(
                TextColumn("{task.description:<14}"),
                BarColumn(),
                TextColumn("{task.completed:>9,} records"),
                TextColumn("{task.fields[rate]:>10}"),
                TimeElapsedColumn(),
                console=out.console,
                transient=False,
            )
            if out.interactive
            else None
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> ProgressCallback | None:
        if self._progress is None:
            return None
        self._progress.start()
        return self.update

    def update(self, entity: str, done: int, total: int | None) -> None:
        """Progress callback of the engine: ``done`` records read of ``total`` (None when unknown)."""
        assert self._progress is not None
        task = self._tasks.get(entity)
        if task is None:
            task = self._tasks[entity] = self._progress.add_task(entity, total=total, rate="")
        elapsed = self._progress.tasks[task].elapsed or 0.0
        rate = f"{done / elapsed:,.0f}/s" if elapsed > 0.5 else ""
        self._progress.update(task, completed=done, total=total, rate=rate)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()


def _print_report(out: Output, report: RunReport, *, title: str = "Run") -> None:
    data = report.to_dict()

    def human() -> None:
        seconds = (report.finished_at - report.started_at).total_seconds() if report.finished_at else None
        took = f" in {seconds:.1f} s" if seconds is not None else ""
        table = Table(title=f"{title} {report.run_id}{took}", title_justify="left")
        table.add_column("entity")
        table.add_column("synapse")
        for header, _ in _SUMMARY_COLUMNS:
            table.add_column(header, justify="right")
        for entity in report.entities.values():
            for name, counts in entity.synapses.items():
                table.add_row(
                    escape(entity.entity), escape(name), *(str(read(counts)) for _, read in _SUMMARY_COLUMNS)
                )
        out.console.print(table)
        totals = data["totals"]
        verdict = "[green]OK[/]" if not _failed(report) else "[red]FAILED[/]"
        out.say(
            f"{verdict} {totals['udm_changes']} UDM changes, {totals['writes']} written back, "
            f"{totals['failed']} failed, {totals['pending']} pending; "
            f"{report.total('requests')} requests, {report.total('throttled')} throttled."
        )
        full = [
            f"{e.entity}/{n}" for e in report.entities.values() for n, c in e.synapses.items() if c.full_load
        ]
        if full:
            out.say(escape("Read in full: " + ", ".join(full) + "."))
        for entity in report.entities.values():
            for name, counts in entity.synapses.items():
                for note in counts.notes:
                    out.say(f"[yellow]Note[/] {escape(f'{entity.entity}/{name}: {note}')}")
        for entity in report.entities.values():
            if entity.error:
                out.say(f"[red]{escape(entity.entity)}:[/] {escape(entity.error)}")
            for name, counts in entity.synapses.items():
                for issue in counts.issues[:10]:
                    out.say(
                        escape(
                            f"  {entity.entity}/{name} {issue.direction} {issue.record}: {issue.kind}: {issue.reason}"
                        )
                    )
                if len(counts.issues) > 10:
                    out.say(f"  ... and {len(counts.issues) - 10} more (see `dynasync --json sync`).")
        for error in report.errors:
            out.say(f"[red]{escape(error)}[/]")

    out.emit(data, human)


def status(ctx: typer.Context) -> None:
    """Show synapses, their sync state per table, UDM record counts and the latest runs."""
    from dynasync.sync_service import status as read_status

    state = state_of(ctx)
    out = state.out
    with reported(out):
        data = read_status(state.workspace)

        def human() -> None:
            if not data["synapses"]:
                out.say("No synapses yet. Add one with `dynasync synapse add dynamics`.")
            for s in data["synapses"]:
                auth_text = s["auth"] or "not authenticated"
                out.say(
                    f"[bold]{escape(s['name'])}[/] {escape(s['org_url'])} "
                    + escape(f"[{s['status']}, {auth_text}]")
                )
                if s["status"] == "active" and not s["streams"]:
                    out.say("  not synced yet: run `dynasync sync`")
                for stream in s["streams"]:
                    synced = stream["last_run_end"] or stream["updated_at"] or "never"
                    mode = f", by {stream['read_mode']}" if stream["read_mode"] else ""
                    out.say(
                        escape(
                            f"  {stream['stream']:<14} {stream['phase'] or '-':<12} last synced {synced}{mode}"
                        )
                    )
                waiting = s["quarantined"]
                if waiting:
                    out.say(
                        f"  [yellow]{len(waiting)} record(s) failed or pending, retried on the next sync:[/]"
                    )
                    for q in waiting[:10]:
                        out.say(
                            escape(
                                f"    {q['stream']} {q['record']} ({q['kind']}, {q['attempts']}x): {q['error']}"
                            )
                        )
            counts = data["udm_counts"]
            out.say(
                "UDM: "
                + (escape(", ".join(f"{k} {v}" for k, v in counts.items())) if counts else "no entities yet")
            )
            for run in data["runs"]:
                totals = run["totals"] or {}
                out.say(
                    escape(
                        f"run {run['run_id']} {run['status']} {run['started_at']}: "
                        f"{totals.get('udm_changes', 0)} UDM changes, {totals.get('writes', 0)} written back, "
                        f"{totals.get('failed', 0)} failed"
                    )
                )

        out.emit(data, human)


def log(
    ctx: typer.Context,
    record: str = typer.Argument(..., help="A UDM id, or a Dynamics record id (GUID)."),
    entity: str | None = typer.Option(None, "--entity", help="UDM entity of the record."),
    limit: int = typer.Option(50, "--limit", min=1, help="At most this many events."),
) -> None:
    """Show the transactions log of one record: per field the source value, old and new, the winner, writes."""
    from dynasync.sync_service import record_history

    state = state_of(ctx)
    out = state.out
    with reported(out):
        history = record_history(state.workspace, record, entity=entity, limit=limit)
        events: list[dict[str, Any]] = [
            {
                "at": e.at.isoformat(),
                "run_id": e.run_id,
                "direction": e.direction,
                "synapse": e.synapse,
                "table": e.table,
                "external_id": e.external_id,
                "entity": e.entity,
                "udm_id": e.udm_id,
                "action": e.action,
                "outcome": e.outcome,
                "fields": [
                    {
                        "field": f.field,
                        "source": f.source,
                        "old": f.old,
                        "new": f.new,
                        "winning": f.winning,
                        "decision": f.decision,
                    }
                    for f in e.fields
                ],
            }
            for e in history.events
        ]
        data = {
            "entity": history.entity,
            "udm_id": history.udm_id,
            "deleted": history.record.deleted if history.record else None,
            "links": [
                {"synapse": k.synapse, "table": k.table, "external_id": k.external_id} for k in history.links
            ],
            "events": events,
        }

        def human() -> None:
            linked = ", ".join(f"{k.synapse} {k.table} {k.external_id}" for k in history.links) or "no links"
            gone = " (deleted)" if history.record is not None and history.record.deleted else ""
            out.say(f"[bold]{escape(history.entity)} {escape(history.udm_id)}[/]{gone}: {escape(linked)}")
            if not events:
                out.say("No log entries.")
            for row in events:
                out.say(
                    escape(
                        f"{row['at']} {row['direction']:>3} {row['synapse'] or 'udm'} "
                        f"{row['table'] or ''} {row['action']} {row['outcome'] or ''}".rstrip()
                    )
                )
                for f in row["fields"]:
                    out.say(escape(_field_line(f, written=row["direction"] == "out")))

        out.emit(data, human)


def _field_line(f: dict[str, Any], *, written: bool = False) -> str:
    """``field: old -> new (decision)``, naming the source value and the winner when they differ from ``new``.

    A write-back (``written``) names the destination column and the value sent: ``column := value``.
    """
    if written:
        return f"    {f['field']} := {f['new']!r}"
    detail = f["decision"] or ""
    if f["source"] != f["new"] or f["winning"] != f["new"]:
        detail = f"source value {f['source']!r}, kept {f['winning']!r}; {detail}"
    return f"    {f['field']}: {f['old']!r} -> {f['new']!r}" + (f" ({detail})" if detail else "")
