"""Column values to and from the text of a paging cookie (so a page position needs no server-side state)."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

from dynasync.emulator.catalog import AttributeDef, AttributeType
from dynasync.emulator.paging import INVALID_COOKIE
from dynasync.emulator.values import LookupValue


def cookie_text(value: object) -> str | None:
    """A stored value as cookie text (None stays None)."""
    if value is None:
        return None
    if isinstance(value, LookupValue):
        return str(value.id)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value)
    return str(value)


def cookie_value(attribute: AttributeDef, text: str | None) -> object:
    """Cookie text back to the stored value type of ``attribute``; 400 (invalid cookie) when it does not parse."""
    if text is None:
        return None
    try:
        return _parse(attribute, text)
    except (ValueError, decimal.InvalidOperation):
        raise INVALID_COOKIE from None


def _parse(attribute: AttributeDef, text: str) -> object:
    kind = attribute.type
    if attribute.is_lookup:
        return text  # lookups page by the related row's primary name (see OrgStore.page_key)
    if kind == AttributeType.UNIQUEIDENTIFIER:
        return uuid.UUID(text.strip("{}"))
    if kind == AttributeType.BOOLEAN:
        if text not in ("0", "1"):
            raise ValueError(text)
        return text == "1"
    if kind in (
        AttributeType.INTEGER,
        AttributeType.BIGINT,
        AttributeType.PICKLIST,
        AttributeType.STATE,
        AttributeType.STATUS,
    ):
        return int(text)
    if kind in (AttributeType.MONEY, AttributeType.DECIMAL):
        return decimal.Decimal(text)
    if kind == AttributeType.DOUBLE:
        return float(text)
    if kind == AttributeType.DATETIME:
        if "T" in text:
            return dt.datetime.fromisoformat(text)
        return dt.date.fromisoformat(text)
    if attribute.is_multiselect:
        return tuple(int(v) for v in text.split(",") if v)
    return text
