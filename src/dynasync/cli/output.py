"""How the CLI talks to people and scripts: one clear paragraph per error, JSON on request, exit codes.

Exit codes: 0 ok, 1 some records failed, 2 configuration or authentication problem (or bad input).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console

from dynasync.errors import AuthError, ConfigError, DynasyncError, MappingError

EXIT_OK = 0
EXIT_RECORDS_FAILED = 1
EXIT_CONFIG = 2

T = TypeVar("T")


@dataclass(slots=True)
class Output:
    """Per-invocation output options."""

    json: bool = False
    debug: bool = False

    @property
    def console(self) -> Console:
        """Console for human output (stderr when JSON goes to stdout)."""
        return Console(stderr=self.json, highlight=False, soft_wrap=True)

    def say(self, text: str) -> None:
        """Print a line for people (suppressed from stdout in --json mode)."""
        self.console.print(text)

    def emit(self, data: Any, human: Callable[[], None] | None = None) -> None:
        """Print ``data`` as JSON in --json mode, else call ``human`` to print it nicely."""
        if self.json:
            sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
        elif human is not None:
            human()

    def fail(self, error: BaseException) -> NoReturn:
        """Report an error as one paragraph with its remedy and exit with the right code."""
        code = exit_code_for(error)
        if self.json:
            payload = {"error": type(error).__name__, "message": _message(error)}
            if isinstance(error, DynasyncError) and error.remedy:
                payload["remedy"] = error.remedy
            if isinstance(error, MappingError) and error.location:
                payload["location"] = error.location
            sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        else:
            Console(stderr=True, highlight=False, soft_wrap=True).print(
                f"[bold red]Error:[/] {_message(error)}"
            )
        raise typer.Exit(code)


def _message(error: BaseException) -> str:
    if isinstance(error, DynasyncError):
        return error.explain()
    return str(error) or type(error).__name__


def exit_code_for(error: BaseException) -> int:
    """2 for configuration, authentication and mapping problems; 1 for anything else."""
    if isinstance(error, ConfigError | AuthError | MappingError):
        return EXIT_CONFIG
    return EXIT_RECORDS_FAILED


@contextmanager
def reported(out: Output) -> Iterator[None]:
    """Turn dynasync errors into a paragraph and an exit code; tracebacks only with --debug."""
    try:
        yield
    except typer.Exit:
        raise
    except DynasyncError as error:
        if out.debug:
            raise
        out.fail(error)
    except KeyboardInterrupt:
        Console(stderr=True).print("Interrupted.")
        raise typer.Exit(130) from None
