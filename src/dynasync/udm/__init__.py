"""The Unified Data Model: typed entity tables users can query with SQL."""

from __future__ import annotations
