from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import pytest

from dynasync.emulator.catalog import Catalog
from dynasync.emulator.errors import EmulatorError
from dynasync.emulator.metadata import ENTITY_NOT_FOUND, handle_metadata
from dynasync.emulator.metadata_entities import ENTITY_PROPERTIES, entity_item
from dynasync.emulator.standard_tables import standard_catalog

BASE = "https://org.example/api/data/v9.2/"
CTX = BASE + "$metadata#"
ACCOUNT = "EntityDefinitions(LogicalName='account')"
CONTACT = "EntityDefinitions(LogicalName='contact')"
CAST = "Microsoft.Dynamics.CRM."


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return standard_catalog()


def get(catalog: Catalog, path: str, **query: str) -> dict[str, Any]:
    options: Mapping[str, str] = {(k if k.startswith("@") else "$" + k): v for k, v in query.items()}
    return handle_metadata(catalog, path, options, BASE)


def error(catalog: Catalog, path: str, **query: str) -> EmulatorError:
    with pytest.raises(EmulatorError) as caught:
        get(catalog, path, **query)
    return caught.value


# --- EntityDefinitions -----------------------------------------------------------------------------------


def test_entity_list_filter_on_logical_name_with_select(catalog: Catalog) -> None:
    body = get(
        catalog, "EntityDefinitions", select="LogicalName,EntitySetName", filter="LogicalName eq 'account'"
    )
    assert body == {
        "@odata.context": CTX + "EntityDefinitions(LogicalName,EntitySetName)",
        "value": [
            {
                "LogicalName": "account",
                "EntitySetName": "accounts",
                "MetadataId": "70816501-edb9-4740-a16c-6a5efbc05d84",
            }
        ],
    }


def test_entity_list_unfiltered_lists_every_table_with_all_properties(catalog: Catalog) -> None:
    body = get(catalog, "EntityDefinitions")
    assert body["@odata.context"] == CTX + "EntityDefinitions"
    assert [e["LogicalName"] for e in body["value"]] == list(catalog.entities)
    assert "@odata.nextLink" not in body
    for name in (
        "PrimaryIdAttribute",
        "ObjectTypeCode",
        "TableType",
        "IsAuditEnabled",
        "CollectionSchemaName",
    ):
        assert name in body["value"][0]


def test_entity_item_has_service_property_values(catalog: Catalog) -> None:
    account = entity_item(catalog.entities["account"])
    assert account["SchemaName"] == "Account"
    assert account["EntitySetName"] == "accounts" == account["LogicalCollectionName"]
    assert account["CollectionSchemaName"] == "Accounts"
    assert account["PrimaryIdAttribute"] == "accountid"
    assert account["PrimaryNameAttribute"] == "name"
    assert account["ObjectTypeCode"] == 1
    assert account["OwnershipType"] == "UserOwned"
    assert account["IsCustomEntity"] is False and account["IsIntersect"] is False
    assert account["CanChangeTrackingBeEnabled"] == {
        "Value": True,
        "CanBeChanged": True,
        "ManagedPropertyLogicalName": "canchangetrackingbeenabled",
    }
    display = account["DisplayName"]
    assert isinstance(display, dict)
    assert display["LocalizedLabels"][0]["Label"] == "Account"
    assert display["LocalizedLabels"][0]["LanguageCode"] == 1033
    assert display["UserLocalizedLabel"]["Label"] == "Account"
    assert account["Description"] == {"LocalizedLabels": [], "UserLocalizedLabel": None}
    assert entity_item(catalog.entities["opportunity"])["CollectionSchemaName"] == "Opportunities"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (
            "ChangeTrackingEnabled eq true",
            {e for e, d in standard_catalog().entities.items() if d.change_tracking},
        ),
        ("IsCustomEntity eq true", set()),
        ("OwnershipType eq Microsoft.Dynamics.CRM.OwnershipTypes'UserOwned'", None),
        ("CanChangeTrackingBeEnabled/Value eq true", None),
        ("LogicalName eq 'account' or LogicalName eq 'contact'", {"account", "contact"}),
        ("not (LogicalName ne 'lead')", {"lead"}),
        ("ObjectTypeCode eq 2 and IsActivity eq false", {"contact"}),
        ("ObjectTypeCode lt 3", {"account", "contact"}),
        ("LogicalName eq 'ACCOUNT'", {"account"}),
    ],
)
def test_entity_filters(catalog: Catalog, expression: str, expected: set[str] | None) -> None:
    names = {
        e["LogicalName"]
        for e in get(catalog, "EntityDefinitions", select="LogicalName", filter=expression)["value"]
    }
    if expected is None:  # computed from the catalog for enum / managed-property filters
        if "OwnershipType" in expression:
            expected = {n for n, e in catalog.entities.items() if e.ownership == "UserOwned"}
        else:
            expected = {n for n, e in catalog.entities.items() if e.can_change_tracking_be_enabled}
        assert expected  # the filter must select something real
        assert expected != set(catalog.entities) or "CanChange" in expression
    assert names == expected


def test_entity_filter_with_parameter_alias(catalog: Catalog) -> None:
    body = get(
        catalog,
        "EntityDefinitions",
        select="LogicalName",
        filter="LogicalName eq @p1",
        **{"@p1": "'contact'"},
    )
    assert [e["LogicalName"] for e in body["value"]] == ["contact"]


