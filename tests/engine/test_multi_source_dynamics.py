"""Two real Dynamics synapses against two emulated orgs (in-process) feeding one UDM Account entity."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from pathlib import Path
from typing import Any

import httpx

from dynasync.emulator.app import Emulator, create_app
from dynasync.emulator.settings import EmulatorSettings
from dynasync.emulator.tls import ensure_ca
from dynasync.engine import Engine, RunReport
from dynasync.mapping.spec import MappingSpec
from dynasync.synapses.dynamics.auth import StaticTokenProvider
from dynasync.synapses.dynamics.config import DynamicsConfig
from dynasync.synapses.dynamics.defaults import default_mapping
from dynasync.synapses.dynamics.retry import RetryPolicy
from dynasync.synapses.dynamics.synapse import DynamicsSynapse
from dynasync.udm.store import open_store

# -- two real Dynamics synapses against two emulated orgs (in-process) --------------------------------------------


class Org:
    """One emulated Dataverse org served in-process, and the settings and token to reach it."""

    def __init__(self, port: int, ca: Path) -> None:
        self.emulator = Emulator.create(seed=0, settings=EmulatorSettings(tls=False))
        self.url = f"https://127.0.0.1:{port}"
        app = self.emulator.default_app
        assert app is not None
        self.token = self.emulator.issuer.issue_access_token(
            tenant_id=self.emulator.tenant_id,
            audience=self.url,
            app_id=app.client_id,
            object_id=str(uuid.uuid4()),
        ).token
        self.config = DynamicsConfig.parse(
            {
                "name": f"org-{port}",
                "endpoint_url": self.emulator.tenant_id,
                "org_url": self.url,
                "client_id": app.client_id,
                "client_secret": app.client_secret,
                "public_base_url": "https://sync.example.com",
                "allow_local_emulator": True,
                "ca_bundle": str(ca),  # required for a local org; unused by the in-process transport
            }
        )

    def synapse(self, name: str) -> DynamicsSynapse:
        """A Dynamics synapse whose client talks to this org through ``httpx.ASGITransport``."""
        options: dict[str, Any] = {
            "transport": httpx.ASGITransport(app=create_app(self.emulator)),
            "rand": lambda: 0.0,
            "retry": RetryPolicy(base_delay=0.01, max_delay=0.05),
        }
        return DynamicsSynapse(
            self.config,
            StaticTokenProvider(self.token),
            client_options=options,
            tables=["account"],
            name=name,
        )

    def accounts(self) -> dict[str, dict[str, Any]]:
        """Account number -> the row."""
        return {str(r["accountnumber"]): r for r in self.emulator.store.query("account")}


def _with_deletes(spec: MappingSpec, synapse: str) -> MappingSpec:
    entities = tuple(dataclasses.replace(e, delete_from_udm=True) for e in spec.entities)
    return dataclasses.replace(spec, synapse=synapse, entities=entities)


def test_two_dynamics_orgs_feed_one_account_entity(tmp_path: Path) -> None:
    ca = ensure_ca(tmp_path / "tls").ca_cert_path
    org_a, org_b = Org(1001, ca), Org(1002, ca)
    org_a.emulator.user_create("accounts", {"name": "Acme", "accountnumber": "N-100", "telephone1": "111"})
    b_acme = org_b.emulator.user_create(
        "accounts", {"name": "Acme", "accountnumber": "N-100", "telephone1": "111"}
    )
    org_b.emulator.user_create("accounts", {"name": "Globex", "accountnumber": "N-200"})
    store = open_store(f"sqlite:///{tmp_path / 'udm.db'}")

    async def scenario() -> None:
        async with org_a.synapse("dyn_a") as dyn_a, org_b.synapse("dyn_b") as dyn_b:
            base = default_mapping(await dyn_a.discover())
            specs = [dataclasses.replace(base, synapse="dyn_a"), _with_deletes(base, "dyn_b")]
            engine = Engine(store, {"dyn_a": dyn_a, "dyn_b": dyn_b}, specs)

            async def run() -> RunReport:
                report = await engine.run()
                assert report.ok, report.to_dict()
                return report

            async def settle_runs() -> None:
                await run()  # our writes come back (echoes)
                quiet = await run()
                assert quiet.writes == 0 and quiet.udm_changes == 0, quiet.to_dict()

            # (1) Acme is in both orgs: one record, two links; Globex (only in B) is created in A.
            first = await run()
            a, b = first.entities["Account"].synapses["dyn_a"], first.entities["Account"].synapses["dyn_b"]
            assert (a.created, b.created, a.written_created, b.written_created) == (1, 1, 1, 0), (
                first.to_dict()
            )
            records = {r.values["account_number"]: r.id for r in store.iter_records("Account")}
            assert set(records) == {"N-100", "N-200"}
            acme = records["N-100"]
            assert {(k.synapse, k.table) for k in store.links_for_record("Account", acme)} == {
                ("dyn_a", "account"),
                ("dyn_b", "account"),
            }
            assert set(org_a.accounts()) == {"N-100", "N-200"}
            assert org_a.accounts()["N-200"]["name"] == "Globex"
            await settle_runs()

            # (2) A change in org A reaches org B once, and nothing goes back to A.
            a_acme = org_a.accounts()["N-100"]["accountid"]
            org_a.emulator.user_update("accounts", a_acme, {"telephone1": "222"})
            pushed = await run()
            a, b = pushed.entities["Account"].synapses["dyn_a"], pushed.entities["Account"].synapses["dyn_b"]
            assert (a.updated, a.written_updated, b.written_updated) == (1, 0, 1), pushed.to_dict()
            assert org_b.accounts()["N-100"]["telephone1"] == "222"
            await settle_runs()

            # (3) Both orgs rename Acme in one cycle: B's later edit wins and is written to A.
            org_a.emulator.user_update("accounts", a_acme, {"name": "Acme (A)"})
            org_b.emulator.advance_clock(120)
            org_b.emulator.user_update("accounts", b_acme, {"name": "Acme (B)"})
            await run()
            record = store.get("Account", acme)
            assert record is not None and record.values["name"] == "Acme (B)"
            assert org_a.accounts()["N-100"]["name"] == org_b.accounts()["N-100"]["name"] == "Acme (B)"
            events = store.search_log(entity="Account", udm_id=acme, synapse="dyn_b")
            decisions = [
                f.decision for e in events if e.direction == "in" for f in e.fields if f.field == "name"
            ]
            assert decisions and decisions[0].startswith("dyn_b wins: latest_update_wins"), decisions
            await settle_runs()

            # (4) Deleting Globex in A deletes it in B, whose mapping opted in to deletes from the UDM.
            org_a.emulator.user_delete("accounts", org_a.accounts()["N-200"]["accountid"])
            deleted = await run()
            assert deleted.entities["Account"].synapses["dyn_b"].written_deleted == 1, deleted.to_dict()
            assert "N-200" not in org_b.accounts()
            await settle_runs()

    try:
        asyncio.run(scenario())
    finally:
        store.close()
