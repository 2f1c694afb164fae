"""The emulator in a child process: seeded through the store's bulk path, served by ``EmulatorServer`` on
127.0.0.1, driven by JSON commands on stdin (``python -m bench.emuproc`` is the child's entry point)."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import orjson

from bench.common import PAGE, REPO, Served, proc_memory_mb

# -- the emulator in a child process ---------------------------------------------------------------------------


@contextmanager
def emulator_for(
    emulator: EmulatorProcess | None, *, accounts: int, **options: Any
) -> Iterator[EmulatorProcess]:
    """Use ``emulator`` when given (tests share one), else start one with ``accounts`` and stop it after."""
    if emulator is not None:
        yield emulator
        return
    with EmulatorProcess(accounts=accounts, **options) as started:
        yield started


class EmulatorProcess:
    """An emulator (``EmulatorServer``, 127.0.0.1) seeded and served by a child process; a context manager.

    The child keeps the emulator's CPU and memory apart from the measured client, like a real remote service.
    It reads JSON commands on stdin (see :func:`_command`) and stops when stdin closes.
    """

    def __init__(self, *, accounts: int, contacts: int = 0, path: str | None = None, tls: bool = True,
                 tls_dir: str, start_timeout: float = 900) -> None:  # fmt: skip
        args = [sys.executable, "-m", "bench.emuproc", "--accounts", str(accounts), "--contacts", str(contacts),
                "--tls-dir", tls_dir, "--tls" if tls else "--plain"]  # fmt: skip
        if path:
            args += ["--path", path]
        self.proc = subprocess.Popen(
            args, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self.served = Served(**self._reply(start_timeout))

    def _reply(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.close()
            raise RuntimeError(f"the emulator child gave no answer within {timeout:.0f} s")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"emulator child: {reply['error']}")
        return reply

    def command(self, cmd: str, timeout: float = 600, **args: Any) -> dict[str, Any]:
        """Run a command in the child (e.g. ``mutate``) and return its JSON answer."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self.proc.stdin.flush()
        return self._reply(timeout)

    def count(self, table: str = "account") -> int:
        """Rows of ``table`` in the emulator now."""
        return int(self.command("count", table=table)["count"])

    def memory_mb(self) -> dict[str, float]:
        """Current and peak RSS of the emulator child."""
        return proc_memory_mb(self.proc.pid)

    def close(self) -> None:
        """Stop the child (closing stdin asks it to stop; it is killed after 15 s)."""
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def seed_accounts(store: Any, accounts: int, contacts: int) -> dict[str, int]:
    """Seed through the store's bulk insert path (``seed`` batches ``insert_many``); rows per table."""
    from dynasync.emulator.seed import seed

    seed(store, accounts=accounts, contacts=contacts)
    return {"account": store.count("account"), "contact": store.count("contact")}


def _command(emulator: Any, request: Mapping[str, Any], extra: list[Any]) -> dict[str, Any]:
    """Child-side commands: ``memory``, ``count``, ``mutate`` (update then delete the first rows by id) and
    ``serve_plain`` (a second, plain-HTTP server on the same emulator, for comparison)."""
    store = emulator.store
    cmd = request.get("cmd")
    if cmd == "serve_plain":
        from dynasync.emulator.server import EmulatorServer

        server = EmulatorServer(emulator, tls=False).start()
        extra.append(server)
        return {"api_url": server.api_url, "org_url": server.org_url, "authority": server.authority,
                "ca_path": None}  # fmt: skip
    if cmd == "memory":
        return proc_memory_mb(os.getpid())
    if cmd == "serve_static":
        url = _serve_static(int(request["size"]), bool(request["tls"]), extra)
        return {"url": url}
    if cmd == "handler_pages":
        return _handler_pages(
            emulator, str(request["base_url"]), str(request["query"]), int(request["pages"])
        )
    if cmd == "count":
        return {"count": store.count(str(request["table"]))}
    if cmd == "mutate":
        update, delete = int(request.get("update", 0)), int(request.get("delete", 0))
        # A new value per round, so that repeated mutations change the rows again.
        prefix = int(request.get("round", 1))
        rows = store.query("account", limit=update + delete, select=["accountid"])
        ids = [r["accountid"] for r in rows]
        with emulator.lock, store.transaction():
            since = store.version
            for i, row_id in enumerate(ids[:update]):
                store.update("account", row_id, {"telephone1": f"+{prefix}-555-{i:07d}"}, caller=None)
            for row_id in ids[update:]:
                store.delete("account", row_id, caller=None)
            upto = store.version
            # Deleting a parent account also updates its children (parentaccountid cleared): count what moved.
            changed = store.changed_rows("account", since=since, upto=upto, select=["accountid"])
            gone = store.deleted_ids("account", since=since, upto=upto)
        return {"updated": len(ids[:update]), "deleted": len(ids[update:]), "changed_rows": len(changed),
                "deleted_rows": len(gone)}  # fmt: skip
    return {"error": f"unknown command {cmd!r}"}


