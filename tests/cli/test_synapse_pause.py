"""``dynasync synapse deactivate``: a paused synapse is left out of syncs and resumes where it stopped."""

from __future__ import annotations

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
    account_id = str(server.emulator.store.query("account", limit=1)[0]["accountid"])
    server.emulator.user_update("accounts", account_id, {"fax": "+1-555-0700"})

    error = one_paragraph_error(cli.run("sync", expect=2))
    assert "No active synapse to sync: 'Dyn' is deactivated." in error and "synapse activate" in error
    named = one_paragraph_error(cli.run("sync", "--synapse", "Dyn", expect=2))
    assert "Synapse 'Dyn' is deactivated (since " in named and "resumes it where it stopped" in named
    again = one_paragraph_error(cli.run("synapse", "deactivate", expect=2))
    assert "is inactive, not active; there is nothing to deactivate" in again
    assert cli.json("record", "show", account_id)["values"]["fax"] != "+1-555-0700"

    cli.run("synapse", "auth", "--client-credentials")  # signing in again keeps it paused
    assert cli.json("synapse", "list")["synapses"][0]["status"] == "inactive"
    cli.run("synapse", "activate")
    resumed = cli.json("sync")
    account = resumed["entities"]["Account"]["synapses"]["dyn"]
    assert resumed["ok"] and not account["full_load"] and account["updated"] == 1
    assert cli.json("record", "show", account_id)["values"]["fax"] == "+1-555-0700"
    assert cli.json("mapping", "history")["versions"] == versions  # the mapping was kept as it was
