"""The sync engine: pipelines that read, map, apply and write back."""

from __future__ import annotations
