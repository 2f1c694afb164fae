"""The root of dynasync's error tree, grouped by what the caller does next.

    DynasyncError
    ├── ConfigError            fatal: fix the configuration (exit code 2)
    ├── AuthError              fatal: fix credentials, consent or the application user (exit code 2)
    ├── RetriableError         try again later; carries retry_after seconds when the server said so
    ├── FatalSourceError       the source refused in a way retries will not fix
    ├── SkippableRecordError   one record failed; it is reported and the run goes on
    ├── MappingError           a mapping is invalid; carries the location in the mapping file
    ├── StoreError             the UDM store failed
    │   └── UdmUnavailableError  (also a ConfigError) the store URL is unusable or its server does not answer
    ├── SyncBusyError          another sync run holds the UDM; nothing was done (exit code 75: try later)
    └── CursorExpiredError     a change-tracking cursor expired; fall back to a full reload

Every error carries a human ``remedy`` when one is known; the CLI prints message and remedy as one paragraph.
"""

from __future__ import annotations


class DynasyncError(Exception):
    """Base class of every error dynasync raises on purpose."""

    def __init__(self, message: str, *, remedy: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy

    def __reduce__(self) -> tuple[object, ...]:
        # Keep errors picklable (they cross process boundaries in the runner) with their keyword fields.
        return (_rebuild, (type(self), self.__dict__.copy()))

    def explain(self) -> str:
        """Return the message and, when known, the remedy as one paragraph."""
        if self.remedy:
            return f"{self.message} {self.remedy}"
        return self.message


def _rebuild(cls: type[DynasyncError], state: dict[str, object]) -> DynasyncError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


class ConfigError(DynasyncError):
    """The configuration is wrong or incomplete; nothing will work until it is fixed."""


class AuthError(DynasyncError):
    """Authentication or authorization failed; credentials, consent or the application user must be fixed."""


class RetriableError(DynasyncError):
    """A transient failure; the operation may be retried, no sooner than ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, remedy: str | None = None) -> None:
        super().__init__(message, remedy=remedy)
        self.retry_after = retry_after


class FatalSourceError(DynasyncError):
    """The source system refused the request in a way that retrying will not fix."""


class SkippableRecordError(DynasyncError):
    """One record could not be processed; it is reported and the run continues."""


class MappingError(DynasyncError):
    """A mapping is invalid; ``location`` points into the mapping file."""

    def __init__(self, message: str, *, location: str | None = None, remedy: str | None = None) -> None:
        super().__init__(message, remedy=remedy)
        self.location = location

    def explain(self) -> str:
        """Return where the problem is (when known), the message and the remedy as one paragraph."""
        text = super().explain()
        return f"{self.location}: {text}" if self.location else text


class SyncBusyError(DynasyncError):
    """Another sync run holds the UDM's run lock; nothing was done (try again later)."""


class StoreError(DynasyncError):
    """The UDM store failed."""


class UdmUnavailableError(StoreError, ConfigError):
    """The UDM store URL is not usable (malformed, an unsupported database, a server that does not answer)."""


class CursorExpiredError(DynasyncError):
    """A change-tracking cursor is no longer valid; a full reload is needed."""
