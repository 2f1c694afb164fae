"""A mapping must fit the UDM it shares: field types already in the UDM table or in another synapse's mapping."""

from __future__ import annotations

from pathlib import Path

from dynasync.activation import ensure_udm_entities, mapping_repository, udm_fit_problems
from dynasync.config import Settings
from dynasync.mapping import format_problem, loads_mapping
from dynasync.synapses.dynamics.schema_drift import stream_to_dict
from dynasync.workspace import SynapseRecord, Workspace

from .streams import small_streams

ACCOUNT = """\
format: 1
synapse: {key}
entities:
  - table: account
    entity: Account
    fields:
      - {{column: name, field: name, type: string}}
      - {{column: numberofemployees, field: employees, type: {employees}}}
"""


def _active(ws: Workspace, name: str, employees: str) -> SynapseRecord:
    record = SynapseRecord(
        name=name,
        kind="dynamics",
        endpoint_url="https://login.example",
        org_url="https://o.example",
        status="active",
    )
    ws.save(record)
    streams = small_streams()
    ws.save_schema(record, [stream_to_dict(s) for s in streams])
    repo = mapping_repository(ws, record)
    repo.save_draft(loads_mapping(ACCOUNT.format(key=repo.synapse, employees=employees)))
    repo.publish(streams)
    return record


def test_a_field_type_another_synapse_maps_differently_is_refused_at_the_field(tmp_path: Path) -> None:
    ws = Workspace(Settings(home=tmp_path / "home"))
    _active(ws, "Sales", "integer")  # published, its UDM table not made yet: only its mapping says integer
    service = _active(ws, "Service", "integer")
    clash = loads_mapping(ACCOUNT.format(key="service", employees="string"), "service.yaml")
    problems = [format_problem(p) for p in udm_fit_problems(ws, service, clash, small_streams())]
    assert problems == [
        "service.yaml:8: UDM field 'Account.employees' would be string, but it is integer in synapse 'Sales'; "
        "a field keeps its type (map the column to a new field, or keep the type)"
    ]
    same = loads_mapping(ACCOUNT.format(key="service", employees="integer"), "service.yaml")
    assert udm_fit_problems(ws, service, same, small_streams()) == []


def test_a_field_type_the_udm_table_holds_differently_is_refused(tmp_path: Path) -> None:
    ws = Workspace(Settings(home=tmp_path / "home"))
    sales = _active(ws, "Sales", "integer")
    published = mapping_repository(ws, sales).published()
    assert published is not None
    ensure_udm_entities(ws, published, small_streams())
    retyped = loads_mapping(ACCOUNT.format(key="sales", employees="decimal"), "sales.yaml")
    (problem,) = udm_fit_problems(ws, sales, retyped, small_streams())
    assert "would be decimal, but it is integer in the UDM table of Account" in format_problem(problem)
