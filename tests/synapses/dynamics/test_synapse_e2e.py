"""The Synapse protocol end to end on a custom table made through the emulator's HTTP control plane."""

from __future__ import annotations

import datetime as dt
import decimal
import ssl
import uuid
from typing import Any

import httpx
import pytest
from synapse_env import collect, make_synapse, run, server, tokens  # noqa: F401  (fixtures)

from dynasync.emulator.server import EmulatorServer
from dynasync.synapses.base import ColumnType, LookupRef, Synapse, WriteKind, WriteOp
from dynasync.synapses.dynamics.schema_drift import diff_schemas, streams_from_json, streams_to_json

pytestmark = pytest.mark.e2e


def control(server: EmulatorServer, method: str, path: str, body: Any = None) -> Any:  # noqa: F811
    context = ssl.create_default_context(cafile=str(server.ca_path))
    with httpx.Client(base_url=f"{server.base_url}/_emulator", verify=context, trust_env=False) as http:
        response = http.request(method, path, json=body)
        assert response.status_code == 200, response.text
        return response.json()


def test_custom_table_discover_write_read_delta(server: EmulatorServer, tokens: object) -> None:  # noqa: F811
    control(server, "POST", "/reset", {"seed": {"accounts": 2, "contacts": 0}})
    control(
        server,
        "POST",
        "/tables",
        {
            "logical_name": "new_project",
            "display_name": "Project",
            "columns": [
                {"logical_name": "new_budget", "type": "Money"},
                {"logical_name": "new_start", "type": "DateTime", "date_only": True},
                {
                    "logical_name": "new_tags",
                    "type": "MultiSelectPicklist",
                    "options": [[1, "Red"], [2, "Blue"]],
                },
                {"logical_name": "new_accountid", "type": "Lookup", "target": "account"},
            ],
        },
    )
    accounts = sorted(str(r["accountid"]) for r in server.emulator.store.query("account"))

    async def go() -> dict[str, Any]:
        async with make_synapse(server, tokens, tables=["account", "new_project"], page_size=2) as synapse:
            checked: Synapse = synapse  # the protocol is satisfied (checked by mypy)
            assert checked.name == "Emulator"
            streams = {s.name: s for s in await synapse.discover()}
            project = streams["new_project"]
            ops = [
                WriteOp(
                    WriteKind.CREATE,
                    "new_project",
                    {
                        "new_name": f"P{i}",
                        "new_budget": decimal.Decimal("1000.25") * i,
                        "new_start": dt.date(2024, 1, i + 1),
                        "new_tags": (1, 2) if i % 2 else (2,),
                        "new_accountid": LookupRef("account", accounts[i % 2]),
                    },
                )
                for i in range(5)
            ]
            written = await synapse.write(project, ops)
            load = await collect(synapse, project, None)
            first_id = written[0].id
            assert first_id is not None
            control(
                server,
                "POST",
                "/act",
                {"method": "PATCH", "path": f"new_projects({first_id})", "body": {"new_name": "Edited"},
                 "headers": {"If-Match": "*"}},
            )  # fmt: skip
            control(server, "POST", "/faults", {"kind": "429", "count": 1, "retry_after": 0})
            delta = await collect(synapse, project, load[-1].cursor)
            return {"streams": streams, "written": written, "load": load, "delta": delta}

    out = run(go())
    project = out["streams"]["new_project"]
    assert project.is_custom and project.columns["new_start"].type is ColumnType.DATE
    assert project.columns["new_tags"].options == ((1, "Red"), (2, "Blue"))
    assert project.columns["new_accountid"].navigation == {"account": "new_accountid"}
    assert all(r.ok for r in out["written"])

    records = {r.values["new_name"]: r for b in out["load"] for r in b.upserts}
    assert len(out["load"]) == 3 and set(records) == {f"P{i}" for i in range(5)}
    p3 = records["P3"]
    assert p3.values["new_budget"] == decimal.Decimal("3000.75")
    assert p3.values["new_start"] == dt.date(2024, 1, 4)
    assert p3.values["new_tags"] == (1, 2) and p3.labels["new_tags"]
    assert p3.values["new_accountid"] == LookupRef("account", accounts[1])
    assert uuid.UUID(p3.id)

    delta = out["delta"]
    assert [r.values["new_name"] for b in delta for r in b.upserts] == ["Edited"]

    # The schema snapshot survives JSON, and a refresh with nothing changed reports no drift.
    streams = list(out["streams"].values())
    assert (
        diff_schemas(streams, streams_from_json(streams_to_json(streams))).summary() == "No schema changes."
    )
