"""The sync engine: pipelines that read, map, apply and write back; the public entry is :class:`Engine`."""

from __future__ import annotations

from dynasync.engine.context import EngineOptions
from dynasync.engine.report import EntityReport, ProgressCallback, RecordIssue, RunReport, SynapseCounts
from dynasync.engine.runner import Engine

__all__ = [
    "Engine",
    "EngineOptions",
    "EntityReport",
    "ProgressCallback",
    "RecordIssue",
    "RunReport",
    "SynapseCounts",
]
