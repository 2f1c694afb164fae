"""The setup guide's steps as services (dynasync.setup) against the emulator over real TLS."""

from __future__ import annotations

import asyncio
import gc
import socket
import ssl
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from dynasync import setup
from dynasync.config import Settings
from dynasync.emulator.server import EmulatorServer
from dynasync.errors import AuthError, ConfigError
from dynasync.oauth_callback import CallbackListener
from dynasync.synapses.dynamics.errors import DynamicsConfigError
from dynasync.workspace import SynapseRecord, Workspace

pytestmark = pytest.mark.e2e

ENDPOINT = "https://login.microsoftonline.com/contoso.onmicrosoft.com"
ORG = "https://contoso.crm.dynamics.com"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    with EmulatorServer(
        tls_dir=tmp_path_factory.mktemp("tls"), seed={"accounts": 2, "contacts": 2}
    ) as running:
        running.emulator.identity.auto_approve = True
        yield running
        gc.collect()  # close msal sessions that leaked (see the xfail below) before uvicorn waits for them


def _ws(tmp_path: Path, port: int = 8765) -> Workspace:
    return Workspace(Settings(home=tmp_path / "home", public_base_url=f"http://localhost:{port}"))


def _emulator_synapse(ws: Workspace, server: EmulatorServer, name: str = "Emu") -> SynapseRecord:
    return setup.add_dynamics(
        ws,
        name=name,
        endpoint_url=server.authority,
        org_url=server.org_url,
        allow_local_emulator=True,
        ca_bundle=server.ca_path,
    )


def test_add_dynamics_normalises_and_checks_only_step_2(tmp_path: Path) -> None:
    ws = _ws(tmp_path)
    tenant = "0a1b2c3d-0000-4000-8000-000000000001"
    record = setup.add_dynamics(
        ws, name="Sales", endpoint_url=tenant, org_url="https://Contoso.crm4.dynamics.com/"
    )
    assert record.endpoint_url == f"https://login.microsoftonline.com/{tenant}"
    assert record.org_url == "https://contoso.crm4.dynamics.com"
    assert (record.status, record.client_id, record.client_secret) == ("configured", "", "")
    assert ws.get("Sales").org_url == record.org_url


def test_add_dynamics_refuses_a_local_org_unless_it_is_the_emulator(
    tmp_path: Path, server: EmulatorServer
) -> None:
    ws = _ws(tmp_path)
    with pytest.raises(DynamicsConfigError) as caught:
        setup.add_dynamics(ws, name="Emu", endpoint_url=server.authority, org_url=server.org_url)
    assert {p.field for p in caught.value.problems} >= {"org_url"}
    assert _emulator_synapse(ws, server).allow_local_emulator is True


def test_set_credentials_returns_the_redirect_url(tmp_path: Path) -> None:
    ws = _ws(tmp_path, port=9123)
    record = setup.add_dynamics(ws, name="Dynamics Sales", endpoint_url=ENDPOINT, org_url=ORG)
    record.auth_mode, record.status = "client_credentials", "authenticated"
    url = setup.set_credentials(
        ws, record, client_id=" 11111111-2222-3333-4444-55555555AAAA ", client_secret="value"
    )
    assert url == "http://localhost:9123/oauth/dynamics/dynamics-sales/callback"
    saved = ws.get("Dynamics Sales")
    assert saved.client_id == "11111111-2222-3333-4444-55555555aaaa"
    assert (saved.status, saved.auth_mode) == ("configured", "")  # new credentials must be proven again
    with pytest.raises(DynamicsConfigError, match="client_id"):
        setup.set_credentials(ws, saved, client_id="not-a-guid", client_secret="value")
    with pytest.raises(DynamicsConfigError, match="client_secret"):
        setup.set_credentials(ws, saved, client_id="11111111-2222-3333-4444-555555555555", client_secret="")


def test_token_provider_before_authentication(tmp_path: Path) -> None:
    ws = _ws(tmp_path)
    record = setup.add_dynamics(ws, name="Dyn", endpoint_url=ENDPOINT, org_url=ORG)
    setup.set_credentials(ws, record, client_id="11111111-2222-3333-4444-555555555555", client_secret="s")
    with pytest.raises(AuthError, match="not authenticated yet"):
        setup.token_provider(ws, ws.get("Dyn"))


def test_client_credentials_then_test_connection(tmp_path: Path, server: EmulatorServer) -> None:
    ws = _ws(tmp_path)
    app = server.emulator.register_app("Syncari Integration")
    record = _emulator_synapse(ws, server)
    setup.set_credentials(ws, record, client_id=app["client_id"], client_secret=app["client_secret"])
    report = asyncio.run(setup.use_client_credentials(ws, record))
    saved = ws.get("Emu")
    assert (saved.status, saved.auth_mode) == ("authenticated", "client_credentials")
    assert saved.signed_in_as == report.user_name == "# Syncari Integration"
    again = asyncio.run(setup.test_connection(ws, saved))
    assert again.user_id == report.user_id


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = values.get("action", "")
        elif tag == "input" and values.get("name"):
            self.fields[values["name"]] = values.get("value", "")


