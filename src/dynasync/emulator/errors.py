"""Errors the emulated service answers with: an HTTP status plus the Dataverse error code and message.

Raised anywhere in the emulator (store, payload parsing, query parsing); rendered in one place, the Web API
layer, as ``{"error": {"code": "0x...", "message": "..."}}``.
"""

from __future__ import annotations


class EmulatorError(Exception):
    """A service error: HTTP ``status``, Dataverse hex ``code`` and ``message`` exactly as the service words them."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def to_json(self) -> dict[str, object]:
        """Return the OData error envelope."""
        return {"error": {"code": self.code, "message": self.message}}


def not_implemented(feature: str) -> EmulatorError:
    """The error for anything the emulator does not implement: 501 naming the feature, never an empty success."""
    return EmulatorError(
        501, "0x80040219", f"The emulator does not implement {feature}. See docs/emulator-coverage.md."
    )
