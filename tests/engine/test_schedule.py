from __future__ import annotations

import datetime as dt
import threading

import pytest

from dynasync.engine.report import RunReport
from dynasync.engine.schedule import run_every
from dynasync.errors import AuthError, ConfigError, RetriableError


def _report() -> RunReport:
    return RunReport("r", dt.datetime(2024, 1, 1, tzinfo=dt.UTC))


def test_runs_until_stopped_and_survives_retriable_errors() -> None:
    stop = threading.Event()
    calls: list[int] = []
    errors: list[Exception] = []

    def run() -> RunReport:
        calls.append(1)
        if len(calls) == 2:
            raise RetriableError("429", retry_after=1)
        if len(calls) == 3:
            stop.set()
        return _report()

    reports: list[RunReport] = []
    assert run_every(run, 0.001, stop, on_report=reports.append, on_error=errors.append) == 3
    assert len(reports) == 2 and len(errors) == 1


def test_max_runs_and_fatal_errors() -> None:
    stop = threading.Event()
    assert run_every(_report, 0.001, stop, max_runs=2) == 2

    def broken() -> RunReport:
        raise AuthError("consent missing")

    with pytest.raises(AuthError):
        run_every(broken, 0.001, stop)
    with pytest.raises(ConfigError):
        run_every(_report, 0, stop)