def test_entity_by_logical_name_and_by_metadata_id(catalog: Catalog) -> None:
    body = get(catalog, ACCOUNT, select="ObjectTypeCode")
    assert body == {
        "@odata.context": CTX + "EntityDefinitions(ObjectTypeCode)/$entity",
        "ObjectTypeCode": 1,
        "MetadataId": "70816501-edb9-4740-a16c-6a5efbc05d84",
    }
    by_id = get(catalog, "EntityDefinitions(70816501-edb9-4740-a16c-6a5efbc05d84)")
    assert by_id["@odata.context"] == CTX + "EntityDefinitions/$entity"
    assert by_id["LogicalName"] == "account"
    assert set(ENTITY_PROPERTIES) <= set(by_id)


def test_entity_key_from_alias(catalog: Catalog) -> None:
    body = get(catalog, "EntityDefinitions(LogicalName=@p1)", select="LogicalName", **{"@p1": "'lead'"})
    assert body["LogicalName"] == "lead"


def test_unknown_entity_is_404(catalog: Catalog) -> None:
    err = error(catalog, "EntityDefinitions(LogicalName='foo')")
    assert (err.status, err.code, err.message) == (404, "0x80060888", ENTITY_NOT_FOUND.format(name="foo"))
    assert err.message == "Could not find entity with name 'foo'."
    assert error(catalog, f"EntityDefinitions({uuid.uuid4()})").status == 404


@pytest.mark.parametrize("option", ["top", "orderby", "skip", "count", "apply", "skiptoken"])
def test_unsupported_query_options_are_refused_by_name(catalog: Catalog, option: str) -> None:
    err = error(catalog, "EntityDefinitions", **{option: "1"})
    assert err.status == 400
    assert f"'${option}'" in err.message


def test_unknown_select_and_filter_property_are_400(catalog: Catalog) -> None:
    err = error(catalog, "EntityDefinitions", select="LogicalName,Bogus")
    assert err.status == 400
    assert (
        err.message
        == "Could not find a property named 'Bogus' on type 'Microsoft.Dynamics.CRM.EntityMetadata'."
    )
    assert error(catalog, "EntityDefinitions", filter="Bogus eq 1").status == 400


def test_filter_on_label_is_refused(catalog: Catalog) -> None:
    err = error(catalog, "EntityDefinitions", filter="DisplayName/UserLocalizedLabel/Label eq 'Account'")
    assert err.status == 400
    assert "Label" in err.message


def test_filter_functions_are_not_implemented(catalog: Catalog) -> None:
    err = error(catalog, "EntityDefinitions", filter="contains(LogicalName,'acc')")
    assert err.status == 501
    assert "contains" in err.message


def test_single_entity_property_value(catalog: Catalog) -> None:
    body = get(catalog, f"{ACCOUNT}/EntitySetName")
    assert body == {"@odata.context": CTX + "EntityDefinitions('account')/EntitySetName", "value": "accounts"}


def test_unknown_segment_is_404(catalog: Catalog) -> None:
    assert error(catalog, f"{ACCOUNT}/Nope").status == 404
    assert error(catalog, "EntityDefinitions(Name='account')").status == 404


# --- $expand on entities -----------------------------------------------------------------------------------


def test_expand_attributes_with_nested_select_and_filter(catalog: Catalog) -> None:
    body = get(
        catalog,
        ACCOUNT,
        select="LogicalName",
        expand="Attributes($select=LogicalName;$filter=AttributeType eq Microsoft.Dynamics.CRM.AttributeTypeCode'Picklist')",
    )
    assert body["@odata.context"] == CTX + "EntityDefinitions(LogicalName,Attributes(LogicalName))/$entity"
    attributes = body["Attributes"]
    expected = [
        a.logical_name for a in catalog.entities["account"].attributes.values() if a.type.value == "Picklist"
    ]
    assert expected
    assert [a["LogicalName"] for a in attributes] == expected
    assert all(a["@odata.type"] == "#Microsoft.Dynamics.CRM.PicklistAttributeMetadata" for a in attributes)
    assert set(attributes[0]) == {"@odata.type", "LogicalName", "MetadataId"}


def test_expand_keys_and_relationships(catalog: Catalog) -> None:
    body = get(
        catalog, ACCOUNT, select="LogicalName", expand="Keys,OneToManyRelationships,ManyToOneRelationships"
    )
    assert body["Keys"][0]["KeyAttributes"] == ["accountnumber"]
    one_to_many = {r["SchemaName"] for r in body["OneToManyRelationships"]}
    assert {"contact_customer_accounts", "opportunity_customer_accounts"} <= one_to_many
    many_to_one = {r["SchemaName"] for r in body["ManyToOneRelationships"]}
    assert "account_primary_contact" in many_to_one


def test_expand_unknown_navigation_and_nested_top_are_400(catalog: Catalog) -> None:
    assert error(catalog, ACCOUNT, expand="Privileges").status == 400
    err = error(catalog, ACCOUNT, expand="Attributes($top=1)")
    assert err.status == 400 and "$top" in err.message


def test_expand_on_entity_list(catalog: Catalog) -> None:
    body = get(
        catalog, "EntityDefinitions", select="LogicalName", filter="LogicalName eq 'contact'", expand="Keys"
    )
    assert body["@odata.context"] == CTX + "EntityDefinitions(LogicalName,Keys)"
    assert body["value"][0]["Keys"][0]["KeyAttributes"] == ["firstname", "emailaddress1"]


def test_count_segment_is_not_implemented(catalog: Catalog) -> None:
    err = error(catalog, "EntityDefinitions/$count")
    assert err.status == 501 and "$count" in err.message
