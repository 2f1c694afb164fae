"""CreateMultiple / UpdateMultiple / UpsertMultiple / DeleteMultiple over the Web API."""

from __future__ import annotations

import uuid

from conftest import API, ORG, Api

ACCOUNT = "Microsoft.Dynamics.CRM.account"


def _action(api: Api, name: str, targets: list[dict[str, object]], entity_set: str = "accounts"):  # type: ignore[no-untyped-def]
    return api.post(f"{entity_set}/Microsoft.Dynamics.CRM.{name}", json={"Targets": targets})


def test_create_multiple_returns_ids_in_order(api: Api) -> None:
    response = _action(
        api, "CreateMultiple", [{"@odata.type": ACCOUNT, "name": f"bulk {i}"} for i in range(3)]
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["@odata.context"] == f"{ORG}{API}$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse"
    names = [api.get(f"accounts({i})/name").json()["value"] for i in body["Ids"]]
    assert names == ["bulk 0", "bulk 1", "bulk 2"]


def test_create_multiple_is_all_or_nothing(api: Api) -> None:
    before = api.emulator.store.count("account")
    response = _action(
        api,
        "CreateMultiple",
        [{"@odata.type": ACCOUNT, "name": "ok"}, {"@odata.type": ACCOUNT, "name": "x" * 200}],
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "0x80044331"
    assert api.emulator.store.count("account") == before
    chosen = str(uuid.uuid4())
    duplicate = _action(
        api,
        "CreateMultiple",
        [{"@odata.type": ACCOUNT, "accountid": chosen}, {"@odata.type": ACCOUNT, "accountid": chosen}],
    )
    assert duplicate.json()["error"]["message"].startswith("Cannot insert duplicate key.")
    assert api.emulator.store.count("account") == before


def test_targets_must_be_typed_and_non_empty(api: Api) -> None:
    missing_type = _action(api, "CreateMultiple", [{"name": "untyped"}])
    assert missing_type.status_code == 400 and "@odata.type" in missing_type.json()["error"]["message"]
    wrong_type = _action(api, "CreateMultiple", [{"@odata.type": "Microsoft.Dynamics.CRM.contact"}])
    assert wrong_type.status_code == 400
    assert _action(api, "CreateMultiple", []).status_code == 400


def test_update_multiple(api: Api) -> None:
    ids = _action(
        api, "CreateMultiple", [{"@odata.type": ACCOUNT, "name": f"u{i}"} for i in range(2)]
    ).json()["Ids"]
    response = _action(
        api, "UpdateMultiple", [{"@odata.type": ACCOUNT, "accountid": i, "name": f"updated {i}"} for i in ids]
    )
    assert response.status_code == 204
    assert api.get(f"accounts({ids[0]})/name").json()["value"] == f"updated {ids[0]}"
    missing = str(uuid.uuid4())
    failed = _action(
        api,
        "UpdateMultiple",
        [
            {"@odata.type": ACCOUNT, "accountid": ids[0], "name": "no"},
            {"@odata.type": ACCOUNT, "accountid": missing},
        ],
    )
    assert failed.status_code == 404
    assert failed.json()["error"]["message"] == f"account With Ids = {missing} Do Not Exist"
    assert api.get(f"accounts({ids[0]})/name").json()["value"] == f"updated {ids[0]}"
    dupes = _action(api, "UpdateMultiple", [{"@odata.type": ACCOUNT, "accountid": ids[0]}] * 2)
    assert dupes.status_code == 400


def test_upsert_multiple_by_alternate_key_and_id(api: Api) -> None:
    existing = _action(
        api, "CreateMultiple", [{"@odata.type": ACCOUNT, "name": "old", "accountnumber": "UP-1"}]
    ).json()["Ids"][0]
    new_id = str(uuid.uuid4())
    response = _action(
        api,
        "UpsertMultiple",
        [
            {
                "@odata.type": ACCOUNT,
                "@odata.id": "accounts(accountnumber='UP-1')",
                "accountnumber": "UP-1",
                "name": "new",
            },
            {
                "@odata.type": ACCOUNT,
                "@odata.id": "accounts(accountnumber='UP-2')",
                "accountnumber": "UP-2",
                "name": "created",
            },
            {"@odata.type": ACCOUNT, "accountid": new_id, "name": "by id"},
        ],
    )
    assert response.status_code == 204, response.text
    assert api.get(f"accounts({existing})/name").json()["value"] == "new"
    assert api.get("accounts(accountnumber='UP-2')/name").status_code == 200
    assert api.get(f"accounts({new_id})/name").json()["value"] == "by id"


def test_delete_multiple_is_not_available_on_standard_tables(api: Api) -> None:
    response = _action(api, "DeleteMultiple", [{"@odata.type": ACCOUNT, "accountid": str(uuid.uuid4())}])
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "DeleteMultiple has not yet been implemented."
