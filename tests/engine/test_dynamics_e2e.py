"""The engine over the real Dynamics synapse and the emulator (TLS socket), with the default mapping."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dynasync.emulator.server import EmulatorServer
from dynasync.engine import Engine, RunReport
from dynasync.synapses.dynamics.auth import ClientCredentialsProvider
from dynasync.synapses.dynamics.config import DynamicsConfig
from dynasync.synapses.dynamics.defaults import default_mapping
from dynasync.synapses.dynamics.retry import RetryPolicy
from dynasync.synapses.dynamics.synapse import DynamicsSynapse
from dynasync.udm.store import open_store

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TABLES = ["systemuser", "account", "contact", "opportunity"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    with EmulatorServer(tls_dir=tmp_path_factory.mktemp("tls"), seed=0) as running:
        yield running


def _config(server: EmulatorServer) -> DynamicsConfig:
    info = server.describe()
    return DynamicsConfig.parse(
        {
            "name": "dynamics",
            "endpoint_url": server.authority,
            "org_url": server.org_url,
            "client_id": info["client_id"],
            "client_secret": info["client_secret"],
            "public_base_url": "https://sync.example.com",
            "allow_local_emulator": True,
            "ca_bundle": str(server.ca_path),
        }
    )


def _sync(server: EmulatorServer, store_url: str, tokens: Any) -> RunReport:
    async def go() -> RunReport:
        fast = {"rand": lambda: 0.0, "retry": RetryPolicy(base_delay=0.01, max_delay=0.05)}
        async with DynamicsSynapse(
            _config(server), tokens, client_options=fast, tables=TABLES, page_size=7, name="dynamics"
        ) as synapse:
            spec = default_mapping(await synapse.discover())
            store = open_store(store_url)
            try:
                return await Engine(store, {"dynamics": synapse}, [spec]).run()
            finally:
                store.close()

    return asyncio.run(go())


def test_default_mapping_round_trip_with_echo_suppression(server: EmulatorServer, tmp_path: Path) -> None:
    server.emulator.reset(seed={"accounts": 12, "contacts": 20, "opportunities": 5})
    tokens = ClientCredentialsProvider(_config(server))
    url = f"sqlite:///{tmp_path / 'udm.db'}"
    try:
        first = _sync(server, url, tokens)
        assert first.ok, first.to_dict()
        accounts = first.entities["Account"].synapses["dynamics"]
        assert accounts.created == 12 and accounts.failed == 0 and accounts.pending == 0
        assert first.entities["Contact"].synapses["dynamics"].created == 20
        assert first.writes == 0, first.to_dict()
        quiet = _sync(server, url, tokens)
        assert quiet.writes == 0 and quiet.udm_changes == 0, quiet.to_dict()

        store = open_store(url)
        try:
            record = next(iter(store.iter_records("Account")))
            store.upsert("Account", {"name": "Renamed in the UDM"}, udm_id=record.id, source="udm")
            link = store.link_for_record("dynamics", "Account", record.id)
            assert link is not None
        finally:
            store.close()
        pushed = _sync(server, url, tokens)
        assert pushed.entities["Account"].synapses["dynamics"].written_updated == 1, pushed.to_dict()
        row = server.emulator.store.get("account", uuid.UUID(link.external_id))
        assert row is not None and row["name"] == "Renamed in the UDM"
        echo = _sync(server, url, tokens)
        store = open_store(url)
        events = store.search_log(run_id=echo.run_id)
        store.close()
        # Our write comes back: nothing is written again and the written value is not re-applied; only the
        # read-only bookkeeping column our write moved in Dynamics (modifiedon -> modified_on) is refreshed.
        assert echo.writes == 0
        changed = {f.field for e in events for f in e.fields if e.direction == "in"}
        assert changed <= {"modified_on"}, changed
        quiet = _sync(server, url, tokens)
        assert quiet.writes == 0 and quiet.udm_changes == 0, quiet.to_dict()

        # Records born in the UDM reach Dynamics once, parents before children, references translated.
        store = open_store(url)
        try:
            parent = store.upsert("Account", {"name": "Born in the UDM"}, source="udm")
            child = store.upsert(
                "Contact",
                {
                    "first_name": "Ada",
                    "last_name": "Lovelace",
                    "email": "ada@example.com",
                    "account_ref": parent.udm_id,
                },
                source="udm",
            )
        finally:
            store.close()
        created = _sync(server, url, tokens)
        assert created.entities["Account"].synapses["dynamics"].written_created == 1, created.to_dict()
        assert created.entities["Contact"].synapses["dynamics"].written_created == 1, created.to_dict()
        store = open_store(url)
        try:
            account_link = store.link_for_record("dynamics", "Account", parent.udm_id)
            contact_link = store.link_for_record("dynamics", "Contact", child.udm_id)
        finally:
            store.close()
        assert account_link is not None and contact_link is not None
        contact_row = server.emulator.store.get("contact", uuid.UUID(contact_link.external_id))
        assert contact_row is not None and contact_row["lastname"] == "Lovelace"
        assert str(contact_row["parentcustomerid"].id) == account_link.external_id
        _sync(server, url, tokens)  # the echo
        after = _sync(server, url, tokens)
        assert after.writes == 0 and after.udm_changes == 0, after.to_dict()
        names = [r["name"] for r in server.emulator.store.query("account")]
        assert names.count("Born in the UDM") == 1
    finally:
        tokens.close()
