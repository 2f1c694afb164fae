"""How the CLI talks to people and scripts: one clear paragraph per error, JSON on request, exit codes.

Exit codes: 0 ok, 1 some records failed (or an unexpected internal error), 2 configuration, authentication or
mapping problem (or bad input).

``--json`` contract: stdout carries exactly one JSON object per invocation (``sync --every`` prints one per run);
people-oriented lines go to stderr. An error prints ``{"error": <class name>, "message", "remedy", "exit_code"}``
plus ``location`` and ``problems`` when the error has them.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from dynasync.errors import (
    AuthError,
    ConfigError,
    DynasyncError,
    MappingError,
    RetriableError,
    SyncBusyError,
)
from dynasync.synapses.base import LookupRef

EXIT_OK = 0
EXIT_RECORDS_FAILED = 1
EXIT_CONFIG = 2
EXIT_BUSY = 75  # sysexits EX_TEMPFAIL: another sync holds the UDM, or the service is unreachable: try later

# Rich assumes 80 columns when output is not a terminal; a pipe or a file should not truncate tables.
_PIPE_WIDTH = 160

__all__ = [
    "EXIT_BUSY",
    "EXIT_CONFIG",
    "EXIT_OK",
    "EXIT_RECORDS_FAILED",
    "Output",
    "error_payload",
    "escape",
    "exit_code_for",
    "jsonable",
    "reported",
]


def jsonable(value: Any) -> Any:
    """A record or write value as ``--json`` and the human lines show it.

    JSON's own types stay as they are; datetimes and dates become ISO 8601 text, lookups ``table:id``,
    multi-selects lists, anything else its text.
    """
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, LookupRef):
        return f"{value.table}:{value.id}"
    if isinstance(value, tuple | list):
        return [jsonable(v) for v in value]
    return str(value)


def _console(*, stderr: bool) -> Console:
    console = Console(stderr=stderr, highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console.width = max(console.width, _PIPE_WIDTH)
    return console


@dataclass(slots=True)
class Output:
    """Per-invocation output options and the consoles for people (stdout, or stderr under ``--json``)."""

    json: bool = False
    debug: bool = False
    _console: Console | None = field(default=None, repr=False)

    @property
    def console(self) -> Console:
        """Console for human output (stderr when JSON goes to stdout)."""
        if self._console is None:
            self._console = _console(stderr=self.json)
        return self._console

    @property
    def interactive(self) -> bool:
        """True when people watch the human output live (a terminal), so progress bars make sense."""
        return not self.json and self.console.is_terminal

    def working(self, text: str) -> AbstractContextManager[object]:
        """A spinner with ``text`` while slow work runs, on a terminal only (never in pipes or --json)."""
        if self.interactive:
            return self.console.status(text)
        return nullcontext()

    def say(self, text: str) -> None:
        """Print a line for people (rich markup allowed; escape user data); stderr in --json mode."""
        self.console.print(text)

    def emit(self, data: dict[str, Any], human: Callable[[], None] | None = None) -> None:
        """Print ``data`` as one JSON object in --json mode, else call ``human`` to print it nicely."""
        if self.json:
            sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
            sys.stdout.flush()
        elif human is not None:
            human()

    def fail(self, error: BaseException) -> NoReturn:
        """Report an error as one paragraph with its remedy and exit with the right code."""
        code = exit_code_for(error)
        if self.debug:
            # --debug: the traceback first (stderr), then the same paragraph and exit code as without it.
            traceback.print_exception(error, file=sys.stderr)
        if self.json:
            sys.stdout.write(json.dumps(error_payload(error), indent=2, default=str) + "\n")
        else:
            stderr = _console(stderr=True)
            stderr.print(f"[bold red]Error:[/] {escape(_message(error))}")
        raise typer.Exit(code)


def _message(error: BaseException) -> str:
    if isinstance(error, DynasyncError):
        return error.explain()
    text = str(error) or "no details"
    return (
        f"Unexpected internal error ({type(error).__name__}: {text}). This is a bug in dynasync: "
        "run the command again with --debug for the traceback and report it."
    )


def error_payload(error: BaseException) -> dict[str, Any]:
    """The ``--json`` form of an error: class, message, remedy, exit code, and location/problems when known."""
    payload: dict[str, Any] = {
        "error": type(error).__name__,
        "message": error.message if isinstance(error, DynasyncError) else _message(error),
        "remedy": error.remedy if isinstance(error, DynasyncError) else None,
        "exit_code": exit_code_for(error),
    }
    if isinstance(error, MappingError) and error.location:
        payload["location"] = error.location
    problems = getattr(error, "problems", None)
    if isinstance(problems, list) and problems:
        payload["problems"] = [_problem(p) for p in problems]
    return payload


def _problem(problem: object) -> dict[str, Any]:
    if isinstance(problem, MappingError):
        return {"location": problem.location, "message": problem.message}
    fields = ("field", "problem", "example")
    if all(hasattr(problem, name) for name in fields):
        return {name: getattr(problem, name) for name in fields}
    return {"message": str(problem)}


def exit_code_for(error: BaseException) -> int:
    """Return the exit code of an error.

    2 for configuration, authentication and mapping problems; 75 for a temporary failure (another sync runs,
    the service is unreachable or busy beyond the retries); 1 for anything else.
    """
    if isinstance(error, ConfigError | AuthError | MappingError):
        return EXIT_CONFIG
    if isinstance(error, SyncBusyError | RetriableError):
        return EXIT_BUSY
    return EXIT_RECORDS_FAILED


@contextmanager
def reported(out: Output) -> Iterator[None]:
    """Turn errors into a paragraph and an exit code; the traceback only with --debug."""
    try:
        yield
    except (typer.Exit, typer.Abort, typer.TyperException):
        raise  # usage errors and aborts keep click's own message and exit code
    except KeyboardInterrupt:
        Console(stderr=True).print("Interrupted.")
        raise typer.Exit(130) from None
    except Exception as error:  # noqa: BLE001 - every failure becomes one paragraph and an exit code
        out.fail(error)
