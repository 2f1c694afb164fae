"""The root ``dynasync`` command and its global options."""

from __future__ import annotations

from pathlib import Path

import typer

from dynasync.cli import emulator_cmd, synapse_cmd
from dynasync.cli.context import State
from dynasync.config import Settings

app = typer.Typer(
    name="dynasync",
    help="Two-way data sync with Microsoft Dynamics 365, and a local Dynamics 365 + Entra ID emulator.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(emulator_cmd.app, name="emulator")
app.add_typer(synapse_cmd.app, name="synapse")


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
    settings = Settings(**overrides)  # type: ignore[arg-type]
    ctx.obj = State(settings=settings, json=json_output, debug=debug)


def main() -> None:
    """Console-script entry point."""
    app()
