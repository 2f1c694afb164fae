"""The mapping spec: which source tables and columns feed which UDM entities and fields, as frozen data."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from dynasync.udm.model import FieldType

ScalarValue = str | int | float | bool


class Direction(enum.StrEnum):
    """Which way a field flows between the synapse and the UDM."""

    TO_UDM = "to_udm"
    FROM_UDM = "from_udm"
    BOTH = "both"

    @property
    def reads(self) -> bool:
        """True when source values flow into the UDM."""
        return self is not Direction.FROM_UDM

    @property
    def writes(self) -> bool:
        """True when UDM values are written back to the source."""
        return self is not Direction.TO_UDM


class UnmappedPolicy(enum.StrEnum):
    """What to do with an option value (or lookup target table) the mapping does not list."""

    LABEL = "label"  # use the source's own option label (choices only)
    REJECT = "reject"  # fail the record with a clear problem
    NULL = "null"  # store None
    KEEP = "keep"  # keep the raw value (choices) / leave the reference unchanged (lookups)


class Cast(enum.StrEnum):
    """Named value conversions applied in order, source side first."""

    TRIM = "trim"
    LOWER = "lower"
    UPPER = "upper"
    STRING = "string"  # any scalar to its text form
    NUMBER = "number"  # text or number to Decimal
    INTEGER = "integer"  # text or number to int
    DATE_ONLY = "date_only"  # datetime to date


class ConflictRule(enum.StrEnum):
    """Which side wins when a field changed on both sides in the same cycle."""

    LATEST_UPDATE_WINS = "latest_update_wins"
    SYNAPSE_WINS = "synapse_wins"
    UDM_WINS = "udm_wins"


@dataclass(frozen=True, slots=True)
class ConflictPolicy:
    """A per-field conflict policy; data only, the engine enforces it.

    ``synapse`` names the trusted synapse for :attr:`ConflictRule.SYNAPSE_WINS`; ``reject_empty`` means an empty
    value never overwrites a non-empty one.
    """

    rule: ConflictRule = ConflictRule.LATEST_UPDATE_WINS
    synapse: str | None = None
    reject_empty: bool = False


DEFAULT_CONFLICT = ConflictPolicy()


@dataclass(frozen=True, slots=True)
class Loc:
    """A 1-based position in the mapping file; ``keys`` gives the line of each key of the mapped object."""

    line: int
    column: int = 1
    keys: Mapping[str, int] = dc_field(default_factory=dict)

    def line_of(self, key: str) -> int:
        """Return the line of ``key`` in this object, or of the object itself when the key is absent."""
        return self.keys.get(key, self.line)


class _Unset(enum.Enum):
    UNSET = "unset"


UNSET = _Unset.UNSET  # "no constant / no default" (None is a legitimate constant)


@dataclass(frozen=True, slots=True)
class FieldMapping:
    """One source column to one UDM field.

    A lookup column maps to a REFERENCE field naming the target UDM entity (``reference``); a polymorphic lookup
    (Customer, Owner) is mapped by several FieldMappings on the same column, each with its own ``target_table``.
    A FieldMapping without ``column`` and with ``constant`` sets a UDM field to a fixed value (``to_udm``); one
    with ``column`` and ``constant`` and direction ``from_udm`` writes a fixed value to the source.
    ``options`` maps source option values to UDM values; ``unmapped`` says what happens to other values.
    ``default`` (a UDM value) replaces an empty value, in both directions.
    """

    column: str | None
    field: str | None
    type: FieldType | None
    direction: Direction = Direction.BOTH
    reference: str | None = None
    target_table: str | None = None
    options: Mapping[int, ScalarValue] = dc_field(default_factory=dict)
    unmapped: UnmappedPolicy | None = None
    casts: tuple[Cast, ...] = ()
    constant: Any = UNSET
    default: Any = UNSET
    conflict: ConflictPolicy = DEFAULT_CONFLICT
    max_length: int | None = None
    description: str = ""
    loc: Loc | None = dc_field(default=None, compare=False)

    @property
    def has_constant(self) -> bool:
        """True when this mapping carries a fixed value."""
        return self.constant is not UNSET

    @property
    def has_default(self) -> bool:
        """True when this mapping replaces empty values with a default."""
        return self.default is not UNSET

    @property
    def label(self) -> str:
        """A short human name for messages: ``column -> field``."""
        return f"{self.column or '(constant)'} -> {self.field or '?'}"


@dataclass(frozen=True, slots=True)
class EntityMapping:
    """One source table to one UDM entity, with its fields, match keys and delete propagation switches.

    ``match_keys`` are UDM field names tried in order to attach an incoming record to an existing UDM record.
    ``delete_to_udm`` (default on) lets a source delete mark the UDM record deleted; ``delete_from_udm``
    (opt-in) lets a UDM delete delete the source row. ``recreate_deleted`` (opt-in) lets the write-back create
    again a row this source deleted while the UDM record lived on (kept alive by another synapse); by default
    such a record is not written back to this source.
    """

    table: str
    entity: str
    fields: tuple[FieldMapping, ...] = ()
    match_keys: tuple[str, ...] = ()
    delete_to_udm: bool = True
    delete_from_udm: bool = False
    recreate_deleted: bool = False
    description: str = ""
    loc: Loc | None = dc_field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class MappingSpec:
    """The whole mapping of one synapse; ``source`` is the file it was read from (for error locations)."""

    synapse: str
    entities: tuple[EntityMapping, ...] = ()
    notes: tuple[str, ...] = ()
    source: str | None = dc_field(default=None, compare=False)
    loc: Loc | None = dc_field(default=None, compare=False)

    def entity_for_table(self, table: str) -> EntityMapping | None:
        """Return the entity mapping of a source table, if any."""
        for entity in self.entities:
            if entity.table == table:
                return entity
        return None

    def entity_named(self, name: str) -> EntityMapping | None:
        """Return the entity mapping that produces the UDM entity ``name``, if any."""
        for entity in self.entities:
            if entity.entity == name:
                return entity
        return None
