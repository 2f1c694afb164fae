"""Injected faults: the next K Web API requests answer 429, 503, hang past the client's timeout, drop, or run slow."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Literal

FaultKind = Literal["429", "503", "timeout", "drop", "slow"]
KINDS: tuple[str, ...] = ("429", "503", "timeout", "drop", "slow")


@dataclass(slots=True)
class Fault:
    """One armed fault.

    Attributes:
        kind: ``429`` (throttled with ``Retry-After``), ``503`` (server busy), ``timeout`` (hang ``seconds``, then
            drop the connection), ``drop`` (close the connection without a response), ``slow`` (wait ``seconds``,
            then answer normally; the wait counts as execution time).
        remaining: How many more requests it hits.
        retry_after: Seconds in ``Retry-After`` (429 and 503).
        seconds: Hang/slow duration.
        path_contains: Only requests whose path contains this text are hit (None: all).
    """

    kind: FaultKind
    remaining: int = 1
    retry_after: int = 1
    seconds: float = 30.0
    path_contains: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description."""
        return {
            "kind": self.kind,
            "remaining": self.remaining,
            "retry_after": self.retry_after,
            "seconds": self.seconds,
            "path_contains": self.path_contains,
        }


class FaultQueue:
    """Faults armed by the control plane, consumed by Web API requests in order."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def inject(
        self,
        kind: str,
        *,
        count: int = 1,
        retry_after: int = 1,
        seconds: float = 30.0,
        path_contains: str | None = None,
    ) -> Fault:
        """Arm a fault for the next ``count`` matching requests.

        Raises:
            ValueError: For an unknown kind or a non-positive count.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(KINDS)}")
        if count < 1:
            raise ValueError("count must be at least 1")
        fault = Fault(kind, count, retry_after, seconds, path_contains)  # type: ignore[arg-type]
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, path: str) -> Fault | None:
        """Consume one hit of the first fault matching ``path``, or return None."""
        with self._lock:
            for fault in self._faults:
                if fault.path_contains is None or fault.path_contains in path:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return Fault(fault.kind, 1, fault.retry_after, fault.seconds, fault.path_contains)
        return None

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[dict[str, Any]]:
        """The armed faults."""
        with self._lock:
            return [f.to_dict() for f in self._faults]
