"""Value codec of the UDM store: SQL column types per field type, canonical values, JSON and hashing."""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from dynasync.udm.model import FieldType, UdmField

DEFAULT_STRING_LENGTH = 4000
DECIMAL_STEP = decimal.Decimal("1e-10")
DECIMAL_LIMIT = decimal.Decimal("1e28")  # NUMERIC(38,10) keeps 28 digits before the point
DECIMAL_CONTEXT = decimal.Context(prec=40)  # the default 28 digits cannot quantise NUMERIC(38,10) values
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """An aware datetime stored as UTC (timestamptz on PostgreSQL, naive UTC text on SQLite)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        """Convert to UTC; SQLite keeps no zone, so the UTC wall time is stored."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the UDM store; datetimes must be timezone-aware")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        """Return an aware UTC datetime whatever the session time zone is."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class UdmDecimal(TypeDecorator[decimal.Decimal]):
    """NUMERIC(38,10): exact on PostgreSQL; on SQLite stored as REAL (15 significant digits), read as Decimal."""

    impl = sa.Numeric(38, 10)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """Use a float-returning NUMERIC on SQLite, which has no decimal type (avoids lossy-conversion warnings)."""
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.Numeric(38, 10, asdecimal=False))
        return dialect.type_descriptor(sa.Numeric(38, 10))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        """Bind a float on SQLite, the Decimal elsewhere."""
        if value is None:
            return None
        return float(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> decimal.Decimal | None:
        """Return a Decimal quantised to 10 places, the same canonical form on both databases."""
        if value is None:
            return None
        if isinstance(value, float):
            value = decimal.Decimal(repr(value))
        return decimal.Decimal(value).quantize(DECIMAL_STEP, context=DECIMAL_CONTEXT)


def column_type(field: UdmField) -> TypeEngine[Any]:
    """Return the SQL column type of a UDM field."""
    t = field.type
    if t is FieldType.STRING:
        return sa.String(field.max_length or DEFAULT_STRING_LENGTH)
    if t in (FieldType.TEXT, FieldType.CHOICE, FieldType.MULTICHOICE):
        return sa.Text()
    if t is FieldType.INTEGER:
        return sa.Integer()
    if t is FieldType.BIGINT:
        return sa.BigInteger()
    if t is FieldType.DECIMAL:
        return UdmDecimal()
    if t is FieldType.FLOAT:
        return sa.Double()
    if t is FieldType.BOOLEAN:
        return sa.Boolean()
    if t is FieldType.DATETIME:
        return UtcDateTime()
    if t is FieldType.DATE:
        return sa.Date()
    if t in (FieldType.REFERENCE, FieldType.UUID):
        return sa.String(36)
    raise ValueError(f"unsupported UDM field type {t!r}")


def type_label(field_type: str, max_length: int | None) -> str:
    """Return a human label of a field type, e.g. ``string(100)``, for error messages."""
    if field_type == FieldType.STRING:
        return f"string({max_length or DEFAULT_STRING_LENGTH})"
    return field_type


Coercer = Callable[[Any], Any]


def _str(limit: int | None) -> Coercer:
    def coerce(value: Any) -> Any:
        if type(value) is not str:
            if isinstance(value, bool | dict | list | tuple | bytes):
                raise ValueError(f"expected text, got {type(value).__name__}")
            value = str(value)
        if limit is not None and len(value) > limit:
            raise ValueError(f"text of {len(value)} characters exceeds the maximum length {limit}")
        return value

    return coerce


def _int(bounds: tuple[int, int]) -> Coercer:
    def coerce(value: Any) -> Any:
        if type(value) is not int:
            if isinstance(value, bool):
                value = int(value)
            elif isinstance(value, str):
                value = int(value.strip())
            elif isinstance(value, float | decimal.Decimal):
                if value != int(value):
                    raise ValueError(f"{value!r} is not a whole number")
                value = int(value)
            else:
                raise ValueError(f"expected an integer, got {type(value).__name__}")
        if not bounds[0] <= value <= bounds[1]:
            raise ValueError(f"{value} is out of range for this integer field")
        return value

    return coerce


def _decimal(sqlite: bool) -> Coercer:
    def coerce(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("expected a number, got bool")
        if isinstance(value, float):
            value = decimal.Decimal(repr(value))
        elif not isinstance(value, decimal.Decimal):
            try:
                value = decimal.Decimal(str(value).strip() if isinstance(value, str) else value)
            except (decimal.InvalidOperation, TypeError) as exc:
                raise ValueError(f"{value!r} is not a decimal number") from exc
        if not value.is_finite() or abs(value) >= DECIMAL_LIMIT:
            raise ValueError(f"{value} does not fit NUMERIC(38,10)")
        if sqlite:
            # SQLite keeps REAL; canonicalise the same way reads do so that diffs and hashes stay stable.
            value = decimal.Decimal(repr(float(value)))
        return value.quantize(DECIMAL_STEP, context=DECIMAL_CONTEXT)

    return coerce


def _float(value: Any) -> Any:
    if type(value) is float:
        return value
    if isinstance(value, bool):
        raise ValueError("expected a number, got bool")
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{value!r} is not a number") from exc


_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def _bool(value: Any) -> Any:
    if type(value) is bool:
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"{value!r} is not a boolean")


def _datetime(value: Any) -> Any:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if not isinstance(value, dt.datetime):
        raise ValueError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None:
        raise ValueError("naive datetime; UDM datetimes must be timezone-aware")
    return value.astimezone(dt.UTC)


def _date(value: Any) -> Any:
    if isinstance(value, str):
        value = dt.date.fromisoformat(value.strip())
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise ValueError(f"expected a date, got {type(value).__name__}")
    return value


def _multichoice(value: Any) -> Any:
    if isinstance(value, str):
        parts = [p for p in value.split(";") if p != ""]
    elif isinstance(value, list | tuple | set | frozenset):
        parts = [str(p) for p in value]
    else:
        raise ValueError(f"expected a list of choices, got {type(value).__name__}")
    # Order carries no meaning in a multi-select; sorting keeps diffs and echo hashes stable.
    return ";".join(sorted(set(parts)))


def _uuid(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        return str(uuid.UUID(value))
    raise ValueError(f"expected a UUID, got {type(value).__name__}")


def text_cap(field: UdmField, dialect_name: str = "sqlite") -> int | None:
    """Return the length up to which a ``str`` value of this field is already canonical (None: never as is).

    None on PostgreSQL: its text cannot hold a NUL character, so every text value is checked for one.
    """
    if dialect_name == "postgresql":
        return None
    t = field.type
    if t is FieldType.STRING:
        return field.max_length or DEFAULT_STRING_LENGTH
    if t is FieldType.REFERENCE:
        return 36
    if t in (FieldType.TEXT, FieldType.CHOICE):
        return 2**62
    return None


def integer_bounds(field: UdmField) -> tuple[int, int] | None:
    """Return the (lowest, highest) value of an integer field (None: not an integer field)."""
    if field.type is FieldType.INTEGER:
        return _INT32
    if field.type is FieldType.BIGINT:
        return _INT64
    return None


def coerce_row(
    values: Mapping[str, Any], coercers: Mapping[str, Coercer], caps: Mapping[str, int]
) -> dict[str, Any]:
    """Coerce one row's values; raise KeyError for an unknown field, ValueError etc. for a value that does not fit.

    ``caps`` is :func:`text_cap` of the text fields: text that fits (most values of a page) and None pass
    without a function call.
    """
    if not values.keys() <= coercers.keys():
        raise KeyError(next(k for k in values if k not in coercers))
    cap = caps.get
    return {
        k: v if v is None or (type(v) is str and len(v) <= cap(k, -1)) else coercers[k](v)
        for k, v in values.items()
    }


def coercer(field: UdmField, dialect_name: str) -> Coercer:
    """Return a function turning an incoming value into the canonical value the store reads back.

    The function raises ValueError for values the field cannot hold; None always passes through.
    """
    inner = _general_coercer(field, dialect_name)
    cap = text_cap(field, dialect_name)
    if cap is not None:

        def coerce_text(value: Any) -> Any:
            # Fast path: most values are already text that fits.
            if value is None or (type(value) is str and len(value) <= cap):
                return value
            return inner(value)

        return coerce_text

    return _with_fast_path(field, inner, dialect_name)


def _general_coercer(field: UdmField, dialect_name: str) -> Coercer:
    """The full conversion of a non-null value (every accepted input shape; the reference for shortcuts)."""
    t = field.type
    inner: Coercer
    if t is FieldType.STRING:
        inner = _str(field.max_length or DEFAULT_STRING_LENGTH)
    elif t in (FieldType.TEXT, FieldType.CHOICE, FieldType.REFERENCE):
        inner = _str(None if t is not FieldType.REFERENCE else 36)
    elif t is FieldType.INTEGER:
        inner = _int(_INT32)
    elif t is FieldType.BIGINT:
        inner = _int(_INT64)
    elif t is FieldType.DECIMAL:
        inner = _decimal(dialect_name == "sqlite")
    elif t is FieldType.FLOAT:
        inner = _float
    elif t is FieldType.BOOLEAN:
        inner = _bool
    elif t is FieldType.DATETIME:
        inner = _datetime
    elif t is FieldType.DATE:
        inner = _date
    elif t is FieldType.MULTICHOICE:
        inner = _multichoice
    elif t is FieldType.UUID:
        inner = _uuid
    else:  # pragma: no cover - FieldType is closed
        raise ValueError(f"unsupported UDM field type {t!r}")
    if dialect_name == "postgresql" and t in _TEXT_TYPES:
        return _nul_free(inner)
    return inner


_TEXT_TYPES = (FieldType.STRING, FieldType.TEXT, FieldType.CHOICE, FieldType.REFERENCE, FieldType.MULTICHOICE)


def _nul_free(inner: Coercer) -> Coercer:
    def coerce(value: Any) -> Any:
        value = inner(value)
        if "\x00" in value:
            # Refused here, so the one record fails with this reason instead of the database failing the page.
            raise ValueError("text contains a NUL character (\\x00), which PostgreSQL cannot store")
        return value

    return coerce


def _with_fast_path(field: UdmField, inner: Coercer, dialect_name: str) -> Coercer:
    """Wrap ``inner`` so that None and the value shapes most pages carry skip the general checks."""
    t = field.type
    bounds = integer_bounds(field)
    if bounds is not None:
        low, high = bounds

        def coerce_int(value: Any) -> Any:
            if type(value) is int and low <= value <= high:
                return value
            return None if value is None else inner(value)

        return coerce_int
    if t is FieldType.DECIMAL:
        sqlite = dialect_name == "sqlite"
        quantize = DECIMAL_CONTEXT.quantize
        limit = DECIMAL_LIMIT
        step = DECIMAL_STEP
        decimal_type = decimal.Decimal

        def coerce_decimal(value: Any) -> Any:
            # The general path's result, without its type checks: a finite Decimal in range, through a float
            # on SQLite (which keeps REAL), quantised to NUMERIC(38,10).
            if type(value) is decimal_type and value.is_finite() and -limit < value < limit:
                return quantize(decimal_type(repr(float(value))) if sqlite else value, step)
            return None if value is None else inner(value)

        return coerce_decimal
    exact: type[Any] | None = {
        FieldType.FLOAT: float,
        FieldType.BOOLEAN: bool,
        FieldType.DATE: dt.date,
    }.get(t)
    if exact is not None:
        kind = exact

        def coerce_exact(value: Any) -> Any:
            if type(value) is kind:
                return value
            return None if value is None else inner(value)

        return coerce_exact
    if t is FieldType.DATETIME:
        utc = dt.UTC
        datetime_type = dt.datetime

        def coerce_datetime(value: Any) -> Any:
            if type(value) is datetime_type and value.tzinfo is utc:
                return value
            return None if value is None else inner(value)

        return coerce_datetime
    if t is FieldType.MULTICHOICE and dialect_name != "postgresql":  # PostgreSQL: checked for NUL

        def coerce_multichoice(value: Any) -> Any:
            if type(value) is str and ";" not in value:  # one choice (or none): already canonical
                return value
            return None if value is None else inner(value)

        return coerce_multichoice

    def coerce(value: Any) -> Any:
        return None if value is None else inner(value)

    return coerce


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return f"{value.normalize():f}"
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(value: Any) -> str:
    """Encode a value as compact JSON text (datetimes ISO 8601, decimals as strings, keys sorted)."""
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_SORT_KEYS).decode()


def _lenient_default(value: Any) -> Any:
    try:
        return _json_default(value)
    except TypeError:
        return str(value)


def dumps_lenient(value: Any, *, sort_keys: bool = True) -> str:
    """Like :func:`dumps`, but values JSON cannot hold become their ``str()`` (for the log, never for state)."""
    return orjson.dumps(
        value, default=_lenient_default, option=orjson.OPT_SORT_KEYS if sort_keys else 0
    ).decode()


def loads(text: str | None) -> Any:
    """Decode JSON text written by :func:`dumps` (None stays None)."""
    return None if text is None else orjson.loads(text)


def invalid_text(values: Mapping[str, Any]) -> str | None:
    """Name the first text value that is not valid Unicode (an unpaired surrogate), or None when all are.

    Neither database nor JSON can hold such text, so the record must fail on its own with this reason. An ASCII
    string cannot hold one, and telling that takes no scan, so most rows cost one loop over their values.
    """
    for name, value in values.items():
        if type(value) is str and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                return (
                    f"{name}: text has an unpaired surrogate ({value[exc.start]!r} at position {exc.start}), which "
                    "is not valid Unicode and cannot be stored"
                )
    return None


def hash_canonical(values: Mapping[str, Any]) -> str:
    """Return the hash of already-canonical values (field order does not matter)."""
    data = orjson.dumps(
        values if type(values) is dict else dict(values), default=_json_default, option=orjson.OPT_SORT_KEYS
    )
    return hashlib.blake2b(data, digest_size=16).hexdigest()


DEFAULT_TIME = "*"
"""The key of a per-field time map that holds the time of every field with a value and no time of its own.

