"""Service-protection behaviour of the Web API client: retry policy, backoff with jitter, adaptive concurrency, counters."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict, dataclass
from types import TracebackType

__all__ = ["AdaptiveLimiter", "ClientCounters", "RetryPolicy", "backoff_delay"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard the client tries before giving up.

    Attributes:
        max_attempts: Attempts per request for 5xx answers and dropped connections (idempotent requests only).
        base_delay: First backoff delay in seconds; doubles per attempt.
        max_delay: Cap of one backoff delay.
        max_throttle_wait: Total seconds one request may spend waiting on 429 ``Retry-After`` before it fails.
        default_retry_after: Wait after a 429 that carries no ``Retry-After``.
    """

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_throttle_wait: float = 900.0
    default_retry_after: float = 5.0


def backoff_delay(policy: RetryPolicy, attempt: int, rand: Callable[[], float]) -> float:
    """Exponential backoff with "equal jitter": half the capped delay fixed, half random.

    Args:
        policy: The retry policy.
        attempt: 1 for the first retry, 2 for the second ...
        rand: A uniform [0, 1) source (injectable for tests).
    """
    capped = min(policy.max_delay, policy.base_delay * float(2 ** max(0, attempt - 1)))
    return capped / 2 + rand() * capped / 2


@dataclass(slots=True)
class ClientCounters:
    """What the client did, for the run report."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    token_refreshes: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    throttle_wait_seconds: float = 0.0
    peak_concurrency: int = 0

    def as_dict(self) -> dict[str, float]:
        """Return the counters as a plain dict."""
        return dict(asdict(self))


class AdaptiveLimiter:
    """An async concurrency cap that halves on throttling and grows back by one slot per window of successes.

    The limit never exceeds ``maximum`` (Dataverse allows 52 concurrent requests per user). A burst of 429s from
    requests sent under the same limit halves it once, not once per answer (each slot remembers the epoch it was
    taken in; only a throttle from the current epoch lowers the limit).
    """

    def __init__(self, initial: int = 8, maximum: int = 52, minimum: int = 1) -> None:
        if not 1 <= minimum <= initial <= maximum:
            raise ValueError("need 1 <= minimum <= initial <= maximum")
        self.maximum = maximum
        self.minimum = minimum
        self._limit = float(initial)
        self._in_flight = 0
        self._epoch = 0
        self._cond = asyncio.Condition()
        self.peak = 0

    @property
    def limit(self) -> int:
        """Current number of requests allowed in flight."""
        return int(self._limit)

    @property
    def in_flight(self) -> int:
        """Requests in flight now."""
        return self._in_flight

    async def acquire(self) -> int:
        """Wait for a slot; return the epoch it was taken in (pass it to :meth:`on_throttle`)."""
        async with self._cond:
            await self._cond.wait_for(lambda: self._in_flight < int(self._limit))
            self._in_flight += 1
            self.peak = max(self.peak, self._in_flight)
            return self._epoch

    async def release(self) -> None:
        """Give a slot back."""
        async with self._cond:
            self._in_flight -= 1
            self._cond.notify_all()

    def on_success(self) -> None:
        """Additive increase: one more slot after about ``limit`` successes."""
        self._limit = min(float(self.maximum), self._limit + 1.0 / max(1.0, self._limit))

    def on_throttle(self, epoch: int) -> None:
        """Multiplicative decrease, once per epoch."""
        if epoch == self._epoch:
            self._limit = max(float(self.minimum), self._limit / 2)
            self._epoch += 1

    async def __aenter__(self) -> int:
        return await self.acquire()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.release()
