"""dynasync: two-way data sync with Microsoft Dynamics 365, plus a local Dynamics 365 + Entra ID emulator."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
