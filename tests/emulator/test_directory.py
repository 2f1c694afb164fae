from __future__ import annotations

import datetime as dt
import json

import pytest

from dynasync.emulator.directory import (
    DYNAMICS_CRM_APP_ID,
    USER_IMPERSONATION,
    ApiPermission,
    Directory,
    is_dns_name,
)

NOW = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)
TENANT_ID = "11111111-2222-3333-4444-555555555555"


def make_directory() -> Directory:
    directory = Directory()
    directory.add_demo_tenant("contoso.onmicrosoft.com", tenant_id=TENANT_ID)
    return directory


def test_tenant_resolves_by_guid_any_case_and_by_domain() -> None:
    directory = make_directory()
    assert directory.resolve_tenant(TENANT_ID.upper()) is directory.tenants[TENANT_ID]
    assert directory.resolve_tenant("Contoso.OnMicrosoft.com") is directory.tenants[TENANT_ID]
    assert directory.resolve_tenant("fabrikam.onmicrosoft.com") is None
    with pytest.raises(ValueError, match="already verified"):
        directory.add_tenant("contoso.onmicrosoft.com")


def test_ready_app_has_permission_secret_and_consent_and_shows_value_once() -> None:
    directory = make_directory()
    ready = directory.create_ready_app(TENANT_ID, redirect_uris=["https://app.example/callback"], now=NOW)

    app = directory.apps[ready.client_id]
    assert app.display_name == "Syncari Integration"
    assert app.has_delegated(DYNAMICS_CRM_APP_ID, USER_IMPERSONATION)
    assert app.admin_consent
    assert app.check_secret(ready.client_secret, NOW) == "ok"
    assert app.check_secret("not-it", NOW) == "wrong"
    assert ready.client_secret not in repr(ready)
    assert ready.client_secret not in json.dumps(directory.to_dict())
    assert "8Q~" in ready.client_secret


def test_secret_expiry_is_reported_separately_from_wrong_value() -> None:
    directory = make_directory()
    app = directory.register_app(TENANT_ID, "Expiring")
    secret = directory.add_secret(app.client_id, NOW, lifetime=dt.timedelta(days=1))

    assert app.check_secret(secret.value, NOW + dt.timedelta(hours=23)) == "ok"
    assert app.check_secret(secret.value, NOW + dt.timedelta(days=2)) == "expired"

    fresh = directory.add_secret(app.client_id, NOW + dt.timedelta(days=2))
    assert app.check_secret(fresh.value, NOW + dt.timedelta(days=2)) == "ok"
    directory.remove_secret(app.client_id, fresh.secret_id)
    assert app.check_secret(fresh.value, NOW + dt.timedelta(days=2)) == "wrong"


def test_consent_rules() -> None:
    directory = make_directory()
    app = directory.register_app(TENANT_ID, "No consent", permissions=[ApiPermission()])
    user = directory.user_by_upn("USER@contoso.onmicrosoft.com")
    assert user is not None and not user.is_admin

    assert not directory.has_consent(app, TENANT_ID, user.object_id)
    directory.grant_user_consent(app.client_id, user.object_id)
    assert directory.has_consent(app, TENANT_ID, user.object_id)
    assert not directory.has_consent(app, TENANT_ID, None)
    directory.grant_admin_consent(app.client_id)
    assert app.admin_consent and directory.has_consent(app, TENANT_ID, None)
    directory.revoke_admin_consent(app.client_id)
    assert not app.admin_consent


def test_single_tenant_app_is_invisible_in_other_tenants_multi_tenant_after_consent() -> None:
    directory = make_directory()
    other = directory.add_tenant("fabrikam.onmicrosoft.com")
    single = directory.register_app(TENANT_ID, "Single")
    multi = directory.register_app(TENANT_ID, "Multi", sign_in_audience="AzureADMultipleOrgs")

    assert directory.app_in_tenant(single.client_id, TENANT_ID) is single
    assert directory.app_in_tenant(single.client_id, other.id) is None
    assert directory.app_in_tenant(multi.client_id, other.id) is None
    directory.grant_admin_consent(multi.client_id, other.id)
    assert directory.app_in_tenant(multi.client_id, other.id) is multi
    assert directory.app_in_tenant(multi.client_id.upper(), other.id) is multi


def test_users_passwords_and_order() -> None:
    directory = make_directory()
    admin = directory.user_by_upn("admin@contoso.onmicrosoft.com")
    assert admin is not None and admin.is_admin
    assert admin.check_password("emulator-admin")
    assert not admin.check_password("emulator-user")
    assert "emulator-admin" not in repr(admin)
    assert [u.upn for u in directory.users_of(TENANT_ID)] == [
        "admin@contoso.onmicrosoft.com",
        "user@contoso.onmicrosoft.com",
    ]
    with pytest.raises(ValueError, match="already exists"):
        directory.add_user(TENANT_ID, "Admin@contoso.onmicrosoft.com", "x")


def test_round_trips_through_json() -> None:
    directory = make_directory()
    ready = directory.create_ready_app(TENANT_ID, redirect_uris=["https://app.example/cb"], now=NOW)
    user = directory.user_by_upn("user@contoso.onmicrosoft.com")
    assert user is not None
    directory.grant_user_consent(ready.client_id, user.object_id)

    restored = Directory.from_dict(json.loads(json.dumps(directory.to_dict())))

    app = restored.apps[ready.client_id]
    assert app.redirect_uris == ["https://app.example/cb"]
    assert app.admin_consent
    assert user.object_id in app.user_consents
    assert app.check_secret(ready.client_secret, NOW) == "ok"
    assert app.secrets[0].expires_at == directory.apps[ready.client_id].secrets[0].expires_at
    assert app.permissions == [ApiPermission()]
    restored_user = restored.user_by_upn("user@contoso.onmicrosoft.com")
    assert restored_user is not None and restored_user.check_password("emulator-user")
    assert restored.resolve_tenant("contoso.onmicrosoft.com") is not None
    with pytest.raises(ValueError, match="schema"):
        Directory.from_dict({"schema": 99})


@pytest.mark.parametrize(
    ("text", "ok"),
    [("contoso.onmicrosoft.com", True), ("a-b.example", True), ("contoso", False), ("bad_name.com", False)],
)
def test_dns_name_check(text: str, ok: bool) -> None:
    assert is_dns_name(text) is ok
