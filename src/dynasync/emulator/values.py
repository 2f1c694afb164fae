"""Value types of emulated rows that are not plain Python values (lookup references)."""

from __future__ import annotations

import uuid
from typing import NamedTuple


class LookupValue(NamedTuple):
    """A lookup column's value: the target table's logical name and the target row's id.

    Example: ``LookupValue("contact", UUID("..."))`` under ``row["primarycontactid"]``; for polymorphic lookups
    (customer, owner) ``entity`` says which target the row points at.
    """

    entity: str
    id: uuid.UUID


Row = dict[str, object]
"""One stored row by logical name (see :mod:`dynasync.emulator.store` for the value types)."""
