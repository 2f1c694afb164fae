"""Shared benchmark plumbing: results, machine facts, CPU and memory readings, a bare Web API pager."""

from __future__ import annotations

import datetime as dt
import os
import platform
import resource
import ssl
import time
from collections.abc import Iterator, Mapping
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

    def add(
        self,
        name: str,
        value: float,
        unit: str = "",
        *,
        at_least: float | None = None,
        at_most: float | None = None,
        equals: float | None = None,
    ) -> Metric:
        """Record a metric; ``at_least``/``at_most``/``equals`` make it a target."""
        target, passed = None, None
        if at_least is not None:
            target, passed = f">= {_num(at_least)}", value >= at_least
        elif at_most is not None:
            target, passed = f"<= {_num(at_most)}", value <= at_most
        elif equals is not None:
            target, passed = f"= {_num(equals)}", value == equals
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


def iter_pages(
    client: httpx.Client,
    url: str,
    token: str,
    *,
    maxpagesize: int = PAGE,
    max_pages: int | None = None,
    prefer: str | None = None,
) -> Iterator[tuple[dict[str, Any], int, float]]:
    """GET ``url`` then each ``@odata.nextLink``; yields (parsed body, body bytes, seconds of that page).

    ``prefer`` replaces the default ``Prefer: odata.maxpagesize=<maxpagesize>`` header.
    """
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json",
        "OData-MaxVersion": "4.0",
        "OData-Version": "4.0",
        "Prefer": prefer or f"odata.maxpagesize={maxpagesize}",
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


def page_all(
    client: httpx.Client,
    url: str,
    token: str,
    *,
    keep_ids: str | None = None,
    max_pages: int | None = None,
    server_pid: int | None = None,
    prefer: str | None = None,
) -> PagingRun:
    """Page through a collection and count rows, pages and bytes (ids of column ``keep_ids`` kept)."""
    run = PagingRun()
    server_cpu = proc_cpu_seconds(server_pid) if server_pid else 0.0
    client_cpu = time.process_time()
    started = time.perf_counter()
    for body, size, seconds in iter_pages(client, url, token, max_pages=max_pages, prefer=prefer):
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
