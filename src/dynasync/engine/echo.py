"""Value fingerprints that recognise our own writes when they come back (echo and loop prevention).

A link between a UDM record and an external record keeps a fingerprint of what the external side holds, field by
field (a short hash per UDM field). An incoming record whose mapped values hash to the same fingerprint changed
nothing since we last read or wrote it, so it is an echo (or a re-read) and is neither applied nor written back.
Keeping one hash per field, not one per record, tells *which* fields a side really changed, so a stale value of
an untouched field never overwrites a newer UDM value.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from dynasync.synapses.base import LookupRef
from dynasync.udm.store_types import CANONICAL_KEY
from dynasync.udm.store_types import VALUES_FORM as VALUES_FORM

Fingerprint = dict[str, str]


def _number_text(number: decimal.Decimal) -> str:
    if number == number.to_integral_value():
        # int(), not quantize(): quantize fails beyond 28 digits (a float such as 1e28 is integral).
        return "n:" + str(int(number))
    return "n:" + format(number.normalize(), "f")


def canonical(value: Any) -> str:
    """Return a canonical text form of a value, equal for values a round trip through a synapse keeps equal.

    Numbers compare by value (``1``, ``1.0`` and ``Decimal("1.00")`` are one value), datetimes at whole seconds in
    UTC (Dataverse keeps no sub-second part), empty strings and empty tuples count as empty (None).
    """
    kind = type(value)
    if kind is str:
        return "s:" + value if value else "~"  # the common case first: this runs for every field of every row
    if value is None or value == ():
        return "~"
    if kind is bool:
        return "b:1" if value else "b:0"
    if kind is int:
        return "n:" + str(value)
    if isinstance(value, int | float | decimal.Decimal):
        return _number_text(
            decimal.Decimal(str(value)) if isinstance(value, float) else decimal.Decimal(value)
        )
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return "t:" + moment.astimezone(dt.UTC).replace(microsecond=0).isoformat()
    if isinstance(value, dt.date):
        return "d:" + value.isoformat()
    if isinstance(value, LookupRef):
        return f"r:{value.table}:{value.id.lower()}"
    if isinstance(value, tuple | list | frozenset | set):
        items = sorted(canonical(item) for item in value)
        return "m:" + ",".join(items)
    if isinstance(value, str):
        return "s:" + value if value else "~"
    return "o:" + repr(value)


def values_equal(left: Any, right: Any) -> bool:
    """Tell whether two field values are the same value for sync purposes (see :func:`canonical`)."""
    return canonical(left) == canonical(right)


def is_empty(value: Any) -> bool:
    """Tell whether a value is empty: None, an empty or blank string, or an empty multi-select."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    return isinstance(value, tuple | list | frozenset | set) and len(value) == 0


def _short_hash(text: str) -> str:
    return _blake2b(text.encode("utf-8"), digest_size=6).hexdigest()


_blake2b = hashlib.blake2b
_UTC = dt.UTC
# Hashes of recent canonical texts: most columns repeat a handful of values (empty, flags, choices, owners,
# currencies), and a lookup is far cheaper than a hash. Bounded: cleared when full (unique texts fill it).
_HASHES: dict[str, str] = {}
_HASHES_LIMIT = 50_000
_EMPTY_HASH = _short_hash("~")
EMPTY_HASH = _EMPTY_HASH
"""The fingerprint entry of an empty value (None, "", an empty multi-select)."""


def _datetime_text(value: dt.datetime) -> str:
    if value.tzinfo is _UTC and not value.microsecond:
        return "t:" + value.isoformat()  # what synapses and the store hand out: no conversion needed
    return canonical(value)


# Exact type -> canonical text, for the types values come in; anything else goes through canonical().
_TEXT: dict[type, Callable[[Any], str]] = {
    bool: lambda value: "b:1" if value else "b:0",
    int: lambda value: "n:" + str(value),
    decimal.Decimal: _number_text,
    float: lambda value: _number_text(decimal.Decimal(str(value))),
    dt.datetime: _datetime_text,
    dt.date: lambda value: "d:" + value.isoformat(),
}


def field_hash(value: Any) -> str:
    """Return the fingerprint entry of one value."""
    if value is None:
        return _EMPTY_HASH
    kind = type(value)
    if kind is str:
        text = "s:" + value if value else "~"
    else:
        to_text = _TEXT.get(kind)
        text = to_text(value) if to_text is not None else canonical(value)
    return _text_hash(text)


def _text_hash(text: str) -> str:
    """The hash of a canonical text, through the cache of recent texts."""
    found = _HASHES.get(text)
    if found is None:
        found = _short_hash(text)
        if len(_HASHES) >= _HASHES_LIMIT:
            _HASHES.clear()
        _HASHES[text] = found
    return found


def fingerprint(values: Mapping[str, Any]) -> Fingerprint:
    """Return the per-field fingerprint of some UDM-side values.

    Equal to ``{name: field_hash(value)}``; this runs for every field of every record read or written, so the
    per-value work is inlined.
    """
    out: Fingerprint = {}
    hashes = _HASHES
    text_of = _TEXT.get
    for name, value in values.items():
        if value is None:
            out[name] = _EMPTY_HASH
            continue
        kind = type(value)
        if kind is str:
            text = "s:" + value if value else "~"
        else:
            to_text = text_of(kind)
            text = to_text(value) if to_text is not None else canonical(value)
        found = hashes.get(text)
        if found is None:
            found = _blake2b(text.encode("utf-8"), digest_size=6).hexdigest()
            if len(hashes) >= _HASHES_LIMIT:
                hashes.clear()
            hashes[text] = found
        out[name] = found
    return out


