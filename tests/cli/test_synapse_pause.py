"""``dynasync synapse deactivate``: a paused synapse is left out of syncs and resumes where it stopped."""

from __future__ import annotations

from pathlib import Path

import pytest

from dynasync.emulator.server import EmulatorServer

from .helpers import Cli, one_paragraph_error, synced_cli

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cli(server: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return synced_cli(server, tmp_path_factory.mktemp("pause") / "home")


def test_a_paused_synapse_does_not_sync_and_resumes_incrementally(cli: Cli, server: EmulatorServer) -> None:
    versions = cli.json("mapping", "history")["versions"]
    paused = cli.json("synapse", "deactivate")
    assert paused == {"synapse": "Dyn", "status": "inactive"}
    assert cli.json("synapse", "list")["synapses"][0]["status"] == "inactive"
    assert cli.json("status")["synapses"][0]["streams"]  # a paused synapse still shows where it stopped
    account_id = str(server.emulator.store.query("account", limit=1)[0]["accountid"])
    server.emulator.user_update("accounts", account_id, {"fax": "+1-555-0700"})

    error = one_paragraph_error(cli.run("sync", expect=2))
    assert "No active synapse to sync: 'Dyn' is deactivated." in error and "synapse activate" in error
    named = one_paragraph_error(cli.run("sync", "--synapse", "Dyn", expect=2))
    assert "Synapse 'Dyn' is deactivated (since " in named and "resumes it where it stopped" in named
    again = one_paragraph_error(cli.run("synapse", "deactivate", expect=2))
    assert "is inactive, not active; there is nothing to deactivate" in again
    assert cli.json("record", "show", account_id)["values"]["fax"] != "+1-555-0700"
    edit = cli.json("record", "set", account_id, "website=https://paused.example.com")
    assert edit["destinations"] == ["Dyn (account, paused: written once it is activated again)"]
    assert edit["kept_local"] == []

    cli.run("synapse", "auth", "--client-credentials")  # signing in again keeps it paused
    assert cli.json("synapse", "list")["synapses"][0]["status"] == "inactive"
    cli.run("synapse", "activate")
    resumed = cli.json("sync")
    account = resumed["entities"]["Account"]["synapses"]["dyn"]
    assert resumed["ok"] and not account["full_load"] and account["updated"] == 1
    assert account["written_updated"] == 1  # the edit made while paused
    assert cli.json("record", "show", account_id)["values"]["fax"] == "+1-555-0700"
    assert cli.json("mapping", "history")["versions"] == versions  # the mapping was kept as it was


def test_new_credentials_keep_the_synapse_active_and_bad_ones_change_nothing(
    cli: Cli, server: EmulatorServer
) -> None:
    app = server.emulator.register_app("Rotated app")
    rotated = cli.json("synapse", "auth", "--client-credentials", "--client-id", app["client_id"],
                       "--client-secret", app["client_secret"])  # fmt: skip
    assert rotated["status"] == "active"  # a secret rotation is not a new setup
    wrong = cli.run("synapse", "auth", "--client-credentials", "--client-id", app["client_id"],
                    "--client-secret", "not-the-secret", expect=2)  # fmt: skip
    assert "secret" in one_paragraph_error(wrong).lower()
    assert cli.json("synapse", "list")["synapses"][0]["status"] == "active"
    assert cli.json("sync")["ok"]  # the credentials that worked are still the ones in use


def test_auth_without_a_terminal_names_the_option_to_pass(server: EmulatorServer, tmp_path: Path) -> None:
    fresh = Cli(tmp_path / "home")
    fresh.run("synapse", "add", "dynamics", "--name", "Other", "--endpoint-url", server.authority,
              "--org-url", server.org_url, "--emulator-ca", server.ca_path)  # fmt: skip
    error = one_paragraph_error(fresh.run("synapse", "auth", "--client-credentials", expect=2))
    assert "standard input ended before it was given" in error and "--client-id" in error
