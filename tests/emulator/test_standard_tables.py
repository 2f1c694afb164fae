from __future__ import annotations

from dynasync.emulator.catalog import AttributeType
from dynasync.emulator.standard_tables import relationships_of, standard_catalog


def test_tables_sets_and_object_type_codes() -> None:
    catalog = standard_catalog()
    expected = {
        "account": ("accounts", 1),
        "contact": ("contacts", 2),
        "opportunity": ("opportunities", 3),
        "lead": ("leads", 4),
        "systemuser": ("systemusers", 8),
        "team": ("teams", 9),
        "businessunit": ("businessunits", 10),
        "transactioncurrency": ("transactioncurrencies", 9105),
        "organization": ("organizations", 1019),
    }
    for name, (set_name, otc) in expected.items():
        entity = catalog.entity(name)
        assert entity is not None, name
        assert entity.entity_set_name == set_name
        assert entity.object_type_code == otc
        assert entity.attributes[entity.primary_id].is_primary_id
        if entity.primary_name:
            assert entity.attributes[entity.primary_name].is_primary_name
    assert catalog.by_set_name("opportunities") is catalog.entity("opportunity")


def test_account_columns_cover_every_type() -> None:
    account = standard_catalog().entities["account"]
    props = [a for a in account.attributes.values() if a.is_odata_property]
    assert len(props) >= 30
    types = {a.type for a in standard_catalog().entities["account"].attributes.values()}
    for t in (
        AttributeType.STRING,
        AttributeType.MEMO,
        AttributeType.INTEGER,
        AttributeType.BIGINT,
        AttributeType.DECIMAL,
        AttributeType.DOUBLE,
        AttributeType.MONEY,
        AttributeType.BOOLEAN,
        AttributeType.DATETIME,
        AttributeType.PICKLIST,
        AttributeType.STATE,
        AttributeType.STATUS,
        AttributeType.LOOKUP,
        AttributeType.OWNER,
        AttributeType.UNIQUEIDENTIFIER,
        AttributeType.VIRTUAL,
    ):
        assert t in types, t
    assert account.attributes["new_regions"].is_multiselect
    assert account.attributes["name"].max_length == 160
    assert account.attributes["address1_latitude"].type == AttributeType.DOUBLE
    assert account.attributes["description"].type == AttributeType.MEMO


def test_money_has_read_only_base_twin() -> None:
    account = standard_catalog().entities["account"]
    for money in ("revenue", "creditlimit"):
        base = account.attributes[f"{money}_base"]
        assert base.type == AttributeType.MONEY
        assert base.attribute_of == money
        assert not base.valid_for_create and not base.valid_for_update
    assert not account.attributes["exchangerate"].valid_for_create
    assert account.attributes["exchangerate"].type == AttributeType.DECIMAL


def test_lookups_navigation_and_helpers() -> None:
    catalog = standard_catalog()
    contact = catalog.entities["contact"]
    parent = contact.attributes["parentcustomerid"]
    assert parent.type == AttributeType.CUSTOMER
    assert parent.targets == ("account", "contact")
    assert parent.navigation == {"parentcustomerid_account": "account", "parentcustomerid_contact": "contact"}
    assert parent.odata_name == "_parentcustomerid_value"
    helper = contact.attributes["parentcustomeridname"]
    assert helper.attribute_of == "parentcustomerid" and not helper.is_odata_property
    assert contact.attributes["parentcustomeridtype"].type == AttributeType.ENTITYNAME
    owner = catalog.entities["account"].attributes["ownerid"]
    assert owner.type == AttributeType.OWNER and owner.targets == ("systemuser", "team")
    assert contact.attributes["birthdate"].format == "DateOnly"
    assert not contact.attributes["fullname"].valid_for_create
    opportunity = catalog.entities["opportunity"]
    assert set(opportunity.attributes["customerid"].navigation) == {
        "customerid_account",
        "customerid_contact",
    }
    assert opportunity.attributes["closeprobability"].max_value == 100
    user = catalog.entities["systemuser"]
    assert user.attributes["applicationid"].type == AttributeType.UNIQUEIDENTIFIER
    assert user.attributes["businessunitid"].navigation == {"businessunitid": "businessunit"}
    assert catalog.entities["organization"].attributes["expirechangetrackingindays"].max_value == 365


def test_relationship_names_follow_the_service() -> None:
    catalog = standard_catalog()
    by_name = {r.schema_name: r for r in catalog.relationships}
    r = by_name["contact_customer_accounts"]
    assert (r.referenced_entity, r.referencing_entity, r.referencing_attribute) == (
        "account",
        "contact",
        "parentcustomerid",
    )
    assert r.referencing_navigation == "parentcustomerid_account"
    assert r.referenced_navigation == "contact_customer_accounts"
    assert r.cascade_delete == "Cascade"
    assert by_name["account_primary_contact"].referencing_navigation == "primarycontactid"
    assert by_name["account_primary_contact"].cascade_delete == "RemoveLink"
    assert by_name["opportunity_customer_contacts"].referencing_navigation == "customerid_contact"
    assert by_name["user_accounts"].referencing_attribute == "owninguser"
    assert by_name["lk_accountbase_createdby"].referenced_entity == "systemuser"
    for relationship in catalog.relationships:
        referencing = catalog.entities[relationship.referencing_entity]
        lookup = referencing.attributes[relationship.referencing_attribute]
        assert lookup.navigation[relationship.referencing_navigation] == relationship.referenced_entity
    assert len(by_name) == len(catalog.relationships)  # schema names are unique
    assert relationships_of(catalog, catalog.entities["account"])[0].referencing_entity == "account"


def test_keys_and_state_status_consistency() -> None:
    catalog = standard_catalog()
    assert [k.attributes for k in catalog.entities["account"].keys] == [("accountnumber",)]
    assert [k.attributes for k in catalog.entities["contact"].keys] == [("firstname", "emailaddress1")]
    for entity in catalog.entities.values():
        state = entity.attributes.get("statecode")
        if state is None:
            continue
        assert not state.valid_for_create
        statuses = entity.attributes["statuscode"].options
        for option in state.options:
            assert any(s.value == option.default_status and s.state == option.value for s in statuses)
    lead_states = {
        o.value: o.default_status for o in catalog.entities["lead"].attributes["statecode"].options
    }
    assert lead_states == {0: 1, 1: 3, 2: 4}


def test_fresh_objects_with_stable_ids() -> None:
    a, b = standard_catalog(), standard_catalog()
    assert a is not b and a.entities["account"] is not b.entities["account"]
    assert str(a.entities["account"].metadata_id) == "70816501-edb9-4740-a16c-6a5efbc05d84"
    assert (
        a.entities["contact"].attributes["fullname"].metadata_id
        == b.entities["contact"].attributes["fullname"].metadata_id
    )
    assert a.relationships[0].metadata_id == b.relationships[0].metadata_id
    a.entities["account"].attributes["name"].max_length = 1
    assert b.entities["account"].attributes["name"].max_length == 160
