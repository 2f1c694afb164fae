"""``dynasync sync``, ``dynasync status`` and ``dynasync log``: run syncs and see what happened."""

from __future__ import annotations

import asyncio
import re
import signal
import threading
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from dynasync.cli.context import state_of
from dynasync.cli.output import EXIT_RECORDS_FAILED, Output, reported
from dynasync.engine.report import RunReport
from dynasync.errors import ConfigError, DynasyncError

_EVERY = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h)?$")


def parse_every(text: str) -> float:
    """Parse ``60s`` / ``5m`` / ``1h`` / ``90`` into seconds."""
    match = _EVERY.match(text.strip().lower())
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(
            f"--every {text!r} is not a duration.", remedy="Use a number with s, m or h, e.g. --every 60s."
        )
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)]


def sync(
    ctx: typer.Context,
    entity: list[str] | None = typer.Option(None, "--entity", help="Sync only this UDM entity (repeatable)."),
    synapse: list[str] | None = typer.Option(None, "--synapse", help="Sync only this synapse (repeatable)."),
    every: str | None = typer.Option(None, "--every", help="Run continuously, e.g. --every 60s."),
) -> None:
    """Synchronize: read changes from Dynamics into the UDM and write UDM changes back."""
    from dynasync.sync_service import run_sync

    state = state_of(ctx)
    out = state.out
    with reported(out):
        seconds = parse_every(every) if every else None

        def one_run() -> RunReport:
            with _progress(out) as progress:
                return asyncio.run(
                    run_sync(state.workspace, synapses=synapse, entities=entity, progress=progress)
                )

        if seconds is None:
            report = one_run()
            _print_report(out, report)
            if not report.ok or report.to_dict()["totals"]["failed"]:
                raise typer.Exit(EXIT_RECORDS_FAILED)
            return
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        out.say(f"Syncing every {every}; Ctrl+C stops after the current run.")
        while not stop.is_set():
            try:
                _print_report(out, one_run())
            except DynasyncError as error:
                out.say(f"[red]Run failed:[/] {error.explain()}")
            stop.wait(seconds)


class _progress:
    """Rich progress bars per entity (records read, rate) unless output is JSON."""

    def __init__(self, out: Output) -> None:
        self._progress = (
            None
            if out.json
            else Progress(
                TextColumn("{task.description:<14}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                console=out.console,
                transient=False,
            )
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> Any:
        if self._progress is None:
            return None
        self._progress.start()
        return self.update

    def update(self, entity: str, done: int, total: int | None) -> None:
        assert self._progress is not None
        task = self._tasks.get(entity)
        if task is None:
            task = self._tasks[entity] = self._progress.add_task(entity, total=total, rate="")
        elapsed = self._progress.tasks[task].elapsed or 0.0
        rate = f"{done / elapsed:,.0f}/s" if elapsed > 0.5 else ""
        self._progress.update(task, completed=done, total=total, rate=rate)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


def _print_report(out: Output, report: RunReport) -> None:
    data = report.to_dict()

    def human() -> None:
        table = Table(title=f"Run {report.run_id}", show_lines=False)
        for column in (
            "entity",
            "synapse",
            "created",
            "updated",
            "deleted",
            "unchanged",
            "failed",
            "pending",
            "written back",
            "requests",
            "throttled",
        ):
            table.add_column(column, justify="left" if column in ("entity", "synapse") else "right")
        for entity in report.entities.values():
            for name, c in entity.synapses.items():
                table.add_row(
                    entity.entity,
                    name,
                    str(c.created),
                    str(c.updated),
                    str(c.deleted),
                    str(c.unchanged),
                    str(c.failed + c.write_failed),
                    str(c.pending),
                    str(c.written_created + c.written_updated + c.written_deleted),
                    str(c.requests),
                    str(c.throttled),
                )
        out.console.print(table)
        for entity in report.entities.values():
            if entity.error:
                out.say(f"[red]{entity.entity}:[/] {entity.error}")
            for name, c in entity.synapses.items():
                for issue in c.issues[:10]:
                    out.say(
                        f"  {entity.entity}/{name} {issue.direction} {issue.record}: {issue.kind}: {issue.reason}"
                    )
        for error in report.errors:
            out.say(f"[red]{error}[/]")

    out.emit(data, human)


def status(ctx: typer.Context) -> None:
    """Show synapses, their sync state per table, UDM record counts and the latest runs."""
    from dynasync.sync_service import status as read_status

    state = state_of(ctx)
    out = state.out
    with reported(out):
        data = read_status(state.workspace)

        def human() -> None:
            for s in data["synapses"]:
                out.say(
                    f"[bold]{s['name']}[/] {s['org_url']} [{s['status']}, {s['auth'] or 'not authenticated'}]"
                )
                for stream in s["streams"]:
                    out.say(
                        f"  {stream['stream']:<14} {stream['phase'] or '-':<12} last run {stream['last_run_end']}"
                    )
            out.say("UDM: " + ", ".join(f"{k} {v}" for k, v in data["udm_counts"].items()))
            for run in data["runs"]:
                out.say(f"run {run['run_id']} {run['status']} {run['started_at']} {run['totals']}")

        out.emit(data, human)


def log(
    ctx: typer.Context,
    record: str = typer.Argument(..., help="A UDM id, or a Dynamics record id (GUID)."),
    entity: str | None = typer.Option(None, "--entity", help="UDM entity of the record."),
    limit: int = typer.Option(50, "--limit", help="At most this many events."),
) -> None:
    """Show the transactions log of one record: per field the source value, old and new, the winner, writes."""
    from dynasync.sync_service import open_udm

    state = state_of(ctx)
    out = state.out
    with reported(out), open_udm(state.workspace) as store:
        events = store.search_log(entity=entity, udm_id=record, limit=limit)
        if not events:
            events = store.search_log(external_id=record, limit=limit)
        rows: list[dict[str, Any]] = [
            {
                "at": e.at.isoformat(),
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
            for e in events
        ]

        def human() -> None:
            if not rows:
                out.say(f"No log entries for {record}.")
            for row in rows:
                out.say(
                    f"{row['at']} {row['direction']:>3} {row['synapse'] or ''} {row['entity']} {row['udm_id']} "
                    f"{row['action']} {row['outcome'] or ''}"
                )
                for f in row["fields"]:
                    out.say(
                        f"    {f['field']}: {f['old']!r} -> {f['new']!r} (winning {f['winning']!r}; {f['decision']})"
                    )

        out.emit(rows, human)
