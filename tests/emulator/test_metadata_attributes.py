from __future__ import annotations

from typing import Any

import pytest

from dynasync.emulator.catalog import AttributeDef, AttributeType, Catalog, EntityDef, OptionDef
from dynasync.emulator.errors import EmulatorError
from dynasync.emulator.metadata import handle_metadata
from dynasync.emulator.metadata_attributes import (
    COMMON_PROPERTIES,
    TYPE_PROPERTIES,
    attribute_class,
    attribute_item,
)
from dynasync.emulator.standard_tables import standard_catalog

BASE = "https://org.example/api/data/v9.2"  # no trailing slash: contexts must still be well formed
CTX = BASE + "/$metadata#"
ACCOUNT = "EntityDefinitions(LogicalName='account')"
CONTACT = "EntityDefinitions(LogicalName='contact')"
NS = "Microsoft.Dynamics.CRM."


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return standard_catalog()


def get(catalog: Catalog, path: str, **query: str) -> dict[str, Any]:
    return handle_metadata(catalog, path, {"$" + k: v for k, v in query.items()}, BASE)


def error(catalog: Catalog, path: str, **query: str) -> EmulatorError:
    with pytest.raises(EmulatorError) as caught:
        get(catalog, path, **query)
    return caught.value


def test_every_attribute_item_has_exactly_its_class_properties(catalog: Catalog) -> None:
    seen = set()
    for entity in catalog.entities.values():
        for attribute in entity.attributes.values():
            item = attribute_item(entity, attribute)
            class_name = attribute_class(attribute)
            seen.add(class_name)
            assert item["@odata.type"] == f"#{NS}{class_name}"
            assert list(item)[1:] == [*COMMON_PROPERTIES, *TYPE_PROPERTIES[class_name]]
    assert {"StringAttributeMetadata", "LookupAttributeMetadata", "StateAttributeMetadata"} <= seen


def test_attribute_collection_shape(catalog: Catalog) -> None:
    body = get(catalog, f"{ACCOUNT}/Attributes", select="LogicalName,AttributeType,AttributeTypeName")
    assert (
        body["@odata.context"]
        == CTX + "EntityDefinitions('account')/Attributes(LogicalName,AttributeType,AttributeTypeName)"
    )
    by_name = {a["LogicalName"]: a for a in body["value"]}
    assert by_name["name"] == {
        "@odata.type": "#Microsoft.Dynamics.CRM.StringAttributeMetadata",
        "LogicalName": "name",
        "AttributeType": "String",
        "AttributeTypeName": {"Value": "StringType"},
        "MetadataId": by_name["name"]["MetadataId"],
    }
    assert len(body["value"]) == len(catalog.entities["account"].attributes)


def test_single_attribute_full_item(catalog: Catalog) -> None:
    body = get(catalog, f"{ACCOUNT}/Attributes(LogicalName='name')")
    assert body["@odata.context"] == CTX + "EntityDefinitions('account')/Attributes/$entity"
    assert body["@odata.type"] == "#Microsoft.Dynamics.CRM.StringAttributeMetadata"
    assert body["EntityLogicalName"] == "account"
    assert body["IsPrimaryName"] is True and body["IsPrimaryId"] is False
    assert body["MaxLength"] == 160
    assert body["RequiredLevel"]["ManagedPropertyLogicalName"] == "canmodifyrequirementlevelsettings"
    assert body["DisplayName"]["UserLocalizedLabel"]["LanguageCode"] == 1033
    by_id = get(catalog, f"{ACCOUNT}/Attributes({body['MetadataId']})", select="LogicalName")
    assert by_id["LogicalName"] == "name"


def test_attribute_property_value(catalog: Catalog) -> None:
    body = get(catalog, f"{ACCOUNT}/Attributes(LogicalName='name')/MetadataId")
    assert body["@odata.context"] == CTX + "EntityDefinitions('account')/Attributes('name')/MetadataId"
    assert body["value"] == str(catalog.entities["account"].attributes["name"].metadata_id)


def test_unknown_attribute_is_404(catalog: Catalog) -> None:
    err = error(catalog, f"{ACCOUNT}/Attributes(LogicalName='nope')")
    assert err.status == 404 and "nope" in err.message


