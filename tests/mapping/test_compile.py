from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynasync.errors import MappingError
from dynasync.mapping import ConflictPolicy, ConflictRule, compile_mapping, loads_mapping, udm_entities
from dynasync.synapses.base import LookupRef, SourceRecord
from dynasync.udm.model import FieldType, UdmField

from .sample import SAMPLE_YAML
from .streams import small_streams

ACC = "11111111-1111-1111-1111-111111111111"
CON = "22222222-2222-2222-2222-222222222222"
USR = "33333333-3333-3333-3333-333333333333"
TEAM = "44444444-4444-4444-4444-444444444444"
CREATED = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def compiled():  # type: ignore[no-untyped-def]
    return compile_mapping(loads_mapping(SAMPLE_YAML, "mappings/dynamics.yaml"), small_streams())


def account_row(**over: object) -> SourceRecord:
    values: dict[str, object] = {
        "accountid": ACC,
        "name": "Contoso",
        "accountnumber": "  ac-001 ",
        "emailaddress1": "  Info@Contoso.COM ",
        "revenue": Decimal("1250000.50"),
        "numberofemployees": 42,
        "creditonhold": False,
        "accountcategorycode": 1,
        "statecode": 0,
        "statuscode": 1,
        "new_regions": (1, 3),
        "lastonholdtime": dt.datetime(2024, 1, 31, 23, 0, tzinfo=dt.UTC),
        "parentaccountid": None,
        "primarycontactid": LookupRef("contact", CON),
        "ownerid": LookupRef("systemuser", USR),
        "createdon": CREATED,
    }
    values.update(over)
    return SourceRecord(id=ACC, values=values)


def test_to_udm_maps_every_kind_of_field(compiled) -> None:  # type: ignore[no-untyped-def]
    values, refs, problems = compiled.for_table("account").to_udm(account_row())
    assert problems == []
    assert values == {
        "name": "Contoso",
        "account_number": "AC-001",
        "email": "info@contoso.com",
        "revenue": Decimal("1250000.50"),
        "employees": "42",
        "on_hold": False,
        "tier": "GOLD",
        "state": "Active",
        "status": 1,
        "regions": "East;North",  # sorted, as the UDM stores a multi-select
        "last_hold_day": dt.date(2024, 1, 31),
        "created_on": CREATED,
        "source_system": "dynamics",
    }
    assert refs == {
        "parent_account_ref": None,
        "primary_contact_ref": LookupRef("contact", CON),
        "owner_ref": LookupRef("systemuser", USR),
    }


def test_from_udm_round_trip(compiled) -> None:  # type: ignore[no-untyped-def]
    account = compiled.for_entity("Account")
    values, refs, _ = account.to_udm(account_row())
    out, problems = account.from_udm(values, {**refs, "owner_ref": LookupRef("systemuser", USR)})
    assert problems == []
    assert out == {
        "name": "Contoso",
        "accountnumber": "AC-001",
        "emailaddress1": "info@contoso.com",
        "revenue": Decimal("1250000.50"),
        "numberofemployees": 42,
        "creditonhold": False,
        "accountcategorycode": 1,
        "statuscode": 1,
        "new_regions": (1, 3),
        "lastonholdtime": dt.datetime(2024, 1, 31, tzinfo=dt.UTC),
        "parentaccountid": None,
        "primarycontactid": LookupRef("contact", CON),
        "ownerid": LookupRef("systemuser", USR),
        "tickersymbol": "DYN",  # from_udm constant
    }
    # to_udm-only fields (state, created_on, source_system) are never written back.
    assert "statecode" not in out and "createdon" not in out


def test_partial_rows_stay_partial(compiled) -> None:  # type: ignore[no-untyped-def]
    account = compiled.for_table("account")
    values, refs, problems = account.to_udm(SourceRecord(id=ACC, values={"name": "Only name"}))
    assert (values, refs, problems) == ({"name": "Only name", "source_system": "dynamics"}, {}, [])
    out, problems = account.from_udm({"email": " X@Y.COM "}, {})
    assert out == {"emailaddress1": "x@y.com", "tickersymbol": "DYN"} and problems == []


