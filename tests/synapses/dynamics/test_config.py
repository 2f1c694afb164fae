from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from dynasync.errors import ConfigError
from dynasync.synapses.dynamics.config import DynamicsConfig, parse_org_url
from dynasync.synapses.dynamics.errors import DynamicsConfigError

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "11111111-2222-3333-4444-555555555555"
SECRET = "Xy8Q~abc.DEF-ghi_jkl"


def good(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "Dynamics Prod",
        "endpoint_url": f"https://login.microsoftonline.com/{TENANT}",
        "org_url": "https://contoso.crm.dynamics.com",
        "client_id": CLIENT,
        "client_secret": SECRET,
        "public_base_url": "https://sync.example.com",
    }
    data.update(over)
    return data


def problems(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(DynamicsConfigError) as info:
        DynamicsConfig.parse(data)
    assert isinstance(info.value, ConfigError)
    return {p.field: p.problem for p in info.value.problems}


def test_valid_config_is_normalised() -> None:
    cfg = DynamicsConfig.parse(good(org_url="Contoso.CRM4.dynamics.com/", client_id=CLIENT.upper()))
    assert cfg.org_url == "https://contoso.crm4.dynamics.com"
    assert cfg.authority == f"https://login.microsoftonline.com/{TENANT}"
    assert cfg.tenant == TENANT
    assert cfg.client_id == CLIENT
    assert cfg.scope == "https://contoso.crm4.dynamics.com/.default"
    assert cfg.api_base() == "https://contoso.crm4.dynamics.com/api/data/v9.2/"
    assert (
        cfg.admin_consent_url == f"https://login.microsoftonline.com/{TENANT}/adminconsent?client_id={CLIENT}"
    )
    assert cfg.cloud == "commercial"
    assert not cfg.is_emulator


@pytest.mark.parametrize(
    ("endpoint", "authority"),
    [
        (TENANT, f"https://login.microsoftonline.com/{TENANT}"),
        ("contoso.onmicrosoft.com", "https://login.microsoftonline.com/contoso.onmicrosoft.com"),
        (f"https://login.microsoftonline.com/{TENANT}/", f"https://login.microsoftonline.com/{TENANT}"),
        (
            f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token",
            f"https://login.microsoftonline.com/{TENANT}",
        ),
        (
            f"https://login.microsoftonline.com/{TENANT}/oauth2/token",
            f"https://login.microsoftonline.com/{TENANT}",
        ),
        (f"https://login.windows.net/{TENANT}", f"https://login.microsoftonline.com/{TENANT}"),
        (f"login.microsoftonline.com/{TENANT}", f"https://login.microsoftonline.com/{TENANT}"),
        (
            f"https://login.microsoftonline.com/{TENANT}/v2.0/.well-known/openid-configuration",
            f"https://login.microsoftonline.com/{TENANT}",
        ),
    ],
)
def test_endpoint_forms(endpoint: str, authority: str) -> None:
    assert DynamicsConfig.parse(good(endpoint_url=endpoint)).authority == authority


@pytest.mark.parametrize(
    ("org", "endpoint", "cloud", "authority_host"),
    [
        ("https://agency.crm9.dynamics.com", TENANT, "commercial", "login.microsoftonline.com"),
        ("https://agency.crm.microsoftdynamics.us", TENANT, "gcc-high", "login.microsoftonline.us"),
        (
            "https://agency.crm.appsplatform.us",
            f"https://login.microsoftonline.us/{TENANT}",
            "dod",
            "login.microsoftonline.us",
        ),
        ("https://contoso.crm.dynamics.cn", TENANT, "china", "login.chinacloudapi.cn"),
        ("https://contoso.api.crm11.dynamics.com", TENANT, "commercial", "login.microsoftonline.com"),
        ("https://contoso.crm2.dynamics.com:443/", TENANT, "commercial", "login.microsoftonline.com"),
    ],
)
def test_sovereign_and_regional_clouds(org: str, endpoint: str, cloud: str, authority_host: str) -> None:
    cfg = DynamicsConfig.parse(good(org_url=org, endpoint_url=endpoint))
    assert cfg.cloud == cloud
    assert cfg.authority == f"https://{authority_host}/{TENANT}"


@pytest.mark.parametrize(
    "org",
    [
        "http://contoso.crm.dynamics.com",
        "https://10.0.0.5",
        "https://127.0.0.1:8443",
        "https://localhost:8443",
        "https://[::1]:8443",
        "https://169.254.169.254",
        "https://2130706433",
        "https://0x7f.1",
        "https://contoso.crm.dynamics.com.evil.com",
        "https://contoso-crm.dynamics.com",
        "https://crm.dynamics.com",
        "https://contoso.crm.dynamics.co",
        "https://contoso.crm.dynamics.com.",
        "https://contoso.crmx.dynamics.com",
        "https://a.b.crm.dynamics.com",
        "https://user:pw@contoso.crm.dynamics.com",
        "https://contoso.crm.dynamics.com@evil.com",
        "https://evil.com\\@contoso.crm.dynamics.com",
        "https://contoso.crm.dynamics.com:8443",
        "https://contoso.crm.dynamics.com/main.aspx",
        "https://contoso.crm.dynamics.com/api/data/v9.2",
        "https://contoso.crm.dynamics.com?x=1",
        "https://contoso.crm.dynamics.com#frag",
        "https://contoso.crm.dynamics.com /",
        "https://contоso.crm.dynamics.com",  # Cyrillic o
        "ftp://contoso.crm.dynamics.com",
        "https://evil.com#.crm.dynamics.com",
        "https://nip.io",
        "https://127.0.0.1.nip.io",
    ],
)
def test_org_url_ssrf_cases_refused(org: str) -> None:
    found = problems(good(org_url=org))
    assert "org_url" in found


def test_emulator_loopback_needs_the_flag_and_a_ca(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    found = problems(good(org_url="https://127.0.0.1:8443", endpoint_url=TENANT))
    assert "allow_local_emulator" in found["org_url"]
    found = problems(good(org_url="https://127.0.0.1:8443", endpoint_url=TENANT, allow_local_emulator=True))
    assert "ca_bundle" in found
    cfg = DynamicsConfig.parse(
        good(
            org_url="https://127.0.0.1:8443/",
            endpoint_url=TENANT,
            allow_local_emulator=True,
            ca_bundle=str(ca),
        )
    )
    assert cfg.is_emulator and cfg.cloud == "emulator"
    assert cfg.authority == f"https://127.0.0.1:8443/{TENANT}"
    cfg = DynamicsConfig.parse(
        good(
            org_url="https://localhost:9000",
            endpoint_url=f"https://localhost:9000/{TENANT}",
            allow_local_emulator=True,
            ca_bundle=ca,
        )
    )
    assert cfg.authority == f"https://localhost:9000/{TENANT}"


def test_emulator_flag_does_not_open_other_addresses(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    for org in (
        "https://10.1.2.3:8443",
        "https://192.168.0.1",
        "https://127.0.0.2:8443",
        "https://localhost",
    ):
        assert "org_url" in problems(good(org_url=org, allow_local_emulator=True, ca_bundle=ca))
    # A loopback authority only goes with a loopback org.
    assert "endpoint_url" in problems(
        good(endpoint_url=f"https://127.0.0.1:8443/{TENANT}", allow_local_emulator=True)
    )


def test_all_problems_are_reported_at_once() -> None:
    found = problems(
        {
            "name": "",
            "endpoint_url": "http://login.microsoftonline.com/x",
            "org_url": "https://user@10.0.0.1:8080/x",
            "client_id": "not-a-guid",
            "client_secret": "",
            "public_base_url": "http://sync.example.com",
            "allow_local_emulator": "maybe",
            "ca_bundle": "/nonexistent/ca.pem",
            "colour": "blue",
        }
    )
    assert set(found) == {
        "name",
        "endpoint_url",
        "org_url",
        "client_id",
        "client_secret",
        "public_base_url",
        "allow_local_emulator",
        "ca_bundle",
        "colour",
    }


def test_problem_lists_example_of_right_value() -> None:
    with pytest.raises(DynamicsConfigError) as info:
        DynamicsConfig.parse(good(org_url="https://example.com"))
    (problem,) = info.value.problems
    assert problem.example == "https://contoso.crm.dynamics.com"
    assert "https://contoso.crm.dynamics.com" in info.value.explain()


@pytest.mark.parametrize(
    ("endpoint", "fragment"),
    [
        ("common", "multi-tenant"),
        ("https://login.microsoftonline.com/organizations", "multi-tenant"),
        ("not a tenant!", "neither"),
        ("https://login.microsoftonline.com/", "tenant"),
        ("https://evil.com/" + TENANT, "sign-in host"),
        (f"https://login.microsoftonline.com:444/{TENANT}", "443"),
        (f"https://login.microsoftonline.com/{TENANT}/saml2", "unexpected path"),
        (f"https://login.microsoftonline.com/{TENANT}?x=1", "query"),
        (f"https://login.microsoftonline.us/{TENANT}", "another cloud"),
        ("https://login.microsoftonline.com/12345", "neither"),
    ],
)
def test_endpoint_problems(endpoint: str, fragment: str) -> None:
    found = problems(good(endpoint_url=endpoint))
    assert fragment in found["endpoint_url"]


def test_secret_never_shown() -> None:
    cfg = DynamicsConfig.parse(good())
    assert SECRET not in repr(cfg)
    assert SECRET not in str(cfg)
    assert SECRET not in cfg.model_dump_json()
    assert cfg.client_secret.get_secret_value() == SECRET
    # A bad secret's value is not echoed in the error either.
    guid_secret = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    with pytest.raises(DynamicsConfigError) as info:
        DynamicsConfig.parse(good(client_secret=guid_secret, client_id="bad"))
    assert guid_secret not in info.value.explain()
    assert "secret's ID" in info.value.explain()


def test_secret_accepts_secretstr_and_rejects_spaces() -> None:
    assert (
        DynamicsConfig.parse(good(client_secret=SecretStr(SECRET))).client_secret.get_secret_value() == SECRET
    )
    assert "spaces" in problems(good(client_secret=f" {SECRET}"))["client_secret"]


def test_ca_bundle_refused_for_microsoft_hosts(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    assert "emulator" in problems(good(ca_bundle=ca))["ca_bundle"]


def test_public_base_url_rules() -> None:
    assert DynamicsConfig.parse(good(public_base_url="https://sync.example.com/base/")).public_base_url == (
        "https://sync.example.com/base"
    )
    assert DynamicsConfig.parse(good(public_base_url="http://localhost:8000")).public_base_url == (
        "http://localhost:8000"
    )
    assert "public_base_url" in problems(good(public_base_url="https://sync.example.com/?a=1"))
    assert "public_base_url" in problems(good(public_base_url="https://u:p@sync.example.com"))


def test_config_is_frozen_and_revalidated() -> None:
    cfg = DynamicsConfig.parse(good())
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error
        cfg.org_url = "https://evil.com"  # type: ignore[misc]
    with pytest.raises(DynamicsConfigError):
        cfg.model_copy(update={"org_url": "https://evil.com"}).model_validate(
            {**cfg.model_dump(), "client_secret": SECRET, "org_url": "https://evil.com"}
        )


def test_parse_org_url_direct() -> None:
    assert parse_org_url("contoso.crm.dynamics.com").origin == "https://contoso.crm.dynamics.com"
    with pytest.raises(ValueError):
        parse_org_url("https://127.0.0.1:1")
