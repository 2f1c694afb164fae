"""One sync run at a time per UDM: a file lock beside a SQLite store, a session advisory lock on PostgreSQL.

Two runs over one UDM (a cron job overlapping ``sync --every``, two machines on one PostgreSQL) would read the
same pages twice and could both write the same change back. The second run is refused instead, naming the
holder. Both locks belong to the holder's process or database session, so the operating system or the server
drops them when it dies: a crash never leaves a lock behind.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
from collections.abc import Iterator

import sqlalchemy as sa

from dynasync.errors import SyncBusyError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock; runs there are not serialised
    fcntl = None  # type: ignore[assignment]

# PostgreSQL: the lock key is derived from this text and the store's schema (several UDMs may share a database);
# the holder shows itself through its session's application_name, which other sessions can read.
_PG_KEY = "hashtext('dynasync sync ' || current_schema())"
_PG_NAME_PREFIX = "dynasync sync"


def holder_description() -> str:
    """Who holds the lock: this process, host and start time (shown to a run that is refused)."""
    return f"pid {os.getpid()} on {socket.gethostname()}, since {_utc(dt.datetime.now(dt.UTC))}"


def _utc(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@contextlib.contextmanager
def run_lock(engine: sa.Engine) -> Iterator[None]:
    """Hold the sync lock of the UDM behind ``engine`` for the block.

    Raises:
        SyncBusyError: another run holds it.
    """
    if engine.dialect.name == "postgresql":
        with _postgres_lock(engine):
            yield
        return
    database = engine.url.database
    if fcntl is None or not database or database == ":memory:":
        yield  # an in-memory store belongs to one process
        return
    with _file_lock(os.path.abspath(database) + ".sync-lock"):
        yield


@contextlib.contextmanager
def _file_lock(path: str) -> Iterator[None]:
    assert fcntl is not None
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode("utf-8", "replace").strip()
            raise _busy(holder or "another process", where=path) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder_description().encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # the file stays (removing it would race with a waiting run's open)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _postgres_lock(engine: sa.Engine) -> Iterator[None]:
    # A connection of its own, kept for the whole run: the lock lives as long as this session.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if not conn.execute(sa.text(f"SELECT pg_try_advisory_lock({_PG_KEY})")).scalar_one():
            holders = conn.execute(
                sa.text(
                    "SELECT application_name, backend_start FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name LIKE :prefix "
                    "AND pid <> pg_backend_pid()"
                ),
                {"prefix": f"{_PG_NAME_PREFIX} {_schema(conn)}: %"},
            ).all()
            named = [f"{str(name).split(': ', 1)[1]}, since {_utc(start)}" for name, start in holders]
            raise _busy(" / ".join(named) or "another session", where="PostgreSQL advisory lock")
        # application_name holds at most 63 characters: process and host; the session's start gives the time.
        name = f"{_PG_NAME_PREFIX} {_schema(conn)}: pid {os.getpid()} on {socket.gethostname()}"
        conn.execute(sa.text("SELECT set_config('application_name', :name, false)"), {"name": name[:63]})
        try:
            yield
        finally:
            try:
                conn.execute(sa.text(f"SELECT pg_advisory_unlock({_PG_KEY})"))
                conn.execute(sa.text("SELECT set_config('application_name', '', false)"))
            except sa.exc.DBAPIError:
                # The session is gone (a server restart, an idle timeout): the server dropped its lock with it.
                conn.invalidate()


def _schema(conn: sa.Connection) -> str:
    return str(conn.execute(sa.text("SELECT current_schema()")).scalar_one())


def _busy(holder: str, *, where: str) -> SyncBusyError:
    return SyncBusyError(
        f"Another dynasync sync is running on this UDM ({holder}; lock: {where}); this run did nothing.",
        remedy="Wait for it to finish (with --every, the next run tries again), or stop it; running both would "
        "read and write the same changes twice.",
    )
