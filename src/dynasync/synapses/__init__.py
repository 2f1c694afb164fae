"""Synapses: connectors between dynasync and external systems."""

from __future__ import annotations
