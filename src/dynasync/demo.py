"""The main job on the embedded default: the whole setup guide and a two-way sync against the local emulator.

It starts the Dynamics 365 + Entra ID emulator over TLS on loopback, plays the Azure administrator (app
registration, application user, API permission, secret, redirect URL, consent), then follows the guide as a
user would (add the synapse, generate the redirect URL, authenticate through the authorization-code flow,
activate with the default mapping) and syncs both ways, printing what happened at each step.
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

from dynasync import setup
from dynasync.activation import activate
from dynasync.config import Settings
from dynasync.emulator.server import EmulatorServer
from dynasync.engine.report import RunReport
from dynasync.oauth_callback import CallbackListener
from dynasync.record_service import set_fields
from dynasync.sync_service import dry_run_sync, open_udm, run_sync
from dynasync.workspace import Workspace

Say = Callable[[str], None]


@dataclass(slots=True)
class DemoResult:
    """What the demo observed, step by step (also used by its test)."""

    steps: list[str] = field(default_factory=list)
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SignInForm(HTMLParser):
    """Finds the first form of a page with its method, action and input values (as a browser would post it)."""

    def __init__(self) -> None:
        super().__init__()
        self.method: str | None = None
        self.action: str | None = None
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Remember the first form's method and action, and its inputs."""
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.method = values.get("method", "get").lower()
            self.action = values.get("action", "")
        elif tag == "input" and self.action is not None and values.get("name"):
            self.fields[values["name"]] = values.get("value", "")


def _browser(url: str, ca: Path) -> None:
    """Play the user's browser: follow redirects and submit auto-posting forms until the callback is reached."""
    import ssl

    context = ssl.create_default_context(cafile=str(ca))
    with httpx.Client(verify=context, trust_env=False, follow_redirects=False, timeout=30) as client:
        response = client.get(url)
        for _ in range(10):
            if response.is_redirect:
                response = client.get(urljoin(str(response.url), response.headers["location"]))
                continue
            finder = SignInForm()
            finder.feed(response.text)
            if finder.method == "post" and finder.action:
                response = client.post(urljoin(str(response.url), finder.action), data=finder.fields)
                continue
            return


def _summary(report: RunReport) -> str:
    totals = report.to_dict()["totals"]
    parts = []
    for entity in report.entities.values():
        for counts in entity.synapses.values():
            written = counts.written_created + counts.written_updated + counts.written_deleted
            parts.append(
                f"{entity.entity}: +{counts.created} ~{counts.updated} -{counts.deleted}"
                f" (unchanged {counts.unchanged}, echoes {counts.echoes}, written back {written},"
                f" failed {counts.failed + counts.write_failed})"
            )
    return "; ".join(parts) + f". Totals: {totals}"


