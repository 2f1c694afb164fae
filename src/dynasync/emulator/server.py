"""Run the emulator on a real loopback socket (uvicorn in a background thread), TLS by default; ``serve`` for the CLI."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from dynasync.emulator.app import Emulator, create_app
from dynasync.emulator.settings import EmulatorSettings
from dynasync.emulator.tls import TlsMaterial, ensure_ca

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def default_tls_dir() -> Path:
    """Where the emulator keeps its CA: ``$DYNASYNC_HOME/emulator-tls`` or ``~/.dynasync/emulator-tls``."""
    home = os.environ.get("DYNASYNC_HOME")
    root = Path(home) if home else Path.home() / ".dynasync"
    return root / "emulator-tls"


def ca_bundle_path(tls_dir: Path | str | None = None) -> Path:
    """The CA certificate clients must trust to talk to the emulator (created on first use)."""
    return ensure_ca(tls_dir or default_tls_dir()).ca_cert_path


class EmulatorServer:
    """The emulator served by uvicorn on ``127.0.0.1`` in a background thread; use as a context manager.

    Example::

        with EmulatorServer() as server:
            server.org_url      # https://127.0.0.1:54321
            server.authority    # https://127.0.0.1:54321/<tenant id>
            server.ca_path      # trust this CA in clients

    Args:
        emulator: The emulator to serve (default: ``Emulator.create()`` with the given settings).
        host: Loopback address to bind (refuses anything else).
        port: Port; 0 picks a free one.
        tls: Serve HTTPS with the local CA's certificate (default True; MSAL needs https).
        tls_dir: Where the CA lives (default :func:`default_tls_dir`).
        settings: Settings for a new emulator.
    """

    def __init__(
        self,
        emulator: Emulator | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = True,
        tls_dir: Path | str | None = None,
        settings: EmulatorSettings | None = None,
        seed: Mapping[str, int] | int | None = None,
        data_file: str | Path | None = None,
    ) -> None:
        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"the emulator only binds loopback addresses, not {host!r}")
        self.emulator = emulator or Emulator.create(data_file, seed=seed, settings=settings)
        self.host = host
        self.requested_port = port
        self.tls = tls
        self.material: TlsMaterial | None = ensure_ca(tls_dir or default_tls_dir()) if tls else None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- addresses -----------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``https://127.0.0.1:<port>`` (``http`` without TLS)."""
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    @property
    def org_url(self) -> str:
        """The Dataverse environment URL (same origin as the identity endpoints)."""
        return self.base_url

    @property
    def api_url(self) -> str:
        """The Web API service root, ``<org>/api/data/v9.2/``."""
        return f"{self.base_url}/api/data/v9.2/"

    @property
    def authority(self) -> str:
        """The Entra authority (``<base>/<tenant id>``) to give MSAL."""
        return f"{self.base_url}/{self.emulator.tenant_id}"

    @property
    def ca_path(self) -> Path | None:
        """The CA certificate to trust (None without TLS)."""
        return self.material.ca_cert_path if self.material else None

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> EmulatorServer:
        """Bind, start serving in a daemon thread, and wait until connections are accepted."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.requested_port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(self.emulator),
            log_level="warning",
            lifespan="off",
            http="h11",
            ssl_certfile=str(self.material.server_cert_path) if self.material else None,
            ssl_keyfile=str(self.material.server_key_path) if self.material else None,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self.emulator.stopping.clear()
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"emulator-{self.port}"
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the emulator server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        self.emulator.stopping.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def describe(self) -> dict[str, Any]:
        """What a user needs to connect: URLs, tenant, the ready app's client id and secret, the CA path."""
        app = self.emulator.default_app
        return {
            "org_url": self.org_url,
            "api_url": self.api_url,
            "authority": self.authority,
            "tenant_id": self.emulator.tenant_id,
            "client_id": app.client_id if app else None,
            "client_secret": app.client_secret if app else None,
            "ca_path": str(self.ca_path) if self.ca_path else None,
            "control_url": f"{self.base_url}/_emulator/",
        }


def serve(
    host: str = "127.0.0.1",
    port: int = 8443,
    data_file: str | Path | None = None,
    seed_rows: int | Mapping[str, int] | None = None,
    tls: bool = True,
    *,
    settings: EmulatorSettings | None = None,
    tls_dir: Path | str | None = None,
    on_ready: Any = None,
) -> None:
    """Serve the emulator until interrupted (Ctrl+C); blocks. ``on_ready(server)`` is called once listening."""
    server = EmulatorServer(
        host=host,
        port=port,
        tls=tls,
        tls_dir=tls_dir,
        settings=settings,
        seed=seed_rows if seed_rows is not None else 0,
        data_file=data_file,
    )
    with server:
        if on_ready is not None:
            on_ready(server)
        try:
            while server._thread is not None and server._thread.is_alive():
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
