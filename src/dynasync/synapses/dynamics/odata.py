"""Pure builders for Dataverse Web API URLs: query options, ``$filter`` literals, entity keys, binds, Prefer."""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import quote

__all__ = [
    "FilterExpr",
    "and_",
    "bind",
    "compare",
    "entity_key",
    "entity_path",
    "func",
    "in_",
    "literal",
    "not_",
    "or_",
    "prefer",
    "query",
    "select",
]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_.]*)*$")
_OPS = {"eq", "ne", "gt", "ge", "lt", "le"}
_FUNCS = {"contains", "startswith", "endswith"}
# Characters left readable in query values: OData punctuation; everything else (& # + % space ...) is encoded.
_QUERY_SAFE = "$,()'=:@/*-._~!;"
_KEY_SAFE = "'(),=-._~:@!$*;"


def _name(value: str, what: str = "column") -> str:
    if not _NAME.match(value):
        raise ValueError(f"{value!r} is not a valid {what} name")
    return value


def literal(value: object) -> str:
    """Render a Python value as an OData literal for ``$filter`` or a key segment.

    Strings are single-quoted with ``'`` doubled; GUIDs, numbers, booleans and ``None`` are bare; aware datetimes
    are UTC ISO-8601 with ``Z``; dates are ``YYYY-MM-DD``.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("NaN and infinity have no OData literal")
        return repr(value)
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise ValueError("NaN and infinity have no OData literal")
        return format(value, "f")
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("datetime literals must be timezone-aware")
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no OData literal for {type(value).__name__}")


class FilterExpr(str):
    """A rendered ``$filter`` expression (a ``str``), composable with :func:`or_` and :func:`not_`."""

    __slots__ = ()


def compare(column: str, op: str, value: object) -> FilterExpr:
    """``column op literal``, e.g. ``compare("name", "eq", "O'Neil")`` -> ``name eq 'O''Neil'``."""
    if op not in _OPS:
        raise ValueError(f"unknown comparison operator {op!r}")
    if not _PATH.match(column):
        raise ValueError(f"{column!r} is not a valid property path")
    return FilterExpr(f"{column} {op} {literal(value)}")


def func(name: str, column: str, value: str) -> FilterExpr:
    """``contains(column,'v')``, ``startswith`` or ``endswith``."""
    if name not in _FUNCS:
        raise ValueError(f"unknown filter function {name!r}")
    return FilterExpr(f"{name}({_name(column)},{literal(value)})")


def in_(column: str, values: Iterable[object]) -> FilterExpr:
    """Dataverse's ``Microsoft.Dynamics.CRM.In`` query function over a list of values."""
    items = ",".join(literal(str(v)) for v in values)
    return FilterExpr(
        f"Microsoft.Dynamics.CRM.In(PropertyName={literal(_name(column))},PropertyValues=[{items}])"
    )


def and_(*parts: str) -> FilterExpr:
    """Join expressions with ``and`` (each parenthesised)."""
    return _join("and", parts)


def or_(*parts: str) -> FilterExpr:
    """Join expressions with ``or`` (each parenthesised)."""
    return _join("or", parts)


def not_(part: str) -> FilterExpr:
    """Negate an expression."""
    return FilterExpr(f"not ({part})")


def _join(op: str, parts: Sequence[str]) -> FilterExpr:
    kept = [p for p in parts if p]
    if not kept:
        raise ValueError(f"'{op}' needs at least one expression")
    if len(kept) == 1:
        return FilterExpr(kept[0])
    return FilterExpr(f" {op} ".join(f"({p})" for p in kept))


def select(columns: Iterable[str]) -> str:
    """Validate and join column names for ``$select``."""
    names = [_name(c) for c in columns]
    if not names:
        raise ValueError("$select needs at least one column")
    return ",".join(dict.fromkeys(names))


