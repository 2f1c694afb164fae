"""`dynasync demo` end to end: the whole setup guide and a two-way sync against the emulator over TLS.

The demo's incremental step deletes two accounts in Dynamics; the service's cascades (contacts of a deleted
account are deleted, lookups to deleted rows are cleared) change more rows than the five the user edited. The
expected counts are therefore read from an independent emulator seeded the same way and edited the same way:
what change tracking reports there is what the sync must apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dynasync.demo import DemoResult, run_demo
from dynasync.emulator.app import Emulator

pytestmark = pytest.mark.e2e

ACCOUNTS = 200
CONTACTS = 200
SYNAPSE = "dynamics_demo"


@dataclass(frozen=True)
class Changes:
    """What Dynamics change tracking reports for a table after the demo's user edits."""

    changed: int
    deleted: int


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoResult, list[str]]:
    said: list[str] = []
    home = Path(tmp_path_factory.mktemp("demo"))
    return run_demo(said.append, accounts=ACCOUNTS, contacts=CONTACTS, home=home), said


@pytest.fixture(scope="module")
def expected() -> dict[str, Changes]:
    """The demo's user edits replayed on a second emulator with the same deterministic seed."""
    emulator = Emulator.create(seed={"accounts": ACCOUNTS, "contacts": CONTACTS})
    store = emulator.store
    rows = store.query("account", limit=7)
    before = store.version
    for index, row in enumerate(rows[:5]):
        emulator.user_update("accounts", row["accountid"], {"telephone1": f"+1 555 010{index}"})
    for index in range(3):
        emulator.user_create(
            "contacts",
            {"firstname": "Demo", "lastname": f"Person {index}", "emailaddress1": f"demo{index}@example.com"},
        )
    for row in rows[5:7]:
        emulator.user_delete("accounts", row["accountid"])
    after = store.version
    return {
        table: Changes(
            changed=len(store.changed_rows(table, since=before, upto=after)),
            deleted=len(store.deleted_ids(table, since=before, upto=after)),
        )
        for table in ("account", "contact")
    }


def _counts(report: dict[str, Any], entity: str) -> dict[str, Any]:
    counts: dict[str, Any] = report["entities"][entity]["synapses"][SYNAPSE]
    return counts


def test_the_guide_steps_run_in_order(demo: tuple[DemoResult, list[str]]) -> None:
    result, said = demo
    steps = [s.split(":")[0] for s in result.steps if s.startswith("Step")]
    assert steps == ["Step 2", "Step 3", "Step 4", "Step 5", "Step 6"]
    assert any("OAuth Redirect URL: http://localhost:" in line for line in said)
    assert any(line.startswith("Signed in as admin@") for line in said)


def test_full_sync_fills_the_udm_with_the_seeded_rows(demo: tuple[DemoResult, list[str]]) -> None:
    result, _ = demo
    assert result.checks["udm_accounts"] == ACCOUNTS
    assert result.checks["udm_contacts"] == CONTACTS
    full = result.reports["full"]
    assert full["ok"] is True and full["totals"]["failed"] == 0 and full["totals"]["pending"] == 0
    assert _counts(full, "Account")["created"] == ACCOUNTS
    assert _counts(full, "Contact")["created"] == CONTACTS
    assert _counts(full, "Account")["full_load"] is True


def test_incremental_sync_applies_exactly_what_dynamics_changed(
    demo: tuple[DemoResult, list[str]], expected: dict[str, Changes]
) -> None:
    result, _ = demo
    incremental = result.reports["incremental"]
    assert incremental["ok"] is True and incremental["totals"]["failed"] == 0
    accounts, contacts = _counts(incremental, "Account"), _counts(incremental, "Contact")
    assert accounts["full_load"] is False and contacts["full_load"] is False
    # The user's edits: 5 accounts updated, 3 contacts created, 2 accounts deleted ...
    assert accounts["deleted"] == 2 == expected["account"].deleted
    assert contacts["created"] == 3
    assert accounts["created"] == 0
    # ... plus what the service cascaded (lookups to the deleted rows cleared, their contacts deleted).
    assert expected["account"].changed >= 5
    assert accounts["updated"] == expected["account"].changed
    assert contacts["deleted"] == expected["contact"].deleted
    assert contacts["updated"] == expected["contact"].changed - 3
    assert incremental["totals"]["writes"] == 0


def test_write_back_reaches_dynamics(demo: tuple[DemoResult, list[str]]) -> None:
    result, _ = demo
    # The dry run before it showed exactly that write and sent nothing.
    (planned,) = result.checks["dry_run_planned_writes"]
    assert planned[0] == "update" and planned[2] == {"name": "Renamed in the UDM"}
    assert result.checks["dynamics_name_after_dry_run"] != "Renamed in the UDM"
    assert result.checks["dynamics_name_after_writeback"] == "Renamed in the UDM"
    writeback = result.reports["writeback"]
    assert writeback["ok"] is True and writeback["totals"]["writes"] == 1
    assert _counts(writeback, "Account")["written_updated"] == 1
    assert writeback["totals"]["udm_changes"] == 0


def test_quiet_cycle_writes_nothing(demo: tuple[DemoResult, list[str]]) -> None:
    result, _ = demo
    assert result.checks["quiet_writes"] == 0
    assert result.reports["quiet"]["ok"] is True


def test_quiet_cycle_changes_nothing_in_the_udm(demo: tuple[DemoResult, list[str]]) -> None:
    result, _ = demo
    assert result.checks["quiet_udm_changes"] == 0


def test_the_write_back_comes_back_as_an_echo_not_a_change(demo: tuple[DemoResult, list[str]]) -> None:
    result, _ = demo
    assert result.checks["echo_writes"] == 0
    assert result.checks["echo_udm_changes"] == 0
    echoes = sum(
        counts["echoes"]
        for entity in result.reports["echo"]["entities"].values()
        for counts in entity["synapses"].values()
    )
    assert echoes == 1
