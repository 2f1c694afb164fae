"""Writing to the emulator over real HTTP: bulk routing, lookups, If-Match conflicts, bad-row isolation, budgets."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

import pytest
from synapse_env import make_synapse, run, server, stream_of, tokens  # noqa: F401  (fixtures)

from dynasync.emulator.server import EmulatorServer
from dynasync.emulator.values import LookupValue
from dynasync.synapses.base import LookupRef, StreamSpec, WriteKind, WriteOp, WriteResult
from dynasync.synapses.dynamics.synapse import DynamicsSynapse

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _fresh(server: EmulatorServer) -> None:  # noqa: F811
    server.emulator.reset(seed={"accounts": 3, "contacts": 2})
    server.emulator.faults.clear()


def _row(server: EmulatorServer, table: str, row_id: str | None) -> dict[str, Any]:  # noqa: F811
    assert row_id is not None
    row = server.emulator.store.get(table, uuid.UUID(row_id))
    assert row is not None, f"{table} {row_id} missing"
    return row


def _ids(server: EmulatorServer, table: str) -> list[str]:  # noqa: F811
    entity = server.emulator.catalog.entity(table)
    assert entity is not None
    return sorted(str(r[entity.primary_id]) for r in server.emulator.store.query(table))


async def _write(
    synapse: DynamicsSynapse, table: str, ops: list[WriteOp]
) -> tuple[list[WriteResult], dict[str, float], StreamSpec]:
    async with synapse:
        stream = await stream_of(synapse, table)
        before = synapse.client.counters.requests
        results = await synapse.write(stream, ops)
        counters = synapse.client.counters.as_dict()
        counters["write_requests"] = counters["requests"] - before
        return results, counters, stream


def test_create_update_upsert_delete_with_lookups(server: EmulatorServer, tokens: object) -> None:  # noqa: F811
    accounts = _ids(server, "account")
    contacts = _ids(server, "contact")
    mine = str(uuid.uuid4())
    ops = [
        WriteOp(
            WriteKind.CREATE,
            "contact",
            {
                "firstname": "Ada",
                "lastname": "Lovelace",
                "parentcustomerid": LookupRef("account", accounts[0]),
                "birthdate": dt.date(1815, 12, 10),
                "creditlimit": decimal.Decimal("12.34"),
            },
        ),
        WriteOp(WriteKind.CREATE, "contact", {"lastname": "Mine"}, id=mine),
        WriteOp(WriteKind.UPDATE, "contact", {"parentcustomerid": LookupRef("contact", contacts[1])}, id=contacts[0]),
        WriteOp(WriteKind.UPDATE, "contact", {"parentcustomerid": None, "jobtitle": "CTO"}, id=contacts[1]),
        WriteOp(WriteKind.UPSERT, "contact", {"lastname": "Upserted"}, id=str(uuid.uuid4())),
        WriteOp(WriteKind.UPSERT, "contact", {"lastname": "Keyed"}, alternate_key={"firstname": "K", "emailaddress1": "k@x.io"}),
    ]  # fmt: skip
    results, counters, _ = run(_write(make_synapse(server, tokens), "contact", ops))
    assert [r.ok for r in results] == [True] * 6, results

    ada = _row(server, "contact", results[0].id)
    assert ada["parentcustomerid"] == LookupValue("account", uuid.UUID(accounts[0]))
    assert ada["birthdate"] == dt.date(1815, 12, 10) and ada["creditlimit"] == decimal.Decimal("12.34")
    assert results[1].id == mine and _row(server, "contact", mine)["lastname"] == "Mine"
    assert _row(server, "contact", contacts[0])["parentcustomerid"] == LookupValue(
        "contact", uuid.UUID(contacts[1])
    )
    cleared = _row(server, "contact", contacts[1])
    assert cleared["parentcustomerid"] is None and cleared["jobtitle"] == "CTO"
    assert _row(server, "contact", results[4].id)["lastname"] == "Upserted"
    keyed = _row(server, "contact", results[5].id)  # the id of an alternate-key upsert is learnt
    assert (keyed["firstname"], keyed["emailaddress1"], keyed["lastname"]) == ("K", "k@x.io", "Keyed")
    assert results[5].version is not None
    # CreateMultiple + UpdateMultiple + UpsertMultiple + one $batch for the alternate-key upsert.
    assert counters["write_requests"] == 4

    deletes = [
        WriteOp(WriteKind.DELETE, "contact", id=mine),
        WriteOp(WriteKind.DELETE, "contact", id=str(uuid.uuid4())),
    ]
    done, _, _ = run(_write(make_synapse(server, tokens), "contact", deletes))
    assert done[0].ok and mine not in _ids(server, "contact")
    assert not done[1].ok and done[1].error_code == "0x80040217" and "Does Not Exist" in (done[1].error or "")


def test_if_match_conflict_is_reported_and_a_current_version_wins(
    server: EmulatorServer,  # noqa: F811
    tokens: object,  # noqa: F811
) -> None:
    target = _ids(server, "account")[0]
    stale = str(_row(server, "account", target)["versionnumber"])
    server.emulator.user_update("accounts", target, {"name": "Changed in Dynamics"})
    current = str(_row(server, "account", target)["versionnumber"])
    ops = [
        WriteOp(WriteKind.UPDATE, "account", {"name": "Stale write"}, id=target, if_match=stale),
        WriteOp(WriteKind.UPDATE, "account", {"telephone1": "555"}, id=target, if_match=current),
    ]
    results, _, _ = run(_write(make_synapse(server, tokens), "account", ops))
    assert results[0].conflict and not results[0].ok and results[0].error_code == "0x80060882"
    assert results[1].ok and not results[1].conflict and results[1].version not in (None, current)
    row = _row(server, "account", target)
    assert (row["name"], row["telephone1"]) == ("Changed in Dynamics", "555")


def test_a_bad_row_in_a_bulk_write_fails_alone_with_the_service_reason(
    server: EmulatorServer,  # noqa: F811
    tokens: object,  # noqa: F811
) -> None:
    ops = [
        WriteOp(WriteKind.CREATE, "account", {"name": f"Bulk {i}", "accountcategorycode": 1})
        for i in range(40)
    ]
    ops[17] = WriteOp(WriteKind.CREATE, "account", {"name": "Bad", "accountcategorycode": 99})
    before = len(_ids(server, "account"))
    results, counters, _ = run(_write(make_synapse(server, tokens), "account", ops))

    assert [i for i, r in enumerate(results) if not r.ok] == [17]
    assert results[17].error_code and "99" in (results[17].error or "")
    assert len(_ids(server, "account")) == before + 39
    assert counters["write_requests"] == 2  # the failed CreateMultiple, then one $batch for that chunk

    missing = str(uuid.uuid4())
    existing = _ids(server, "account")[:3]
    updates = [
        WriteOp(WriteKind.UPDATE, "account", {"name": f"U{i}"}, id=i_id) for i, i_id in enumerate(existing)
    ]
    updates.insert(1, WriteOp(WriteKind.UPDATE, "account", {"name": "ghost"}, id=missing))
    results, _, _ = run(_write(make_synapse(server, tokens), "account", updates))
    assert [r.ok for r in results] == [True, False, True, True]
    assert results[1].error_code == "0x80040217" and missing not in _ids(server, "account")
    assert [_row(server, "account", i)["name"] for i in existing] == ["U0", "U1", "U2"]


def test_invalid_operations_are_rejected_before_sending(
    server: EmulatorServer,  # noqa: F811
    tokens: object,  # noqa: F811
) -> None:
    account = _ids(server, "account")[0]
    ops = [
        WriteOp(WriteKind.CREATE, "contact", {"lastname": "ok"}),
        WriteOp(WriteKind.CREATE, "contact", {"no_such_column": 1}),
        WriteOp(WriteKind.CREATE, "contact", {"createdon": dt.datetime.now(dt.UTC)}),
        WriteOp(WriteKind.CREATE, "contact", {"parentcustomerid": LookupRef("lead", account)}),
        WriteOp(WriteKind.CREATE, "contact", {"parentcustomerid": account}),  # polymorphic: needs a table
        WriteOp(WriteKind.UPDATE, "contact", {"lastname": "x"}),
    ]
    results, _, _ = run(_write(make_synapse(server, tokens), "contact", ops))
    assert results[0].ok
    assert all(not r.ok and r.error_code == "invalid" for r in results[1:])
    messages = [r.error or "" for r in results[1:]]
    assert "no column 'no_such_column'" in messages[0]
    assert "not valid for create" in messages[1]
    assert "cannot point to table 'lead'" in messages[2]
    assert "give LookupRef" in messages[3]
    assert "needs an id or an alternate key" in messages[4]


@pytest.mark.slow
def test_ten_thousand_rows_cost_a_handful_of_requests(server: EmulatorServer, tokens: object) -> None:  # noqa: F811
    ops = [
        WriteOp(WriteKind.CREATE, "account", {"name": f"Row {i}", "numberofemployees": i})
        for i in range(10_000)
    ]
    results, counters, _ = run(_write(make_synapse(server, tokens), "account", ops))
    assert all(r.ok for r in results) and len({r.id for r in results}) == 10_000
    assert counters["write_requests"] <= 15, counters
    assert len(_ids(server, "account")) == 10_003
    updates = [WriteOp(WriteKind.UPDATE, "account", {"numberofemployees": 1}, id=r.id) for r in results]
    results, counters, _ = run(_write(make_synapse(server, tokens), "account", updates))
    assert all(r.ok for r in results) and counters["write_requests"] <= 15
