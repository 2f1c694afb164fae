from __future__ import annotations

import pytest

from dynasync.errors import MappingError
from dynasync.mapping import (
    MappingValidationError,
    check_mapping,
    compile_mapping,
    format_problem,
    loads_mapping,
    validate_mapping,
)
from dynasync.mapping.validate import conflict_synapse_problems

from .sample import SAMPLE_YAML
from .streams import small_streams

BROKEN = """\
synapse: dynamics
entities:
  - table: account
    entity: Account
    match_keys: [account_number, phone]
    fields:
      - {column: name, field: name, type: string}
      - {column: revenu, field: revenue, type: decimal}
      - {column: accountnumber, field: account_number}
      - {column: creditonhold, field: on_hold, type: date}
      - {column: name, field: name, type: string}
      - column: accountcategorycode
        field: tier
        type: choice
        options:
          1: GOLD
          7: PLATINUM
      - {column: createdon, field: created_on, type: datetime}
      - {column: primarycontactid, field: primary_contact_ref, type: reference, reference: Contact}
      - {column: ownerid, field: owner_ref, type: reference, reference: User, target_table: teem}
      - {column: name, field: email, type: string, casts: [number]}
      - {column: numberofemployees, field: employees, type: string}
  - table: acount
    entity: Ghost
    fields: []
  - table: systemuser
    entity: User
    fields:
      - {column: domainname, field: domain_name, type: string}
"""


def test_every_problem_reported_once_with_its_line() -> None:
    spec = loads_mapping(BROKEN, "mappings/dynamics.yaml")
    found = [format_problem(p) for p in validate_mapping(spec, small_streams())]
    assert found == [
        "mappings/dynamics.yaml:5: match key 'phone' is not a mapped field of 'Account'",
        "mappings/dynamics.yaml:8: column 'revenu' does not exist on table 'account' (did you mean 'revenue'?)",
        "mappings/dynamics.yaml:9: UDM field 'account_number' has no type; try `type: string`",
        "mappings/dynamics.yaml:10: column 'account.creditonhold' (boolean) does not fit UDM field 'on_hold' "
        "of type date",
        "mappings/dynamics.yaml:11: UDM field 'name' of 'Account' is already mapped from name -> name (line 7)",
        "mappings/dynamics.yaml:11: column 'account.name' is written back by more than one field mapping "
        "(first: name -> name, line 7); keep one with direction from_udm/both, or give each polymorphic lookup "
        "its own target_table",
        "mappings/dynamics.yaml:17: option value 7 does not exist in the option set of "
        "'account.accountcategorycode' (values: 1 Preferred Customer, 2 Standard)",
        "mappings/dynamics.yaml:18: column 'account.createdon' is read-only (neither creatable nor updatable); "
        "direction 'both' would write it (use direction: to_udm)",
        "mappings/dynamics.yaml:19: lookup 'account.primarycontactid' targets table 'contact', which is not "
        "mapped to any UDM entity (map 'contact' or remove this field)",
        "mappings/dynamics.yaml:20: lookup 'account.ownerid' cannot point to table 'teem' "
        "(its targets: systemuser, team) (did you mean 'team'?)",
        "mappings/dynamics.yaml:21: column 'account.name' (string, decimal after casts) does not fit UDM field "
        "'email' of type string",
        "mappings/dynamics.yaml:21: column 'account.name' is written back by more than one field mapping "
        "(first: name -> name, line 7); keep one with direction from_udm/both, or give each polymorphic lookup "
        "its own target_table",
        "mappings/dynamics.yaml:22: column 'account.numberofemployees' (integer) does not fit UDM field "
        "'employees' of type string (add `casts: [string]`)",
        "mappings/dynamics.yaml:23: table 'acount' does not exist in the synapse schema (did you mean 'account'?)",
    ]


def test_check_raises_one_error_listing_all() -> None:
    spec = loads_mapping(BROKEN, "mappings/dynamics.yaml")
    with pytest.raises(MappingValidationError) as info:
        check_mapping(spec, small_streams())
    error = info.value
    assert isinstance(error, MappingError)
    assert len(error.problems) == 14
    assert error.location == "mappings/dynamics.yaml:5"
    assert str(error).startswith("14 problems in the mapping:\nmappings/dynamics.yaml:5: match key")
    with pytest.raises(MappingValidationError):
        compile_mapping(spec, small_streams())


def test_sample_is_valid() -> None:
    assert validate_mapping(loads_mapping(SAMPLE_YAML), small_streams()) == []


def _one(fields: str, *, extra: str = "") -> list[str]:
    text = (
        "synapse: dynamics\nentities:\n  - table: account\n    entity: Account\n    fields:\n"
        + fields
        + extra
    )
    return [format_problem(p) for p in validate_mapping(loads_mapping(text, "m.yaml"), small_streams())]