def test_option_policies(compiled) -> None:  # type: ignore[no-untyped-def]
    account = compiled.for_table("account")
    # reject: an option value without an entry fails the record, with a clear message.
    _, _, problems = account.to_udm(account_row(accountcategorycode=3))
    assert problems == [
        "account.accountcategorycode -> tier: value 3 has no entry in the option map (unmapped: reject)"
    ]
    _out, problems = account.from_udm({"tier": "BRONZE"})
    assert problems == [
        "account.accountcategorycode -> tier: UDM value 'BRONZE' has no entry in the option map"
    ]
    # label (default): unmapped values take the Dynamics label, and labels map back to their numbers.
    values, _, _ = account.to_udm(account_row(statecode=1))
    assert values["state"] == "Inactive"
    # A value missing from the metadata still uses the label the source sent with the row.
    row = account_row(statecode=5)
    fresh = SourceRecord(id=ACC, values=row.values, labels={"statecode": "Suspended"})
    assert account.to_udm(fresh).values["state"] == "Suspended"
    assert account.to_udm(row).problems == [
        "account.statecode -> state: value 5 is not in the option set and has no label"
    ]


def _policy_mapping(policy: str) -> str:
    return (
        "synapse: dynamics\nentities:\n  - table: account\n    entity: Account\n    fields:\n"
        "      - column: accountcategorycode\n        field: tier\n        type: choice\n"
        f"        unmapped: {policy}\n        options: {{1: P}}\n"
    )


@pytest.mark.parametrize(
    ("policy", "read", "write_back"),
    [
        ("label", "Standard", 2),
        ("null", None, None),
        ("keep", "2", 2),
    ],
)
def test_unmapped_policy_both_ways(policy: str, read: object, write_back: object) -> None:
    entity = compile_mapping(loads_mapping(_policy_mapping(policy)), small_streams()).for_table("account")
    values, _, problems = entity.to_udm(SourceRecord(id=ACC, values={"accountcategorycode": 2}))
    assert problems == [] and values == {"tier": read}
    assert entity.to_udm(SourceRecord(id=ACC, values={"accountcategorycode": 1})).values == {"tier": "P"}
    out, problems = entity.from_udm({"tier": read})
    assert problems == [] and out == {"accountcategorycode": write_back}
    assert entity.from_udm({"tier": "P"}).values == {"accountcategorycode": 1}


def test_keep_policy_rejects_numbers_outside_option_set() -> None:
    entity = compile_mapping(loads_mapping(_policy_mapping("keep")), small_streams()).for_table("account")
    assert entity.from_udm({"tier": "9"}).problems == [
        "account.accountcategorycode -> tier: option number 9 does not exist in the option set"
    ]


def test_polymorphic_lookup_per_target_table(compiled) -> None:  # type: ignore[no-untyped-def]
    contact = compiled.for_table("contact")
    row = {"parentcustomerid": LookupRef("account", ACC), "ownerid": LookupRef("systemuser", USR)}
    _, refs, problems = contact.to_udm(SourceRecord(id=CON, values=row))
    assert problems == []
    assert refs == {
        "account_ref": LookupRef("account", ACC),
        "parent_contact_ref": None,
        "owner_ref": LookupRef("systemuser", USR),
    }
    _, refs, _ = contact.to_udm(SourceRecord(id=CON, values={"parentcustomerid": LookupRef("contact", CON)}))
    assert refs == {"account_ref": None, "parent_contact_ref": LookupRef("contact", CON)}
    _, refs, _ = contact.to_udm(SourceRecord(id=CON, values={"parentcustomerid": None}))
    assert refs == {"account_ref": None, "parent_contact_ref": None}

    # Back to Dynamics: whichever reference is set picks the target table (bare ids are accepted).
    assert contact.from_udm({}, {"account_ref": ACC, "parent_contact_ref": None}).values == {
        "parentcustomerid": LookupRef("account", ACC)
    }
    assert contact.from_udm({}, {"parent_contact_ref": LookupRef("contact", CON)}).values == {
        "parentcustomerid": LookupRef("contact", CON)
    }
    assert contact.from_udm({}, {"account_ref": None}).values == {"parentcustomerid": None}
    both = contact.from_udm({}, {"account_ref": ACC, "parent_contact_ref": CON})
    assert both.problems == [
        "contact.parentcustomerid: more than one reference is set (account and contact); keep one"
    ]
    wrong = contact.from_udm({}, {"account_ref": LookupRef("contact", CON)})
    assert wrong.problems[0].startswith("contact.parentcustomerid: reference 'account_ref' must resolve")


