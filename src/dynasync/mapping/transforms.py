"""Value transforms: kinds of values, casts, type coercions and option-set value maps, built as closures."""

from __future__ import annotations

import datetime as dt
import enum
import math
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from dynasync.mapping.spec import Cast, ScalarValue, UnmappedPolicy
from dynasync.synapses.base import ColumnType
from dynasync.udm.model import FieldType

Convert = Callable[[Any], Any]


class Kind(enum.StrEnum):
    """The kind of a value between steps; decides which casts and field types fit."""

    TEXT = "text"
    INT = "int"
    DECIMAL = "decimal"
    FLOAT = "float"
    BOOL = "bool"
    DATETIME = "datetime"
    DATE = "date"
    CHOICE = "choice"
    MULTICHOICE = "multichoice"
    LOOKUP = "lookup"
    UUID = "uuid"


COLUMN_KIND: Mapping[ColumnType, Kind] = {
    ColumnType.STRING: Kind.TEXT,
    ColumnType.TEXT: Kind.TEXT,
    ColumnType.INTEGER: Kind.INT,
    ColumnType.BIGINT: Kind.INT,
    ColumnType.DECIMAL: Kind.DECIMAL,
    ColumnType.MONEY: Kind.DECIMAL,
    ColumnType.FLOAT: Kind.FLOAT,
    ColumnType.BOOLEAN: Kind.BOOL,
    ColumnType.DATETIME: Kind.DATETIME,
    ColumnType.DATE: Kind.DATE,
    ColumnType.CHOICE: Kind.CHOICE,
    ColumnType.MULTICHOICE: Kind.MULTICHOICE,
    ColumnType.LOOKUP: Kind.LOOKUP,
    ColumnType.UUID: Kind.UUID,
}

_NUMERIC = frozenset({Kind.INT, Kind.DECIMAL, Kind.FLOAT})

# Which value kinds each UDM field type stores without an explicit cast (numbers widen; choices become text).
FIELD_ACCEPTS: Mapping[FieldType, frozenset[Kind]] = {
    FieldType.STRING: frozenset({Kind.TEXT, Kind.UUID}),
    FieldType.TEXT: frozenset({Kind.TEXT}),
    FieldType.INTEGER: frozenset({Kind.INT, Kind.CHOICE}),
    FieldType.BIGINT: frozenset({Kind.INT, Kind.CHOICE}),
    FieldType.DECIMAL: frozenset({Kind.DECIMAL, Kind.INT}),
    FieldType.FLOAT: frozenset({Kind.FLOAT, Kind.INT, Kind.DECIMAL}),
    FieldType.BOOLEAN: frozenset({Kind.BOOL}),
    FieldType.DATETIME: frozenset({Kind.DATETIME}),
    FieldType.DATE: frozenset({Kind.DATE}),
    FieldType.CHOICE: frozenset({Kind.CHOICE, Kind.TEXT}),
    FieldType.MULTICHOICE: frozenset({Kind.MULTICHOICE}),
    FieldType.REFERENCE: frozenset({Kind.LOOKUP}),
    FieldType.UUID: frozenset({Kind.UUID}),
}

# Input kinds each cast accepts, and the kind it produces (None: unchanged).
CAST_RULES: Mapping[Cast, tuple[frozenset[Kind], Kind | None]] = {
    Cast.TRIM: (frozenset({Kind.TEXT}), None),
    Cast.LOWER: (frozenset({Kind.TEXT}), None),
    Cast.UPPER: (frozenset({Kind.TEXT}), None),
    Cast.STRING: (
        frozenset({Kind.TEXT, Kind.UUID, Kind.BOOL, Kind.DATE, Kind.DATETIME} | _NUMERIC),
        Kind.TEXT,
    ),
    Cast.NUMBER: (frozenset({Kind.TEXT} | _NUMERIC), Kind.DECIMAL),
    Cast.INTEGER: (frozenset({Kind.TEXT} | _NUMERIC), Kind.INT),
    Cast.DATE_ONLY: (frozenset({Kind.DATETIME, Kind.DATE}), Kind.DATE),
}


def kind_after_casts(kind: Kind, casts: tuple[Cast, ...]) -> tuple[Kind, str | None]:
    """Return the kind after applying ``casts`` in order, or the first cast that does not fit."""
    for cast in casts:
        accepts, produces = CAST_RULES[cast]
        if kind not in accepts:
            return kind, f"cast '{cast.value}' does not apply to {kind.value} values"
        kind = produces or kind
    return kind, None


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite number")
        return Decimal(repr(value))
    try:
        return Decimal(str(value).strip().replace(",", "")) if isinstance(value, str) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number") from None


def _to_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = _to_decimal(value)
    if number != number.to_integral_value():
        raise ValueError(f"{value!r} is not a whole number")
    return int(number)


def _to_float(value: Any) -> float:
    if isinstance(value, float):
        return value
    return float(_to_decimal(value))


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "no", "0"):
        return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError(f"{value!r} is not a boolean")


