"""Small JSON shapes shared by all metadata responses: labels, managed properties and stable ids."""

from __future__ import annotations

import uuid

LANGUAGE_CODE = 1033

# Namespace for ids derived from other ids (labels, option sets): stable for one catalog, never random per call.
_DERIVED_NS = uuid.UUID("6f1c3f4e-2b8d-4b8a-9d55-1f0d5a3c7e21")


def derived_id(base: uuid.UUID, purpose: str) -> uuid.UUID:
    """Return a stable id for a sub-object (label, option set) of the metadata item ``base``."""
    return uuid.uuid5(_DERIVED_NS, f"{base}:{purpose}")


def label(text: str | None, owner: uuid.UUID, purpose: str) -> dict[str, object]:
    """Return a ``Label`` complex value in language 1033, or the empty label for empty text."""
    if not text:
        return {"LocalizedLabels": [], "UserLocalizedLabel": None}
    localized = {
        "Label": text,
        "LanguageCode": LANGUAGE_CODE,
        "IsManaged": True,
        "MetadataId": str(derived_id(owner, purpose)),
        "HasChanged": None,
    }
    return {"LocalizedLabels": [localized], "UserLocalizedLabel": dict(localized)}


def managed(value: object, logical_name: str, *, can_be_changed: bool = True) -> dict[str, object]:
    """Return a managed-property complex value (``BooleanManagedProperty`` and friends)."""
    return {"Value": value, "CanBeChanged": can_be_changed, "ManagedPropertyLogicalName": logical_name}


def is_label(value: object) -> bool:
    """True when ``value`` is a ``Label`` complex value (filters on labels are refused, as by the service)."""
    return isinstance(value, dict) and "LocalizedLabels" in value
