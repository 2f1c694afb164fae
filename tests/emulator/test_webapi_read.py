"""Web API reads over ASGI: routing, keys, $select/$filter/$orderby/$top/$count, annotations, ETags, functions."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from conftest import API, ORG, Api, make_api

from dynasync.emulator.app import Emulator
from dynasync.emulator.settings import EmulatorSettings


@pytest.fixture
def emulator_small_cap() -> Iterator[Api]:
    emulator = Emulator.create(seed={"accounts": 8}, settings=EmulatorSettings(tls=False, count_cap=5))
    yield from make_api(emulator)


def _new_account(api: Api, **values: object) -> str:
    response = api.post("accounts", json={"name": "Contoso", **values})
    assert response.status_code == 204, response.text
    entity_id = response.headers["OData-EntityId"]
    assert entity_id.startswith(f"{ORG}{API}accounts(")
    assert response.headers["Location"] == entity_id
    return entity_id[entity_id.index("(") + 1 : -1]


def test_service_document_lists_entity_sets(api: Api) -> None:
    response = api.get("")
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"] == f"{ORG}{API}$metadata"
    assert {"name": "accounts", "kind": "EntitySet", "url": "accounts"} in body["value"]
    assert response.headers["OData-Version"] == "4.0"


def test_unknown_and_wrongly_cased_entity_sets_are_404(api: Api) -> None:
    for segment in ("conacs", "Accounts"):
        response = api.get(segment)
        assert response.status_code == 404
        assert response.json() == {
            "error": {"code": "0x80060888", "message": f"Resource not found for the segment '{segment}'."}
        }


def test_older_versions_answer_too(api: Api) -> None:
    for version in ("v9.0", "v9.1"):
        response = api.get(f"{ORG}/api/data/{version}/WhoAmI")
        assert response.status_code == 200
        assert response.json()["@odata.context"].startswith(f"{ORG}/api/data/{version}/$metadata#")


def test_single_row_has_etag_context_pk_and_explicit_nulls(api: Api) -> None:
    account_id = _new_account(api, revenue=20000, creditonhold=False)
    response = api.get(f"accounts({account_id})?$select=name,revenue,accountnumber")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["@odata.context"] == f"{ORG}{API}$metadata#accounts(name,revenue,accountnumber)/$entity"
    assert body["@odata.etag"].startswith('W/"')
    assert response.headers["ETag"] == body["@odata.etag"]
    assert body["accountnumber"] is None
    assert body["revenue"] == 20000
    assert body["accountid"] == account_id
    assert "_transactioncurrencyid_value" in body
    assert list(body)[-1] == "accountid"


def test_guid_key_forms_and_missing_row(api: Api) -> None:
    account_id = _new_account(api)
    assert api.get(f"accounts(accountid={account_id.upper()})").status_code == 200
    missing = uuid.uuid4()
    response = api.get(f"accounts({missing})")
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "0x80040217",
        "message": f"account With Id = {missing} Does Not Exist",
    }


def test_alternate_key_read_and_undeclared_key(api: Api) -> None:
    account_id = _new_account(api, accountnumber="ALT-1")
    response = api.get("accounts(accountnumber='ALT-1')?$select=name")
    assert response.status_code == 200
    assert response.json()["accountid"] == account_id
    bad = api.get("accounts(name='Contoso')")
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "0x80060890"
    assert api.get("accounts(accountnumber='nope')").status_code == 404


def test_select_unknown_property_and_unsupported_options(api: Api) -> None:
    response = api.get("accounts?$select=foo")
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "0x80060888",
        "message": "Could not find a property named 'foo' on type 'Microsoft.Dynamics.CRM.account'.",
    }
    for option in ("$skip=1", "$search=x", "$format=json"):
        bad = api.get(f"accounts?{option}")
        assert bad.status_code == 400, option
        assert bad.json()["error"]["code"] == "0x80060888"


def test_filter_orderby_top_and_count(api: Api) -> None:
    for name in ("zeta", "Alpha", "beta"):
        _new_account(api, name=name, numberofemployees=len(name))
    response = api.get("accounts?$select=name&$filter=numberofemployees ge 4&$orderby=name desc&$count=true")
    body = response.json()
    names = [row["name"] for row in body["value"]]
    assert names == sorted(names, key=str.lower, reverse=True)
    assert {"zeta", "Alpha", "beta"} <= set(names)
    assert body["@odata.count"] == len(body["value"])
    assert list(body).index("@odata.count") < list(body).index("value")
    top = api.get("accounts?$select=name&$top=2").json()
    assert len(top["value"]) == 2
    assert "@odata.nextLink" not in top
    count = api.get("accounts/$count")
    assert count.headers["content-type"].startswith("text/plain")
    assert int(count.text) == api.emulator.store.count("account")


def test_count_is_capped(emulator_small_cap: Api) -> None:
    api = emulator_small_cap
    body = api.get(
        "accounts?$count=true&$select=name",
        headers={"Prefer": 'odata.include-annotations="Microsoft.Dynamics.CRM.*"'},
    ).json()
    assert body["@odata.count"] == 5
    assert body["@Microsoft.Dynamics.CRM.totalrecordcount"] == 5
    assert body["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] is True
    assert api.get("accounts/$count").text == "5"


def test_annotations_are_placed_before_their_property(api: Api) -> None:
    contact = api.post("contacts", json={"firstname": "Ada", "lastname": "Lovelace"})
    contact_id = contact.headers["OData-EntityId"].split("(")[1][:-1]
    response = api.post(
        "accounts",
        json={
            "name": "Annotated",
            "revenue": 20000,
            "accountcategorycode": 1,
            "primarycontactid@odata.bind": f"/contacts({contact_id})",
        },
    )
    account_id = response.headers["OData-EntityId"].split("(")[1][:-1]
    prefer = 'odata.include-annotations="*"'
    got = api.get(
        f"accounts({account_id})?$select=revenue,accountcategorycode,_primarycontactid_value,creditonhold",
        headers={"Prefer": prefer},
    )
    assert got.headers["Preference-Applied"] == prefer
    body = got.json()
    formatted = "@OData.Community.Display.V1.FormattedValue"
    assert body[f"revenue{formatted}"] == "$20,000.00"
    assert body[f"accountcategorycode{formatted}"] == "Preferred Customer"
    assert body[f"creditonhold{formatted}"] == "No"
    assert body[f"_primarycontactid_value{formatted}"] == "Ada Lovelace"
    assert body["_primarycontactid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "contact"
    assert (
        body["_primarycontactid_value@Microsoft.Dynamics.CRM.associatednavigationproperty"]
        == "primarycontactid"
    )
    keys = list(body)
    assert keys.index(f"revenue{formatted}") == keys.index("revenue") - 1
    assert keys.index("_primarycontactid_value@Microsoft.Dynamics.CRM.lookuplogicalname") < keys.index(
        "_primarycontactid_value"
    )


def test_if_none_match_gives_304_unless_annotations(api: Api) -> None:
    account_id = _new_account(api)
    etag = api.get(f"accounts({account_id})").headers["ETag"]
    same = api.get(f"accounts({account_id})", headers={"If-None-Match": etag})
    assert same.status_code == 304
    assert same.content == b""
    annotated = api.get(
        f"accounts({account_id})", headers={"If-None-Match": etag, "Prefer": 'odata.include-annotations="*"'}
    )
    assert annotated.status_code == 200
    assert api.get(f"accounts({account_id})", headers={"If-None-Match": "null"}).status_code == 200


def test_expand_single_valued_navigation(api: Api) -> None:
    contact = api.post("contacts", json={"firstname": "Grace", "lastname": "Hopper"})
    contact_id = contact.headers["OData-EntityId"].split("(")[1][:-1]
    response = api.post(
        "accounts", json={"name": "Navy", "primarycontactid@odata.bind": f"contacts({contact_id})"}
    )
    account_id = response.headers["OData-EntityId"].split("(")[1][:-1]
    body = api.get(f"accounts({account_id})?$select=name&$expand=primarycontactid($select=fullname)").json()
    assert body["@odata.context"].endswith("$metadata#accounts(name,primarycontactid(fullname))/$entity")
    assert body["primarycontactid"]["fullname"] == "Grace Hopper"
    assert body["primarycontactid"]["contactid"] == contact_id
    assert body["primarycontactid"]["@odata.etag"].startswith('W/"')
    other = _new_account(api)
    assert api.get(f"accounts({other})?$expand=primarycontactid").json()["primarycontactid"] is None


def test_single_property_and_value(api: Api) -> None:
    account_id = _new_account(api, name="Fabrikam")
    body = api.get(f"accounts({account_id})/name").json()
    assert body == {"@odata.context": f"{ORG}{API}$metadata#accounts({account_id})/name", "value": "Fabrikam"}
    raw = api.get(f"accounts({account_id})/name/$value")
    assert raw.text == "Fabrikam"


def test_functions(api: Api) -> None:
    who = api.get("WhoAmI").json()
    assert who["@odata.context"] == f"{ORG}{API}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse"
    app = api.emulator.store.app_user(uuid.UUID(api.emulator.default_app.client_id))  # type: ignore[union-attr]
    assert app is not None
    assert who["UserId"] == str(app["systemuserid"])
    assert uuid.UUID(who["BusinessUnitId"]) and uuid.UUID(who["OrganizationId"])
    assert api.get("WhoAmI()").status_code == 200
    assert api.get("RetrieveVersion()").json()["Version"].startswith("9.2.")
    counts = api.get("RetrieveTotalRecordCount(EntityNames=['account','contact'])").json()
    collection = counts["EntityRecordCountCollection"]
    assert collection["Keys"] == ["account", "contact"]
    assert collection["Values"] == [api.emulator.store.count("account"), api.emulator.store.count("contact")]
    aliased = api.get("RetrieveTotalRecordCount(EntityNames=@p1)?@p1=['account']").json()
    assert aliased["EntityRecordCountCollection"]["Count"] == 1
    assert api.get("Foo").status_code == 404


def test_expand_ref_and_collection_ref_error(api: Api) -> None:
    contact = api.post("contacts", json={"lastname": "Ref"}).headers["OData-EntityId"]
    account_id = _new_account(api, **{"primarycontactid@odata.bind": contact})
    body = api.get(f"accounts({account_id})?$select=name&$expand=primarycontactid/$ref").json()
    assert body["primarycontactid"] == {"@odata.id": contact}
    bad = api.get(f"accounts({account_id})?$expand=contact_customer_accounts/$ref")
    assert bad.status_code == 400
    assert (
        bad.json()["error"]["message"]
        == "Expand with $ref is only supported on lookup type navigation property."
    )


def test_forwarded_host_and_proto_build_absolute_urls(api: Api) -> None:
    proxy = "https://crm.proxy.example:8443"
    token = api.emulator.issuer.issue_access_token(
        tenant_id=api.emulator.tenant_id,
        audience=proxy,
        app_id=api.emulator.default_app.client_id,  # type: ignore[union-attr]
        object_id=str(uuid.uuid4()),
    ).token
    headers = {
        "Authorization": f"Bearer {token}",
        "X-Forwarded-Host": "crm.proxy.example:8443",
        "X-Forwarded-Proto": "https",
    }
    response = api.client.post(f"{API}accounts", json={"name": "Proxied"}, headers=headers)
    assert response.status_code == 204, response.text
    assert response.headers["OData-EntityId"].startswith(f"{proxy}/api/data/v9.2/accounts(")
    assert api.client.get(f"{API}WhoAmI", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_unimplemented_query_kinds_answer_501(api: Api) -> None:
    for query in ("fetchXml=%3Cfetch%2F%3E", "sql=SELECT%20name%20FROM%20account", "$apply=groupby((name))"):
        response = api.get(f"accounts?{query}")
        assert response.status_code == 501, query
        assert response.json()["error"]["code"] == "0x80040219"


def test_error_detail_annotations_on_request(api: Api) -> None:
    plain = api.get("nope").json()["error"]
    assert set(plain) == {"code", "message"}
    detailed = api.get("nope", headers={"Prefer": 'odata.include-annotations="*"'}).json()["error"]
    assert detailed["code"] == "0x80060888"
    assert detailed["@Microsoft.PowerApps.CDS.HelpLink"].endswith("80060888&client=platform")
    assert detailed["@Microsoft.PowerApps.CDS.ErrorDetails.OperationStatus"] == "0"


def test_known_but_unimplemented_operations_answer_501(api: Api) -> None:
    response = api.get(
        "RetrieveCurrentOrganization(AccessType=Microsoft.Dynamics.CRM.EndpointAccessType'Default')"
    )
    assert response.status_code == 501
    assert "RetrieveCurrentOrganization" in response.json()["error"]["message"]
    assert api.post("BulkDelete", json={}).status_code == 501


def test_expand_restrictions(api: Api) -> None:
    single = api.get("accounts?$expand=primarycontactid($top=1)")
    assert single.status_code == 400
    assert single.json()["error"]["message"].startswith("Only $select and $filter clause can be provided")
    nested = api.get(
        "accounts?$expand=contact_customer_accounts($orderby=fullname;$expand=parentcustomerid_account($select=name))"
    )
    assert nested.status_code == 400
    flat = api.get("accounts?$expand=contact_customer_accounts($select=fullname;$orderby=fullname;$top=2)")
    assert flat.status_code == 200


def test_tracking_next_link_keeps_tracking_without_prefer(api: Api) -> None:
    first = api.get(
        "accounts?$select=name", headers={"Prefer": "odata.track-changes,odata.maxpagesize=5"}
    ).json()
    body = first
    while "@odata.nextLink" in body:
        body = api.get(body["@odata.nextLink"], headers={"Prefer": "odata.maxpagesize=5"}).json()
    assert "@odata.deltaLink" in body
