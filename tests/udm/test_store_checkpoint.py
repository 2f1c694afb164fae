"""Background WAL checkpoints of SQLite file stores: they run after write commits and keep the WAL small."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from dynasync.udm.model import FieldType, UdmEntity, UdmField
from dynasync.udm.store import UdmStore, open_store
from dynasync.udm.store_types import IncomingRow

ENTITY = UdmEntity(name="Thing", fields={"name": UdmField("name", FieldType.STRING, max_length=400)})


def _wait_for(condition: Callable[[], bool], seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def _write_pages(store: UdmStore, pages: int, rows: int, *, first: int = 0) -> None:
    for page in range(first, first + pages):
        batch = [IncomingRow(external_id=f"{page}-{i}", values={"name": "x" * 300}) for i in range(rows)]
        store.apply_upserts("Thing", "crm", "thing", batch)


def test_write_commits_trigger_a_background_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "udm.db"
    store = open_store(f"sqlite:///{path}")
    try:
        store.ensure_entity(ENTITY)
        checkpointer = store._checkpointer
        assert checkpointer is not None
        before = checkpointer.checkpoints
        _write_pages(store, 3, 500)
        assert _wait_for(lambda: checkpointer.checkpoints > before), "no checkpoint ran after the writes"
    finally:
        store.close()
    assert not checkpointer._thread or not checkpointer._thread.is_alive()
    # Closing the last connection folds the WAL into the file; the data is all there on reopening.
    with open_store(f"sqlite:///{path}") as again:
        assert again.count("Thing") == 1500


def test_the_wal_stays_bounded_during_a_long_load(tmp_path: Path) -> None:
    path = tmp_path / "udm.db"
    with open_store(f"sqlite:///{path}") as store:
        store.ensure_entity(ENTITY)
        checkpointer = store._checkpointer
        assert checkpointer is not None
        sizes = []
        for page in range(8):
            _write_pages(store, 1, 2000, first=page)
            seen = checkpointer.checkpoints

            def ran(seen: int = seen) -> bool:
                return checkpointer.checkpoints > seen

            _wait_for(ran)
            sizes.append(os.path.getsize(str(path) + "-wal"))
        # Without checkpoints the WAL would grow by one transaction's pages per write (eight times its first size
        # here; the connections' own backstop waits for 64 MiB); restarted after each checkpoint it keeps the
        # size of one transaction.
        assert sizes[-1] < 3 * sizes[0], sizes


def test_memory_stores_have_no_checkpointer() -> None:
    with open_store("sqlite://") as store:
        assert store._checkpointer is None