def _to_datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if isinstance(value, str):
        try:
            return _to_datetime(dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a date and time")


def _to_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        # The UTC calendar day: Dataverse DateTime values cross this seam as aware UTC datetimes.
        return value.astimezone(dt.UTC).date() if value.tzinfo else value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a date")


def _to_uuid_text(value: Any) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ValueError(f"{value!r} is not a GUID") from None


CAST_FUNCS: Mapping[Cast, Convert] = {
    Cast.TRIM: lambda v: v.strip() if isinstance(v, str) else v,
    Cast.LOWER: lambda v: v.lower() if isinstance(v, str) else v,
    Cast.UPPER: lambda v: v.upper() if isinstance(v, str) else v,
    Cast.STRING: _to_text,
    Cast.NUMBER: _to_decimal,
    Cast.INTEGER: _to_int,
    Cast.DATE_ONLY: _to_date,
}

# Casts that normalise text in place; they are re-applied on the way back to the source.
NORMALISING_CASTS = frozenset({Cast.TRIM, Cast.LOWER, Cast.UPPER})

FIELD_COERCE: Mapping[FieldType, Convert] = {
    FieldType.STRING: _to_text,
    FieldType.TEXT: _to_text,
    FieldType.INTEGER: _to_int,
    FieldType.BIGINT: _to_int,
    FieldType.DECIMAL: _to_decimal,
    FieldType.FLOAT: _to_float,
    FieldType.BOOLEAN: _to_bool,
    FieldType.DATETIME: _to_datetime,
    FieldType.DATE: _to_date,
    FieldType.UUID: _to_uuid_text,
}

COLUMN_COERCE: Mapping[ColumnType, Convert] = {
    ColumnType.STRING: _to_text,
    ColumnType.TEXT: _to_text,
    ColumnType.INTEGER: _to_int,
    ColumnType.BIGINT: _to_int,
    ColumnType.DECIMAL: _to_decimal,
    ColumnType.MONEY: _to_decimal,
    ColumnType.FLOAT: _to_float,
    ColumnType.BOOLEAN: _to_bool,
    ColumnType.DATETIME: _to_datetime,
    ColumnType.DATE: _to_date,
    ColumnType.UUID: _to_uuid_text,
}


def chain(steps: list[Convert]) -> Convert:
    """Compose conversions left to right into one callable (identity when empty)."""
    if not steps:
        return lambda v: v
    if len(steps) == 1:
        return steps[0]
    frozen = tuple(steps)

    def run(value: Any) -> Any:
        for step in frozen:
            value = step(value)
        return value

    return run


def option_reader(
    options: Mapping[int, ScalarValue],
    labels: Mapping[int, str],
    policy: UnmappedPolicy,
) -> Convert:
    """Build source option value -> UDM value; ``labels`` are the source's own option labels.

    Raises (from the returned callable):
        ValueError: an unmapped value under the ``reject`` policy, or an unknown value under ``label``.
    """
    table: dict[int, Any] = dict(options)
    if policy is UnmappedPolicy.LABEL:
        table = {**labels, **options}

    def read(value: Any) -> Any:
        try:
            return table[value]
        except (KeyError, TypeError):
            pass
        if policy is UnmappedPolicy.NULL:
            return None
        if policy is UnmappedPolicy.KEEP:
            return _to_text(value)
        if policy is UnmappedPolicy.LABEL:
            raise ValueError(f"value {value!r} is not in the option set and has no label")
        raise ValueError(f"value {value!r} has no entry in the option map (unmapped: reject)")

    return read


def option_writer(
    options: Mapping[int, ScalarValue],
    labels: Mapping[int, str],
    policy: UnmappedPolicy,
) -> Convert:
    """Build UDM value -> source option value (int), the inverse of :func:`option_reader`.

    Labels are accepted back under the ``label`` policy; ``keep`` accepts a raw option number.
    """
    reverse: dict[Any, int] = {}
    if policy is UnmappedPolicy.LABEL:
        reverse.update({label: value for value, label in labels.items()})
    # Explicit entries win over labels; the first source value listed for a UDM value wins on the way back.
    for value, udm in reversed(list(options.items())):
        reverse[udm] = value
    known = frozenset(labels) | frozenset(options)

    def write(value: Any) -> Any:
        try:
            return reverse[value]
        except (KeyError, TypeError):
            pass
        if policy is UnmappedPolicy.NULL:
            return None
        if policy is UnmappedPolicy.KEEP:
            try:
                number = _to_int(value)
            except ValueError:
                raise ValueError(f"UDM value {value!r} is not mapped and is not an option number") from None
            if known and number not in known:
                raise ValueError(f"option number {number} does not exist in the option set")
            return number
        raise ValueError(f"UDM value {value!r} has no entry in the option map")

    return write


def multi_reader(single: Convert) -> Convert:
    """Lift an option reader to multi-select values: a tuple of ints becomes ';'-joined UDM values."""

    def read(value: Any) -> Any:
        items = value if isinstance(value, tuple | list) else _split(value)
        mapped = {_to_text(m) for m in (single(_to_int(item)) for item in items) if m is not None}
        # Dataverse reports an empty multi-select as null; keep that rather than an empty string. The labels are
        # sorted as the UDM stores them: in the service's order, a value read back would never equal its UDM
        # value, so every write-back would send it again and its echo would look like a change.
        return ";".join(sorted(mapped)) if mapped else None

    return read


def multi_writer(single: Convert) -> Convert:
    """Lift an option writer to multi-select values: ';'-joined UDM values become a tuple of ints."""

    def write(value: Any) -> Any:
        items = value if isinstance(value, tuple | list) else _split(value)
        mapped = {single(item) for item in items}
        return tuple(sorted(m for m in mapped if m is not None))  # order means nothing: one form per value

    return write


def _split(value: Any) -> list[str]:
    return [part.strip() for part in str(value).split(";") if part.strip()]
