"""``dynasync schema ...``: show the replicated Dynamics schema, refresh it and report drift."""

from __future__ import annotations

import asyncio

import typer

from dynasync.cli.context import SYNAPSE_OPTION, state_of
from dynasync.cli.output import escape, reported

app = typer.Typer(help="The Dynamics schema replicated at activation.", no_args_is_help=True)


@app.command("show")
def show(
    ctx: typer.Context,
    table: str | None = typer.Argument(None, help="Show this table's columns (default: list tables)."),
    synapse: str | None = SYNAPSE_OPTION,
) -> None:
    """List replicated tables, or one table's columns with types, option sets and lookup targets."""
    from dynasync.activation import load_streams
    from dynasync.synapses.dynamics.schema_drift import stream_to_dict

    state = state_of(ctx)
    out = state.out
    with reported(out):
        record = state.workspace.only_or_named(synapse)
        streams = {s.name: s for s in load_streams(state.workspace, record)}
        if table is None:
            rows = [
                {
                    "table": s.name,
                    "collection": s.collection,
                    "columns": len(s.columns),
                    "change_tracking": s.change_tracking,
                }
                for s in sorted(streams.values(), key=lambda s: s.name)
            ]

            def human_tables() -> None:
                for row in rows:
                    tracked = "" if row["change_tracking"] else "  (change tracking OFF)"
                    out.say(escape(f"{row['table']:<28} {row['columns']:>4} columns{tracked}"))
                out.say(f"{len(rows)} tables. Columns of one: `dynasync schema show <table>`.")

            out.emit({"synapse": record.name, "tables": rows}, human_tables)
            return
        if table not in streams:
            from dynasync.errors import ConfigError

            raise ConfigError(
                f"Table {table!r} is not in the replicated schema.",
                remedy=f"Replicated tables: {', '.join(sorted(streams))}. To add one the org has: "
                f"`dynasync schema refresh --add-table {table}`.",
            )
        stream = streams[table]

        def human_columns() -> None:
            tracking = "on" if stream.change_tracking else "OFF"
            out.say(
                f"[bold]{escape(stream.name)}[/] ({escape(stream.collection)}), primary id "
                f"{escape(stream.primary_id)}, change tracking {tracking}, {len(stream.columns)} columns"
            )
            for column in sorted(stream.columns.values(), key=lambda c: c.name):
                extra = ""
                if column.options:
                    shown = ", ".join(f"{v}={label}" for v, label in column.options[:8])
                    more = f" (+{len(column.options) - 8} more)" if len(column.options) > 8 else ""
                    extra = f" options {shown}{more}"
                if column.targets:
                    extra = " -> " + "|".join(column.targets)
                out.say(escape(f"  {column.name:<32} {column.type.value:<11}{extra}"))

        out.emit({"synapse": record.name, "table": stream_to_dict(stream)}, human_columns)


@app.command("refresh")
def refresh(
    ctx: typer.Context,
    synapse: str | None = SYNAPSE_OPTION,
    add_tables: list[str] | None = typer.Option(
        None, "--add-table", help="Also replicate this table of the org (repeatable); then map it."
    ),
) -> None:
    """Re-read the schema and report drift (tables and columns added, removed, retyped) and new org tables."""
    from dynasync.activation import refresh_schema

    state = state_of(ctx)
    out = state.out
    with reported(out):
        record = state.workspace.only_or_named(synapse)
        with out.working("Re-reading the Dynamics schema..."):
            drift = asyncio.run(refresh_schema(state.workspace, record, add_tables=add_tables or ()))

        def human() -> None:
            out.say(escape(drift.summary()))
            if drift.breaking:
                out.say(
                    "[yellow]These changes can break the mapping:[/] "
                    + escape(", ".join(drift.breaking))
                    + ". Run `dynasync mapping validate`."
                )

        out.emit({"synapse": record.name, "drift": drift.to_dict()}, human)