def test_helper_attributes_are_listed_but_not_odata_properties(catalog: Catalog) -> None:
    body = get(
        catalog,
        f"{CONTACT}/Attributes",
        select="LogicalName,AttributeOf,IsValidODataAttribute",
        filter="AttributeOf eq 'parentcustomerid'",
    )
    helpers = {a["LogicalName"]: a for a in body["value"]}
    assert set(helpers) == {"parentcustomeridname", "parentcustomeridtype"}
    assert all(a["IsValidODataAttribute"] is False for a in helpers.values())
    top_level = get(catalog, f"{CONTACT}/Attributes", select="LogicalName", filter="AttributeOf eq null")[
        "value"
    ]
    assert "parentcustomeridname" not in {a["LogicalName"] for a in top_level}


def test_filter_on_required_level_enum(catalog: Catalog) -> None:
    body = get(
        catalog,
        f"{ACCOUNT}/Attributes",
        select="LogicalName",
        filter="RequiredLevel/Value eq Microsoft.Dynamics.CRM.AttributeRequiredLevel'SystemRequired'",
    )
    names = {a["LogicalName"] for a in body["value"]}
    expected = {
        n
        for n, a in catalog.entities["account"].attributes.items()
        if a.required_level.value == "SystemRequired"
    }
    assert names == expected and "accountid" in names


def test_lookup_cast_lists_customer_targets(catalog: Catalog) -> None:
    body = get(catalog, f"{CONTACT}/Attributes/{NS}LookupAttributeMetadata", select="LogicalName,Targets")
    assert (
        body["@odata.context"]
        == CTX + f"EntityDefinitions('contact')/Attributes/{NS}LookupAttributeMetadata(LogicalName,Targets)"
    )
    targets = {a["LogicalName"]: a["Targets"] for a in body["value"]}
    assert sorted(targets["parentcustomerid"]) == ["account", "contact"]
    assert sorted(targets["ownerid"]) == ["systemuser", "team"]
    assert all(a["@odata.type"] == f"#{NS}LookupAttributeMetadata" for a in body["value"])


def test_cast_excludes_other_types(catalog: Catalog) -> None:
    body = get(catalog, f"{ACCOUNT}/Attributes/{NS}MoneyAttributeMetadata", select="LogicalName,Precision")
    names = {a["LogicalName"] for a in body["value"]}
    assert names == {
        n for n, a in catalog.entities["account"].attributes.items() if a.type is AttributeType.MONEY
    }
    assert {"revenue", "revenue_base"} <= names
    assert all("Precision" in a for a in body["value"])


def test_type_specific_property_needs_a_cast(catalog: Catalog) -> None:
    err = error(catalog, f"{ACCOUNT}/Attributes", select="LogicalName,MaxLength")
    assert err.status == 400
    assert (
        err.message
        == "Could not find a property named 'MaxLength' on type 'Microsoft.Dynamics.CRM.AttributeMetadata'."
    )
    assert error(catalog, f"{ACCOUNT}/Attributes", expand="OptionSet").status == 400


def test_string_and_datetime_casts(catalog: Catalog) -> None:
    name = get(
        catalog,
        f"{ACCOUNT}/Attributes(LogicalName='name')/{NS}StringAttributeMetadata",
        select="MaxLength,Format",
    )
    assert (
        name["@odata.context"]
        == CTX
        + f"EntityDefinitions('account')/Attributes/{NS}StringAttributeMetadata(MaxLength,Format)/$entity"
    )
    assert (name["MaxLength"], name["Format"]) == (160, "Text")
    dates = get(
        catalog,
        f"{CONTACT}/Attributes/{NS}DateTimeAttributeMetadata",
        select="LogicalName,Format,DateTimeBehavior",
    )
    by_name = {a["LogicalName"]: a for a in dates["value"]}
    assert by_name["birthdate"]["Format"] == "DateOnly"
    assert by_name["birthdate"]["DateTimeBehavior"] == {"Value": "DateOnly"}
    assert by_name["createdon"]["DateTimeBehavior"] == {"Value": "UserLocal"}


def test_wrong_cast_on_single_and_abstract_cast(catalog: Catalog) -> None:
    assert (
        error(catalog, f"{ACCOUNT}/Attributes(LogicalName='name')/{NS}PicklistAttributeMetadata").status
        == 404
    )
    err = error(catalog, f"{ACCOUNT}/Attributes/{NS}EnumAttributeMetadata")
    assert err.status == 400 and "EnumAttributeMetadata" in err.message
    assert error(catalog, f"{ACCOUNT}/Attributes/{NS}NoSuchAttributeMetadata").status == 404


