"""Shared benchmark plumbing: results, machine facts, memory readings, the emulator child process, a bare pager."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import resource
import select
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

REPO = Path(__file__).resolve().parent.parent
PAGE = 5000

# The account columns the seeder fills (plus system columns every row has): what a sync would $select.
ACCOUNT_SELECT = (
    "accountid,name,accountnumber,emailaddress1,telephone1,fax,websiteurl,description,revenue,creditlimit,"
    "numberofemployees,industrycode,customertypecode,accountcategorycode,creditonhold,donotemail,donotphone,"
    "_ownerid_value,createdon,modifiedon,new_regions,address1_line1,address1_city,address1_stateorprovince,"
    "address1_postalcode,address1_country,address1_latitude,address1_longitude,_primarycontactid_value,"
    "_parentaccountid_value,statecode,statuscode,versionnumber,_transactioncurrencyid_value"
)


# -- results ---------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Metric:
    """One measured number; ``target`` (text such as ">= 30000") makes it a pass/fail check."""

    name: str
    value: float
    unit: str = ""
    target: str | None = None
    passed: bool | None = None


@dataclass(slots=True)
class Result:
    """The outcome of one benchmark run, as written to ``docs/benchmarks.md``."""

    name: str
    title: str
    metrics: list[Metric] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    date: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"))
    machine: dict[str, Any] = field(default_factory=lambda: machine())
    error: str | None = None
    previous: str | None = None  # headline of the run this one replaced in docs/benchmarks.md

    def add(self, name: str, value: float, unit: str = "", *, at_least: float | None = None,
            at_most: float | None = None) -> Metric:  # fmt: skip
        """Record a metric; ``at_least``/``at_most`` make it a target."""
        target, passed = None, None
        if at_least is not None:
            target, passed = f">= {_num(at_least)}", value >= at_least
        elif at_most is not None:
            target, passed = f"<= {_num(at_most)}", value <= at_most
        metric = Metric(name, value, unit, target, passed)
        self.metrics.append(metric)
        return metric

    @property
    def passed(self) -> bool | None:
        """False if any target was missed or the run failed, True if all were met, None if none were set."""
        if self.error:
            return False
        checks = [m.passed for m in self.metrics if m.passed is not None]
        return all(checks) if checks else None

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (read back by :meth:`from_json`)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Result:
        """Rebuild a result written by :meth:`to_json`."""
        body = dict(data)
        body["metrics"] = [Metric(**m) for m in body.get("metrics", [])]
        return cls(**body)


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:g}"


def machine() -> dict[str, Any]:
    """nproc, RAM and Python version of this machine."""
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "nproc": os.cpu_count() or 0,
        "ram_gb": round(ram / 2**30, 1),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "load": [round(x, 1) for x in os.getloadavg()],
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


# -- memory ----------------------------------------------------------------------------------------------------


def proc_memory_mb(pid: int) -> dict[str, float]:
    """``rss`` (current) and ``peak`` (VmHWM) of a process in MiB, from /proc."""
    out = {"rss": 0.0, "peak": 0.0}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            out["rss"] = int(line.split()[1]) / 1024
        elif line.startswith("VmHWM:"):
            out["peak"] = int(line.split()[1]) / 1024
    return out


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_peak_rss_mb() -> float:
    """Peak RSS of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the emulator in a child process ---------------------------------------------------------------------------


@dataclass(slots=True)
class Served:
    """What the emulator child reports once it is listening."""

    org_url: str
    api_url: str
    authority: str
    client_id: str
    client_secret: str
    ca_path: str | None
    seed_seconds: float
    rows: dict[str, int]
    pid: int


