"""Fixtures for CLI tests: one emulator over TLS per module, a shared CA, and a browser for the sign-in."""

from __future__ import annotations

import gc
import webbrowser
from collections.abc import Iterator
from pathlib import Path

import pytest

from dynasync.emulator.server import EmulatorServer
from dynasync.emulator.tls import ensure_ca

from .helpers import SignInBrowser

SEED = {"accounts": 12, "contacts": 12}


@pytest.fixture(scope="session")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One CA for every emulator of the session, so the browser trusts all of them."""
    path = tmp_path_factory.mktemp("emulator-tls")
    ensure_ca(path)
    return path


@pytest.fixture(scope="session", autouse=True)
def browser(tls_dir: Path) -> Iterator[SignInBrowser]:
    """Registered as the preferred ``webbrowser`` so no test ever starts a real browser."""
    instance = SignInBrowser(ensure_ca(tls_dir).ca_cert_path)
    webbrowser.register(instance.name, None, instance, preferred=True)
    yield instance
    # webbrowser has no public unregister: drop our entry so later code sees the system's browsers again.
    order = getattr(webbrowser, "_tryorder", None)
    if isinstance(order, list) and instance.name in order:
        order.remove(instance.name)


@pytest.fixture(scope="module")
def server(tls_dir: Path) -> Iterator[EmulatorServer]:
    """The Dynamics 365 + Entra ID emulator over real TLS on 127.0.0.1 (small seed)."""
    with EmulatorServer(tls_dir=tls_dir, seed=SEED) as running:
        yield running
        # msal's keep-alive sessions leak (see test_setup.py's xfail); collecting them closes their sockets so
        # uvicorn's graceful shutdown does not wait 2 s for them.
        gc.collect()
