"""Injectable clocks, so that tests and the emulator can move time without patching."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Protocol


class Clock(Protocol):
    """Anything that tells the current UTC time."""

    def now(self) -> dt.datetime:
        """Return the current time as an aware UTC datetime."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> dt.datetime:
        """Return the wall-clock time in UTC."""
        return dt.datetime.now(dt.UTC)


class OffsetClock:
    """The wall clock shifted by an adjustable offset; the emulator's clock ("move the clock")."""

    def __init__(self, offset: dt.timedelta | None = None) -> None:
        self._offset = offset or dt.timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        """Return wall-clock UTC time plus the offset."""
        with self._lock:
            return dt.datetime.now(dt.UTC) + self._offset

    def advance(self, delta: dt.timedelta) -> None:
        """Move the clock forward (or backward with a negative delta)."""
        with self._lock:
            self._offset += delta

    @property
    def offset(self) -> dt.timedelta:
        """How far this clock is from the wall clock."""
        with self._lock:
            return self._offset


class FrozenClock:
    """A clock that only moves when told to; for deterministic tests."""

    def __init__(self, start: dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        """Return the frozen time."""
        with self._lock:
            return self._now

    def advance(self, delta: dt.timedelta) -> None:
        """Move the frozen time by delta."""
        with self._lock:
            self._now += delta
