"""Preparing a page's incoming rows: canonical values (and insert columns of creates) by generated row code.

The general path coerces a row through a dict of per-field coercers, and a create then copies the result into
a template row and converts some values again for the driver. Rows of a page share one key order (a *shape*),
and most values already have the exact type their field keeps. Per entity definition, dialect and shape, this
module generates one function that checks each value's exact type inline and returns the canonical values
(in the row's key order) and, for creates, the field columns in table order in the driver's form. Any other
value goes through the field's own coercer, so the result always equals the general path, and a value that
does not fit raises as that coercer does (:func:`prepare` then takes the general path, which names the field).
Field names enter the generated source only as ``repr`` literals.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Container, Mapping, Sequence
from typing import Any

from dynasync.errors import StoreError
from dynasync.udm import store_bulk
from dynasync.udm import store_codec as codec
from dynasync.udm import store_tables as t
from dynasync.udm.model import FieldType, UdmField
from dynasync.udm.store_schema import coerce_values
from dynasync.udm.store_types import IncomingRow

RowFunction = Callable[[Mapping[str, Any]], Any]
"""A generated row function: ``coerce(values) -> dict`` or ``build(values) -> (dict, tuple)``; None when the
row's shape is not served (an unknown field, or too many shapes)."""

MAX_SHAPES = 64
"""Shapes compiled per entity definition and mode; rows of further shapes take the general path."""

_EXACT: dict[FieldType, type[Any]] = {
    FieldType.FLOAT: float,
    FieldType.BOOLEAN: bool,
    FieldType.DATE: dt.date,
}


def _unsupported(values: Mapping[str, Any]) -> None:
    return None


class RowCode:
    """The generated row functions of one entity definition on one dialect, compiled per shape on first use.

    ``coercers`` and ``builders`` map a shape (the tuple of a row's keys) to its function; look a shape up
    there first and call :meth:`compile` on a miss.
    """

    def __init__(self, info: t.EntityInfo, dialect: str) -> None:
        self.info = info
        self.dialect = dialect
        self.columns: tuple[str, ...] = tuple(info.fields)
        """The field columns of a built tuple, in table order (retired fields too: always None)."""
        self.coercers: dict[tuple[str, ...], RowFunction] = {}
        self.builders: dict[tuple[str, ...], RowFunction] = {}

    def compile(self, shape: tuple[str, ...], build: bool) -> RowFunction:
        """Return (and keep) the function of ``shape``: canonical values, plus driver-form columns if ``build``."""
        table = self.builders if build else self.coercers
        if len(table) >= MAX_SHAPES:
            return _unsupported  # not kept: a page of ever-new shapes must not grow the table
        coercers = self.info.coercers
        # An unknown field: the general path raises the error naming it.
        fn = self._generate(shape, build) if all(name in coercers for name in shape) else _unsupported
        table[shape] = fn
        return fn

    def _generate(self, shape: tuple[str, ...], build: bool) -> RowFunction:
        info = self.info
        space: dict[str, Any] = {
            "str": str,
            "int": int,
            "Decimal": decimal.Decimal,
            "datetime": dt.datetime,
            "UTC": dt.UTC,
            "LIMIT": codec.DECIMAL_LIMIT,
            "FLOAT_LIMIT": float(codec.DECIMAL_LIMIT),
            "TEXT": store_bulk.SQLITE_DATETIME_TEXT,
            "STEP": codec.DECIMAL_STEP,
            "quantize": codec.DECIMAL_CONTEXT.quantize,
        }
        lines = ["def row(values):"]
        if shape:
            lines.append(f"    {', '.join(f'v{i}' for i in range(len(shape)))}, = values.values()")
        driver: dict[str, str] = {}  # field name -> the variable holding its driver-form value
        for i, name in enumerate(shape):
            field = info.active[name]
            space[f"c{i}"] = info.coercers[name]
            conv = store_bulk.plain_converter(info.table.c[name], self.dialect) if build else None
            if conv is not None:
                space[f"k{i}"] = conv
                driver[name] = f"d{i}"
            lines += _field_lines(i, field, conv, self.dialect == "sqlite", space)
        values = "{" + ", ".join(f"{name!r}: v{i}" for i, name in enumerate(shape)) + "}"
        if build:
            index = {name: i for i, name in enumerate(shape)}
            items = [driver.get(c, f"v{index[c]}") if c in index else "None" for c in self.columns]
            lines.append(f"    return {values}, ({''.join(item + ', ' for item in items)})")
        else:
            lines.append(f"    return {values}")
        source = "\n".join(lines)
        exec(compile(source, f"<row code of {info.entity.name}>", "exec"), space)
        fn: RowFunction = space["row"]
        return fn


