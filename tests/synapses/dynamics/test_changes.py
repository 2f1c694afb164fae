"""Reading changes from the emulator over real HTTP: paged full load, resume, delta, expiry, watermark, faults."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

import pytest
from synapse_env import collect, make_synapse, run, server, stream_of, tokens  # noqa: F401  (fixtures)

from dynasync.emulator.server import EmulatorServer
from dynasync.synapses.base import ChangeBatch, LookupRef, StreamSpec
from dynasync.synapses.dynamics.changes import request_reconcile
from dynasync.synapses.dynamics.synapse import DynamicsSynapse

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _fresh(server: EmulatorServer) -> None:  # noqa: F811
    server.emulator.reset(seed={"accounts": 20, "contacts": 12})
    server.emulator.faults.clear()


def _ids(batches: list[ChangeBatch]) -> list[str]:
    return [record.id for batch in batches for record in batch.upserts]


def _source_ids(server: EmulatorServer, table: str) -> set[str]:  # noqa: F811
    entity = server.emulator.catalog.entity(table)
    assert entity is not None
    rows = server.emulator.store.query(table, select=[entity.primary_id])
    return {str(row[entity.primary_id]) for row in rows}


async def _read(
    synapse: DynamicsSynapse, table: str, cursor: Any = None
) -> tuple[StreamSpec, list[ChangeBatch]]:
    async with synapse:
        stream = await stream_of(synapse, table)
        return stream, await collect(synapse, stream, cursor)


async def _again(synapse: DynamicsSynapse, stream: StreamSpec, cursor: Any) -> list[ChangeBatch]:
    async with synapse:
        return await collect(synapse, stream, cursor)


def test_full_load_pages_converts_values_and_ends_with_a_delta_link(
    server: EmulatorServer,  # noqa: F811
    tokens: object,  # noqa: F811
) -> None:
    account_id = next(iter(_source_ids(server, "account")))
    server.emulator.user_update("accounts", account_id, {"revenue": 1234.5, "accountcategorycode": 1})
    _stream, batches = run(_read(make_synapse(server, tokens, page_size=7), "account"))

    assert [len(b.upserts) for b in batches] == [7, 7, 6]
    assert all(b.full_load for b in batches) and [b.last for b in batches] == [False, False, True]
    assert sorted(_ids(batches)) == sorted(_source_ids(server, "account"))
    assert "$skiptoken" in batches[0].cursor["url"] and batches[0].cursor["full"] is True
    assert "$deltatoken" in batches[-1].cursor["url"] and batches[-1].cursor["full"] is False
    assert batches[-1].reconcile_ids is None

    record = next(r for b in batches for r in b.upserts if r.id == account_id)
    assert record.values["revenue"] == decimal.Decimal("1234.5")
    assert record.values["accountcategorycode"] == 1 and record.labels["accountcategorycode"]
    # The seed has inactive accounts too and the account picked is arbitrary: the label must fit the value.
    status = {0: ("Active", 1), 1: ("Inactive", 2)}[record.values["statecode"]]
    assert (record.labels["statuscode"], record.values["statuscode"]) == status
    owner = record.values["ownerid"]
    assert isinstance(owner, LookupRef) and owner.table == "systemuser" and record.labels["ownerid"]
    assert isinstance(record.modified_on, dt.datetime) and record.modified_on.tzinfo is not None
    assert record.values["createdon"].tzinfo is not None
    assert record.version is not None and int(record.version) > 0

    contacts = run(_read(make_synapse(server, tokens), "contact"))[1]
    parents = [r.values["parentcustomerid"] for b in contacts for r in b.upserts]
    assert any(isinstance(p, LookupRef) and p.table == "account" for p in parents)


def test_interrupted_load_resumes_from_the_last_committed_page(
    server: EmulatorServer,  # noqa: F811
    tokens: object,  # noqa: F811
) -> None:
    async def first_page_only() -> tuple[StreamSpec, ChangeBatch]:
        async with make_synapse(server, tokens, page_size=6) as synapse:
            stream = await stream_of(synapse, "account")
            generator = synapse.read(stream, None)
            batch = await generator.__anext__()
            await generator.aclose()  # the run is interrupted after committing page 1
            return stream, batch

    stream, first = run(first_page_only())
    rest = run(_again(make_synapse(server, tokens, page_size=6), stream, first.cursor))
    ids = _ids([first]) + _ids(rest)
    assert len(ids) == len(set(ids)) == 20
    assert set(ids) == _source_ids(server, "account")
    assert rest[-1].last and "$deltatoken" in rest[-1].cursor["url"]


def test_delta_sync_returns_creates_updates_and_deletes_made_by_a_user(
    server: EmulatorServer,  # noqa: F811
    tokens: object,  # noqa: F811
) -> None:
    stream, load = run(_read(make_synapse(server, tokens), "account"))
    emulator = server.emulator
    existing = sorted(_source_ids(server, "account"))
    created = str(emulator.user_create("accounts", {"name": "Fabrikam", "creditlimit": 99.5}))
    emulator.user_update("accounts", existing[0], {"name": "Renamed"})
    emulator.user_delete("accounts", existing[1])

    delta = run(_again(make_synapse(server, tokens), stream, load[-1].cursor))
    assert len(delta) == 1 and delta[0].last and not delta[0].full_load
    upserts = {r.id: r for r in delta[0].upserts}
    assert set(upserts) == {created, existing[0]}
    assert upserts[existing[0]].values["name"] == "Renamed"
    assert upserts[created].values["creditlimit"] == decimal.Decimal("99.5")
    assert list(delta[0].deletes) == [existing[1]]
    assert delta[0].cursor["url"] != load[-1].cursor["url"]

    quiet = run(_again(make_synapse(server, tokens), stream, delta[0].cursor))
    assert len(quiet) == 1 and not quiet[0].upserts and not quiet[0].deletes


def test_expired_token_falls_back_to_a_full_reload_that_reconciles_deletes(
    server: EmulatorServer,  # noqa: F811
    tokens: object,  # noqa: F811
) -> None:
    stream, load = run(_read(make_synapse(server, tokens), "account"))
    gone = sorted(_source_ids(server, "account"))[3]
    server.emulator.user_delete("accounts", gone)
    server.emulator.advance_clock(days=8)  # past expirechangetrackingindays (7)

    batches = run(_again(make_synapse(server, tokens, page_size=8), stream, load[-1].cursor))
    assert all(b.full_load for b in batches) and batches[-1].last
    assert "expired" in " ".join(batches[0].notes)
    assert batches[-1].reconcile_ids == frozenset(_source_ids(server, "account"))
    assert gone not in batches[-1].reconcile_ids
    assert sorted(_ids(batches)) == sorted(_source_ids(server, "account"))
    # The new delta link works again.
    server.emulator.user_update("accounts", sorted(_source_ids(server, "account"))[0], {"name": "After"})
    nxt = run(_again(make_synapse(server, tokens), stream, batches[-1].cursor))
    assert [r.values["name"] for r in nxt[0].upserts] == ["After"] and not nxt[0].notes


def test_control_plane_expiry_of_tokens_is_handled_too(
    server: EmulatorServer,  # noqa: F811
    tokens: object,  # noqa: F811
) -> None:
    stream, load = run(_read(make_synapse(server, tokens), "contact"))
    server.emulator.advance_clock(seconds=2)
    server.emulator.expire_change_tokens()
    batches = run(_again(make_synapse(server, tokens), stream, load[-1].cursor))
    assert batches[-1].reconcile_ids == frozenset(_source_ids(server, "contact"))


def test_table_without_change_tracking_syncs_by_watermark_and_reconciles(
    server: EmulatorServer,  # noqa: F811
    tokens: object,  # noqa: F811
) -> None:
    emulator = server.emulator
    emulator.set_change_tracking("account", False)
    stream, load = run(_read(make_synapse(server, tokens, page_size=6, reconcile_every=3), "account"))
    assert not stream.change_tracking
    assert sorted(_ids(load)) == sorted(_source_ids(server, "account"))  # all seeded in the same second
    assert load[-1].cursor["mode"] == "watermark" and load[-1].reconcile_ids is None
    cursor = load[-1].cursor

    # A quiet run returns nothing: rows at the watermark second are not repeated.
    quiet = run(_again(make_synapse(server, tokens, page_size=6, reconcile_every=3), stream, cursor))
    assert _ids(quiet) == []
    # A row written in the watermark's own second is still found, as are later ones.
    version = emulator.store.version
    since = dt.datetime.fromisoformat(cursor["since"])
    back = (since - emulator.clock.now()).total_seconds() + 0.2
    emulator.advance_clock(seconds=back)  # back into the watermark's second
    same_second = str(emulator.user_create("accounts", {"name": "Same second"}))
    row = emulator.store.get("account", uuid.UUID(same_second))
    assert row is not None and row["modifiedon"] == since
    emulator.advance_clock(seconds=-back + 5)
    # Update and delete two other rows (the new row's random id may sort anywhere among them).
    ids = sorted(i for i in _source_ids(server, "account") if i != same_second)
    emulator.user_update("accounts", ids[0], {"name": "Changed"})
    gone = ids[1]
    emulator.user_delete("accounts", gone)
    changes = run(
        _again(make_synapse(server, tokens, page_size=6, reconcile_every=3), stream, quiet[-1].cursor)
    )
    # (Deleting an account also unlinks the accounts it parented: those changed too.)
    touched = {
        str(r["accountid"]) for r in emulator.store.query("account") if int(str(r["versionnumber"])) > version
    }
    assert {same_second, ids[0]} <= touched
    assert sorted(_ids(changes)) == sorted(touched)
    # Third run: the periodic keys-only reconciliation reports every id, so the delete is found.
    assert changes[-1].reconcile_ids == frozenset(_source_ids(server, "account"))
    assert gone not in changes[-1].reconcile_ids
    # On demand, too.
    demanded = run(
        _again(make_synapse(server, tokens, reconcile_every=0), stream, request_reconcile(changes[-1].cursor))
    )
    assert demanded[-1].reconcile_ids == frozenset(_source_ids(server, "account"))
    assert _ids(demanded) == []


def test_stale_tracked_stream_switches_to_watermark_when_tracking_is_off(
    server: EmulatorServer,  # noqa: F811
    tokens: object,  # noqa: F811
) -> None:
    stream, load = run(_read(make_synapse(server, tokens), "contact"))
    server.emulator.set_change_tracking("contact", False)
    batches = run(_again(make_synapse(server, tokens), stream, load[-1].cursor))
    assert "not enabled" in " ".join(batches[0].notes)
    assert batches[-1].cursor["mode"] == "watermark"
    assert batches[-1].reconcile_ids == frozenset(_source_ids(server, "contact"))


@pytest.mark.parametrize("kind", ["503", "drop"])
def test_server_errors_and_dropped_connections_mid_load_lose_nothing(
    server: EmulatorServer,  # noqa: F811
    tokens: object,  # noqa: F811
    kind: str,
) -> None:
    async def go() -> tuple[list[ChangeBatch], dict[str, float]]:
        async with make_synapse(server, tokens, page_size=5) as synapse:
            stream = await stream_of(synapse, "account")
            batches: list[ChangeBatch] = []
            async for batch in synapse.read(stream, None):
                batches.append(batch)
                if len(batches) == 2:  # the next page request fails twice, then succeeds
                    server.emulator.faults.inject(kind, count=2, retry_after=0, path_contains="accounts")
            return batches, synapse.client.counters.as_dict()

    batches, counters = run(go())
    ids = _ids(batches)
    assert len(ids) == len(set(ids)) == 20 and set(ids) == _source_ids(server, "account")
    assert counters["retries"] >= 2
