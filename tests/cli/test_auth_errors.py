"""Every authentication failure of the guide through the CLI: exit code 2, one paragraph with the remedy."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import Result

from dynasync.emulator.server import EmulatorServer

from .helpers import Cli, SignInBrowser, one_paragraph_error

pytestmark = pytest.mark.e2e

NAME = "Dyn"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "home")


@pytest.fixture(autouse=True)
def _auto_approve(server: EmulatorServer) -> Iterator[None]:
    server.emulator.identity.auto_approve = True
    server.emulator.identity.default_user_upn = None
    yield
    server.emulator.identity.default_user_upn = None


def _add(cli: Cli, server: EmulatorServer, *, endpoint_url: str | None = None) -> None:
    cli.run(
        "synapse",
        "add",
        "dynamics",
        "--name",
        NAME,
        "--endpoint-url",
        endpoint_url or server.authority,
        "--org-url",
        server.org_url,
        "--emulator-ca",
        server.ca_path,
    )


def _auth(cli: Cli, client_id: str, secret: str, *extra: str) -> Result:
    return cli.run(
        "synapse",
        "auth",
        "--client-id",
        client_id,
        "--client-secret",
        secret,
        "--timeout",
        15,
        *extra,
        expect=2,
    )


def _redirect(cli: Cli) -> str:
    return f"{cli.public_base_url}/oauth/dynamics/dyn/callback"


def _register(server: EmulatorServer, cli: Cli, **options: bool) -> dict[str, str]:
    return server.emulator.register_app("Syncari Integration", redirect_uris=(_redirect(cli),), **options)


def _still_not_authenticated(cli: Cli) -> None:
    (record,) = cli.json("synapse", "list")["synapses"]
    assert (record["status"], record["auth"]) == ("configured", "")
    error = one_paragraph_error(cli.run("synapse", "test", expect=2))
    assert "not authenticated yet" in error and "dynasync synapse auth" in error


def test_wrong_client_secret(server: EmulatorServer, cli: Cli) -> None:
    app = _register(server, cli)
    _add(cli, server)
    error = one_paragraph_error(_auth(cli, app["client_id"], "not-the-secret", "--client-credentials"))
    assert "AADSTS7000215" in error
    assert "Certificates & secrets" in error and "Value" in error and "not its Secret ID" in error
    assert "not-the-secret" not in error
    _still_not_authenticated(cli)


def test_wrong_client_secret_in_the_browser_sign_in(
    server: EmulatorServer, cli: Cli, browser: SignInBrowser
) -> None:
    app = _register(server, cli)
    _add(cli, server)
    error = one_paragraph_error(_auth(cli, app["client_id"], "not-the-secret"))
    # The sign-in itself succeeds in the browser; the code exchange with the wrong secret is refused.
    assert "Signed in" in browser.final_pages[-1]
    assert "AADSTS7000215" in error and "Certificates & secrets" in error


def test_unknown_tenant(server: EmulatorServer, cli: Cli) -> None:
    app = _register(server, cli)
    tenant = str(uuid.uuid4())
    _add(cli, server, endpoint_url=f"{server.base_url}/{tenant}")
    error = one_paragraph_error(_auth(cli, app["client_id"], app["client_secret"], "--client-credentials"))
    assert "AADSTS90002" in error and tenant in error
    assert "Directory (tenant) ID" in error


def test_unknown_client_id(server: EmulatorServer, cli: Cli) -> None:
    app = _register(server, cli)
    unknown = str(uuid.uuid4())
    _add(cli, server)
    error = one_paragraph_error(_auth(cli, unknown, app["client_secret"], "--client-credentials"))
    assert "AADSTS700016" in error and unknown in error
    assert "Application (client) ID" in error


def test_unknown_client_id_in_the_browser_sign_in(
    server: EmulatorServer, cli: Cli, browser: SignInBrowser
) -> None:
    opened = len(browser.opened)
    _add(cli, server)
    unknown = str(uuid.uuid4())
    error = one_paragraph_error(_auth(cli, unknown, "whatever"))
    assert "AADSTS700016" in error and "Application (client) ID" in error
    assert len(browser.opened) == opened  # found before sending anyone to a Microsoft error page


def test_missing_admin_consent(server: EmulatorServer, cli: Cli) -> None:
    app = _register(server, cli, admin_consent=False)
    _add(cli, server)
    error = one_paragraph_error(_auth(cli, app["client_id"], app["client_secret"], "--client-credentials"))
    assert "AADSTS65001" in error
    assert "Grant admin consent" in error and f"adminconsent?client_id={app['client_id']}" in error


def test_missing_admin_consent_when_a_user_signs_in(server: EmulatorServer, cli: Cli) -> None:
    # The guide's note: an "Unauthorized" answer after Authenticate means admin consent is missing.
    app = _register(server, cli, admin_consent=False)
    server.emulator.identity.default_user_upn = "user@contoso.onmicrosoft.com"  # not an administrator
    _add(cli, server)
    error = one_paragraph_error(_auth(cli, app["client_id"], app["client_secret"]))
    assert "AADSTS65001" in error and "Grant admin consent" in error


def test_no_application_user(server: EmulatorServer, cli: Cli) -> None:
    app = _register(server, cli, application_user=False)
    _add(cli, server)
    error = one_paragraph_error(_auth(cli, app["client_id"], app["client_secret"], "--client-credentials"))
    assert "not a member of the organization" in error
    assert "Application Users" in error and app["client_id"] in error
    _still_not_authenticated(cli)


def test_ip_firewall(server: EmulatorServer, cli: Cli) -> None:
    """The seed guide's "whitelist an IP" case: the environment's IP firewall refuses this machine."""
    app = _register(server, cli)
    _add(cli, server)
    server.emulator.update_settings(ip_allow_list=("203.0.113.0/24",))
    try:
        error = one_paragraph_error(
            _auth(cli, app["client_id"], app["client_secret"], "--client-credentials")
        )
    finally:
        server.emulator.update_settings(ip_allow_list=())
    assert "access to your IP is blocked" in error
    assert "allowed IP ranges of the IP firewall" in error and server.org_url in error
    _still_not_authenticated(cli)


def test_redirect_url_not_registered(server: EmulatorServer, cli: Cli, browser: SignInBrowser) -> None:
    app = server.emulator.register_app("Syncari Integration", redirect_uris=("http://localhost/elsewhere",))
    _add(cli, server)
    opened = len(browser.opened)
    result = _auth(cli, app["client_id"], app["client_secret"])
    assert _redirect(cli) in result.stdout  # Step 3 printed the URL to register ...
    error = one_paragraph_error(result)
    assert (
        "AADSTS50011" in error and "Redirect URIs" in error and _redirect(cli) in error
    )  # ... and says where
    assert len(browser.opened) == opened


def test_sign_in_page_errors_carry_no_page_chrome(server: EmulatorServer, cli: Cli) -> None:
    app = server.emulator.register_app("Syncari Integration", redirect_uris=("http://localhost/elsewhere",))
    _add(cli, server)
    error = one_paragraph_error(_auth(cli, app["client_id"], app["client_secret"]))
    for chrome in ("Troubleshooting details", "Correlation ID", "Timestamp", "</", "<h"):
        assert chrome not in error


def test_auth_error_as_json(server: EmulatorServer, cli: Cli) -> None:
    app = _register(server, cli)
    _add(cli, server)
    data = cli.json(
        "synapse",
        "auth",
        "--client-id",
        app["client_id"],
        "--client-secret",
        "wrong",
        "--client-credentials",
        expect=2,
    )
    assert data["error"] == "InvalidClientSecretError" and data["exit_code"] == 2
    assert "AADSTS7000215" in data["message"] and "Certificates & secrets" in data["remedy"]


def test_interactive_sign_in_needs_a_loopback_redirect(server: EmulatorServer, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home")
    cli.env["DYNASYNC_PUBLIC_BASE_URL"] = "https://sync.example.com"
    app = server.emulator.register_app(
        "Syncari Integration", redirect_uris=("https://sync.example.com/oauth/dynamics/dyn/callback",)
    )
    _add(cli, server)
    error = one_paragraph_error(_auth(cli, app["client_id"], app["client_secret"]))
    assert "loopback" in error and "DYNASYNC_PUBLIC_BASE_URL" in error


def test_sign_in_that_never_comes_back(server: EmulatorServer, cli: Cli, browser: SignInBrowser) -> None:
    app = _register(server, cli)
    _add(cli, server)
    opened = len(browser.opened)
    result = cli.run(
        "synapse",
        "auth",
        "--client-id",
        app["client_id"],
        "--client-secret",
        app["client_secret"],
        "--no-browser",
        "--timeout",
        "0.5",
        expect=2,
    )
    assert len(browser.opened) == opened
    assert "Open that URL in a browser" in result.stdout
    error = one_paragraph_error(result)
    assert "No sign-in came back within 0.5 seconds" in error and "dynasync synapse auth" in error
