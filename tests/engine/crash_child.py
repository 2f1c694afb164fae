"""The child process of the crash tests: runs one sync and dies (os._exit) at a chosen point."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from dynasync.clock import FrozenClock

from .harness import START, World, make_spec

CRASH_EXIT = 77


def run_child(
    folder: str, crash_at: int, clock_offset: int, deletes_from_udm: bool, slow: float = 0.0
) -> None:
    """Sync once; count crash points (pages served, store commits, ops written) and exit hard at ``crash_at``."""
    tmp = Path(folder)
    clock = FrozenClock(START + dt.timedelta(seconds=clock_offset))
    world = World(
        tmp,
        spec=make_spec(deletes_from_udm=deletes_from_udm),
        page_size=7,
        fake_path=tmp / "fake.json",
        store_path=tmp / "udm.db",
        clock=clock,
    )
    points = 0

    def point(*_: Any) -> None:
        nonlocal points
        points += 1
        if slow:
            import time

            time.sleep(slow)
        if points == crash_at:
            os._exit(CRASH_EXIT)  # no cleanup, no commit: what SIGKILL leaves behind

    world.fake.on_page = point
    world.fake.on_write = point
    sa.event.listen(world.store.engine, "commit", point)  # fires before the COMMIT reaches SQLite
    world.engine.run_once()
    world.close()
    os._exit(0)
