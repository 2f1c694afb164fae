"""``dynasync emulator ...``: run the local Dynamics 365 + Entra ID emulator."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import typer

from dynasync.cli.context import state_of
from dynasync.cli.output import Output, escape, reported
from dynasync.errors import ConfigError

app = typer.Typer(help="The local Dynamics 365 + Entra ID emulator.", no_args_is_help=True)


@app.command("serve")
def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", help="Loopback address to listen on."),
    port: int = typer.Option(8443, help="Port (0 picks a free one)."),
    data_file: Path | None = typer.Option(
        None, "--data-file", help="SQLite file for the org's data (default <home>/emulator/org.db)."
    ),
    memory: bool = typer.Option(False, "--memory", help="Keep data in memory only."),
    seed: int = typer.Option(
        0, "--seed", help="Seed this many accounts (and twice as many contacts) when empty."
    ),
    plain_http: bool = typer.Option(False, "--http", help="Serve plain HTTP instead of HTTPS."),
) -> None:
    """Serve the emulator until Ctrl+C."""
    from dynasync.emulator.server import EmulatorServer
    from dynasync.emulator.server import serve as run_server

    state = state_of(ctx)
    out = state.out
    with reported(out):
        emulator_dir = state.settings.emulator_dir
        emulator_dir.mkdir(parents=True, exist_ok=True)
        path = None if memory else (data_file or emulator_dir / "org.db")

        def ready(server: EmulatorServer) -> None:
            info = server.describe()
            out.emit(info, lambda: _print_ready(out, info))

        try:
            run_server(
                host=host,
                port=port,
                data_file=path,
                seed_rows=seed if seed else None,
                tls=not plain_http,
                tls_dir=emulator_dir / "tls",
                on_ready=ready,
            )
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            raise ConfigError(
                f"Port {port} on {host} is in use; the emulator did not start.",
                remedy="Stop what listens there, or pick another port with --port (--port 0 picks a free one).",
            ) from None


def _print_ready(out: Output, info: dict[str, Any]) -> None:
    out.say("[bold]Dynamics 365 + Entra ID emulator[/] is running. Ctrl+C stops it.")
    for key, value in info.items():
        out.say(escape(f"  {key}: {value}"))


@app.command("ca")
def ca(ctx: typer.Context) -> None:
    """Print the path of the emulator's CA bundle (trust it in other clients)."""
    from dynasync.emulator.server import ca_bundle_path

    state = state_of(ctx)
    with reported(state.out):
        path = ca_bundle_path(state.settings.emulator_dir / "tls")
        state.out.emit({"ca_bundle": str(path)}, lambda: print(path))  # noqa: T201 - bare path, for $(...)
