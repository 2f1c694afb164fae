"""The /_emulator control plane (HTTP and Python): state, faults, acting as a user, clock, schema, apps, reset."""

from __future__ import annotations

from conftest import API, Api, asgi_client, client_credentials_token

from dynasync.emulator.app import Emulator, create_app
from dynasync.emulator.settings import EmulatorSettings


def test_state_and_loopback_only(api: Api) -> None:
    state = api.client.get("/_emulator/").json()
    assert state["tables"]["account"]["rows"] == api.emulator.store.count("account")
    assert state["tenant_id"] == api.emulator.tenant_id
    with asgi_client(create_app(api.emulator), client_ip="192.0.2.10") as remote:
        assert remote.get("/_emulator/").status_code == 403


def test_faults_over_http(api: Api) -> None:
    armed = api.client.post("/_emulator/faults", json={"kind": "503", "count": 1, "retry_after": 3}).json()
    assert armed["kind"] == "503"
    assert api.client.get("/_emulator/faults").json()[0]["remaining"] == 1
    assert api.get("WhoAmI").status_code == 503
    assert api.get("WhoAmI").status_code == 200
    api.client.post("/_emulator/faults", json={"kind": "429", "count": 5})
    api.client.request("DELETE", "/_emulator/faults")
    assert api.get("WhoAmI").status_code == 200
    assert api.client.post("/_emulator/faults", json={"kind": "nope"}).status_code == 400


def test_act_as_dynamics_user_shows_up_in_delta(api: Api) -> None:
    initial = api.get("accounts?$select=name", headers={"Prefer": "odata.track-changes"}).json()
    while "@odata.nextLink" in initial:
        initial = api.get(initial["@odata.nextLink"], headers={"Prefer": "odata.track-changes"}).json()
    delta = initial["@odata.deltaLink"]
    result = api.client.post(
        "/_emulator/act", json={"method": "POST", "path": "accounts", "body": {"name": "Typed in the UI"}}
    ).json()
    assert result["status"] == 204
    created = result["headers"]["OData-EntityId"]
    new_id = created[created.index("(") + 1 : -1]
    account_id = api.emulator.user_create("accounts", {"name": "Python side"})
    api.emulator.user_update("accounts", account_id, {"name": "Python side, edited"})
    changes = api.get(delta).json()["value"]
    assert [c["accountid"] for c in changes] == [new_id, str(account_id)]
    row = api.get(f"accounts({new_id})?$select=_createdby_value").json()
    assert row["_createdby_value"] == str(api.emulator.store.admin_user_id)
    api.emulator.user_delete("accounts", account_id)
    assert api.get(f"accounts({account_id})").status_code == 404


def test_clock_and_token_expiry_over_http(api: Api) -> None:
    before = api.emulator.clock.now()
    moved = api.client.post("/_emulator/clock", json={"days": 1}).json()["now"]
    assert moved > before.isoformat()
    assert api.client.post("/_emulator/change-tokens/expire").status_code == 200
    assert api.emulator.tokens_expired_before is not None


def test_custom_table_and_column(api: Api) -> None:
    created = api.client.post(
        "/_emulator/tables",
        json={
            "logical_name": "new_project",
            "entity_set_name": "new_projects",
            "display_name": "Project",
            "columns": [
                {"logical_name": "new_budget", "type": "Money"},
                {"logical_name": "new_accountid", "type": "Lookup", "target": "account"},
            ],
        },
    )
    assert created.status_code == 200, created.text
    added = api.client.post(
        "/_emulator/tables/new_project/columns",
        json={
            "logical_name": "new_stage",
            "type": "Picklist",
            "options": [[100000000, "Plan"], [100000001, "Build"]],
        },
    )
    assert added.status_code == 200, added.text
    account = api.post("accounts", json={"name": "Sponsor"}).headers["OData-EntityId"]
    response = api.post(
        "new_projects",
        json={
            "new_name": "Apollo",
            "new_budget": 10,
            "new_stage": 100000001,
            "new_accountid@odata.bind": account,
        },
    )
    assert response.status_code == 204, response.text
    row = api.get(
        "new_projects?$select=new_name,new_stage,_new_accountid_value",
        headers={"Prefer": 'odata.include-annotations="*"'},
    ).json()["value"][0]
    assert row["new_stage@OData.Community.Display.V1.FormattedValue"] == "Build"
    definition = api.get(
        "EntityDefinitions(LogicalName='new_project')?$select=LogicalName,EntitySetName"
    ).json()
    assert definition["EntitySetName"] == "new_projects"
    toggled = api.client.post("/_emulator/tables/new_project/change-tracking", json={"enabled": False})
    assert toggled.status_code == 200
    refused = api.get("new_projects", headers={"Prefer": "odata.track-changes"})
    assert refused.json()["error"]["code"] == "0x80072491"


def test_register_app_and_user(api: Api) -> None:
    app = api.client.post("/_emulator/apps", json={"display_name": "Second app"}).json()
    token = client_credentials_token(api.client, api.emulator, app["client_id"], app["client_secret"])
    who = api.client.get(f"{API}WhoAmI", headers={"Authorization": f"Bearer {token}"}).json()
    assert who["UserId"] == app["systemuserid"]
    user = api.client.post(
        "/_emulator/users", json={"upn": "maker@contoso.onmicrosoft.com", "password": "pw-123456"}
    ).json()
    assert user["systemuserid"]


def test_reset_restores_the_seed() -> None:
    emulator = Emulator.create(seed={"accounts": 3}, settings=EmulatorSettings(tls=False))
    emulator.user_create("accounts", {"name": "extra"})
    emulator.faults.inject("503")
    emulator.reset()
    assert emulator.store.count("account") == 3
    assert emulator.faults.pending() == []
    assert emulator.default_app is not None
    assert emulator.store.app_user(emulator.default_app.client_id) is not None


def test_file_backed_emulator_survives_a_restart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "org.db"
    first = Emulator.create(path, seed={"accounts": 2}, settings=EmulatorSettings(tls=False))
    app = first.register_app("Persisted app")
    account_id = first.user_create("accounts", {"name": "Kept"})
    first.store.close()
    second = Emulator.create(path, seed={"accounts": 2}, settings=EmulatorSettings(tls=False))
    assert second.tenant_id == first.tenant_id
    assert second.store.count("account") == 3
    assert second.store.get("account", account_id) is not None
    with asgi_client(create_app(second)) as client:
        token = client_credentials_token(client, second, app["client_id"], app["client_secret"])
        who = client.get(f"{API}WhoAmI", headers={"Authorization": f"Bearer {token}"})
        assert who.json()["UserId"] == app["systemuserid"]
    second.store.close()
