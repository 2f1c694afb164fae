"""Background WAL checkpoints for a SQLite file store.

In WAL mode every commit appends pages to the ``-wal`` file, and SQLite's automatic checkpoint copies them back
into the database file inside the commit that crosses the threshold: on a full load that is about a fifth of the
write time, spent on the thread that also reads and maps the next page. Here a daemon thread with its own
connection runs a PASSIVE checkpoint after write commits instead. A checkpoint is a single SQLite call that
releases the GIL for its whole length, so it runs on the other core while the sync goes on, and PASSIVE never
waits for (nor blocks) readers or the writer. The connections keep an automatic checkpoint at a higher threshold
as a backstop, so the WAL stays bounded even if this thread falls behind or is gone.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger(__name__)

AUTOCHECKPOINT_PAGES = 16_384
"""The connections' own automatic checkpoint threshold (pages of 4 KiB: 64 MiB), the backstop to this thread."""


class WalCheckpointer:
    """Run ``PRAGMA wal_checkpoint(PASSIVE)`` on a daemon thread whenever :meth:`notify` was called."""

    def __init__(self, path: str, *, busy_timeout_ms: int) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.checkpoints = 0  # completed checkpoints (tests read it)

    def notify(self) -> None:
        """Ask for a checkpoint soon (after a write commit); calls made before it runs count as one."""
        with self._lock:
            if self._stopping:
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="dynasync-wal-checkpoint", daemon=True)
                self._thread.start()
        self._wake.set()

    def close(self) -> None:
        """Stop the thread after the checkpoint it may be running (no new one starts)."""
        with self._lock:
            self._stopping = True
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:  # the writers' own automatic checkpoints still run
            log.warning("UDM store: background WAL checkpoints are off (%s)", exc)
            return
        try:
            conn.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error as exc:
                    # Busy or locked: nothing is lost, the next commit asks again (and the backstop remains).
                    log.debug("UDM store: WAL checkpoint skipped: %s", exc)
        finally:
            conn.close()