A record created from one source row has one time for all its fields; storing it once keeps the row small
(per-field times of a 40-field record were bigger than the record itself). A field still empty has no time: any
value for it wins under "latest update wins".
"""


def encode_times(times: Mapping[str, dt.datetime]) -> str:
    """Encode a per-field update-time map as JSON text (ISO 8601 UTC); see :data:`DEFAULT_TIME`."""
    if not times:
        return "{}"
    first = next(iter(times.values()))
    if all(value is first for value in times.values()):
        # A created record: every field carries the same timestamp object.
        return created_times(first)
    # Most fields of a row share one timestamp object; format each distinct one once.
    memo: dict[int, str] = {}
    out: dict[str, str] = {}
    for key, value in times.items():
        text = memo.get(id(value))
        if text is None:
            text = memo[id(value)] = value.isoformat()
        out[key] = text
    return orjson.dumps(out, option=orjson.OPT_SORT_KEYS).decode()


def decode_times(text: str | None) -> dict[str, dt.datetime]:
    """Decode a per-field update-time map (it may hold :data:`DEFAULT_TIME`; read it with :func:`field_time`)."""
    if not text:
        return {}
    memo: dict[str, dt.datetime] = {}
    out: dict[str, dt.datetime] = {}
    for key, value in orjson.loads(text).items():
        parsed = memo.get(value)
        if parsed is None:
            parsed = memo[value] = dt.datetime.fromisoformat(value)
        out[key] = parsed
    return out


def field_time(times: Mapping[str, dt.datetime], name: str, value: Any) -> dt.datetime | None:
    """Return when a field holding ``value`` was last set (None: never, or unknown)."""
    found = times.get(name)
    if found is None and value is not None:
        return times.get(DEFAULT_TIME)
    return found


def field_times(times: Mapping[str, dt.datetime], values: Mapping[str, Any]) -> dict[str, dt.datetime]:
    """Return the time of every field of a record that has one (the default spelled out per field)."""
    out = {name: when for name in values if (when := field_time(times, name, values[name])) is not None}
    out.update((k, v) for k, v in times.items() if k != DEFAULT_TIME and k not in out)
    return out


class LazyFieldTimes(Mapping[str, dt.datetime]):
    """:func:`field_times` of a stored record, decoded on first use.

    Records are read in bulk (the write-back scans every changed one) and most readers never look at the field
    times, so the stored text is kept and decoded only when asked for.
    """

    __slots__ = ("_decoded", "_text", "_values")

    def __init__(self, text: str | None, values: Mapping[str, Any]) -> None:
        self._text = text
        self._values = values
        self._decoded: dict[str, dt.datetime] | None = None

    def _times(self) -> dict[str, dt.datetime]:
        if self._decoded is None:
            self._decoded = field_times(decode_times(self._text), self._values)
        return self._decoded

    def __getitem__(self, key: str) -> dt.datetime:
        return self._times()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._times())

    def __len__(self) -> int:
        return len(self._times())

    def __repr__(self) -> str:
        return repr(self._times())


def created_times(when: dt.datetime) -> str:
    """Return :func:`encode_times` of a record whose every field was set at ``when`` (a created record)."""
    return '{"' + DEFAULT_TIME + '":"' + when.isoformat() + '"}'