def test_more_rules() -> None:
    assert _one("      - {column: ownerid, field: owner, type: string}\n") == [
        "m.yaml:6: lookup column 'account.ownerid' must map to a field of type reference naming the target "
        "UDM entity"
    ]
    assert _one("      - {column: name, field: name, type: reference, reference: Account}\n") == [
        "m.yaml:6: a reference field needs a lookup column; 'account.name' is string"
    ]
    assert _one("      - {column: name, field: name, type: string, options: {1: a}}\n") == [
        "m.yaml:6: options apply to choice columns; 'account.name' is string"
    ]
    assert _one("      - {column: name, field: name, type: string, casts: [date_only]}\n") == [
        "m.yaml:6: name -> name: cast 'date_only' does not apply to text values"
    ]
    assert _one("      - {field: src, type: integer, constant: abc, direction: to_udm}\n") == [
        "m.yaml:6: constant for 'src' does not fit type integer: 'abc' is not a number"
    ]
    assert _one("      - {field: src, type: string, constant: x}\n") == [
        "m.yaml:6: constant for 'src' has no column to write; use direction: to_udm"
    ]
    assert _one("      - {column: name, constant: x}\n") == [
        "m.yaml:6: a constant with a column is written to the source; set direction: from_udm on name -> ?"
    ]
    assert _one("      - {column: revenue, field: 2revenue, type: decimal}\n") == [
        "m.yaml:6: UDM field name '2revenue' is not a valid name (letters, digits and _, not starting with a digit)"
    ]
    assert _one("      - {column: lastonholdtime, field: d, type: date}\n") == [
        "m.yaml:6: column 'account.lastonholdtime' (datetime) does not fit UDM field 'd' of type date "
        "(add `casts: [date_only]`)"
    ]
    assert _one(
        "      - {column: parentaccountid, field: parent_ref, type: reference, reference: Acount}\n"
    ) == [
        "m.yaml:6: lookup 'account.parentaccountid' targets table 'account', which maps to 'Account', "
        "not 'Acount'"
    ]
    assert _one("      - {column: statecode, field: state, type: integer, unmapped: label}\n") == [
        "m.yaml:6: unmapped: label needs a choice or string field for account.statecode"
    ]
    # Polymorphic write-back of the same lookup column to two target tables is fine; the same table twice is not.
    assert _one(
        "      - {column: parentaccountid, field: a_ref, type: reference, reference: Account}\n"
        "      - {column: parentaccountid, field: b_ref, type: reference, reference: Account}\n"
    ) == [
        "m.yaml:7: column 'account.parentaccountid' is written back by more than one field mapping "
        "(first: parentaccountid -> a_ref, line 6); keep one with direction from_udm/both, or give each "
        "polymorphic lookup its own target_table"
    ]


def test_missing_entity_name_and_duplicates() -> None:
    text = """\
synapse: dynamics
entities:
  - table: account
    fields: []
  - table: contact
    entity: Account
    fields: []
  - table: account
    entity: Other
    fields: []
  - table: systemuser
    entity: Account
    fields: []
"""
    found = [format_problem(p) for p in validate_mapping(loads_mapping(text, "m.yaml"), small_streams())]
    assert found == [
        "m.yaml:3: table 'account' has no UDM entity (add `entity: <Name>`)",
        "m.yaml:8: table 'account' is mapped twice (first at line 3)",
        "m.yaml:12: UDM entity 'Account' is already mapped from table 'contact' (line 6); map each entity from "
        "one table per synapse",
    ]


def test_synapse_wins_must_name_a_synapse_there_is_when_they_are_known() -> None:
    text = SAMPLE_YAML.replace(
        "conflict: {synapse_wins: dynamics}", "conflict: {synapse_wins: Dynamics Sales}"
    )
    spec = loads_mapping(text, "m.yaml")
    line = 1 + text.splitlines().index(
        next(x for x in text.splitlines() if "synapse_wins: Dynamics Sales" in x)
    )
    assert validate_mapping(spec, small_streams()) == []  # the synapses are not known here
    problems = validate_mapping(spec, small_streams(), synapses={"dynamics", "erp"})
    assert [format_problem(p) for p in problems] == [
        f"m.yaml:{line}: conflict synapse_wins names 'Dynamics Sales', which is no synapse here (did you mean "
        "'dynamics'?); synapses are named by their key: dynamics, erp"
    ]
    assert [format_problem(p) for p in conflict_synapse_problems(spec, {"dynamics", "erp"})] == [
        format_problem(problems[0])
    ]
    assert validate_mapping(loads_mapping(SAMPLE_YAML), small_streams(), synapses={"dynamics"}) == []
