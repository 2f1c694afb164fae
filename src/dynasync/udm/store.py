"""Opening the UDM store (SQLite or PostgreSQL via SQLAlchemy Core) and its transactions.

Usage::

    store = open_store("sqlite:///data/udm.db")
    store.ensure_entity(account_entity)
    with store.transaction() as tx:
        result = tx.apply_upserts("account", "dynamics", "account", rows, run_id=run)
        tx.put_cursor("dynamics", "account", batch.cursor)   # commits with the rows, or not at all
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any, Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.pool import StaticPool

from dynasync.clock import Clock, SystemClock
from dynasync.errors import StoreError, UdmUnavailableError
from dynasync.udm import migrations, run_lock, store_sql_edits
from dynasync.udm.store_api import StoreOps
from dynasync.udm.store_checkpoint import AUTOCHECKPOINT_PAGES, WalCheckpointer
from dynasync.udm.store_session import Session, StoreCore
from dynasync.udm.store_types import (
    ApplyResult,
    EntityChange,
    FieldChange,
    FieldLog,
    FieldPolicy,
    IncomingRow,
    Link,
    LogEvent,
    QuarantinedRecord,
    RowOutcome,
    RunInfo,
    SyncState,
    WriteLogEntry,
    latest_update_wins,
)

__all__ = [
    "ApplyResult",
    "EntityChange",
    "FieldChange",
    "FieldLog",
    "FieldPolicy",
    "IncomingRow",
    "Link",
    "LogEvent",
    "QuarantinedRecord",
    "RowOutcome",
    "RunInfo",
    "StoreTx",
    "SyncState",
    "UdmStore",
    "WriteLogEntry",
    "latest_update_wins",
    "open_store",
]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Page cache per SQLite connection (KiB): a full load inserts into several indexes keyed by random external ids,
# which miss the default 2 MiB cache on every row once the tables grow.
SQLITE_CACHE_KIB = 32_768


class StoreTx(StoreOps):
    """One open transaction: every store operation, all committed together when the ``with`` block ends."""

    def __init__(self, session: Session) -> None:
        self._session: Session | None = session

    def _live(self) -> Session:
        if self._session is None:
            raise StoreError("this UDM store transaction has ended; open a new one with store.transaction()")
        return self._session

    def _read(self, fn: Callable[Concatenate[Session, P], R], *args: P.args, **kwargs: P.kwargs) -> R:
        return fn(self._live(), *args, **kwargs)

    def _write(self, fn: Callable[Concatenate[Session, P], R], *args: P.args, **kwargs: P.kwargs) -> R:
        return fn(self._live(), *args, **kwargs)

    def _iterate(
        self, fn: Callable[Concatenate[Session, P], Iterator[T]], *args: P.args, **kwargs: P.kwargs
    ) -> Iterator[T]:
        return fn(self._live(), *args, **kwargs)

    @property
    def connection(self) -> sa.Connection:
        """The SQLAlchemy connection of this transaction (for SQL beyond this API, e.g. UDM queries)."""
        return self._live().conn


_WRITER_UP = "UPDATE ds_writer SET active = 1 WHERE id = 1"
_WRITER_DOWN = "UPDATE ds_writer SET active = 0 WHERE id = 1"


class UdmStore(StoreOps):
    """The UDM store. Each operation called on the store itself runs in its own short transaction."""

    def __init__(self, engine: sa.Engine, clock: Clock, checkpointer: WalCheckpointer | None = None) -> None:
        self._core = StoreCore(engine=engine, clock=clock)
        self._closed = False
        self._checkpointer = checkpointer

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine (users may query the ``udm_*`` tables with it)."""
        return self._core.engine

    @property
    def dialect(self) -> str:
        """The dialect name: "sqlite" or "postgresql"."""
        return self._core.dialect

    def run_lock(self) -> contextlib.AbstractContextManager[None]:
        """Hold this UDM's sync lock for a block (one sync run at a time; see :mod:`.run_lock`).

        Raises:
            SyncBusyError: another run holds it.
        """
        return run_lock.run_lock(self._core.engine)

    def schema_version(self) -> int:
        """Return the highest applied migration version."""
        with self._core.engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT max(version) FROM ds_schema_version")).scalar_one())

    @contextlib.contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[StoreTx]:
        """Open a transaction; it commits when the block exits normally and rolls back on any exception.

        Args:
            write: On SQLite, take the write lock at the start (``BEGIN IMMEDIATE``) so that a writer never
                fails half-way on a lock upgrade; pass False for read-only work.
        """
        if self._closed:
            raise StoreError("the UDM store is closed")
        conn = self._core.engine.connect()
        tx: StoreTx | None = None
        try:
            conn.execution_options(dynasync_begin="BEGIN IMMEDIATE" if write else "BEGIN")
            trans = conn.begin()
            session = Session(conn, self._core)
            tx = StoreTx(session)
            flagged = write and self._core.writer_flag
            if flagged:
                # The SQL-edit triggers leave the store's own writes alone (store_sql_edits); no other session
                # ever sees the flag raised, since it is lowered again before the commit.
                conn.exec_driver_sql(_WRITER_UP)
            try:
                yield tx
                if flagged:
                    conn.exec_driver_sql(_WRITER_DOWN)
            except BaseException:
                trans.rollback()
                raise
            try:
                trans.commit()
            except sa.exc.SQLAlchemyError as exc:
                raise StoreError(f"the UDM store could not commit: {exc}") from exc
            if write and self._checkpointer is not None:
                self._checkpointer.notify()
            if session.pending:
                with self._core.lock:
                    self._core.entities.update(session.pending)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"UDM store operation failed: {exc.__class__.__name__}: {exc}") from exc
        finally:
            if tx is not None:
                tx._session = None
            conn.close()

    def _read(self, fn: Callable[Concatenate[Session, P], R], *args: P.args, **kwargs: P.kwargs) -> R:
        with self.transaction(write=False) as tx:
            return fn(tx._live(), *args, **kwargs)

    def _write(self, fn: Callable[Concatenate[Session, P], R], *args: P.args, **kwargs: P.kwargs) -> R:
        with self.transaction(write=True) as tx:
            return fn(tx._live(), *args, **kwargs)

    def _iterate(
        self, fn: Callable[Concatenate[Session, P], Iterator[T]], *args: P.args, **kwargs: P.kwargs
    ) -> Iterator[T]:
        with self.transaction(write=False) as tx:
            yield from fn(tx._live(), *args, **kwargs)

    def close(self) -> None:
        """Dispose of all connections; the store cannot be used afterwards."""
        if not self._closed:
            self._closed = True
            if self._checkpointer is not None:
                self._checkpointer.close()
            self._core.engine.dispose()

    def __enter__(self) -> UdmStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        # The URL is shown without its password.
        return f"UdmStore({self._core.engine.url.render_as_string(hide_password=True)!r})"


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    database = url.database or ""
    memory = database in ("", ":memory:")
    if not memory:
        folder = os.path.dirname(os.path.abspath(database))
        os.makedirs(folder, exist_ok=True)
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
    if memory:
        kwargs["poolclass"] = StaticPool  # one shared connection, or every connection sees an empty database
    engine = sa.create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Let SQLAlchemy's "begin" hook below emit BEGIN itself (pysqlite's implicit BEGIN is unreliable).
        dbapi_conn.isolation_level = None
        # Unicode-aware lower() so case-insensitive match keys agree with Python's str.lower().
        dbapi_conn.create_function("lower", 1, _lower, deterministic=True)
        cur = dbapi_conn.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            # The store's checkpoint thread (store_checkpoint) copies the WAL back; this is only its backstop.
            cur.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
        cur.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql(str(conn.get_execution_options().get("dynasync_begin", "BEGIN")))

    return engine


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _postgres_engine(url: sa.URL, schema: str | None) -> sa.Engine:
    engine = sa.create_engine(url, pool_pre_ping=True)
    if schema is not None:
        quoted = engine.dialect.identifier_preparer.quote(schema)

        @event.listens_for(engine, "connect", insert=True)
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            autocommit = dbapi_conn.autocommit
            dbapi_conn.autocommit = True
            cur = dbapi_conn.cursor()
            cur.execute(f"SET search_path TO {quoted}")
            cur.close()
            dbapi_conn.autocommit = autocommit

    return engine


