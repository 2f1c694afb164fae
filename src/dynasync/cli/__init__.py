"""The ``dynasync`` command line: thin commands over the library, following the Dynamics 365 setup guide."""

from __future__ import annotations

from dynasync.cli.app import app, main

__all__ = ["app", "main"]
