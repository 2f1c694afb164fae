"""Web API writes over ASGI: create, upsert, conditional writes, delete, single properties, $ref, deep insert."""

from __future__ import annotations

import uuid

from conftest import API, ORG, Api


def _id_of(response_header: str) -> str:
    return response_header[response_header.index("(") + 1 : -1]


def _create(api: Api, entity_set: str = "accounts", **values: object) -> str:
    response = api.post(entity_set, json=values or {"name": "Contoso"})
    assert response.status_code == 204, response.text
    return _id_of(response.headers["OData-EntityId"])


def test_create_with_representation_returns_201_without_entity_id(api: Api) -> None:
    response = api.post(
        "accounts?$select=name,revenue",
        json={"name": "Rep", "revenue": 5000000},
        headers={"Prefer": "return=representation"},
    )
    assert response.status_code == 201
    assert "OData-EntityId" not in response.headers
    assert response.headers["Preference-Applied"] == "return=representation"
    body = response.json()
    assert body["@odata.context"] == f"{ORG}{API}$metadata#accounts(name,revenue)/$entity"
    assert body["name"] == "Rep" and body["revenue"] == 5000000
    assert response.headers["ETag"] == body["@odata.etag"]


def test_create_with_client_supplied_id_and_duplicate(api: Api) -> None:
    chosen = str(uuid.uuid4())
    assert _create(api, name="Mine", accountid=chosen) == chosen
    again = api.post("accounts", json={"name": "Again", "accountid": chosen})
    assert again.status_code in (400, 412)
    assert again.json()["error"]["code"] == "0x80040237"


