"""``dynasync record``: UDM records changed by hand reach Dynamics on the next sync; bad input changes nothing."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest

from dynasync.emulator.server import EmulatorServer
from dynasync.emulator.values import LookupValue

from .helpers import Cli, one_paragraph_error, synced_cli

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cli(server: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """A synapse on the emulator (client credentials), activated with the default mapping and synced once."""
    return synced_cli(server, tmp_path_factory.mktemp("record") / "home")


def _account(server: EmulatorServer, account_id: str) -> dict[str, Any]:
    row = server.emulator.store.get("account", uuid.UUID(account_id))
    assert row is not None
    return dict(row)


def _some_account(cli: Cli, server: EmulatorServer, index: int) -> tuple[str, str]:
    """(Dynamics id, UDM id) of the ``index``-th synced account (each test takes its own)."""
    account_id = str(server.emulator.store.query("account", limit=index + 1)[index]["accountid"])
    return account_id, str(cli.json("record", "show", account_id)["udm_id"])


def _writes(cli: Cli) -> int:
    totals = cli.json("sync")["totals"]
    return int(totals["writes"])


def test_show_finds_a_record_by_dynamics_or_udm_id(cli: Cli, server: EmulatorServer) -> None:
    account_id, udm_id = _some_account(cli, server, 1)
    by_dynamics = cli.json("record", "show", "{" + account_id.upper() + "}")
    assert by_dynamics["entity"] == "Account" and by_dynamics["deleted"] is False
    assert {"synapse": "dyn", "table": "account", "external_id": account_id} in by_dynamics["links"]
    assert by_dynamics["values"]["name"] == _account(server, account_id)["name"]
    assert cli.json("record", "show", udm_id, "--entity", "account") == by_dynamics
    text = cli.run("record", "show", udm_id).stdout
    assert f"Account {udm_id}" in text and f"dyn account {account_id}" in text


def test_set_is_written_back_once_then_quiet(cli: Cli, server: EmulatorServer) -> None:
    account_id, udm_id = _some_account(cli, server, 2)
    edit = cli.json("record", "set", udm_id, "phone=+1-555-0100", "description=")
    assert edit["action"] == "updated" and edit["destinations"] == ["Dyn (account)"]
    assert {c["field"]: c["new"] for c in edit["changes"]} == {"phone": "+1-555-0100", "description": None}
    assert _writes(cli) == 1
    row = _account(server, account_id)
    assert (row["telephone1"], row["description"]) == ("+1-555-0100", None)
    assert _writes(cli) == 0  # the echo of our write is recognised; nothing is written again
    log = cli.json("log", udm_id)
    by_hand = next(e for e in log["events"] if e["direction"] == "udm")
    assert {f["decision"] for f in by_hand["fields"]} == {"set by hand in the UDM (dynasync record)"}
    text = cli.run("log", udm_id).stdout
    assert " out dyn account update ok" in text and "telephone1 := '+1-555-0100'" in text


def test_set_wins_over_a_source_time_in_the_future(cli: Cli, server: EmulatorServer) -> None:
    """An edit by hand is the user's explicit word: a source clock ahead of ours does not refuse it."""
    account_id, udm_id = _some_account(cli, server, 3)
    cli.run("record", "set", udm_id, "modified_on=2999-01-01T00:00:00Z")  # a source time far ahead
    edit = cli.json("record", "set", udm_id, "phone=+1-555-0142")
    assert [c["new"] for c in edit["changes"]] == ["+1-555-0142"]
    assert _writes(cli) == 1 and _account(server, account_id)["telephone1"] == "+1-555-0142"


def test_set_a_field_no_mapping_writes_says_it_stays_local(cli: Cli, server: EmulatorServer) -> None:
    _account_id, udm_id = _some_account(cli, server, 4)
    edit = cli.json("record", "set", udm_id, "created_on=2020-01-01T00:00:00Z")
    assert edit["kept_local"] == ["created_on"] and edit["destinations"] == []
    text = cli.run("record", "set", udm_id, "created_on=2021-01-01T00:00:00+02:00").stdout
    assert "No mapping writes created_on" in text and "nothing is written back" in text


