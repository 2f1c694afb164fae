"""``dynasync sync --full``: a resync that reads every row again and repairs what change tracking never said."""

from __future__ import annotations

import pytest

from dynasync.emulator.server import EmulatorServer
from dynasync.udm.store import open_store

from .helpers import Cli, one_paragraph_error, synced_cli

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cli(server: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return synced_cli(server, tmp_path_factory.mktemp("resync") / "home")


def test_full_resync_finds_a_delete_whose_tombstone_is_gone(cli: Cli, server: EmulatorServer) -> None:
    emulator = server.emulator
    account_id = str(emulator.store.query("account", limit=1)[0]["accountid"])
    udm_id = cli.json("record", "show", account_id)["udm_id"]
    emulator.user_delete("accounts", account_id)
    assert emulator.store.purge_tombstones(-60) >= 1  # change tracking no longer knows of the delete
    plain = cli.json("sync")
    assert plain["totals"]["udm_changes"] == 0
    assert cli.json("record", "show", udm_id)["deleted"] is False

    resync = cli.json("sync", "--full", "--entity", "Account")
    account = resync["entities"]["Account"]["synapses"]["dyn"]
    assert resync["ok"] and account["full_load"] and account["deleted"] == 1
    assert account["unchanged"] == emulator.store.count("account")
    assert set(resync["entities"]) == {"Account"} and resync["totals"]["writes"] == 0
    assert cli.json("record", "show", udm_id)["deleted"] is True

    # Delta sync goes on from the new token; the human summary says which tables were read in full.
    after = cli.json("sync")
    assert not after["entities"]["Account"]["synapses"]["dyn"]["full_load"]
    assert after["totals"]["udm_changes"] == 0
    text = cli.run("sync", "--full", "--entity", "Contact").stdout
    assert "Read in full: Contact/dyn." in text


def test_full_resync_with_a_dry_run_changes_nothing(cli: Cli) -> None:
    before = cli.json("status")["synapses"][0]["streams"]
    plan = cli.json("sync", "--full", "--dry-run", "--entity", "Account")
    assert plan["dry_run"] and plan["entities"]["Account"]["synapses"]["dyn"]["full_load"]
    assert cli.json("status")["synapses"][0]["streams"] == before


def test_full_resync_of_an_unknown_entity_is_refused(cli: Cli) -> None:
    error = one_paragraph_error(cli.run("sync", "--full", "--entity", "Acount", expect=2))
    assert "unknown UDM entity: Acount" in error and "Account" in error


def test_a_sync_while_another_runs_exits_75_and_says_who_holds_the_udm(cli: Cli) -> None:
    other = open_store(f"sqlite:///{cli.home / 'udm.db'}")
    try:
        with other.run_lock():
            busy = cli.run("sync", expect=75)
            assert "Another dynasync sync is running on this UDM (pid" in one_paragraph_error(busy)
            payload = cli.json("sync", expect=75)
            assert (payload["error"], payload["exit_code"]) == ("SyncBusyError", 75)
    finally:
        other.close()
    assert cli.json("sync")["ok"]


def test_change_tracking_turned_off_after_activation_is_reported_with_the_remedy(
    cli: Cli, server: EmulatorServer
) -> None:
    server.emulator.set_change_tracking("contact", False)
    try:
        report = cli.json("sync", "--entity", "Contact")
        (note,) = report["entities"]["Contact"]["synapses"]["dyn"]["notes"]
        assert "change tracking is not enabled any more" in note and "tick 'Track changes'" in note
        assert report["entities"]["Contact"]["synapses"]["dyn"]["full_load"]
        text = cli.run("sync", "--entity", "Contact").stdout  # on the watermark now: quiet, no note
        assert "Note" not in text and "OK 0 UDM changes" in " ".join(text.split())
        streams = {s["stream"]: s for s in cli.json("status")["synapses"][0]["streams"]}
        assert streams["contact"]["read_mode"].startswith("modifiedon watermark (change tracking off")
        assert streams["account"]["read_mode"] == "change tracking"
        assert "contact" in cli.run("status").stdout and "by modifiedon watermark" in cli.run("status").stdout
    finally:
        server.emulator.set_change_tracking("contact", True)


def test_a_table_new_in_the_org_is_reported_then_added_on_request(cli: Cli, server: EmulatorServer) -> None:
    assert "New in the org" not in cli.run("schema", "refresh").stdout
    server.emulator.add_table(
        {
            "logical_name": "new_project",
            "display_name": "Project",
            "columns": [{"logical_name": "new_budget", "type": "Money"}],
        }
    )
    drift = cli.json("schema", "refresh")["drift"]
    assert drift["new_in_org"] == ["new_project"] and drift["added_tables"] == []
    hint = one_paragraph_error(cli.run("schema", "show", "new_project", expect=2))
    assert "dynasync schema refresh --add-table new_project" in hint
    assert "--add-table new_project" in cli.run("schema", "refresh").stdout  # until it is added
    added = cli.json("schema", "refresh", "--add-table", "new_project")["drift"]
    assert added["added_tables"] == ["new_project"] and added["new_in_org"] == []
    assert "new_budget" in cli.run("schema", "show", "new_project").stdout
    missing = one_paragraph_error(cli.run("schema", "refresh", "--add-table", "new_projct", expect=2))
    assert "did you mean 'new_project'" in missing
