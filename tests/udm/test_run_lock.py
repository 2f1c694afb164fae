"""One sync run at a time per UDM, on SQLite and PostgreSQL; a killed holder leaves no lock behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from db_targets import Target
from dynasync.errors import SyncBusyError
from dynasync.udm.store import UdmStore, open_store


def test_a_second_run_is_refused_naming_the_holder(opener: Callable[[], UdmStore]) -> None:
    first, second = opener(), opener()
    with first.run_lock():
        with pytest.raises(SyncBusyError) as info, second.run_lock():
            pass
        assert f"pid {os.getpid()} on {socket.gethostname()}, since " in info.value.message
        assert "this run did nothing" in info.value.message and "Wait for it" in (info.value.remedy or "")
    with second.run_lock(), pytest.raises(SyncBusyError), first.run_lock():  # released at the end: free
        pass


def test_a_killed_holder_leaves_no_lock(target: Target) -> None:
    holder = textwrap.dedent(
        f"""
        import sys, time
        from dynasync.udm.store import open_store
        store = open_store({target.url!r}, schema={target.schema!r})
        with store.run_lock():
            print("locked", flush=True)
            time.sleep(60)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "locked"
        store = open_store(target.url, schema=target.schema)
        try:
            with pytest.raises(SyncBusyError, match=f"pid {child.pid} on "), store.run_lock():
                pass
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
            # The OS drops a file lock at once; a PostgreSQL backend notices its client's end within moments.
            deadline = time.monotonic() + 10
            while True:
                try:
                    with store.run_lock():
                        break
                except SyncBusyError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        finally:
            store.close()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_an_in_memory_store_needs_no_lock() -> None:
    store = open_store("sqlite://")
    try:
        with store.run_lock(), store.run_lock():
            pass
    finally:
        store.close()


def test_a_lock_session_the_server_ended_is_let_go_without_an_error(target: Target) -> None:
    if target.kind != "postgresql":
        pytest.skip("a PostgreSQL session of its own holds the lock; a file lock has no session to lose")
    store = open_store(target.url, schema=target.schema)
    admin = target.engine()
    try:
        with store.run_lock(), admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name LIKE 'dynasync sync %' AND pid <> pg_backend_pid()"
                )
            )
            conn.commit()
        with store.run_lock():  # free again: the server dropped the lock with the session
            pass
    finally:
        store.close()
        admin.dispose()