def test_state_option_set_expansion(catalog: Catalog) -> None:
    body = get(
        catalog,
        f"{ACCOUNT}/Attributes(LogicalName='statecode')/{NS}StateAttributeMetadata",
        select="LogicalName",
        expand="OptionSet",
    )
    assert (
        body["@odata.context"]
        == CTX
        + f"EntityDefinitions('account')/Attributes/{NS}StateAttributeMetadata(LogicalName,OptionSet)/$entity"
    )
    assert body["OptionSet@odata.context"] == (
        CTX
        + f"EntityDefinitions('account')/Attributes({body['MetadataId']})/{NS}StateAttributeMetadata/OptionSet/$entity"
    )
    option_set = body["OptionSet"]
    assert option_set["OptionSetType"] == "State" and option_set["Name"] == "account_statecode"
    options = {o["Value"]: o for o in option_set["Options"]}
    assert options[0]["Label"]["UserLocalizedLabel"]["Label"] == "Active"
    assert options[0]["DefaultStatus"] == 1 and options[0]["InvariantName"] == "Active"
    assert options[1]["DefaultStatus"] == 2
    assert options[0]["@odata.type"] == f"#{NS}StateOptionMetadata"


def test_status_options_carry_state(catalog: Catalog) -> None:
    body = get(
        catalog,
        f"{ACCOUNT}/Attributes(LogicalName='statuscode')/{NS}StatusAttributeMetadata",
        select="LogicalName",
        expand="OptionSet($select=Options)",
    )
    assert set(body["OptionSet"]) == {"Options", "MetadataId"}
    assert {o["Value"]: o["State"] for o in body["OptionSet"]["Options"]} == {1: 0, 2: 1}


def test_picklist_collection_with_option_sets(catalog: Catalog) -> None:
    body = get(
        catalog,
        f"{ACCOUNT}/Attributes/{NS}PicklistAttributeMetadata",
        select="LogicalName",
        expand="OptionSet($select=Options),GlobalOptionSet",
    )
    assert body["@odata.context"].endswith(
        f"/Attributes/{NS}PicklistAttributeMetadata(LogicalName,OptionSet(Options),GlobalOptionSet)"
    )
    by_name = {a["LogicalName"]: a for a in body["value"]}
    assert "statecode" not in by_name  # State is its own type, excluded by the Picklist cast
    category = by_name["accountcategorycode"]
    assert [o["Value"] for o in category["OptionSet"]["Options"]] == [1, 2]
    assert category["GlobalOptionSet"] is None


def test_multiselect_cast(catalog: Catalog) -> None:
    body = get(
        catalog,
        f"{ACCOUNT}/Attributes/{NS}MultiSelectPicklistAttributeMetadata",
        select="LogicalName,AttributeType,AttributeTypeName",
        expand="OptionSet",
    )
    regions = {a["LogicalName"]: a for a in body["value"]}["new_regions"]
    assert regions["AttributeType"] == "Virtual"
    assert regions["AttributeTypeName"] == {"Value": "MultiSelectPicklistType"}
    assert regions["OptionSet"]["Options"]


def test_boolean_option_set(catalog: Catalog) -> None:
    body = get(
        catalog,
        f"{CONTACT}/Attributes/{NS}BooleanAttributeMetadata",
        select="LogicalName,DefaultValue",
        expand="OptionSet",
    )
    assert body["value"]
    option_set = body["value"][0]["OptionSet"]
    assert option_set["OptionSetType"] == "Boolean"
    assert option_set["TrueOption"]["Value"] == 1 and option_set["FalseOption"]["Value"] == 0


def _global_catalog() -> Catalog:
    catalog = Catalog()
    entity = EntityDef("new_thing", "new_things", "new_thingid", None, 10001, is_custom=True)
    entity.add(AttributeDef("new_thingid", AttributeType.UNIQUEIDENTIFIER, is_primary_id=True))
    entity.add(
        AttributeDef(
            "new_colour",
            AttributeType.PICKLIST,
            options=(OptionDef(100000000, "Red"), OptionDef(100000001, "Blue")),
            option_set_name="new_colours",
            is_global_option_set=True,
            is_custom=True,
        )
    )
    catalog.add_entity(entity)
    return catalog


