"""Sync Studio mappings: Dynamics tables and columns to UDM entities and fields."""

from __future__ import annotations
