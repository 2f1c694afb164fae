from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

from dynasync.mapping import Direction, compile_mapping, loads_mapping, udm_entities, validate_mapping
from dynasync.mapping.spec import FieldMapping, MappingSpec
from dynasync.synapses.base import ColumnType, LookupRef, SourceRecord
from dynasync.synapses.dynamics.defaults import STANDARD_TABLES, default_mapping, default_mapping_yaml
from dynasync.udm.model import FieldType

from .streams import catalog_streams, small_streams

USR = "33333333-3333-3333-3333-333333333333"
ACC = "11111111-1111-1111-1111-111111111111"


def fields_of(spec: MappingSpec, table: str) -> dict[str, FieldMapping]:
    entity = spec.entity_for_table(table)
    assert entity is not None
    return {f"{f.column}:{f.field}": f for f in entity.fields}


def test_full_org_maps_all_standard_tables() -> None:
    streams = catalog_streams()
    spec = default_mapping(streams)
    assert [(e.table, e.entity) for e in spec.entities] == [
        ("account", "Account"),
        ("contact", "Contact"),
        ("lead", "Lead"),
        ("opportunity", "Opportunity"),
        ("systemuser", "User"),
    ]
    assert validate_mapping(spec, streams) == []
    assert not any("not found" in n for n in spec.notes)
    account = fields_of(spec, "account")
    assert account["revenue:revenue"].type is FieldType.DECIMAL
    assert account["ownerid:owner_ref"].reference == "User"
    assert account["ownerid:owner_ref"].target_table == "systemuser"
    assert account["parentaccountid:parent_account_ref"].reference == "Account"
    assert account["primarycontactid:primary_contact_ref"].reference == "Contact"
    assert account["statecode:state"].options == {0: "Active", 1: "Inactive"}
    assert account["createdon:created_on"].direction is Direction.TO_UDM
    assert account["name:name"].direction is Direction.BOTH
    assert "address1_composite" not in {f.split(":")[0] for f in account}
    contact = fields_of(spec, "contact")
    assert contact["parentcustomerid:account_ref"].target_table == "account"
    assert contact["parentcustomerid:parent_contact_ref"].target_table == "contact"
    assert contact["fullname:full_name"].direction is Direction.TO_UDM
    opportunity = fields_of(spec, "opportunity")
    assert opportunity["closeprobability:close_probability"].type is FieldType.INTEGER
    assert opportunity["estimatedvalue:estimated_value"].type is FieldType.DECIMAL
    assert opportunity["estimatedclosedate:estimated_close_date"].type is FieldType.DATE
    assert opportunity["originatingleadid:originating_lead_ref"].reference == "Lead"
    lead = fields_of(spec, "lead")
    assert lead["leadsourcecode:lead_source"].options[8] == "Web"
    match = {e.entity: e.match_keys for e in spec.entities}
    assert match == {
        "Account": ("account_number",),
        "Contact": ("email",),
        "Lead": ("email",),
        "Opportunity": (),
        "User": ("domain_name", "email"),
    }
    assert all(e.delete_to_udm and not e.delete_from_udm for e in spec.entities)
    entities = {e.name: e for e in udm_entities(spec, streams)}
    assert all(f.type is not None for e in entities.values() for f in e.fields.values())
    assert entities["Contact"].fields["email"].max_length == 100


def test_trimmed_org_leaves_out_missing_tables_and_columns() -> None:
    streams = small_streams()
    spec = default_mapping(streams)
    assert [e.table for e in spec.entities] == ["account", "contact", "systemuser"]
    assert spec.notes[0] == "standard tables not in the replicated schema (not mapped): lead, opportunity"
    assert any(n.startswith("account: standard columns not mapped") and "telephone1" in n for n in spec.notes)
    account = fields_of(spec, "account")
    assert "industrycode:industry" not in account
    # statecode is updatable but not creatable: still written back; read-only createdon is to_udm.
    assert account["statecode:state"].direction is Direction.BOTH
    assert validate_mapping(spec, streams) == []
    # Standard tables are exported in a fixed order.
    assert STANDARD_TABLES == ("account", "contact", "lead", "opportunity", "systemuser")


def test_read_only_and_type_mismatch_columns_are_adapted() -> None:
    streams = small_streams()
    contact = next(s for s in streams if s.name == "contact")
    # birthdate as a plain DateTime (how some metadata reports DateOnly columns) gets a date_only cast.
    columns = dict(contact.columns)
    columns["birthdate"] = replace(columns["birthdate"], type=ColumnType.DATETIME)
    columns["lastname"] = replace(columns["lastname"], creatable=False, updatable=False)
    columns["firstname"] = replace(columns["firstname"], type=ColumnType.INTEGER)
    changed = [replace(contact, columns=columns) if s.name == "contact" else s for s in streams]
    spec = default_mapping(changed)
    mapped = fields_of(spec, "contact")
    assert mapped["birthdate:birth_date"].casts[-1].value == "date_only"
    assert mapped["lastname:last_name"].direction is Direction.TO_UDM
    assert "firstname:first_name" not in mapped
    compiled = compile_mapping(spec, changed).for_table("contact")
    values = compiled.to_udm(
        SourceRecord(id="c", values={"birthdate": dt.datetime(1990, 1, 31, tzinfo=dt.UTC)})
    ).values
    assert values == {"birth_date": dt.date(1990, 1, 31)}


def test_default_yaml_round_trips_and_compiles() -> None:
    streams = catalog_streams()
    text = default_mapping_yaml(streams)
    assert text.startswith("# dynasync mapping")
    spec = loads_mapping(text, "mappings/dynamics.yaml")
    assert spec == default_mapping(streams)
    compiled = compile_mapping(spec, streams)
    account = compiled.for_table("account")
    values, refs, problems = account.to_udm(
        SourceRecord(
            id=ACC,
            values={
                "name": "Fabrikam",
                "accountnumber": " F-1 ",
                "revenue": Decimal("10.50"),
                "industrycode": 1,
                "statecode": 0,
                "statuscode": 1,
                "ownerid": LookupRef("systemuser", USR),
            },
        )
    )
    assert problems == []
    assert values == {
        "name": "Fabrikam",
        "account_number": "F-1",
        "revenue": Decimal("10.50"),
        "industry": "Accounting",
        "state": "Active",
        "status": "Active",
    }
    assert refs == {"owner_ref": LookupRef("systemuser", USR)}
    out, problems = account.from_udm(
        {"industry": "Accounting", "state": "Inactive", "status": "Inactive"}, {"owner_ref": USR}
    )
    assert problems == []
    assert out == {
        "industrycode": 1,
        "statecode": 1,
        "statuscode": 2,
        "ownerid": LookupRef("systemuser", USR),
    }


def test_users_are_only_read_so_no_org_gets_another_orgs_users() -> None:
    user = default_mapping(catalog_streams()).entity_for_table("systemuser")
    assert user is not None and user.fields
    assert {f.field: f.direction for f in user.fields if f.direction is not Direction.TO_UDM} == {}
