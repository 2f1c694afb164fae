"""Schema replication against the emulator over real HTTP: discovery, snapshot JSON, drift, activation report."""

from __future__ import annotations

import pytest
from synapse_env import make_synapse, run, server, tokens  # noqa: F401  (fixtures)

from dynasync.emulator.server import EmulatorServer
from dynasync.synapses.base import ColumnType, StreamSpec
from dynasync.synapses.dynamics.schema import DiscoveryResult
from dynasync.synapses.dynamics.schema_drift import diff_schemas, streams_from_json, streams_to_json
from dynasync.synapses.dynamics.synapse import DynamicsSynapse

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _fresh(server: EmulatorServer) -> None:  # noqa: F811
    server.emulator.reset(seed={})


async def _discover(synapse: DynamicsSynapse) -> dict[str, StreamSpec]:
    async with synapse:
        streams = {s.name: s for s in await synapse.discover()}
        # One table list, then at most one request per column-type cast (+ attributes, relationships) per table.
        assert synapse.client.counters.requests <= 1 + 14 * len(streams)
        return streams


def test_discovers_standard_tables_with_types_options_lookups_and_keys(
    server: EmulatorServer,  # noqa: F811
    tokens: object,  # noqa: F811
) -> None:
    streams = run(_discover(make_synapse(server, tokens)))
    account, contact = streams["account"], streams["contact"]

    assert (account.collection, account.primary_id, account.primary_name) == ("accounts", "accountid", "name")
    assert account.alternate_keys == (("accountnumber",),)
    assert contact.alternate_keys == (("firstname", "emailaddress1"),)
    assert account.change_tracking and not account.is_custom

    assert account.columns["accountid"].is_primary_id and account.columns["accountid"].type is ColumnType.UUID
    assert account.columns["name"].is_primary_name and account.columns["name"].max_length == 160
    assert account.columns["revenue"].type is ColumnType.MONEY
    assert account.columns["createdon"].type is ColumnType.DATETIME
    assert not account.columns["createdon"].creatable and not account.columns["createdon"].updatable
    assert contact.columns["birthdate"].type is ColumnType.DATE

    status = account.columns["statuscode"]
    assert status.type is ColumnType.CHOICE and status.source_type == "Status"
    assert (1, "Active") in status.options and (2, "Inactive") in status.options
    state = account.columns["statecode"]
    assert state.options == ((0, "Active"), (1, "Inactive")) and not state.creatable
    assert dict(contact.columns["gendercode"].options)[2] == "Female"

    parent = contact.columns["parentcustomerid"]
    assert parent.type is ColumnType.LOOKUP and parent.source_type == "Customer"
    assert set(parent.targets) == {"account", "contact"}
    assert dict(parent.navigation) == {
        "account": "parentcustomerid_account",
        "contact": "parentcustomerid_contact",
    }
    owner = account.columns["ownerid"]
    assert set(owner.targets) == {"systemuser", "team"}
    assert dict(owner.navigation) == {"systemuser": "ownerid", "team": "ownerid"}
    assert dict(account.columns["primarycontactid"].navigation) == {"contact": "primarycontactid"}
    # Lookup helper attributes are not Web API properties of their own.
    assert "parentcustomeridname" not in contact.columns and "owneridtype" not in account.columns


def test_snapshot_json_round_trips(server: EmulatorServer, tokens: object) -> None:  # noqa: F811
    streams = list(run(_discover(make_synapse(server, tokens))).values())
    text = streams_to_json(streams)
    again = streams_from_json(text)
    assert sorted(again, key=lambda s: s.name) == sorted(streams, key=lambda s: s.name)
    assert diff_schemas(streams, again).is_empty
    with pytest.raises(ValueError, match="snapshot"):
        streams_from_json('{"format": 99}')


def test_refresh_reports_added_column_table_and_option_changes(
    server: EmulatorServer,  # noqa: F811
    tokens: object,  # noqa: F811
) -> None:
    before = list(run(_discover(make_synapse(server, tokens, tables=None))).values())
    emulator = server.emulator
    emulator.add_column(
        "account",
        {"logical_name": "new_tier", "type": "Picklist", "options": [[1, "Gold"], [2, "Silver"]]},
    )
    emulator.add_column(
        "contact", {"logical_name": "new_tags", "type": "MultiSelectPicklist", "options": [[7, "A"]]}
    )
    emulator.add_table(
        {
            "logical_name": "new_project",
            "display_name": "Project",
            "columns": [
                {"logical_name": "new_budget", "type": "Money"},
                {"logical_name": "new_accountid", "type": "Lookup", "target": "account"},
            ],
        }
    )
    after_map = run(_discover(make_synapse(server, tokens, tables=None)))
    drift = diff_schemas(before, list(after_map.values()))

    assert drift.added_tables == ["new_project"]
    assert not drift.removed_tables and not drift.breaking
    by_table = {t.table: t for t in drift.tables}
    assert by_table["account"].added_columns == ["new_tier"]
    assert by_table["contact"].added_columns == ["new_tags"]
    summary = drift.summary()
    assert "Table added: new_project" in summary and "account: column added: new_tier" in summary

    project = after_map["new_project"]
    assert project.is_custom and project.collection == "new_projects"
    assert project.columns["new_budget"].type is ColumnType.MONEY
    assert project.columns["new_accountid"].targets == ("account",)
    assert after_map["account"].columns["new_tier"].options == ((1, "Gold"), (2, "Silver"))
    assert after_map["contact"].columns["new_tags"].type is ColumnType.MULTICHOICE

    # Removing a column and relabelling an option are reported (and removal is breaking).
    changed = dict(after_map)
    account = changed["account"]
    columns = dict(account.columns)
    del columns["fax"]
    from dataclasses import replace

    columns["new_tier"] = replace(columns["new_tier"], options=((1, "Platinum"), (3, "Bronze")))
    columns["revenue"] = replace(columns["revenue"], type=ColumnType.FLOAT)
    changed["account"] = replace(account, columns=columns)
    drift2 = diff_schemas(list(after_map.values()), list(changed.values()))
    text = drift2.summary()
    assert "account: column removed: fax" in text
    assert "account.new_tier: option 3 'Bronze' added" in text
    assert "account.new_tier: option 2 'Silver' removed" in text
    assert "relabelled 'Gold' -> 'Platinum'" in text
    assert "account.revenue: type money -> float" in text
    assert set(drift2.breaking) == {"account.fax", "account.revenue"}


def test_activation_reports_tables_without_change_tracking(
    server: EmulatorServer,  # noqa: F811
    tokens: object,  # noqa: F811
) -> None:
    server.emulator.set_change_tracking("lead", False)

    async def go() -> DiscoveryResult:
        async with make_synapse(server, tokens, tables=["account", "lead", "no_such_table"]) as synapse:
            return await synapse.activate()

    result = run(go())
    assert "lead" in result.untracked and "account" not in result.untracked
    lead = next(s for s in result.streams if s.name == "lead")
    assert not lead.change_tracking
    report = result.summary()
    assert "Table 'lead' does not have change tracking enabled" in report
    assert "Properties > Advanced options" in report and "Track changes" in report
    assert "Tables not found in the org (or without an entity set): no_such_table." in report