class EmulatorProcess:
    """An emulator (``EmulatorServer``, 127.0.0.1) seeded and served by a child process; a context manager.

    The child keeps the emulator's CPU and memory apart from the measured client, like a real remote service.
    It reads JSON commands on stdin (see :func:`_command`) and stops when stdin closes.
    """

    def __init__(self, *, accounts: int, contacts: int = 0, path: str | None = None, tls: bool = True,
                 tls_dir: str, start_timeout: float = 900) -> None:  # fmt: skip
        args = [sys.executable, "-m", "bench.common", "--accounts", str(accounts), "--contacts", str(contacts),
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
        rows = store.query("account", limit=update + delete, select=["accountid"])
        ids = [r["accountid"] for r in rows]
        with emulator.lock, store.transaction():
            for i, row_id in enumerate(ids[:update]):
                store.update("account", row_id, {"telephone1": f"+1-555-{i:07d}"}, caller=None)
            for row_id in ids[update:]:
                store.delete("account", row_id, caller=None)
        return {"updated": len(ids[:update]), "deleted": len(ids[update:])}
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
    out: dict[str, list[Any]] = {"seconds": [], "bytes": [], "rows": [], "parse_seconds": []}
    path, query_text = "accounts", query
    for _ in range(pages):
        request = ODataRequest(method="GET", path=path, query=query_text, headers=dict(headers), body=b"",
                               base_url=base_url, caller_id=str(user["systemuserid"]))  # fmt: skip
        started = time.perf_counter()
        with emulator.lock:
            response = handle(emulator, request)
        out["seconds"].append(time.perf_counter() - started)
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

    parser = argparse.ArgumentParser(prog="python -m bench.common")
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
        for other in extra:
            other.stop()
    emulator.store.close()


# -- a bare Web API client -------------------------------------------------------------------------------------


def bare_client(served: Served, timeout: float = 120) -> httpx.Client:
    """Plain httpx (HTTP/1.1 keep-alive) trusting the emulator's CA."""
    verify: ssl.SSLContext | bool = (
        ssl.create_default_context(cafile=served.ca_path) if served.ca_path else False
    )
    return httpx.Client(verify=verify, timeout=timeout)


def client_credentials_token(client: httpx.Client, served: Served) -> str:
    """A bearer token from the emulator's Entra token endpoint (client credentials, as a daemon app gets one)."""
    response = client.post(
        f"{served.authority}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": served.client_id,
            "client_secret": served.client_secret,
            "scope": f"{served.org_url}/.default",
        },
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


@dataclass(slots=True)
class PagingRun:
    """What paging through a collection measured."""

    rows: int = 0
    pages: int = 0
    bytes: int = 0
    seconds: float = 0.0
    client_cpu: float = 0.0  # CPU seconds of this (client) process while paging
    server_cpu: float = 0.0  # CPU seconds of the emulator process while paging (when its pid is known)
    page_seconds: list[float] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        """Rows received per second of wall time."""
        return self.rows / self.seconds if self.seconds else 0.0

    @property
    def rows_per_cpu_second(self) -> float:
        """Rows per CPU second of client + emulator: the rate on an idle machine, as paging is sequential."""
        cpu = self.client_cpu + self.server_cpu
        return self.rows / cpu if cpu else 0.0


def iter_pages(client: httpx.Client, url: str, token: str, *, maxpagesize: int = PAGE,
               max_pages: int | None = None) -> Iterator[tuple[dict[str, Any], int, float]]:  # fmt: skip
    """GET ``url`` then each ``@odata.nextLink``; yields (parsed body, body bytes, seconds of that page)."""
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json",
        "OData-MaxVersion": "4.0",
        "OData-Version": "4.0",
        "Prefer": f"odata.maxpagesize={maxpagesize}",
    }
    pages = 0
    next_url: str | None = url
    while next_url and (max_pages is None or pages < max_pages):
        started = time.perf_counter()
        response = client.get(next_url, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"GET {next_url[:120]} -> {response.status_code}: {response.text[:300]}")
        body: dict[str, Any] = orjson.loads(response.content)
        pages += 1
        yield body, len(response.content), time.perf_counter() - started
        next_url = body.get("@odata.nextLink")


def fetch_static(served: Served, url: str, times: int) -> list[float]:
    """Seconds per GET of a static body (after one warm-up request), on one keep-alive connection."""
    seconds: list[float] = []
    with bare_client(served) as client:
        client.get(url).raise_for_status()
        for _ in range(times):
            started = time.perf_counter()
            client.get(url).raise_for_status()
            seconds.append(time.perf_counter() - started)
    return seconds


def page_all(client: httpx.Client, url: str, token: str, *, keep_ids: str | None = None,
             max_pages: int | None = None, server_pid: int | None = None) -> PagingRun:  # fmt: skip
    """Page through a collection and count rows, pages and bytes (ids of column ``keep_ids`` kept)."""
    run = PagingRun()
    server_cpu = proc_cpu_seconds(server_pid) if server_pid else 0.0
    client_cpu = time.process_time()
    started = time.perf_counter()
    for body, size, seconds in iter_pages(client, url, token, max_pages=max_pages):
        rows = body["value"]
        run.rows += len(rows)
        run.pages += 1
        run.bytes += size
        run.page_seconds.append(seconds)
        if keep_ids:
            run.ids.extend(r[keep_ids] for r in rows)
    run.seconds = time.perf_counter() - started
    run.client_cpu = time.process_time() - client_cpu
    if server_pid:
        run.server_cpu = proc_cpu_seconds(server_pid) - server_cpu
    return run


if __name__ == "__main__":
    _serve_child(sys.argv[1:])