def test_validation_errors_come_from_the_data_plane(api: Api) -> None:
    response = api.post("accounts", json={"nmae": "typo"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "0x80048d19"
    bad_json = api.post("accounts", content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 400


def test_patch_updates_and_upserts(api: Api) -> None:
    account_id = _create(api)
    updated = api.patch(f"accounts({account_id})", json={"name": "Renamed"})
    assert updated.status_code == 204
    assert _id_of(updated.headers["OData-EntityId"]) == account_id
    assert api.get(f"accounts({account_id})/name").json()["value"] == "Renamed"
    new_id = str(uuid.uuid4())
    created = api.patch(f"accounts({new_id})", json={"name": "Upserted"})
    assert created.status_code == 204
    assert api.get(f"accounts({new_id})").json()["name"] == "Upserted"
    rep = api.patch(
        f"accounts({account_id})?$select=name",
        json={"name": "Again"},
        headers={"Prefer": "return=representation"},
    )
    assert rep.status_code == 200 and rep.json()["name"] == "Again"
    rep_new = api.patch(
        f"accounts({uuid.uuid4()})", json={"name": "Fresh"}, headers={"Prefer": "return=representation"}
    )
    assert rep_new.status_code == 201 and "ETag" in rep_new.headers


def test_conditional_writes(api: Api) -> None:
    account_id = _create(api)
    missing = uuid.uuid4()
    no_create = api.patch(f"accounts({missing})", json={"name": "x"}, headers={"If-Match": "*"})
    assert no_create.status_code == 404
    assert no_create.json()["error"] == {
        "code": "0x80040217",
        "message": f"account With Id = {missing} Does Not Exist",
    }
    no_update = api.patch(f"accounts({account_id})", json={"name": "x"}, headers={"If-None-Match": "*"})
    assert no_update.status_code == 412
    assert no_update.json()["error"] == {
        "code": "0x80040237",
        "message": "A record with matching key values already exists.",
    }
    etag = api.get(f"accounts({account_id})").headers["ETag"]
    ok = api.patch(f"accounts({account_id})", json={"name": "v2"}, headers={"If-Match": etag})
    assert ok.status_code == 204
    stale = api.patch(f"accounts({account_id})", json={"name": "v3"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "0x80060882"
    assert api.delete(f"accounts({account_id})", headers={"If-Match": etag}).status_code == 412


def test_upsert_and_delete_by_alternate_key(api: Api) -> None:
    created = api.patch("accounts(accountnumber='AK-1')", json={"name": "By key"})
    assert created.status_code == 204
    account_id = _id_of(created.headers["OData-EntityId"])
    row = api.get(f"accounts({account_id})").json()
    assert row["accountnumber"] == "AK-1"
    again = api.patch("accounts(accountnumber='AK-1')", json={"name": "Updated by key"})
    assert _id_of(again.headers["OData-EntityId"]) == account_id
    assert api.delete("accounts(accountnumber='AK-1')").status_code == 204
    assert api.get(f"accounts({account_id})").status_code == 404
    assert api.delete(f"accounts({account_id})").status_code == 404


def test_single_property_put_and_delete(api: Api) -> None:
    account_id = _create(api, name="Prop", description="text")
    assert api.put(f"accounts({account_id})/name", json={"value": "New name"}).status_code == 204
    assert api.delete(f"accounts({account_id})/description").status_code == 204
    row = api.get(f"accounts({account_id})?$select=name,description").json()
    assert row["name"] == "New name" and row["description"] is None


def test_lookup_bind_null_and_ref(api: Api) -> None:
    contact_id = _create(api, "contacts", firstname="Ref", lastname="Target")
    account_id = _create(api, name="Refs")
    assert (
        api.put(
            f"accounts({account_id})/primarycontactid/$ref",
            json={"@odata.id": f"{ORG}{API}contacts({contact_id})"},
        ).status_code
        == 204
    )
    assert api.get(f"accounts({account_id})").json()["_primarycontactid_value"] == contact_id
    assert api.patch(f"accounts({account_id})", json={"primarycontactid@odata.bind": None}).status_code == 204
    assert api.get(f"accounts({account_id})").json()["_primarycontactid_value"] is None
    api.patch(f"accounts({account_id})", json={"primarycontactid@odata.bind": f"/contacts({contact_id})"})
    assert api.delete(f"accounts({account_id})/primarycontactid/$ref").status_code == 204
    assert api.get(f"accounts({account_id})").json()["_primarycontactid_value"] is None


def test_collection_ref_associate_and_disassociate(api: Api) -> None:
    account_id = _create(api, name="Parent")
    contact_id = _create(api, "contacts", firstname="Kid", lastname="One")
    added = api.post(
        f"accounts({account_id})/contact_customer_accounts/$ref",
        json={"@odata.id": f"contacts({contact_id})"},
    )
    assert added.status_code == 204, added.text
    contact = api.get(f"contacts({contact_id})", headers={"Prefer": 'odata.include-annotations="*"'}).json()
    assert contact["_parentcustomerid_value"] == account_id
    assert contact["_parentcustomerid_value@Microsoft.Dynamics.CRM.associatednavigationproperty"] == (
        "parentcustomerid_account"
    )
    related = api.get(f"accounts({account_id})/contact_customer_accounts?$select=fullname").json()
    assert [r["contactid"] for r in related["value"]] == [contact_id]
    removed = api.delete(f"accounts({account_id})/contact_customer_accounts({contact_id})/$ref")
    assert removed.status_code == 204
    assert api.get(f"contacts({contact_id})").json()["_parentcustomerid_value"] is None


def test_deep_insert_creates_related_rows(api: Api) -> None:
    response = api.post(
        "accounts",
        json={
            "name": "Deep",
            "primarycontactid": {"firstname": "John", "lastname": "Smith"},
            "contact_customer_accounts": [
                {"firstname": "Kid", "lastname": "A"},
                {"firstname": "Kid", "lastname": "B"},
            ],
        },
    )
    assert response.status_code == 204, response.text
    account_id = _id_of(response.headers["OData-EntityId"])
    body = api.get(
        f"accounts({account_id})?$expand=primarycontactid($select=fullname),contact_customer_accounts($select=lastname)"
    ).json()
    assert body["primarycontactid"]["fullname"] == "John Smith"
    assert sorted(c["lastname"] for c in body["contact_customer_accounts"]) == ["A", "B"]
    assert body["contact_customer_accounts@odata.nextLink"].endswith(
        f"accounts({account_id})/contact_customer_accounts?$select=lastname"
    )


def test_create_through_collection_navigation(api: Api) -> None:
    account_id = _create(api, name="Parent")
    response = api.post(f"accounts({account_id})/contact_customer_accounts", json={"lastname": "Child"})
    assert response.status_code == 204
    child = _id_of(response.headers["OData-EntityId"])
    assert response.headers["OData-EntityId"].startswith(f"{ORG}{API}contacts(")
    assert api.get(f"contacts({child})").json()["_parentcustomerid_value"] == account_id


def test_writes_are_stamped_with_the_caller(api: Api) -> None:
    account_id = _create(api, name="Stamp")
    who = api.get("WhoAmI").json()["UserId"]
    row = api.get(f"accounts({account_id})?$select=_createdby_value,_modifiedby_value,_ownerid_value").json()
    assert row["_createdby_value"] == who == row["_ownerid_value"] == row["_modifiedby_value"]
