"""Throughput of ``UdmStore.apply_upserts`` on synthetic 23-field account pages (run by hand, not by pytest).

Usage::

    .venv/bin/python -m tests.udm.apply_bench [--rows 100000] [--page 5000] [--db sqlite|postgresql|both]
        [--style engine|raw|both]

Phases, each over all rows in pages (one transaction per page, like the engine): creates (first full load),
unchanged re-delivery, then a re-delivery where 1% of the rows changed two fields.
Styles: ``engine`` passes what the engine passes (per-field fingerprint hash; a linked row carries only the
fields whose fingerprint changed), ``raw`` passes full values and no hash (the store hashes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from dynasync.engine import echo
from dynasync.udm.model import FieldType, UdmEntity, UdmField
from dynasync.udm.store import IncomingRow, UdmStore, open_store

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
T0 = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
S = FieldType.STRING


def entity() -> UdmEntity:
    """A 23-field account entity shaped like the default Dynamics account mapping."""
    fields = [
        UdmField("name", S, max_length=160),
        UdmField("account_number", S, max_length=20),
        UdmField("email", S, max_length=100),
        UdmField("email2", S, max_length=100),
        UdmField("phone", S, max_length=50),
        UdmField("phone2", S, max_length=50),
        UdmField("fax", S, max_length=50),
        UdmField("website", S, max_length=200),
        UdmField("description", FieldType.TEXT),
        UdmField("city", S, max_length=80),
        UdmField("country", S, max_length=80),
        UdmField("postal_code", S, max_length=20),
        UdmField("revenue", FieldType.DECIMAL),
        UdmField("credit_limit", FieldType.DECIMAL),
        UdmField("number_of_employees", FieldType.INTEGER),
        UdmField("credit_on_hold", FieldType.BOOLEAN),
        UdmField("do_not_email", FieldType.BOOLEAN),
        UdmField("category", FieldType.CHOICE),
        UdmField("industry", FieldType.CHOICE),
        UdmField("relationship_type", FieldType.CHOICE),
        UdmField("created_on", FieldType.DATETIME),
        UdmField("modified_on", FieldType.DATETIME),
        UdmField("regions", FieldType.MULTICHOICE),
    ]
    return UdmEntity("Account", {f.name: f for f in fields}, match_keys=("account_number",))


def values(i: int, version: int = 0) -> dict[str, Any]:
    """Mapped values of synthetic account ``i`` (``version`` > 0 changes two fields)."""
    return {
        "name": f"Account {i} v{version}",
        "account_number": f"AN-{i:07d}",
        "email": f"info{i}@example.com",
        "email2": None,
        "phone": f"+1 555 {i:07d}",
        "phone2": None,
        "fax": None,
        "website": f"https://a{i}.example.com",
        "description": f"Synthetic account number {i}, seeded for the apply benchmark.",
        "city": "Seattle",
        "country": "US",
        "postal_code": f"{98000 + i % 1000}",
        "revenue": decimal.Decimal(f"{i * 13 % 1000000}.{i % 100:02d}") + version,
        "credit_limit": decimal.Decimal("50000.00"),
        "number_of_employees": i % 5000,
        "credit_on_hold": i % 7 == 0,
        "do_not_email": False,
        "category": "Preferred Customer" if i % 2 else "Standard",
        "industry": "Accounting",
        "relationship_type": "Customer",
        "created_on": T0 + dt.timedelta(seconds=i),
        "modified_on": T0 + dt.timedelta(seconds=i, days=version),
        "regions": "emea;na" if i % 3 else None,
    }


def pages(n: int, page: int, style: str, phase: str, previous: dict[int, str]) -> Iterator[list[IncomingRow]]:
    """Yield the pages of a phase, each built just before it is applied (and outside the timed part).

    ``previous`` keeps each row's last fingerprint as the text a link holds, as the engine reads it.
    """
    for start in range(0, n, page):
        rows: list[IncomingRow] = []
        for i in range(start, min(n, start + page)):
            version = 1 if phase == "update" and i % 100 == 0 else 0
            vals = values(i, version)
            when = vals["modified_on"]
            if style == "raw":
                rows.append(IncomingRow(f"ext-{i}", vals, modified_on=when, external_version=str(version)))
                continue
            fp = echo.fingerprint(vals)
            base = echo.decode(previous.get(i))
            sent = vals if not base else {k: v for k, v in vals.items() if base.get(k) != fp[k]}
            merged = echo.encode({**base, **fp})
            previous[i] = merged
            rows.append(
                IncomingRow(f"ext-{i}", sent, modified_on=when, external_version=str(version), hash=merged)
            )
        yield rows


def run_phase(store: UdmStore, built: Iterable[Sequence[IncomingRow]]) -> tuple[float, float, dict[str, int]]:
    """Apply pages, one transaction each; return (rows/s of wall time, rows/s of this process's CPU, counts).

    Only the transactions are timed. The CPU rate is the steadier figure on a shared machine; on SQLite it
    includes the database's own work, on PostgreSQL the server's work is not in it.
    """
    counts: dict[str, int] = {}
    total = 0
    wall = cpu = 0.0
    for rows in built:
        started, cpu_started = time.perf_counter(), time.process_time()
        with store.transaction() as tx:
            result = tx.apply_upserts("Account", "dynamics", "account", rows, run_id="bench")
            tx.put_cursor("dynamics", "account", {"n": len(rows)})
        wall += time.perf_counter() - started
        cpu += time.process_time() - cpu_started
        total += len(rows)
        for k, v in result.counts().items():
            counts[k] = counts.get(k, 0) + v
    return total / wall, total / cpu, counts


def bench(url: str, schema: str | None, n: int, page: int, style: str) -> dict[str, float]:
    """Run the three phases on one database; return rows/s per phase."""
    store = open_store(url, schema=schema)
    try:
        store.ensure_entity(entity())
        previous: dict[int, str] = {}
        out: dict[str, float] = {}
        for phase in ("create", "unchanged", "update"):
            built = pages(n, page, style, phase, previous)
            rate, cpu_rate, counts = run_phase(store, built)
            out[phase] = rate
            print(f"  {phase:<10} {rate:>9.0f} rows/s  (CPU: {cpu_rate:>7.0f} rows/s)  {counts}", flush=True)
        assert store.count("Account") == n
        return out
    finally:
        store.close()


def main() -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--page", type=int, default=5000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--style", choices=["engine", "raw", "both"], default="both")
    args = parser.parse_args()
    dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    styles = ["engine", "raw"] if args.style == "both" else [args.style]
    for db in dbs:
        for style in styles:
            print(f"{db} / {style}: {args.rows} rows in pages of {args.page}", flush=True)
            if db == "sqlite":
                with tempfile.TemporaryDirectory() as tmp:
                    bench(f"sqlite:///{tmp}/udm.db", None, args.rows, args.page, style)
                continue
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
            try:
                bench(PG_URL, schema, args.rows, args.page, style)
            finally:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()


if __name__ == "__main__":
    main()