def test_new_record_is_created_in_dynamics(cli: Cli, server: EmulatorServer) -> None:
    made = cli.json("record", "new", "account", "name=Fabrikam by hand", "account_number=FAB-100")
    assert made["action"] == "created" and made["entity"] == "Account"
    assert _writes(cli) == 1
    shown = cli.json("record", "show", made["udm_id"])
    (link,) = shown["links"]
    assert _account(server, link["external_id"])["name"] == "Fabrikam by hand"
    error = one_paragraph_error(
        cli.run("record", "new", "Account", "name=Twin", "account_number=fab-100", expect=2)
    )
    assert made["udm_id"] in error and "match key" in error and "record set" in error


@pytest.mark.parametrize("status", ["status=Inactive", None])
def test_a_new_inactive_record_is_created_then_deactivated_and_stays_so(
    cli: Cli, server: EmulatorServer, status: str | None
) -> None:
    # The state cannot be set on create (and an Inactive status needs it): both follow in the same run.
    extra = [status] if status else []
    made = cli.json("record", "new", "Account", f"name=Dormant {status}", "state=Inactive", *extra)
    report = cli.json("sync")
    assert report["ok"] and report["totals"]["failed"] == 0
    (link,) = cli.json("record", "show", made["udm_id"])["links"]
    row = _account(server, link["external_id"])
    assert (row["statecode"], row["statuscode"]) == (1, 2)
    cli.json("sync")  # reads the rows back
    shown = cli.json("record", "show", made["udm_id"])["values"]
    assert (shown["state"], shown["status"]) == ("Inactive", "Inactive")
    quiet = cli.json("sync")
    assert quiet["totals"]["udm_changes"] == 0 and quiet["totals"]["writes"] == 0


def test_a_new_account_and_its_new_primary_contact_reach_dynamics_linked_in_one_run(
    cli: Cli, server: EmulatorServer
) -> None:
    # The account is written before its contact (parents first), so its reference follows in the same run.
    contact = cli.json("record", "new", "Contact", "first_name=Kay", "last_name=Primary")["udm_id"]
    account = cli.json("record", "new", "Account", "name=Primary Co", f"primary_contact_ref={contact}")[
        "udm_id"
    ]
    report = cli.json("sync")
    assert report["totals"]["pending"] == 0 and report["totals"]["failed"] == 0
    (contact_link,) = cli.json("record", "show", contact)["links"]
    (account_link,) = cli.json("record", "show", account)["links"]
    assert (
        str(_account(server, account_link["external_id"])["primarycontactid"].id)
        == contact_link["external_id"]
    )
    cli.json("sync")  # reads both back
    assert cli.json("record", "show", account)["values"]["primary_contact_ref"] == contact
    quiet = cli.json("sync")
    assert quiet["totals"]["udm_changes"] == 0 and quiet["totals"]["writes"] == 0


def test_new_contact_refers_to_an_account_by_udm_id(cli: Cli, server: EmulatorServer) -> None:
    account_id, udm_id = _some_account(cli, server, 5)
    made = cli.json("record", "new", "Contact", "last_name=By Hand", f"account_ref={udm_id.upper()}")
    assert _writes(cli) == 1
    (link,) = cli.json("record", "show", made["udm_id"])["links"]
    contact = server.emulator.store.get("contact", uuid.UUID(link["external_id"]))
    assert contact is not None
    parent = contact["parentcustomerid"]
    assert isinstance(parent, LookupValue) and (parent.entity, str(parent.id)) == ("account", account_id)