def test_lookup_to_unmapped_target_table(compiled) -> None:  # type: ignore[no-untyped-def]
    team_owned = {"ownerid": LookupRef("team", TEAM)}
    # account: unmapped: null -> the owner reference is cleared.
    _, refs, problems = compiled.for_table("account").to_udm(SourceRecord(id=ACC, values=team_owned))
    assert refs == {"owner_ref": None} and problems == []
    # contact: unmapped: reject -> the record fails with a clear problem.
    _, refs, problems = compiled.for_table("contact").to_udm(SourceRecord(id=CON, values=team_owned))
    assert problems == ["contact.ownerid: points to table 'team', which this mapping does not map"]


def test_cast_failures_and_defaults(compiled) -> None:  # type: ignore[no-untyped-def]
    account = compiled.for_table("account")
    values, _, problems = account.to_udm(SourceRecord(id=ACC, values={"revenue": None}))
    assert values["revenue"] == Decimal(0) and problems == []
    out, problems = account.from_udm({"employees": "forty-two"})
    assert problems == ["account.numberofemployees -> employees: 'forty-two' is not a number"]
    out, problems = account.from_udm({"revenue": None, "employees": "", "on_hold": "yes"})
    assert out["revenue"] == Decimal(0) and out["numberofemployees"] is None and out["creditonhold"] is True


def test_select_and_write_columns(compiled) -> None:  # type: ignore[no-untyped-def]
    account = compiled.for_table("account")
    assert "createdon" in account.select_columns and "tickersymbol" not in account.select_columns
    assert "tickersymbol" in account.write_columns and "createdon" not in account.write_columns
    assert account.match_keys == ("account_number",)
    assert account.delete_to_udm and not account.delete_from_udm
    assert account.conflicts["email"] == ConflictPolicy(ConflictRule.UDM_WINS, reject_empty=True)
    assert account.reference_targets["owner_ref"] == "User"
    with pytest.raises(MappingError, match="table 'lead' is not mapped"):
        compiled.for_table("lead")


def test_udm_entities_have_types(compiled) -> None:  # type: ignore[no-untyped-def]
    entities = {e.name: e for e in udm_entities(compiled.spec, small_streams())}
    assert list(entities) == ["Account", "Contact", "User"]
    account = entities["Account"]
    assert account.match_keys == ("account_number",)
    assert account.fields["name"] == UdmField("name", FieldType.STRING, max_length=160)
    assert account.fields["owner_ref"].reference == "User"
    assert account.fields["regions"].type is FieldType.MULTICHOICE
    assert "tickersymbol" not in account.fields and None not in account.fields
    assert entities["Contact"].fields["account_ref"].reference == "Account"
    assert entities["Contact"].fields["parent_contact_ref"].reference == "Contact"
    assert compiled.for_table("account").udm == account


def test_many_rows_map_independently(compiled) -> None:  # type: ignore[no-untyped-def]
    # Mapping speed is measured by bench/ (docs/benchmarks.md); here: no state leaks between rows.
    account = compiled.for_table("account")
    for i in range(2_000):
        values, _refs, problems = account.to_udm(account_row(accountnumber=f"AC-{i}", numberofemployees=i))
        assert values["account_number"] == f"AC-{i}" and not problems


