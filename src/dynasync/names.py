"""Synapse keys: how a display name becomes the key used in files, mappings and the UDM.

A module of its own because the workspace names synapses with it, and mapping validation turns a display name
a user wrote into the key it probably meant.
"""

from __future__ import annotations

import re


def slug(name: str) -> str:
    """The key of a synapse in files, mappings and the UDM: ``"Dynamics Sales"`` -> ``"dynamics_sales"``."""
    key = re.sub(r"[^a-z0-9_]+", "_", name.strip().lower()).strip("_")
    return key if key and not key[0].isdigit() else f"s_{key}"
