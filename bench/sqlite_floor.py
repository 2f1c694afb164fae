"""The SQLite floor of a full sync: the rows a sync stored, inserted again from prebuilt tuples, nothing else.

After a full sync, every row it wrote for one table (the entity rows, their links and their ``created`` log
events) is read back into memory; a new database with the same tables, indexes and pragmas then receives them
page by page, one transaction per page, the way the sync commits. The CPU this costs per row is what any sync
with this store design pays before doing any work of its own (HTTP, JSON, conversion, mapping, bookkeeping).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from collections.abc import Sequence

from dynasync.udm.store import SQLITE_CACHE_KIB
from dynasync.udm.store_checkpoint import AUTOCHECKPOINT_PAGES

_TABLES = ("ds_links", "ds_log")


def replay_cpu_per_row(udm_path: str, entity_table: str, *, page: int = 5000) -> float:
    """Insert again what the sync stored for ``entity_table``; return the process CPU microseconds per row."""
    with sqlite3.connect(udm_path) as source:
        schema = [
            sql
            for (sql,) in source.execute(
                "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND type IN ('table', 'index') "
                "AND tbl_name IN (?, ?, ?) ORDER BY type DESC",
                (entity_table, *_TABLES),
            )
        ]
        tables = {
            name: source.execute(f'SELECT * FROM "{name}"').fetchall() for name in (entity_table, *_TABLES)
        }
    rows = len(tables[entity_table])
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
        target = sqlite3.connect(os.path.join(tmp, "floor.db"), isolation_level=None)
        try:
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", f"wal_autocheckpoint={AUTOCHECKPOINT_PAGES}",
                           f"cache_size=-{SQLITE_CACHE_KIB}"):  # fmt: skip
                target.execute(f"PRAGMA {pragma}")
            for sql in schema:
                target.execute(sql)
            inserts = {name: _insert_sql(name, data) for name, data in tables.items() if data}
            started = time.process_time()
            for start in range(0, rows, page):
                target.execute("BEGIN IMMEDIATE")
                for name, sql in inserts.items():
                    part = tables[name][start : start + page]
                    if part:
                        target.executemany(sql, part)
                target.execute("COMMIT")
            target.execute("PRAGMA wal_checkpoint(PASSIVE)")  # the sync's checkpointer does this work too
            spent = time.process_time() - started
        finally:
            target.close()
    return spent / rows * 1e6 if rows else 0.0


def _insert_sql(table: str, data: Sequence[Sequence[object]]) -> str:
    marks = ", ".join("?" for _ in data[0])
    return f'INSERT INTO "{table}" VALUES ({marks})'
