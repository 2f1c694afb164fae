"""``dynasync record ...``: look at a UDM record and change it by hand; the next sync writes the change back."""

from __future__ import annotations

import typer

from dynasync.cli.context import state_of
from dynasync.cli.output import Output, escape, jsonable, reported
from dynasync.record_service import RecordEdit

app = typer.Typer(
    help="UDM records: show one, change fields, create, delete (the next sync writes changes back).",
    no_args_is_help=True,
)

RECORD_ARGUMENT = typer.Argument(..., help="A UDM id, or a Dynamics record id (GUID).")
ENTITY_OPTION = typer.Option(None, "--entity", help="UDM entity of the record (default: search all).")
VALUES_ARGUMENT = typer.Argument(..., help="field=value pairs; `field=` clears the field.")


@app.command("show")
def show(ctx: typer.Context, record: str = RECORD_ARGUMENT, entity: str | None = ENTITY_OPTION) -> None:
    """Show a UDM record's fields and the source rows it is linked to."""
    from dynasync.record_service import show_record

    state = state_of(ctx)
    out = state.out
    with reported(out):
        view = show_record(state.workspace, record, entity=entity)
        rec = view.record
        data = {
            "entity": view.entity,
            "udm_id": rec.id,
            "deleted": rec.deleted,
            "version": rec.version,
            "updated_at": rec.updated_at.isoformat() if rec.updated_at else None,
            "values": {k: jsonable(v) for k, v in rec.values.items()},
            "links": [
                {"synapse": k.synapse, "table": k.table, "external_id": k.external_id} for k in view.links
            ],
        }

        def human() -> None:
            gone = " (deleted)" if rec.deleted else ""
            out.say(f"[bold]{escape(view.entity)} {escape(rec.id)}[/]{gone}, version {rec.version}")
            width = max((len(k) for k in rec.values), default=0)
            for name, value in rec.values.items():
                out.say(escape(f"  {name:<{width}}  {'' if value is None else value}"))
            linked = ", ".join(f"{k.synapse} {k.table} {k.external_id}" for k in view.links)
            out.say(escape(f"Linked to: {linked or 'no source rows'}"))

        out.emit(data, human)


@app.command("set")
def set_(
    ctx: typer.Context,
    record: str = RECORD_ARGUMENT,
    values: list[str] = VALUES_ARGUMENT,
    entity: str | None = ENTITY_OPTION,
) -> None:
    """Change fields of a UDM record, e.g. `dynasync record set <id> phone=+1-555-0100`."""
    from dynasync.record_service import set_fields

    state = state_of(ctx)
    with reported(state.out):
        _report(state.out, set_fields(state.workspace, record, values, entity=entity))


@app.command("new")
def new(
    ctx: typer.Context,
    entity: str = typer.Argument(..., help="The UDM entity, e.g. Account."),
    values: list[str] = VALUES_ARGUMENT,
) -> None:
    """Create a UDM record, e.g. `dynasync record new Account name="Fabrikam" account_number=A-100`."""
    from dynasync.record_service import create_record

    state = state_of(ctx)
    with reported(state.out):
        _report(state.out, create_record(state.workspace, entity, values))


@app.command("delete")
def delete(ctx: typer.Context, record: str = RECORD_ARGUMENT, entity: str | None = ENTITY_OPTION) -> None:
    """Mark a UDM record deleted (it reaches Dynamics only where the mapping's deletes.from_udm is on)."""
    from dynasync.record_service import delete_record

    state = state_of(ctx)
    with reported(state.out):
        _report(state.out, delete_record(state.workspace, record, entity=entity))


def _report(out: Output, edit: RecordEdit) -> None:
    data = {
        "entity": edit.entity,
        "udm_id": edit.udm_id,
        "action": edit.action,
        "version": edit.version,
        "changes": [{"field": c.field, "old": jsonable(c.old), "new": jsonable(c.new)} for c in edit.changes],
        "destinations": edit.destinations,
        "kept_local": edit.kept_local,
    }

    def human() -> None:
        out.say(f"{escape(edit.entity)} {escape(edit.udm_id)} {edit.action} (version {edit.version}).")
        for c in edit.changes:
            out.say(escape(f"  {c.field}: {jsonable(c.old)!r} -> {jsonable(c.new)!r}"))
        if edit.kept_local:
            out.say(
                escape(
                    f"No mapping writes {', '.join(edit.kept_local)}: the change stays in the UDM (a source may "
                )
                + "overwrite it when its own value changes)."
            )
        if edit.action == "unchanged":
            return
        if edit.destinations:
            out.say(escape(f"Next: `dynasync sync` writes it to {', '.join(edit.destinations)}."))
        elif edit.action == "deleted":
            out.say("No mapping propagates UDM deletes (deletes.from_udm is off): the source rows stay.")
        else:
            out.say("No active synapse's mapping writes these fields: nothing is written back.")

    out.emit(data, human)
