"""The local Dynamics 365 (Dataverse Web API) + Entra ID emulator."""

from __future__ import annotations
