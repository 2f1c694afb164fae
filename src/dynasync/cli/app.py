"""The root ``dynasync`` command and its global options."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError

from dynasync.cli import emulator_cmd, mapping_cmd, record_cmd, schema_cmd, synapse_cmd, sync_cmd
from dynasync.cli.context import State
from dynasync.cli.output import Output, reported
from dynasync.config import Settings
from dynasync.errors import ConfigError

app = typer.Typer(
    name="dynasync",
    help="Two-way data sync with Microsoft Dynamics 365, and a local Dynamics 365 + Entra ID emulator.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(emulator_cmd.app, name="emulator")
app.add_typer(synapse_cmd.app, name="synapse")
app.add_typer(schema_cmd.app, name="schema")
app.add_typer(mapping_cmd.app, name="mapping")
app.add_typer(record_cmd.app, name="record")
app.command("sync")(sync_cmd.sync)
app.command("status")(sync_cmd.status)
app.command("log")(sync_cmd.log)


@app.callback()
def root(
    ctx: typer.Context,
    home: Path | None = typer.Option(
        None, "--home", help="State directory (default ~/.dynasync or $DYNASYNC_HOME)."
    ),
    udm_url: str | None = typer.Option(
        None, "--udm-url", help="UDM store URL (sqlite:///... or postgresql+psycopg://...)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Machine-readable JSON output."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    """Two-way data sync with Microsoft Dynamics 365."""
    overrides: dict[str, object] = {}
    if home is not None:
        overrides["home"] = home
    if udm_url is not None:
        overrides["udm_url"] = udm_url
    out = Output(json=json_output, debug=debug)
    with reported(out):
        try:
            settings = Settings(**overrides)  # type: ignore[arg-type]
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            raise ConfigError(
                f"The dynasync settings are not valid: {problems}.",
                remedy="Fix the DYNASYNC_... environment variables or the --home / --udm-url options.",
            ) from None
    ctx.obj = State(settings=settings, json=json_output, debug=debug, _out=out)


def main() -> None:
    """Console-script entry point."""
    app()


@app.command("demo")
def demo(
    ctx: typer.Context,
    accounts: int = typer.Option(10_000, help="Accounts to seed in the emulator."),
    contacts: int = typer.Option(10_000, help="Contacts to seed in the emulator."),
) -> None:
    """The main job on the embedded emulator: set up a Dynamics synapse as the guide says, sync both ways."""
    from dynasync.cli.context import state_of
    from dynasync.demo import run_demo

    state = state_of(ctx)
    out = state.out
    with reported(out):
        result = run_demo(out.say, accounts=accounts, contacts=contacts)
        out.emit({"steps": result.steps, "checks": result.checks, "seconds": result.seconds})