def test_references_may_also_come_inside_values(compiled) -> None:  # type: ignore[no-untyped-def]
    contact = compiled.for_table("contact")
    assert contact.from_udm({"first_name": "Ann", "account_ref": LookupRef("account", ACC)}).values == {
        "firstname": "Ann",
        "parentcustomerid": LookupRef("account", ACC),
    }


@settings(max_examples=200, deadline=None)
@given(
    revenue=st.decimals(min_value=0, max_value=10**12, places=2, allow_nan=False),
    employees=st.integers(min_value=0, max_value=10**9),
    email=st.from_regex(r"\s{0,2}[A-Za-z0-9]{1,8}@[A-Za-z]{1,8}\.[A-Za-z]{2,3}\s{0,2}", fullmatch=True),
    regions=st.lists(st.sampled_from([1, 2, 3]), unique=True, max_size=3),
)
def test_round_trip_property(
    compiled,  # type: ignore[no-untyped-def]
    revenue: Decimal,
    employees: int,
    email: str,
    regions: list[int],
) -> None:
    account = compiled.for_table("account")
    row = SourceRecord(
        id=ACC,
        values={
            "revenue": revenue,
            "numberofemployees": employees,
            "emailaddress1": email,
            "new_regions": tuple(regions),
        },
    )
    values, refs, problems = account.to_udm(row)
    assert problems == []
    out, problems = account.from_udm(values, refs)
    assert problems == []
    assert out["revenue"] == revenue
    assert out["numberofemployees"] == employees
    assert out["emailaddress1"] == email.strip().lower()
    assert out["new_regions"] == (tuple(sorted(regions)) or None)


_ANY_VALUE = st.one_of(
    st.none(),
    st.text(max_size=8),
    st.integers(-5, 5),
    st.booleans(),
    st.decimals(allow_nan=False, allow_infinity=False, places=2),
    st.floats(allow_nan=False, allow_infinity=False),
    st.datetimes(timezones=st.sampled_from([dt.UTC, None])),
    st.dates(),
    st.tuples(st.integers(1, 3)),
)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_compiled_row_function_equals_running_each_reader(compiled, data) -> None:  # type: ignore[no-untyped-def]
    # The generated function copies values of the exact type as they are and hands anything else to the field's
    # reader: whatever a row holds (absent, None, another type), the result must be the readers' result.
    entity = compiled.for_table("account")
    row = account_row()
    values = dict(row.values)
    for name in list(values):
        choice = data.draw(st.sampled_from(["keep", "drop", "other"]), label=name)
        if choice == "drop":
            del values[name]
        elif choice == "other":
            values[name] = data.draw(_ANY_VALUE, label=f"{name} value")
    record = SourceRecord(id=ACC, values=values, labels={"accountcategorycode": "Preferred"})
    expected_out: dict[str, object] = {}
    expected_refs: dict[str, object] = {}
    expected_problems: list[str] = []
    for read in entity._readers:
        read(record.values, record.labels, expected_out, expected_refs, expected_problems)
    got = entity.to_udm(record)
    assert (got.values, got.references, got.problems) == (expected_out, expected_refs, expected_problems)
    assert list(got.values) == list(expected_out)  # same field order too


def test_a_multi_select_is_read_in_the_form_the_udm_stores_whatever_the_service_order(compiled) -> None:  # type: ignore[no-untyped-def]
    # Stored sorted: read in the service's order, a value written back would never equal its echo.
    account = compiled.for_table("account")
    for order in ((1, 3), (3, 1), (3, 1, 3)):
        values, _, problems = account.to_udm(SourceRecord(id=ACC, values={"new_regions": order}))
        assert problems == [] and values["regions"] == "East;North"
    out, problems = account.from_udm({"regions": "North;East"}, {})
    assert problems == [] and out["new_regions"] == (1, 3)
