"""The Microsoft Dynamics 365 (Dataverse) synapse."""

from __future__ import annotations