class _StaticServer:
    """uvicorn configured like ``EmulatorServer`` answering every request with the same body (transport floor)."""

    def __init__(self, size: int, tls: bool) -> None:
        import socket
        import threading

        import uvicorn

        from dynasync.emulator.tls import ensure_ca

        body = b'{"value":"' + b"x" * max(size - 13, 0) + b'"}'

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})  # fmt: skip
            await send({"type": "http.response.body", "body": body})

        material = ensure_ca(os.environ["BENCH_TLS_DIR"]) if tls else None
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", http="h11",
            ssl_certfile=str(material.server_cert_path) if material else None,
            ssl_keyfile=str(material.server_key_path) if material else None,
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _serve_static(size: int, tls: bool, extra: list[Any]) -> str:
    server = _StaticServer(size, tls)
    extra.append(server)
    return server.url


def _handler_pages(emulator: Any, base_url: str, query: str, pages: int) -> dict[str, Any]:
    """Time the Web API handler alone (query, row conversion, JSON encoding; no HTTP) over the first pages."""
    from dynasync.emulator.http_types import ODataRequest
    from dynasync.emulator.webapi import handle

    app = emulator.default_app
    user = emulator.store.app_user(app.client_id)
    headers = {"prefer": f"odata.maxpagesize={PAGE}", "accept": "application/json"}
    out: dict[str, list[Any]] = {"seconds": [], "cpu": [], "bytes": [], "rows": [], "parse_seconds": []}
    path, query_text = "accounts", query
    for _ in range(pages):
        request = ODataRequest(method="GET", path=path, query=query_text, headers=dict(headers), body=b"",
                               base_url=base_url, caller_id=str(user["systemuserid"]))  # fmt: skip
        started, cpu = time.perf_counter(), time.thread_time()
        with emulator.lock:
            response = handle(emulator, request)
        out["seconds"].append(time.perf_counter() - started)
        out["cpu"].append(time.thread_time() - cpu)
        if response.status != 200:
            raise RuntimeError(f"handler answered {response.status}: {response.body[:300]!r}")
        started = time.perf_counter()
        body = orjson.loads(response.body)
        out["parse_seconds"].append(time.perf_counter() - started)
        out["bytes"].append(len(response.body))
        out["rows"].append(len(body["value"]))
        link = body.get("@odata.nextLink")
        if not link:
            break
        path, _, query_text = link[len(base_url) :].partition("?")
    return out


def _serve_child(argv: Sequence[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.emuproc")
    parser.add_argument("--accounts", type=int, required=True)
    parser.add_argument("--contacts", type=int, default=0)
    parser.add_argument("--path")
    parser.add_argument("--tls-dir", required=True)
    parser.add_argument("--tls", dest="tls", action="store_true", default=True)
    parser.add_argument("--plain", dest="tls", action="store_false")
    opts = parser.parse_args(argv)
    os.environ["BENCH_TLS_DIR"] = opts.tls_dir

    from dynasync.emulator.app import Emulator
    from dynasync.emulator.server import EmulatorServer

    emulator = Emulator.create(opts.path, seed=0)
    started = time.perf_counter()
    rows = seed_accounts(emulator.store, opts.accounts, opts.contacts)
    seconds = time.perf_counter() - started
    with EmulatorServer(emulator, tls=opts.tls, tls_dir=opts.tls_dir) as server:
        info = server.describe()
        keys = ("org_url", "api_url", "authority", "client_id", "client_secret", "ca_path")
        print(json.dumps({**{k: info[k] for k in keys}, "seed_seconds": seconds, "rows": rows,
                          "pid": os.getpid()}), flush=True)  # fmt: skip
        extra: list[Any] = []
        for line in sys.stdin:
            try:
                answer = _command(emulator, json.loads(line), extra)
            except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the benchmark
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(answer, default=str), flush=True)
        # stdin closed: the parent is done. The data is throw-away, so leave at once rather than wait for
        # uvicorn's graceful shutdown (which waits on clients' idle keep-alive connections).
        sys.stdout.flush()
        os._exit(0)


if __name__ == "__main__":
    _serve_child(sys.argv[1:])
