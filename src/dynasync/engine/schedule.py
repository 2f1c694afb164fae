"""Run a sync again and again on a fixed period until told to stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from dynasync.engine.report import RunReport
from dynasync.errors import AuthError, ConfigError, DynasyncError


def run_every(
    run: Callable[[], RunReport],
    seconds: float,
    stop_event: threading.Event,
    *,
    on_report: Callable[[RunReport], None] | None = None,
    on_error: Callable[[DynasyncError], None] | None = None,
    max_runs: int | None = None,
) -> int:
    """Call ``run`` every ``seconds`` (start to start) until ``stop_event`` is set; return how many runs ended.

    A run that fails with a retriable or source error is reported through ``on_error`` and the schedule goes on;
    configuration and authentication errors stop the schedule (they need a human) and are raised.

    Args:
        run: one sync run (e.g. ``engine.run_once``).
        seconds: the period; a run longer than it is followed immediately by the next.
        stop_event: set it (from another thread or a signal handler) to stop after the current run.
        on_report: receives each run's report.
        on_error: receives errors that did not stop the schedule.
        max_runs: stop after this many runs (None: until stopped).
    """
    if seconds <= 0:
        raise ConfigError(
            f"the sync period must be positive, not {seconds}", remedy="Pass --every with seconds > 0."
        )
    runs = 0
    while not stop_event.is_set():
        started = time.monotonic()
        try:
            report = run()
        except (AuthError, ConfigError):
            raise
        except DynasyncError as exc:
            if on_error is not None:
                on_error(exc)
        else:
            if on_report is not None:
                on_report(report)
        runs += 1
        if max_runs is not None and runs >= max_runs:
            break
        stop_event.wait(max(0.0, seconds - (time.monotonic() - started)))
    return runs