def test_delete_marks_deleted_and_keeps_the_dynamics_row_without_opt_in(
    cli: Cli, server: EmulatorServer
) -> None:
    account_id, udm_id = _some_account(cli, server, 6)
    said = cli.run("record", "delete", account_id).stdout
    assert f"Account {udm_id} deleted" in said and "deletes.from_udm is off" in said
    assert cli.json("record", "show", udm_id)["deleted"] is True
    assert _writes(cli) == 0 and _account(server, account_id)["accountid"]
    error = one_paragraph_error(cli.run("record", "set", udm_id, "phone=1", expect=2))
    assert "is deleted" in error and "record new" in error
    assert "already deleted" in one_paragraph_error(cli.run("record", "delete", udm_id, expect=2))


def test_bad_input_names_every_problem_and_changes_nothing(cli: Cli, server: EmulatorServer) -> None:
    _account_id, udm_id = _some_account(cli, server, 7)
    before = cli.json("record", "show", udm_id)
    result = cli.run(
        "record", "set", udm_id, "phone=+1", "revenue=12x", "bogus=1", "do_not_email=maybe",
        "modified_on=2024-05-01T12:00:00", "primary_contact_ref=no-such-contact", expect=2,
    )  # fmt: skip
    error = one_paragraph_error(result)
    assert "5 field value(s) cannot be used" in error and "Nothing was changed" in error
    for part in ("revenue: '12x' is not a decimal number", "bogus: Account has no such field",
                 "do_not_email: 'maybe' is not a boolean", "modified_on: naive datetime",
                 "primary_contact_ref: no live Contact record"):  # fmt: skip
        assert part in error
    assert "Fields of Account:" in error
    assert cli.json("record", "show", udm_id) == before
    syntax = one_paragraph_error(cli.run("record", "set", udm_id, "phone", "=x", "a=1", "a=2", expect=2))
    assert "'phone' is not field=value" in syntax and "'=x' is not field=value" in syntax
    assert "field 'a' is given twice" in syntax
    assert "no UDM entity 'Acount'" in one_paragraph_error(
        cli.run("record", "new", "Acount", "name=x", expect=2)
    )
    missing = one_paragraph_error(cli.run("record", "show", "not-an-id", expect=2))
    assert "not-an-id" in missing and "Dynamics record id" in missing
    # Values the UDM holds but Dynamics would refuse are refused now, not at the next sync.
    unwritable = one_paragraph_error(
        cli.run("record", "set", udm_id, "category=Not An Option", f"description={'x' * 2001}", expect=2)
    )
    assert (
        "category: UDM value 'Not An Option' has no entry in the option map (Dyn account.accountcategorycode)"
        in unwritable
    )
    assert (
        "description: text of 2001 characters exceeds the 2000 that Dyn account.description holds"
        in unwritable
    )
    assert cli.json("record", "show", udm_id) == before


def test_record_commands_are_listed(cli: Cli, tmp_path: Path) -> None:
    help_text = cli.run("record", "--help").stdout
    for command in ("show", "set", "new", "delete"):
        assert command in help_text


def test_a_sql_update_of_the_udm_is_written_back(cli: Cli, server: EmulatorServer) -> None:
    """People query the UDM with SQL and will change it with SQL too: such a change syncs like any other."""
    account_id, udm_id = _some_account(cli, server, 8)
    with sqlite3.connect(cli.home / "udm.db") as db:
        db.execute("UPDATE udm_account SET phone = '+1-555-0177' WHERE udm_id = ?", (udm_id,))
    assert _writes(cli) == 1 and _account(server, account_id)["telephone1"] == "+1-555-0177"
    assert _writes(cli) == 0
    events = cli.json("log", udm_id)["events"]  # newest first
    edit = next(i for i, e in enumerate(events) if e["synapse"] == "sql")
    assert [(f["field"], f["new"]) for f in events[edit]["fields"]] == [("phone", "+1-555-0177")]
    write = next(i for i, e in enumerate(events) if e["direction"] == "out")
    assert write < edit and {f["field"] for f in events[write]["fields"]} == {"telephone1"}
    with (
        sqlite3.connect(cli.home / "udm.db") as db,
        pytest.raises(sqlite3.IntegrityError, match="udm_deleted = true"),
    ):
        db.execute("DELETE FROM udm_account WHERE udm_id = ?", (udm_id,))
