"""``dynasync synapse ...``: add, authenticate, test and activate a synapse, as the setup guide's steps."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import webbrowser
from collections.abc import Callable
from pathlib import Path

import typer

from dynasync import setup
from dynasync.cli.context import SYNAPSE_OPTION, state_of
from dynasync.cli.output import Output, escape, reported
from dynasync.errors import ConfigError
from dynasync.oauth_callback import CallbackListener
from dynasync.synapses.dynamics.auth import redirect_url
from dynasync.synapses.dynamics.connection import ConnectionReport
from dynasync.workspace import SynapseRecord, Workspace

app = typer.Typer(help="Configure, authenticate, test and activate synapses.", no_args_is_help=True)
add_app = typer.Typer(help="Add a synapse (Step 2 of the setup guide).", no_args_is_help=True)
app.add_typer(add_app, name="add")


@add_app.command("dynamics")
def add_dynamics(
    ctx: typer.Context,
    name: str = typer.Option(..., "--name", help="Synapse name, e.g. 'Dynamics Sales'."),
    endpoint_url: str = typer.Option(
        ...,
        "--endpoint-url",
        help="https://login.microsoftonline.com/<Directory (tenant) ID>, or the tenant id.",
    ),
    org_url: str = typer.Option(
        ..., "--org-url", help="Dynamics CRM Organization URL, https://<org>.crm.dynamics.com"
    ),
    emulator_ca: Path | None = typer.Option(
        None, "--emulator-ca", help="Allow a local emulator org URL, trusting this CA bundle."
    ),
    replace: bool = typer.Option(False, "--replace", help="Overwrite a synapse of the same name."),
) -> None:
    """Save a Dynamics 365 synapse's name, Endpoint URL and Organization URL."""
    state = state_of(ctx)
    out = state.out
    with reported(out):
        record = setup.add_dynamics(
            state.workspace,
            name=name,
            endpoint_url=endpoint_url,
            org_url=org_url,
            allow_local_emulator=emulator_ca is not None,
            ca_bundle=emulator_ca,
            replace=replace,
        )
        out.emit(
            {
                "synapse": record.name,
                "endpoint_url": record.endpoint_url,
                "org_url": record.org_url,
                "status": record.status,
            },
            lambda: out.say(
                f"Saved synapse [bold]{escape(record.name)}[/] ({escape(record.org_url)}).\n"
                "Next: `dynasync synapse auth --client-id ... --client-secret ...` (Steps 3-5)."
            ),
        )


@app.command("auth")
def auth(
    ctx: typer.Context,
    synapse: str | None = SYNAPSE_OPTION,
    client_id: str | None = typer.Option(None, "--client-id", help="Application (client) ID of the app."),
    client_secret: str | None = typer.Option(
        None, "--client-secret", help="Client secret VALUE (prompted when omitted; never echoed)."
    ),
    client_credentials: bool = typer.Option(
        False, "--client-credentials", help="Authenticate app-only (no browser), for unattended runs."
    ),
    no_browser: bool = typer.Option(
        False, "--no-browser", help="Print the sign-in URL instead of opening it."
    ),
    timeout: float = typer.Option(300.0, help="Seconds to wait for the sign-in to come back."),
) -> None:
    """Enter Client ID and Secret, print the OAuth redirect URL, then sign in with Microsoft."""
    state = state_of(ctx)
    out = state.out
    ws = state.workspace
    with reported(out):
        record = ws.only_or_named(synapse)
        # Credentials that signed in before stay until new ones are proven. A first setup keeps what was entered
        # even when the sign-in fails: the guide's next step (register the redirect URL) reruns auth without them.
        before = dataclasses.replace(record, extra=dict(record.extra))
        try:
            report, redirect = _authenticate(
                ws, record, out, client_id, client_secret, client_credentials, no_browser, timeout
            )
        except BaseException:
            if before.auth_mode:
                ws.save(before)
            raise
        record = ws.get(record.name)
        out.emit(
            {
                "synapse": record.name,
                "status": record.status,
                "auth_mode": record.auth_mode,
                "signed_in_as": record.signed_in_as,
                "redirect_url": redirect,
                "connection": report.summary(),
            },
            lambda: out.say(
                f"[green]Authenticated.[/] {escape(report.summary())}\nNext: `dynasync synapse activate`."
            ),
        )


def _authenticate(
    ws: Workspace,
    record: SynapseRecord,
    out: Output,
    client_id: str | None,
    client_secret: str | None,
    client_credentials: bool,
    no_browser: bool,
    timeout: float,
) -> tuple[ConnectionReport, str]:
    """Steps 3-5: take the credentials (prompting at a terminal), then sign in; return the report and URL."""
    redirect = redirect_url(ws.settings.public_base_url, record.name)
    if client_id is not None or client_secret is not None or not record.client_id:
        cid = client_id or record.client_id or _prompt("Client ID", "--client-id", hide=False)
        secret = client_secret or _prompt("Client Secret (value)", "--client-secret", hide=True)
        redirect = setup.set_credentials(ws, record, client_id=cid, client_secret=secret)
        out.say(
            "OAuth Redirect URL (Step 4: add it in Azure under Authentication > Web):\n"
            f"  [bold]{escape(redirect)}[/]"
        )
        if not client_credentials and sys.stdin.isatty():
            # A person at a terminal registers the URL now (Step 4); scripts go straight on.
            typer.confirm(
                "Is the redirect URL registered? Continue with the sign-in", default=True, abort=True
            )
    if client_credentials:
        with out.working("Signing in as the application and testing the connection..."):
            return asyncio.run(setup.use_client_credentials(ws, record)), redirect
    return _interactive_sign_in(ws, record, no_browser=no_browser, timeout=timeout, say=out.say), redirect


