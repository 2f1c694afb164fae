"""The engine over the real Dynamics synapse and the emulator (TLS socket), with the default mapping."""

from __future__ import annotations

import asyncio
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dynasync.emulator.server import EmulatorServer
from dynasync.engine import Engine, RunReport
from dynasync.synapses.dynamics.auth import ClientCredentialsProvider
from dynasync.synapses.dynamics.config import DynamicsConfig
from dynasync.synapses.dynamics.defaults import default_mapping
from dynasync.synapses.dynamics.retry import RetryPolicy
from dynasync.synapses.dynamics.synapse import DynamicsSynapse
from dynasync.synapses.dynamics.values import wire_name
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


class RecordingTransport(httpx.AsyncHTTPTransport):
    """The client's usual TLS transport, noting every URL it sends."""

    def __init__(self, ca_path: Path) -> None:
        super().__init__(verify=ssl.create_default_context(cafile=str(ca_path)), trust_env=False)
        self.urls: list[httpx.URL] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(request.url)
        return await super().handle_async_request(request)


def _sync(
    server: EmulatorServer, store_url: str, tokens: Any, transport: httpx.AsyncBaseTransport | None = None
) -> RunReport:
    async def go() -> RunReport:
        fast: dict[str, Any] = {"rand": lambda: 0.0, "retry": RetryPolicy(base_delay=0.01, max_delay=0.05)}
        if transport is not None:
            fast["transport"] = transport
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
        contacts = first.entities["Contact"].synapses["dynamics"]
        assert accounts.created == 12 and accounts.failed == 0 and accounts.pending == 0
        assert contacts.created == 20
        # Accounts and contacts reference each other: whichever loads first waits for the other, then is
        # completed in the same run. That is reported as resolved, never as a second change of the record.
        assert accounts.updated == 0 and contacts.updated == 0, first.to_dict()
        assert accounts.resolved + contacts.resolved > 0, first.to_dict()
        assert first.udm_changes == sum(e.synapses["dynamics"].created for e in first.entities.values()), (
            first.to_dict()
        )
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
        refreshed = store.get("Account", record.id)
        store.close()
        # Our write comes back: it is an echo, nothing is written again and the written value is not re-applied;
        # only the column Dynamics maintains itself (modifiedon -> modified_on), moved by our write, is refreshed.
        assert echo.entities["Account"].synapses["dynamics"].echoes == 1, echo.to_dict()
        assert echo.writes == 0 and echo.udm_changes == 0, echo.to_dict()
        fields = [(f.field, f.decision) for e in events for f in e.fields if e.direction == "in"]
        assert fields and all(n == "modified_on" and "echo of our own write" in d for n, d in fields), fields
        assert refreshed is not None and refreshed.values["modified_on"] == row["modifiedon"]
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


def test_reads_select_only_the_mapped_columns(server: EmulatorServer, tmp_path: Path) -> None:
    server.emulator.reset(seed={"accounts": 5, "contacts": 5})
    tokens = ClientCredentialsProvider(_config(server))
    url = f"sqlite:///{tmp_path / 'udm.db'}"
    assert server.ca_path is not None
    try:
        recording = RecordingTransport(server.ca_path)
        first = _sync(server, url, tokens, recording)
        assert first.ok, first.to_dict()

        async def streams() -> list[Any]:
            async with DynamicsSynapse(_config(server), tokens, tables=TABLES, name="dynamics") as synapse:
                return await synapse.discover()

        discovered = {s.name: s for s in asyncio.run(streams())}
        account = discovered["account"]
        mapped = default_mapping(list(discovered.values())).entity_for_table("account")
        assert mapped is not None
        columns = {f.column for f in mapped.fields if f.column and f.direction.reads}
        expected = {wire_name(account.columns[c]) for c in columns} | {
            "accountid",
            "modifiedon",
            "versionnumber",
        }
        selects = [
            set(u.params["$select"].split(","))
            for u in recording.urls
            if u.path.endswith("/accounts") and "$select" in u.params
        ]
        data_selects = [s for s in selects if s != {"accountid"}]  # not the keys-only reconciliation scan
        assert data_selects and all(s == expected for s in data_selects), data_selects
        assert len(expected) < len([c for c in account.columns.values() if c.readable])
        assert "address2_line1" in account.columns and "address2_line1" not in expected
        # The next run asks for the same columns, so Dynamics continues the delta instead of reloading in full.
        server.emulator.user_update("accounts", next(iter(server.emulator.store.query("account")))["accountid"],
                                    {"telephone1": "+1 555 0199"})  # fmt: skip
        second = _sync(server, url, tokens)
        counts = second.entities["Account"].synapses["dynamics"]
        assert not counts.full_load and counts.updated == 1, second.to_dict()
    finally:
        tokens.close()