def _browser(url: str, ca: Path) -> str:
    """Load the sign-in URL (auto-approved) and submit its auto-posting form, as a browser does."""
    with httpx.Client(verify=ssl.create_default_context(cafile=str(ca)), trust_env=False) as client:
        form = _Form()
        form.feed(client.get(url).text)
        return client.post(form.action, data=form.fields).text


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_authorization_code_sign_in(tmp_path: Path, server: EmulatorServer) -> None:
    ws = _ws(tmp_path, port=_free_port())
    record = _emulator_synapse(ws, server)
    app = server.emulator.register_app("Syncari Integration", redirect_uris=())
    redirect = setup.set_credentials(
        ws, record, client_id=app["client_id"], client_secret=app["client_secret"]
    )
    server.emulator.directory.app(app["client_id"]).redirect_uris.append(redirect)  # type: ignore[union-attr]
    server.emulator.identity.notify_directory_changed()
    assert server.ca_path is not None

    async def sign_in() -> str | None:
        flow, pending = await setup.begin_sign_in(ws, record)
        with CallbackListener(flow.redirect_url) as listener:
            page = await asyncio.to_thread(_browser, pending.auth_url, server.ca_path)  # type: ignore[arg-type]
            assert "Signed in" in page
            query = await asyncio.to_thread(listener.wait, 10)
        signed_in, _ = await setup.complete_sign_in(ws, record, flow, pending, query)
        return signed_in.username

    assert asyncio.run(sign_in()) == "admin@contoso.onmicrosoft.com"
    saved = ws.get("Emu")
    assert (saved.status, saved.auth_mode, saved.signed_in_as) == (
        "authenticated",
        "auth_code",
        "admin@contoso.onmicrosoft.com",
    )
    assert asyncio.run(setup.test_connection(ws, saved)).user_name  # the refresh token works silently


def test_a_callback_from_another_sign_in_is_refused(tmp_path: Path, server: EmulatorServer) -> None:
    ws = _ws(tmp_path)
    record = _emulator_synapse(ws, server)
    app = server.emulator.register_app("Syncari Integration", redirect_uris=())
    redirect = setup.set_credentials(
        ws, record, client_id=app["client_id"], client_secret=app["client_secret"]
    )
    server.emulator.directory.app(app["client_id"]).redirect_uris.append(redirect)  # type: ignore[union-attr]
    server.emulator.identity.notify_directory_changed()

    async def forged() -> None:
        flow, pending = await setup.begin_sign_in(ws, record)
        await setup.complete_sign_in(ws, record, flow, pending, {"code": "stolen", "state": "someone-else"})

    with pytest.raises(AuthError, match="state mismatch"):
        asyncio.run(forged())
    assert ws.get("Emu").auth_mode == ""


def test_begin_sign_in_surfaces_entra_page_errors(tmp_path: Path, server: EmulatorServer) -> None:
    ws = _ws(tmp_path)
    record = _emulator_synapse(ws, server)
    app = server.emulator.register_app("Syncari Integration", redirect_uris=("http://localhost/other",))
    setup.set_credentials(ws, record, client_id=app["client_id"], client_secret=app["client_secret"])
    with pytest.raises(AuthError, match="AADSTS50011"):
        asyncio.run(setup.begin_sign_in(ws, record))


def test_activation_before_authentication(tmp_path: Path) -> None:
    from dynasync.activation import activate

    ws = _ws(tmp_path)
    record = setup.add_dynamics(ws, name="Dyn", endpoint_url=ENDPOINT, org_url=ORG)
    with pytest.raises(ConfigError, match="no client secret yet"):
        asyncio.run(activate(ws, record, use_default_mapping=True))


def _open_connections_to(port: int) -> int:
    count = 0
    for obj in gc.get_objects():
        if isinstance(obj, ssl.SSLSocket) and obj.fileno() != -1:
            try:
                if obj.getpeername()[1] == port:
                    count += 1
            except OSError:
                continue
    return count


def test_closing_the_client_closes_the_sign_in_connections(tmp_path: Path, server: EmulatorServer) -> None:
    gc.collect()
    before = _open_connections_to(server.port)
    ws = _ws(tmp_path)
    app = server.emulator.register_app("Syncari Integration")
    record = _emulator_synapse(ws, server)
    setup.set_credentials(ws, record, client_id=app["client_id"], client_secret=app["client_secret"])
    asyncio.run(setup.use_client_credentials(ws, record))
    assert _open_connections_to(server.port) == before