def test_global_option_sets() -> None:
    catalog = _global_catalog()
    single = get(
        catalog,
        "EntityDefinitions(LogicalName='new_thing')/Attributes(LogicalName='new_colour')/"
        f"{NS}PicklistAttributeMetadata",
        expand="GlobalOptionSet($select=Name,Options)",
    )
    assert single["GlobalOptionSet"]["Name"] == "new_colours"
    listing = get(catalog, "GlobalOptionSetDefinitions", select="Name")
    assert listing == {
        "@odata.context": CTX + "GlobalOptionSetDefinitions(Name)",
        "value": [
            {
                "@odata.type": f"#{NS}OptionSetMetadata",
                "Name": "new_colours",
                "MetadataId": single["GlobalOptionSet"]["MetadataId"],
            }
        ],
    }
    by_name = get(catalog, "GlobalOptionSetDefinitions(Name='new_colours')")
    assert by_name["@odata.context"] == CTX + "GlobalOptionSetDefinitions/$entity"
    assert [o["Value"] for o in by_name["Options"]] == [100000000, 100000001]
    assert error(catalog, "GlobalOptionSetDefinitions(Name='nope')").status == 404
    assert error(catalog, "GlobalOptionSetDefinitions", filter="Name eq 'x'").status == 400


def test_keys(catalog: Catalog) -> None:
    body = get(catalog, f"{ACCOUNT}/Keys")
    assert body["@odata.context"] == CTX + "EntityDefinitions('account')/Keys"
    assert body["value"][0]["KeyAttributes"] == ["accountnumber"]
    assert body["value"][0]["EntityKeyIndexStatus"] == "Active"
    single = get(catalog, f"{ACCOUNT}/Keys(LogicalName='accountnumber')", select="KeyAttributes")
    assert single["@odata.context"] == CTX + "EntityDefinitions('account')/Keys(KeyAttributes)/$entity"


def test_entity_relationship_navigations(catalog: Catalog) -> None:
    body = get(
        catalog,
        f"{ACCOUNT}/OneToManyRelationships",
        select="SchemaName,ReferencingEntity,ReferencingAttribute",
    )
    rows = {r["SchemaName"]: r for r in body["value"]}
    assert rows["contact_customer_accounts"]["ReferencingAttribute"] == "parentcustomerid"
    many = get(catalog, f"{CONTACT}/ManyToOneRelationships", filter="ReferencedEntity eq 'account'")
    row = {r["SchemaName"]: r for r in many["value"]}["contact_customer_accounts"]
    assert row["ReferencingEntityNavigationPropertyName"] == "parentcustomerid_account"
    assert row["ReferencedEntityNavigationPropertyName"] == "contact_customer_accounts"
    assert row["CascadeConfiguration"]["Delete"] == "Cascade"
    assert get(catalog, f"{ACCOUNT}/ManyToManyRelationships")["value"] == []


def test_relationship_definitions(catalog: Catalog) -> None:
    single = get(catalog, "RelationshipDefinitions(SchemaName='account_primary_contact')")
    assert single["@odata.context"] == CTX + "RelationshipDefinitions/$entity"
    assert single["@odata.type"] == f"#{NS}OneToManyRelationshipMetadata"
    assert single["ReferencingAttribute"] == "primarycontactid"
    cast = get(
        catalog,
        f"RelationshipDefinitions/{NS}OneToManyRelationshipMetadata",
        select="SchemaName,ReferencingEntity",
        filter="ReferencedEntity eq 'account'",
    )
    assert (
        cast["@odata.context"]
        == CTX + f"RelationshipDefinitions/{NS}OneToManyRelationshipMetadata(SchemaName,ReferencingEntity)"
    )
    expected = {r.schema_name for r in catalog.relationships if r.referenced_entity == "account"}
    assert {r["SchemaName"] for r in cast["value"]} == expected
    # Without the cast ReferencedEntity is not a property of RelationshipMetadataBase.
    assert error(catalog, "RelationshipDefinitions", filter="ReferencedEntity eq 'account'").status == 400
    assert error(catalog, "RelationshipDefinitions(SchemaName='nope')").status == 404
