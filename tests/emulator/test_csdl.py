from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from dynasync.emulator.catalog import Catalog
from dynasync.emulator.csdl import render_csdl, service_document
from dynasync.emulator.standard_tables import standard_catalog

EDMX = "{http://docs.oasis-open.org/odata/ns/edmx}"
EDM = "{http://docs.oasis-open.org/odata/ns/edm}"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return standard_catalog()


def _schema(catalog: Catalog, *, annotations: bool = False) -> ET.Element:
    root = ET.fromstring(render_csdl(catalog, annotations=annotations))
    assert root.tag == f"{EDMX}Edmx" and root.get("Version") == "4.0"
    schema = root.find(f"{EDMX}DataServices/{EDM}Schema")
    assert schema is not None
    assert (schema.get("Namespace"), schema.get("Alias")) == ("Microsoft.Dynamics.CRM", "mscrm")
    return schema


def _type(schema: ET.Element, name: str) -> ET.Element:
    found = schema.find(f"{EDM}EntityType[@Name='{name}']")
    assert found is not None, name
    return found


def _props(entity_type: ET.Element) -> dict[str, str]:
    return {p.get("Name", ""): p.get("Type", "") for p in entity_type.findall(f"{EDM}Property")}


def _navs(entity_type: ET.Element) -> dict[str, ET.Element]:
    return {n.get("Name", ""): n for n in entity_type.findall(f"{EDM}NavigationProperty")}


def test_document_is_well_formed_and_declares_every_table(catalog: Catalog) -> None:
    schema = _schema(catalog)
    names = {t.get("Name") for t in schema.findall(f"{EDM}EntityType")}
    assert set(catalog.entities) | {"crmbaseentity", "principal"} == names
    assert _type(schema, "crmbaseentity").get("Abstract") == "true"
    account = _type(schema, "account")
    assert account.get("BaseType") == "mscrm.crmbaseentity"
    key = account.find(f"{EDM}Key/{EDM}PropertyRef")
    assert key is not None and key.get("Name") == "accountid"


def test_property_types(catalog: Catalog) -> None:
    schema = _schema(catalog)
    account, contact = _props(_type(schema, "account")), _props(_type(schema, "contact"))
    assert account["accountid"] == "Edm.Guid"
    assert account["name"] == "Edm.String"
    assert account["revenue"] == "Edm.Decimal"
    assert account["createdon"] == "Edm.DateTimeOffset"
    assert account["versionnumber"] == "Edm.Int64"
    assert account["statecode"] == "Edm.Int32"
    assert account["_primarycontactid_value"] == "Edm.Guid"
    assert "primarycontactid" not in account  # a lookup is only a navigation + its _x_value
    assert contact["birthdate"] == "Edm.Date"  # DateOnly behaviour
    assert "parentcustomeridname" not in contact  # helper attributes are no Web API properties
    # every lookup of every table has its _x_value property
    for entity in catalog.entities.values():
        props = _props(_type(schema, entity.logical_name))
        for attribute in entity.attributes.values():
            if attribute.is_lookup:
                assert props[f"_{attribute.logical_name}_value"] == "Edm.Guid"


def test_single_navigation_with_constraint_and_partner(catalog: Catalog) -> None:
    schema = _schema(catalog)
    navs = _navs(_type(schema, "account"))
    primary = navs["primarycontactid"]
    assert primary.get("Type") == "mscrm.contact"
    assert primary.get("Partner") == "account_primary_contact"
    constraint = primary.find(f"{EDM}ReferentialConstraint")
    assert constraint is not None
    assert (constraint.get("Property"), constraint.get("ReferencedProperty")) == (
        "_primarycontactid_value",
        "contactid",
    )
    contact_navs = _navs(_type(schema, "contact"))
    assert contact_navs["parentcustomerid_account"].get("Type") == "mscrm.account"
    assert contact_navs["parentcustomerid_contact"].get("Type") == "mscrm.contact"
    assert navs["ownerid"].get("Type") == "mscrm.principal"


def test_collection_navigations_partner_the_single_ones(catalog: Catalog) -> None:
    schema = _schema(catalog)
    account_navs = _navs(_type(schema, "account"))
    contacts = account_navs["contact_customer_accounts"]
    assert contacts.get("Type") == "Collection(mscrm.contact)"
    assert contacts.get("Partner") == "parentcustomerid_account"
    # partners point at each other
    back = _navs(_type(schema, "contact"))["parentcustomerid_account"]
    assert back.get("Partner") == "contact_customer_accounts"