def open_store(url: str, *, schema: str | None = None, clock: Clock | None = None) -> UdmStore:
    """Open (creating and migrating as needed) a UDM store.

    Args:
        url: ``sqlite:///path/to/udm.db`` (the default kind; WAL mode, foreign keys on, busy timeout),
            ``sqlite://`` for an in-memory store, or ``postgresql+psycopg://user@host:port/db``.
        schema: PostgreSQL only: the schema to use (sets ``search_path``); it must exist.
        clock: Source of "now" for system timestamps (tests pass a FrozenClock).

    Raises:
        StoreError: the URL is not supported, the database cannot be reached, or its schema is newer than
            this version of dynasync.
    """
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise UdmUnavailableError(
            f"invalid UDM store URL: {exc}.",
            remedy="Use sqlite:///path/to/udm.db or postgresql+psycopg://user@host/db (--udm-url or DYNASYNC_UDM_URL).",
        ) from exc
    backend = parsed.get_backend_name()
    checkpointer: WalCheckpointer | None = None
    if backend == "sqlite":
        if schema is not None:
            raise StoreError("schema= is only supported on PostgreSQL UDM stores")
        engine = _sqlite_engine(parsed)
        if parsed.database not in (None, "", ":memory:"):
            checkpointer = WalCheckpointer(
                os.path.abspath(parsed.database), busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS
            )
    elif backend == "postgresql":
        engine = _postgres_engine(parsed, schema)
    else:
        raise UdmUnavailableError(
            f"unsupported UDM store database {backend!r}.",
            remedy="Use sqlite:///path/to/udm.db or postgresql+psycopg://user@host/db.",
        )
    store = UdmStore(engine, clock or SystemClock(), checkpointer)
    try:
        with store.transaction() as tx:
            migrations.migrate(tx.connection, store._core.clock.now())
            store_sql_edits.ensure(tx._live())
        store._core.writer_flag = True  # ds_writer exists now: later write transactions raise it
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        store.close()
        where = parsed.render_as_string(hide_password=True)
        raise UdmUnavailableError(
            f"The UDM store {where} cannot be opened: {str(exc.orig or exc).strip().splitlines()[0]}",
            remedy="Check that the database server runs and the URL (--udm-url or DYNASYNC_UDM_URL) names a "
            "database this user may use; for a SQLite file, that its folder exists and is writable.",
        ) from None
    except BaseException:
        store.close()
        raise
    return store
