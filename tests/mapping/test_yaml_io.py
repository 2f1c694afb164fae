from __future__ import annotations

from pathlib import Path

import pytest

from dynasync.mapping import (
    Cast,
    ConflictPolicy,
    ConflictRule,
    Direction,
    MappingValidationError,
    UnmappedPolicy,
    dump_mapping,
    format_problem,
    load_mapping,
    loads_mapping,
    save_mapping,
)
from dynasync.mapping.spec import UNSET
from dynasync.synapses.dynamics.defaults import default_mapping
from dynasync.udm.model import FieldType

from .sample import SAMPLE_YAML
from .streams import catalog_streams


def problems_of(text: str, source: str = "mappings/dynamics.yaml") -> list[str]:
    with pytest.raises(MappingValidationError) as info:
        loads_mapping(text, source)
    return [format_problem(p) for p in info.value.problems]


def test_sample_loads_into_frozen_spec_with_lines() -> None:
    spec = loads_mapping(SAMPLE_YAML, "mappings/dynamics.yaml")
    assert spec.synapse == "dynamics"
    assert [e.table for e in spec.entities] == ["account", "contact", "systemuser"]
    account = spec.entities[0]
    assert account.match_keys == ("account_number",)
    assert account.delete_to_udm and not account.delete_from_udm
    assert account.loc is not None and account.loc.line == 4
    by_field = {f.field: f for f in account.fields}
    tier = by_field["tier"]
    assert tier.options == {1: "GOLD", 2: "SILVER"}
    assert tier.unmapped is UnmappedPolicy.REJECT
    assert tier.loc is not None and tier.loc.line == 15 and tier.loc.line_of("options.2") == 21
    assert by_field["email"].casts == (Cast.TRIM, Cast.LOWER)
    assert by_field["email"].conflict == ConflictPolicy(ConflictRule.UDM_WINS, None, reject_empty=True)
    assert by_field["name"].conflict == ConflictPolicy(reject_empty=True)
    assert by_field["created_on"].conflict == ConflictPolicy(ConflictRule.SYNAPSE_WINS, "dynamics")
    assert by_field["created_on"].direction is Direction.TO_UDM
    assert by_field["revenue"].default == 0
    assert by_field["name"].default is UNSET
    assert by_field["source_system"].constant == "dynamics" and by_field["source_system"].column is None
    assert by_field["owner_ref"].unmapped is UnmappedPolicy.NULL
    assert by_field["owner_ref"].type is FieldType.REFERENCE
    ticker = next(f for f in account.fields if f.column == "tickersymbol")
    assert ticker.field is None and ticker.constant == "DYN"


def test_round_trip_sample_and_default() -> None:
    spec = loads_mapping(SAMPLE_YAML)
    text = dump_mapping(spec)
    again = loads_mapping(text)
    assert again == spec
    assert dump_mapping(again) == text

    default = default_mapping(catalog_streams())
    default_text = dump_mapping(default)
    assert loads_mapping(default_text) == default


def test_save_and_load_file(tmp_path: Path) -> None:
    spec = loads_mapping(SAMPLE_YAML)
    path = tmp_path / "mappings" / "dynamics.yaml"
    save_mapping(spec, path)
    assert load_mapping(path) == spec
    assert [p.name for p in path.parent.iterdir()] == ["dynamics.yaml"]  # no temp files left


def test_syntax_error_points_to_line_and_column() -> None:
    text = "synapse: dynamics\nentities:\n  - table: account\n    fields: [ {column: name\n"
    [message] = problems_of(text)
    assert message.startswith("mappings/dynamics.yaml:5:1: YAML syntax error")

    [message] = problems_of("synapse: dynamics\nentities:\n  - table: account\n   entity: Account\n")
    assert message.startswith("mappings/dynamics.yaml:4:")


def test_shape_problems_all_reported_with_lines() -> None:
    text = """\
synapse: dynamics
entities:
  - table: account
    entity: Account
    fields:
      - {column: name, field: name, type: strng}
      - {column: revenue, field: revenue, type: decimal, direction: sideways}
      - {column: x, field: x, type: string, colour: red}
  - entity: Contact
"""
    assert problems_of(text) == [
        "mappings/dynamics.yaml:6: entities[0].fields[0].type: Input should be 'string', 'text', 'integer', "
        "'bigint', 'decimal', 'float', 'boolean', 'datetime', 'date', 'choice', 'multichoice', 'reference' or 'uuid'",
        "mappings/dynamics.yaml:7: entities[0].fields[1].direction: Input should be 'to_udm', 'from_udm' or 'both'",
        "mappings/dynamics.yaml:8: entities[0].fields[2]: unknown key 'colour'",
        "mappings/dynamics.yaml:9: entities[1]: missing required key 'table'",
    ]


def test_duplicate_keys_and_bad_conflict() -> None:
    text = "synapse: dynamics\nsynapse: other\nentities: []\n"
    assert problems_of(text) == ["mappings/dynamics.yaml:2: duplicate key 'synapse'"]
    text = (
        "synapse: dynamics\nentities:\n  - table: account\n    entity: Account\n    fields:\n"
        "      - {column: name, field: name, type: string, conflict: [udm_wins, latest_update_wins]}\n"
        "      - {column: x, field: x, type: string, conflict: newest}\n"
    )
    found = problems_of(text)
    assert found[0] == (
        "mappings/dynamics.yaml:6: conflict names two rules (udm_wins and latest_update_wins); keep one"
    )
    assert found[1].startswith("mappings/dynamics.yaml:7: conflict must be 'latest_update_wins'")


def test_not_a_mapping_and_unreadable_file(tmp_path: Path) -> None:
    assert problems_of("- just\n- a list\n") == [
        "mappings/dynamics.yaml:1: a mapping file must be a YAML mapping with 'synapse' and 'entities'"
    ]
    with pytest.raises(Exception, match="cannot read mapping file") as info:
        load_mapping(tmp_path / "missing.yaml")
    assert info.value.location == str(tmp_path / "missing.yaml")  # type: ignore[attr-defined]


def test_delete_propagation_defaults_and_round_trip() -> None:
    base = "synapse: dynamics\nentities:\n  - table: account\n    entity: Account\n"
    plain = loads_mapping(base).entities[0]
    assert plain.delete_to_udm and not plain.delete_from_udm
    off = loads_mapping(base + "    deletes: {to_udm: false, from_udm: true}\n")
    assert not off.entities[0].delete_to_udm and off.entities[0].delete_from_udm
    assert loads_mapping(dump_mapping(off)) == off
    assert "deletes" not in dump_mapping(loads_mapping(base))
    assert not plain.recreate_deleted
    again = loads_mapping(base + "    deletes: {recreate: true}\n")
    assert again.entities[0].recreate_deleted and again.entities[0].delete_to_udm
    assert loads_mapping(dump_mapping(again)) == again
    assert "recreate: true" in dump_mapping(again)
