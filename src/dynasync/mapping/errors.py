"""Mapping problems reported together: one error that lists every located MappingError."""

from __future__ import annotations

from collections.abc import Sequence

from dynasync.errors import DynasyncError, MappingError


def located(source: str | None, line: int | None) -> str | None:
    """Return a ``file:line`` location (or just the file, or None when nothing is known)."""
    name = source or "<mapping>"
    if line is None:
        return name
    return f"{name}:{line}"


def problem(message: str, source: str | None, line: int | None, *, remedy: str | None = None) -> MappingError:
    """Build one located mapping problem."""
    return MappingError(message, location=located(source, line), remedy=remedy)


def format_problem(error: MappingError) -> str:
    """Render one problem as ``file:line: message``."""
    if error.location:
        return f"{error.location}: {error.message}"
    return error.message


class MappingValidationError(MappingError):
    """A mapping has problems; ``problems`` lists every one of them with its location, in file order."""

    def __init__(self, problems: Sequence[MappingError]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the mapping"
        body = "\n".join(format_problem(p) for p in self.problems)
        location = self.problems[0].location if self.problems else None
        super().__init__(
            f"{head}:\n{body}" if body else head,
            location=location,
            remedy="Fix the listed lines and publish again.",
        )

    def explain(self) -> str:
        """Return the listed problems (each with its own location) and the remedy."""
        return DynasyncError.explain(self)