def encode(fp: Mapping[str, str]) -> str:
    """Serialise a fingerprint to the text stored on a link (sorted, so equal fingerprints give equal text)."""
    return orjson.dumps(dict(fp), option=orjson.OPT_SORT_KEYS).decode("ascii")


# A link's read state in *values form*: the values themselves as JSON, with a value JSON has no type for kept as
# its canonical text ({"$c": text}). A full load creates every link this way at the cost of one JSON encoding,
# where per-field hashing cost several times more; later reads compare values (values_changes), and only a
# fingerprint wanted whole (decode) hashes them.
# (Synapses hand out text, numbers, flags, decimals, datetimes, dates, tuples and lookup references; orjson
# would write a UUID or an Enum as plain JSON, so such a value would only compare by its JSON form.)
_VALUES_OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def _tag(value: Any) -> Any:
    to_text = _TEXT.get(type(value))
    return {CANONICAL_KEY: to_text(value) if to_text is not None else canonical(value)}


def encode_values(values: Mapping[str, Any]) -> str:
    """Return the values-form read state of some UDM-side values; :func:`decode` turns it into their fingerprint.

    Equal values in equal field order give equal text, which is all the store compares texts for.
    """
    data = values if type(values) is dict else dict(values)
    return VALUES_FORM + orjson.dumps(data, default=_tag, option=_VALUES_OPTIONS).decode()


def values_changes(state: str, values: Mapping[str, Any]) -> tuple[list[str], str, Fingerprint] | None:
    """Compare values read now with a values-form read state, without hashing every field.

    Returns (fields that changed, the new read state, the fingerprint entries the state held for those fields), or
    None when ``state`` is not a readable values form. Values compare in their encoded form, which is stricter
    than :func:`canonical` (an int and an equal float differ): at worst a field counts as changed.
    """
    if not state.startswith(VALUES_FORM):
        return None
    try:
        stored = orjson.loads(state[1:])
        now = orjson.loads(encode_values(values)[1:])
    except orjson.JSONDecodeError:
        return None
    if not isinstance(stored, dict):
        return None
    missing = object()
    changed = [name for name, value in now.items() if not _same(stored.get(name, missing), value)]
    if not changed:
        return changed, state, {}
    held = {name: _stored_hash(stored[name]) for name in changed if name in stored}
    stored.update(now)  # fields the row no longer carries keep what was last read of them
    return changed, VALUES_FORM + orjson.dumps(stored).decode(), held


def _same(left: Any, right: Any) -> bool:
    """Equality of decoded JSON values that also tells types apart (Python has ``0 == False == 0.0``)."""
    if type(left) is not type(right):
        return False
    if type(left) is list:
        return len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right, strict=True))
    if type(left) is dict:
        return left.keys() == right.keys() and all(_same(left[k], right[k]) for k in left)
    return bool(left == right)


def values_in_sync(state: str | None, values: Mapping[str, Any]) -> bool | None:
    """Tell whether a side whose read state is in values form holds ``values`` (None: not values form).

    The same verdict as comparing ``decode(state)`` with ``fingerprint(values)`` field by field, where a field the
    state lacks counts only when its value is not empty; but values whose encoded forms are equal are equal
    without hashing, so only the fields that differ in form are hashed.
    """
    if not state or not state.startswith(VALUES_FORM):
        return None
    try:
        stored = orjson.loads(state[1:])
        now = orjson.loads(encode_values(values)[1:])
    except (orjson.JSONDecodeError, TypeError):
        return None
    if not isinstance(stored, dict):
        return None
    for name, value in now.items():
        if name in stored:
            held = stored[name]
            if not _same(held, value) and _stored_hash(held) != field_hash(values[name]):
                return False
        elif field_hash(values[name]) != _EMPTY_HASH:
            return False
    return True


def _stored_hash(value: Any) -> str:
    """The fingerprint entry of a value read back from the values form (see :func:`encode_values`)."""
    return _text_hash(_stored_text(value))


def _stored_text(value: Any) -> str:
    """The canonical text of a value read back from the values form."""
    if type(value) is dict and len(value) == 1 and type(text := value.get(CANONICAL_KEY)) is str:
        return text
    if type(value) is list:
        # A multi-select: canonical() sorts its items' texts, so each item is restored the same way first.
        return "m:" + ",".join(sorted(_stored_text(item) for item in value)) if value else "~"
    return canonical(value)


def decode(text: str | None) -> Fingerprint:
    """Read a link's read state as a fingerprint; an absent or unreadable one is empty (everything changed).

    The state is a fingerprint from :func:`encode`, or the values form from :func:`encode_values`.
    """
    if not text:
        return {}
    values_form = text.startswith(VALUES_FORM)
    try:
        loaded = orjson.loads(text[1:] if values_form else text)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(loaded, dict):
        return {}
    if values_form:
        return {str(k): _stored_hash(v) for k, v in loaded.items()}
    return {str(k): str(v) for k, v in loaded.items()}


def changed_fields(values: Mapping[str, Any], synced: Mapping[str, str]) -> list[str]:
    """Return the fields of ``values`` whose hash differs from the synced fingerprint (absent ones included)."""
    return [name for name, value in values.items() if synced.get(name) != field_hash(value)]


def merge_fingerprint(synced: Mapping[str, str], values: Mapping[str, Any]) -> Fingerprint:
    """Return ``synced`` updated with the hashes of ``values`` (fields not given keep their old hash)."""
    merged = dict(synced)
    merged.update(fingerprint(values))
    return merged