def _field_lines(i: int, field: UdmField, conv: Any, sqlite: bool, space: dict[str, Any]) -> list[str]:
    """Source turning ``v{i}`` into the canonical value (and ``d{i}`` into its driver form when ``conv``)."""
    v, c, kind = f"v{i}", f"c{i}", field.type
    general = [f"    elif {v} is not None:", f"        {v} = {c}({v})"]
    if conv is not None:
        general.append(f"        d{i} = k{i}({v})")
        general += ["    else:", f"        d{i} = None"]
    if kind is FieldType.DATETIME and conv is store_bulk.sqlite_datetime_text:
        # The text of an aware UTC value, as sqlite_datetime_text writes it.
        v_ = f"{v}.year, {v}.month, {v}.day, {v}.hour, {v}.minute, {v}.second, {v}.microsecond"
        fast = [f"    if type({v}) is datetime and {v}.tzinfo is UTC:", f"        d{i} = TEXT % ({v_})"]
        return fast + general
    if kind is FieldType.DECIMAL and not sqlite and conv is None:
        # Store_codec's shortcut: a finite Decimal in range, quantised.
        fast = [f"    if type({v}) is Decimal and {v}.is_finite() and -LIMIT < {v} < LIMIT:",
                f"        {v} = quantize({v}, STEP)"]  # fmt: skip
        return fast + general
    if kind is FieldType.DECIMAL and sqlite and conv in (None, float):
        # Store_codec's shortcut on SQLite (which keeps REAL): a finite Decimal in range, through a float,
        # quantised. The float tells both: float(x) rounds monotonically, so |float(x)| < float(LIMIT) implies
        # |x| < LIMIT, and it is not finite when x is not (a signalling NaN raises: the general path serves it).
        fast = [f"    if type({v}) is Decimal and -FLOAT_LIMIT < (f := float({v})) < FLOAT_LIMIT:",
                "        r = Decimal(repr(f))", f"        {v} = quantize(r, STEP)"]  # fmt: skip
        if conv is float:
            # The driver takes float(canonical): the float itself unless quantising changed the value.
            fast += [f"        d{i} = f if {v} == r else float({v})"]
        return fast + general
    cap = codec.text_cap(field, "sqlite" if sqlite else "postgresql")
    bounds = codec.integer_bounds(field)
    if cap is not None:
        check = f"type({v}) is not str" + (f" or len({v}) > {cap}" if cap < 2**62 else "")
    elif bounds is not None:
        check = f"type({v}) is not int or not {bounds[0]} <= {v} <= {bounds[1]}"
    elif kind in _EXACT:
        space[f"t{i}"] = _EXACT[kind]
        check = f"type({v}) is not t{i}"
    elif kind is FieldType.DATETIME:
        check = f"type({v}) is not datetime or {v}.tzinfo is not UTC"
    elif kind is FieldType.MULTICHOICE and sqlite:
        check = f"type({v}) is not str or ';' in {v}"  # one choice (or none) is already canonical
    else:
        check = "True"
    lines = [f"    if ({check}) and {v} is not None:", f"        {v} = {c}({v})"]
    if conv is not None:
        lines.append(f"    d{i} = None if {v} is None else k{i}({v})")
    return lines


_CODE: dict[tuple[int, str], RowCode] = {}


def row_code(info: t.EntityInfo, dialect: str) -> RowCode:
    """Return the row code of an entity definition on a dialect (built once; compiled per shape on use)."""
    code = _CODE.get((id(info), dialect))
    if code is not None and code.info is info:
        return code
    if len(_CODE) > 256:  # entities are redefined rarely; drop stale code rather than grow forever
        _CODE.clear()
    code = _CODE[(id(info), dialect)] = RowCode(info, dialect)
    return code


Prepared = tuple[dict[str, Any], dt.datetime, str, tuple[Any, ...] | None]
"""A prepared row: (canonical values, modification time, hash, field columns in driver form or None)."""


_CAPS: dict[int, tuple[t.EntityInfo, dict[str, int]]] = {}


def _text_caps(info: t.EntityInfo, dialect: str) -> dict[str, int]:
    """The entity's text fields and their length caps (computed once per entity definition)."""
    hit = _CAPS.get(id(info))
    if hit is not None and hit[0] is info:
        return hit[1]
    caps = {k: cap for k, f in info.entity.fields.items() if (cap := codec.text_cap(f, dialect)) is not None}
    if len(_CAPS) > 256:
        _CAPS.clear()
    _CAPS[id(info)] = (info, caps)
    return caps


def prepare(
    info: t.EntityInfo,
    dialect: str,
    now: dt.datetime,
    rows: Sequence[IncomingRow],
    linked: Container[str] | None = None,
    *,
    generated: bool = True,
) -> list[Prepared | str]:
    """Coerce each row's values and compute its hash once; a row that does not fit gives its error text.

    Rows go through the generated row code (if ``generated``), or else (and whenever that code does not serve
    them) through the coercers one by one. Unless ``linked`` is None, rows whose external id it lacks (future
    creates) also get their field columns in the driver's form, made by the generated code in the same pass.
    """
    out: list[Prepared | str] = []
    code = row_code(info, dialect)
    by_shape = (code.coercers, code.builders)
    coercers = info.coercers
    caps = _text_caps(info, dialect)
    coerce_row = codec.coerce_row
    utc = dt.UTC
    hash_canonical = codec.hash_canonical
    for row in rows:
        incoming = row.values
        build = linked is not None and row.external_id not in linked
        made = None
        if generated:
            shape = tuple(incoming)
            fn = by_shape[build].get(shape)
            if fn is None:
                fn = code.compile(shape, build)
            try:
                made = fn(incoming)
            except (KeyError, ValueError, TypeError, ArithmeticError):
                pass  # the general path below raises again, naming the field
        columns: tuple[Any, ...] | None = None
        if made is None:
            try:
                values = coerce_row(incoming, coercers, caps)
            except (KeyError, ValueError, TypeError, ArithmeticError):
                # coerce_values names the failing field.
                try:
                    values = coerce_values(info, incoming)
                except StoreError as exc:
                    out.append(exc.message)
                    continue
        elif build:
            values, columns = made
        else:
            values = made
        when = row.modified_on
        if when is None:
            when = now
        elif when.tzinfo is None:
            out.append(f"modified_on of {row.external_id} is a naive datetime; it must be timezone-aware")
            continue
        elif when.tzinfo is not utc:
            when = when.astimezone(utc)
        if row.hash is not None:
            digest = row.hash
        else:
            try:
                digest = hash_canonical(values)
            except TypeError:  # JSON refuses the text: say which field (nothing else raises here)
                out.append(codec.invalid_text(values) or f"the values of {row.external_id} cannot be encoded")
                continue
        out.append((values, when, digest, columns))
    return out
