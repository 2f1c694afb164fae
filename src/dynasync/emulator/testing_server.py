"""A tiny helper that serves any ASGI app with uvicorn on a free loopback port in a background thread.

For tests that need real sockets (and real TLS) with clients such as MSAL; the full emulator server lives in
``emulator/server.py``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

from dynasync.emulator.tls import TlsMaterial

__all__ = ["serve_in_thread"]


@contextlib.contextmanager
def serve_in_thread(
    app: Any, *, tls: TlsMaterial | None = None, startup_timeout: float = 10.0
) -> Iterator[str]:
    """Serve ``app`` on ``127.0.0.1:<free port>`` until the block ends; yield the base URL.

    Args:
        app: An ASGI application.
        tls: When given, serve HTTPS with this server certificate and key.
        startup_timeout: Seconds to wait for the server to accept connections.

    Yields:
        ``https://127.0.0.1:<port>`` (or ``http://`` without ``tls``).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=2,
        ssl_certfile=str(tls.server_cert_path) if tls else None,
        ssl_keyfile=str(tls.server_key_path) if tls else None,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"uvicorn-{port}"
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
