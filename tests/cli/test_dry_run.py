"""``dynasync sync --dry-run``: shows what a run would change and write, and changes nothing anywhere."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest

from dynasync.emulator.server import EmulatorServer

from .helpers import Cli, one_paragraph_error, synced_cli

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cli(server: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return synced_cli(server, tmp_path_factory.mktemp("dry") / "home")


def test_dry_run_shows_the_writes_and_changes_nothing(cli: Cli, server: EmulatorServer) -> None:
    account_id = str(server.emulator.store.query("account", limit=1)[0]["accountid"])
    udm_id = cli.json("record", "show", account_id)["udm_id"]
    cli.run("record", "set", udm_id, "phone=+1-555-0404")
    made = cli.json("record", "new", "Account", "name=Planned Co", "account_number=PLAN-1")
    server.emulator.user_update("accounts", account_id, {"fax": "+1-555-0405"})  # a change to read
    udm_before = cli.json("record", "show", udm_id)
    status_before = cli.json("status")["synapses"][0]["streams"]
    rows_before = server.emulator.store.count("account")

    plan = cli.json("sync", "--dry-run")
    assert plan["dry_run"] is True and plan["ok"] is True
    writes = {(w["kind"], w["external_id"]) for w in plan["planned_writes"]}
    assert ("update", account_id) in writes
    created = [w for w in plan["planned_writes"] if w["values"].get("accountnumber") == "PLAN-1"]
    assert len(created) == 1 and created[0]["values"]["name"] == "Planned Co"
    update = next(w for w in plan["planned_writes"] if w["external_id"] == account_id)
    assert update["values"] == {"telephone1": "+1-555-0404"}
    assert plan["entities"]["Account"]["synapses"]["dyn"]["updated"] == 1  # the fax read from Dynamics

    # Nothing changed: the UDM record, the cursors, the systems.
    assert cli.json("record", "show", udm_id) == udm_before
    assert cli.json("status")["synapses"][0]["streams"] == status_before
    assert server.emulator.store.count("account") == rows_before
    row = server.emulator.store.get("account", uuid.UUID(account_id))
    assert row is not None and row["telephone1"] != "+1-555-0404"
    assert cli.json("record", "show", made["udm_id"])["links"] == []

    text = cli.run("sync", "--dry-run").stdout
    assert "Dry run: nothing was changed" in text and f"would update dyn account {account_id}" in text

    real = cli.json("sync")  # the real run does what the dry run showed
    assert real["totals"]["writes"] == 2
    row = server.emulator.store.get("account", uuid.UUID(account_id))
    assert row is not None and (row["telephone1"], row["fax"]) == ("+1-555-0404", "+1-555-0405")


def test_dry_run_refuses_what_it_cannot_do(cli: Cli, tmp_path: Path) -> None:
    error = one_paragraph_error(cli.run("sync", "--dry-run", "--every", "60s", expect=2))
    assert "--dry-run" in error and "--every" in error
    pg = cli.run("--udm-url", "postgresql+psycopg://nobody@127.0.0.1:1/none", "sync", "--dry-run", expect=2)
    assert "only a SQLite file store" in one_paragraph_error(pg)


def test_a_dry_run_with_failed_records_exits_1_like_the_real_run(cli: Cli, server: EmulatorServer) -> None:
    account_id = str(server.emulator.store.query("account", limit=1)[0]["accountid"])
    udm_id = cli.json("record", "show", account_id)["udm_id"]
    with sqlite3.connect(cli.home / "udm.db") as db:  # a label the option map cannot write back
        db.execute("UPDATE udm_account SET category = 'Not An Option' WHERE udm_id = ?", (udm_id,))
    plan = cli.json("sync", "--dry-run", expect=1)
    assert plan["dry_run"] and plan["totals"]["failed"] == 1
    # A continuous sync ends with the code of its last run, so a script with --count sees it too.
    repeated = cli.run("sync", "--every", "0.1s", "--count", "2", expect=1)
    assert repeated.stdout.count("FAILED") == 2
    with sqlite3.connect(cli.home / "udm.db") as db:
        db.execute("UPDATE udm_account SET category = NULL WHERE udm_id = ?", (udm_id,))