def test_principal_base_type(catalog: Catalog) -> None:
    schema = _schema(catalog)
    for name in ("systemuser", "team"):
        entity_type = _type(schema, name)
        assert entity_type.get("BaseType") == "mscrm.principal"
        assert entity_type.find(f"{EDM}Key") is None
    principal = _type(schema, "principal")
    key = principal.find(f"{EDM}Key/{EDM}PropertyRef")
    assert key is not None and key.get("Name") == "ownerid"


def test_container_sets_bindings_functions_and_actions(catalog: Catalog) -> None:
    schema = _schema(catalog)
    container = schema.find(f"{EDM}EntityContainer")
    assert container is not None and container.get("Name") == "System"
    sets = {s.get("Name"): s for s in container.findall(f"{EDM}EntitySet")}
    assert set(sets) == {e.entity_set_name for e in catalog.entities.values()}
    assert sets["accounts"].get("EntityType") == "Microsoft.Dynamics.CRM.account"
    bindings = {
        b.get("Path"): b.get("Target") for b in sets["accounts"].findall(f"{EDM}NavigationPropertyBinding")
    }
    assert bindings["primarycontactid"] == "contacts"
    assert bindings["contact_customer_accounts"] == "contacts"
    imports = {f.get("Name") for f in container.findall(f"{EDM}FunctionImport")}
    assert imports == {"WhoAmI", "RetrieveVersion", "RetrieveTotalRecordCount"}
    who = schema.find(f"{EDM}Function[@Name='WhoAmI']/{EDM}ReturnType")
    assert who is not None and who.get("Type") == "mscrm.WhoAmIResponse"
    response = schema.find(f"{EDM}ComplexType[@Name='WhoAmIResponse']")
    assert response is not None
    assert {p.get("Name") for p in response.findall(f"{EDM}Property")} == {
        "BusinessUnitId",
        "UserId",
        "OrganizationId",
    }
    for action in ("CreateMultiple", "UpdateMultiple", "UpsertMultiple"):
        declared = schema.find(f"{EDM}Action[@Name='{action}']")
        assert declared is not None and declared.get("IsBound") == "true"
        first = declared.find(f"{EDM}Parameter")
        assert first is not None and first.get("Type") == "Collection(mscrm.crmbaseentity)"


def test_annotations_only_when_asked(catalog: Catalog) -> None:
    plain = render_csdl(catalog, annotations=False)
    assert "Org.OData.Capabilities.V1.ChangeTracking" not in plain
    assert "OData.Community.Keys.V1.AlternateKeys" not in plain
    schema = _schema(catalog, annotations=True)
    container = schema.find(f"{EDM}EntityContainer")
    assert container is not None
    for entity in catalog.entities.values():
        entity_set = container.find(f"{EDM}EntitySet[@Name='{entity.entity_set_name}']")
        assert entity_set is not None
        tracked = entity_set.find(f"{EDM}Annotation[@Term='Org.OData.Capabilities.V1.ChangeTracking']")
        assert (tracked is not None) == entity.change_tracking
        if tracked is not None:
            value = tracked.find(f"{EDM}Record/{EDM}PropertyValue")
            assert value is not None and (value.get("Property"), value.get("Bool")) == ("Supported", "true")
    keys = _type(schema, "account").find(f"{EDM}Annotation[@Term='OData.Community.Keys.V1.AlternateKeys']")
    assert keys is not None
    paths = [p.get("PropertyPath") for p in keys.iter(f"{EDM}PropertyValue") if p.get("Property") == "Name"]
    assert paths == ["accountnumber"]


def test_untracked_table_lacks_change_tracking_annotation() -> None:
    catalog = standard_catalog()
    catalog.entities["lead"].change_tracking = False
    schema = _schema(catalog, annotations=True)
    container = schema.find(f"{EDM}EntityContainer")
    assert container is not None
    leads = container.find(f"{EDM}EntitySet[@Name='leads']")
    assert leads is not None and leads.find(f"{EDM}Annotation") is None


def test_service_document(catalog: Catalog) -> None:
    document = service_document(catalog, "https://org.example/api/data/v9.2/")
    assert document["@odata.context"] == "https://org.example/api/data/v9.2/$metadata"
    value = document["value"]
    assert isinstance(value, list)
    assert {"name": "accounts", "kind": "EntitySet", "url": "accounts"} in value
    assert len(value) == len(catalog.entities)