def query(
    *,
    select_: Iterable[str] | None = None,
    filter_: str | None = None,
    orderby: Iterable[tuple[str, bool]] | None = None,
    top: int | None = None,
    expand: str | None = None,
    count: bool = False,
    extra: Mapping[str, str] | None = None,
) -> str:
    """Build an encoded query string (without ``?``) from OData options.

    Args:
        select_: Columns for ``$select``.
        filter_: A ``$filter`` expression (build it with :func:`compare` etc.).
        orderby: ``(column, descending)`` pairs.
        top: ``$top``.
        expand: A raw ``$expand`` clause.
        count: Add ``$count=true``.
        extra: Further options or parameter aliases (``@p1``), already rendered as OData text.
    """
    options: list[tuple[str, str]] = []
    if select_ is not None:
        options.append(("$select", select(select_)))
    if filter_:
        options.append(("$filter", filter_))
    if orderby:
        options.append(("$orderby", ",".join(f"{_name(c)} {'desc' if d else 'asc'}" for c, d in orderby)))
    if top is not None:
        if top < 1:
            raise ValueError("$top must be positive")
        options.append(("$top", str(top)))
    if expand:
        options.append(("$expand", expand))
    if count:
        options.append(("$count", "true"))
    for key, value in (extra or {}).items():
        options.append((key, value))
    return "&".join(f"{k}={quote(v, safe=_QUERY_SAFE)}" for k, v in options)


def entity_key(key: str | uuid.UUID | Mapping[str, object]) -> str:
    """Render a key segment: ``(guid)`` for a primary key, ``(k='v',k2=5)`` for an (composite) alternate key."""
    if isinstance(key, uuid.UUID):
        return f"({key})"
    if isinstance(key, str):
        try:
            return f"({uuid.UUID(key)})"
        except ValueError:
            raise ValueError(f"{key!r} is not a GUID; give an alternate key as a mapping") from None
    if not key:
        raise ValueError("an alternate key needs at least one column")
    parts = []
    for column, value in key.items():
        if value is None:
            raise ValueError(f"alternate key column {column!r} has no value")
        parts.append(f"{_name(column)}={literal(value)}")
    return "(" + quote(",".join(parts), safe=_KEY_SAFE) + ")"


def entity_path(collection: str, key: str | uuid.UUID | Mapping[str, object]) -> str:
    """``accounts(<guid>)`` or ``accounts(accountnumber='A1')``, relative to the API base."""
    return f"{_name(collection, 'entity set')}{entity_key(key)}"


def bind(collection: str, key: str | uuid.UUID | Mapping[str, object]) -> str:
    """The value of a ``<navigation>@odata.bind`` property: ``/accounts(<guid>)``."""
    return "/" + entity_path(collection, key)


def prefer(
    *,
    return_representation: bool = False,
    annotations: str | Sequence[str] | None = None,
    maxpagesize: int | None = None,
    track_changes: bool = False,
    continue_on_error: bool = False,
) -> str | None:
    """Compose one ``Prefer`` header value (comma-separated) or None when nothing is preferred.

    Args:
        return_representation: ``return=representation``.
        annotations: ``odata.include-annotations="..."``: ``"*"`` or a list of terms.
        maxpagesize: ``odata.maxpagesize=N`` (1..5000).
        track_changes: ``odata.track-changes``.
        continue_on_error: ``odata.continue-on-error`` (``$batch``).
    """
    items: list[str] = []
    if return_representation:
        items.append("return=representation")
    if annotations:
        terms = annotations if isinstance(annotations, str) else ",".join(annotations)
        if '"' in terms:
            raise ValueError("annotation terms must not contain quotes")
        items.append(f'odata.include-annotations="{terms}"')
    if maxpagesize is not None:
        if not 1 <= maxpagesize <= 5000:
            raise ValueError("odata.maxpagesize must be between 1 and 5000")
        items.append(f"odata.maxpagesize={maxpagesize}")
    if track_changes:
        items.append("odata.track-changes")
    if continue_on_error:
        items.append("odata.continue-on-error")
    return ",".join(items) or None
