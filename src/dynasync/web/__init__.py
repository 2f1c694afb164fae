"""The Sync Studio web UI."""

from __future__ import annotations