def run_demo(
    say: Say, *, accounts: int = 10_000, contacts: int = 10_000, home: Path | None = None
) -> DemoResult:
    """Run the whole demo; returns what it observed."""
    started = time.monotonic()
    result = DemoResult()

    def step(text: str) -> None:
        result.steps.append(text)
        say(f"\n[bold cyan]== {text}[/]")

    with tempfile.TemporaryDirectory(prefix="dynasync-demo-") as tmp:
        root = home or Path(tmp)
        step(f"Start the local Dynamics 365 + Entra ID emulator ({accounts} accounts, {contacts} contacts)")
        server = EmulatorServer(
            tls_dir=root / "emulator-tls", seed={"accounts": accounts, "contacts": contacts}
        )
        with server:
            emulator = server.emulator
            assert server.ca_path is not None
            say(f"Org URL {server.org_url}, sign-in authority {server.authority}; CA {server.ca_path}")

            step("Azure admin: register the integration app, add the application user, grant consent")
            app = emulator.register_app("dynasync Integration", redirect_uris=(), admin_consent=True)
            say(f"Application (client) ID {app['client_id']}; application user created in Dynamics.")

            settings = Settings(home=root / "home", public_base_url=f"http://localhost:{_free_port()}")
            ws = Workspace(settings)
            step("Step 2: configure the synapse (name, Endpoint URL, Dynamics CRM Organization URL)")
            record = setup.add_dynamics(
                ws,
                name="Dynamics Demo",
                endpoint_url=server.authority,
                org_url=server.org_url,
                allow_local_emulator=True,
                ca_bundle=server.ca_path,
            )
            say(f"Saved synapse '{record.name}' for {record.org_url}.")

            step("Step 3: enter Client ID and Client Secret, generate the OAuth redirect URL")
            redirect = setup.set_credentials(
                ws, record, client_id=app["client_id"], client_secret=app["client_secret"]
            )
            say(f"OAuth Redirect URL: {redirect}")

            step("Step 4: paste the redirect URL into the app registration (Authentication > Web)")
            registration = emulator.directory.app(app["client_id"])
            assert registration is not None
            registration.redirect_uris.append(redirect)
            emulator.identity.notify_directory_changed()

            step("Step 5: authenticate (Microsoft sign-in, authorization code + PKCE)")
            emulator.identity.auto_approve = True  # the emulator's sign-in page approves as its default user
            signed_in, connection = asyncio.run(_sign_in(ws, record, server.ca_path))
            say(f"Signed in as {signed_in}. {connection}")

            step("Step 6: make the synapse active (replicate the schema, publish the default mapping)")
            activation = asyncio.run(activate(ws, record, use_default_mapping=True))
            say(activation.discovery_summary)
            say(
                f"Mapping version {activation.mapping_version}; UDM entities: {', '.join(activation.udm_entities)}"
            )

            step("Full sync: Dynamics -> UDM")
            full = asyncio.run(run_sync(ws))
            result.reports["full"] = full.to_dict()
            say(_summary(full))
            with open_udm(ws) as store:
                result.checks["udm_accounts"] = store.count("Account")
                result.checks["udm_contacts"] = store.count("Contact")
            say(
                f"UDM now holds {result.checks['udm_accounts']} accounts and {result.checks['udm_contacts']} contacts."
            )

            step("Dynamics user edits: update 5 accounts, create 3 contacts, delete 2 accounts")
            rows = emulator.store.query("account", limit=7)
            changed = [str(r["accountid"]) for r in rows[:5]]
            for index, account_id in enumerate(changed):
                emulator.user_update("accounts", account_id, {"telephone1": f"+1 555 010{index}"})
            for index in range(3):
                emulator.user_create(
                    "contacts",
                    {
                        "firstname": "Demo",
                        "lastname": f"Person {index}",
                        "emailaddress1": f"demo{index}@example.com",
                    },
                )
            deleted = [str(r["accountid"]) for r in rows[5:7]]
            for account_id in deleted:
                emulator.user_delete("accounts", account_id)

            step("Incremental sync through change tracking (deletes included)")
            incremental = asyncio.run(run_sync(ws))
            result.reports["incremental"] = incremental.to_dict()
            say(_summary(incremental))

            step("Change a UDM record (Account name) and write it back to Dynamics")
            # What `dynasync record set <Dynamics id> "name=Renamed in the UDM"` does.
            edit = set_fields(ws, changed[0], ["name=Renamed in the UDM"], entity="Account")
            say(
                f"UDM record {edit.udm_id}: name set; the next sync writes it to {', '.join(edit.destinations)}."
            )
            # What `dynasync sync --dry-run` shows: the writes the next run would send, with nothing changed.
            preview = asyncio.run(dry_run_sync(ws))
            result.checks["dry_run_planned_writes"] = [
                (w.kind, w.external_id, dict(w.values)) for w in preview.planned
            ]
            row = emulator.store.get("account", uuid.UUID(changed[0]))
            result.checks["dynamics_name_after_dry_run"] = row["name"] if row else None
            for w in preview.planned:
                say(f"Dry run: the next sync would {w.kind} {w.table} {w.external_id} with {dict(w.values)}.")
            writeback = asyncio.run(run_sync(ws))
            result.reports["writeback"] = writeback.to_dict()
            say(_summary(writeback))
            row = emulator.store.get("account", uuid.UUID(changed[0]))
            result.checks["dynamics_name_after_writeback"] = row["name"] if row else None
            say(f"Dynamics now says the account is named {result.checks['dynamics_name_after_writeback']!r}.")

            step(
                "Next cycle: our own write comes back from Dynamics as an echo; nothing is applied or written"
            )
            echo = asyncio.run(run_sync(ws))
            result.reports["echo"] = echo.to_dict()
            result.checks["echo_writes"] = echo.writes
            result.checks["echo_udm_changes"] = echo.udm_changes
            say(_summary(echo))

            step("Quiet cycle: nothing changed anywhere, so nothing is read into the UDM or written")
            quiet = asyncio.run(run_sync(ws))
            result.reports["quiet"] = quiet.to_dict()
            result.checks["quiet_writes"] = quiet.writes
            result.checks["quiet_udm_changes"] = quiet.udm_changes
            say(_summary(quiet))
    result.seconds = time.monotonic() - started
    say(f"\n[green]Demo finished in {result.seconds:.1f} s.[/]")
    return result


async def _sign_in(ws: Workspace, record: Any, ca: Path) -> tuple[str | None, str]:
    flow, pending = await setup.begin_sign_in(ws, record)
    with CallbackListener(flow.redirect_url) as listener:
        await asyncio.to_thread(_browser, pending.auth_url, ca)
        query = await asyncio.to_thread(listener.wait, 30.0)
    signed_in, report = await setup.complete_sign_in(ws, record, flow, pending, query)
    return signed_in.username, report.summary()