def _prompt(label: str, option: str, *, hide: bool) -> str:
    """Ask (a person at a terminal, or standard input); when input ends first, say which option to pass."""
    try:
        return str(typer.prompt(label, hide_input=hide))
    except typer.Abort:
        if sys.stdin.isatty():
            raise  # the person pressed Ctrl+C or Ctrl+D
        raise ConfigError(
            f"The {label.split(' (')[0]} is needed and standard input ended before it was given.",
            remedy=f"Pass {option} (scripts and CI have no prompt).",
        ) from None


def _interactive_sign_in(
    ws: Workspace, record: SynapseRecord, *, no_browser: bool, timeout: float, say: Callable[[str], None]
) -> ConnectionReport:
    async def run() -> ConnectionReport:
        flow, pending = await setup.begin_sign_in(ws, record)
        try:
            with CallbackListener(flow.redirect_url) as listener:
                say(f"Sign in with Microsoft (Step 5):\n  {escape(pending.auth_url)}")
                if no_browser or not webbrowser.open(pending.auth_url):
                    say("Open that URL in a browser; dynasync waits for the sign-in to come back.")
                query = await asyncio.to_thread(listener.wait, timeout)
        except BaseException:
            flow.close()
            raise
        _, report = await setup.complete_sign_in(ws, record, flow, pending, query)
        return report

    return asyncio.run(run())


@app.command("test")
def test(
    ctx: typer.Context,
    synapse: str | None = SYNAPSE_OPTION,
) -> None:
    """Test the connection: WhoAmI, org name and version, as the authenticated app or user."""
    state = state_of(ctx)
    out = state.out
    with reported(out):
        record = state.workspace.only_or_named(synapse)
        with out.working("Testing the connection..."):
            report = asyncio.run(setup.test_connection(state.workspace, record))
        out.emit(
            {"synapse": record.name, "ok": True, "summary": report.summary(), "user_id": report.user_id},
            lambda: out.say(f"[green]OK[/] {escape(report.summary())}"),
        )


@app.command("list")
def list_synapses(ctx: typer.Context) -> None:
    """List configured synapses and their status."""
    state = state_of(ctx)
    out = state.out
    with reported(out):
        rows = [
            {"name": r.name, "kind": r.kind, "org_url": r.org_url, "status": r.status, "auth": r.auth_mode}
            for r in state.workspace.synapses()
        ]

        def human() -> None:
            if not rows:
                out.say("No synapses yet. Add one with `dynasync synapse add dynamics`.")
            for row in rows:
                auth_text = row["auth"] or "not authenticated"
                out.say(
                    escape(f"{row['name']}: {row['kind']} {row['org_url']} [{row['status']}, {auth_text}]")
                )

        out.emit({"synapses": rows}, human)


@app.command("deactivate")
def deactivate(
    ctx: typer.Context,
    synapse: str | None = SYNAPSE_OPTION,
) -> None:
    """Pause the synapse: syncs leave it out until `synapse activate` resumes it where it stopped."""
    from dynasync.activation import deactivate as run_deactivation

    state = state_of(ctx)
    out = state.out
    with reported(out):
        record = state.workspace.only_or_named(synapse)
        run_deactivation(state.workspace, record)
        out.emit(
            {"synapse": record.name, "status": record.status},
            lambda: out.say(
                f"Synapse {escape(record.name)} is deactivated: syncs leave it out. Its mapping, links and "
                "change-tracking position are kept; `dynasync synapse activate` resumes it."
            ),
        )


@app.command("activate")
def activate(
    ctx: typer.Context,
    synapse: str | None = SYNAPSE_OPTION,
    default_mapping: bool = typer.Option(
        False, "--default-mapping", help="Create and publish the default mapping for the standard tables."
    ),
    tables: list[str] | None = typer.Option(
        None, "--table", help="Replicate only these tables (repeat the option); default: every table."
    ),
) -> None:
    """Make the synapse active: replicate the Dynamics schema into the Unified Data Model (Step 6)."""
    from dynasync.activation import activate as run_activation

    state = state_of(ctx)
    out = state.out
    with reported(out):
        record = state.workspace.only_or_named(synapse)
        with out.working("Replicating the Dynamics schema (tables, columns, option sets, lookups)..."):
            report = asyncio.run(
                run_activation(state.workspace, record, use_default_mapping=default_mapping, tables=tables)
            )

        def human() -> None:
            out.say(f"[green]Synapse {escape(record.name)} is active.[/]")
            out.say(escape(report.discovery_summary))
            if report.mapping_version is not None:
                out.say(f"Default mapping published as version {report.mapping_version}.")
            if report.udm_entities:
                out.say("UDM entities: " + escape(", ".join(report.udm_entities)))
            for note in report.notes:
                out.say(f"Note: {escape(note)}")

        out.emit(report.to_dict(), human)
