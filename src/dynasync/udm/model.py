"""The Unified Data Model's types: entities (real SQL tables), their fields, and records."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class FieldType(enum.StrEnum):
    """UDM field types; each maps to a real SQL column type in the store."""

    STRING = "string"
    TEXT = "text"
    INTEGER = "integer"
    BIGINT = "bigint"
    DECIMAL = "decimal"
    FLOAT = "float"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    DATE = "date"
    CHOICE = "choice"  # stored as text: the mapped (or label) value
    MULTICHOICE = "multichoice"  # stored as text, values joined with ";"
    REFERENCE = "reference"  # the UDM id of a record of another UDM entity
    UUID = "uuid"


@dataclass(frozen=True, slots=True)
class UdmField:
    """One field of a UDM entity; ``reference`` names the target UDM entity of a REFERENCE field."""

    name: str
    type: FieldType
    reference: str | None = None
    max_length: int | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class UdmEntity:
    """One UDM entity (Account, Contact...); ``table`` is its SQL table name (e.g. ``udm_account``)."""

    name: str
    fields: Mapping[str, UdmField]
    match_keys: tuple[str, ...] = ()  # fields that attach an incoming record to an existing one (e.g. email)

    @property
    def table(self) -> str:
        """The SQL table holding this entity's records."""
        return "udm_" + self.name.lower()


@dataclass(frozen=True, slots=True)
class UdmRecord:
    """One UDM record as stored: its UDM id, field values and system columns."""

    entity: str
    id: str
    values: Mapping[str, Any]
    deleted: bool = False
    version: int = 0
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    field_updated_at: Mapping[str, dt.datetime] = field(default_factory=dict)
