"""Per-field row closures: each reads one column into the UDM shape or writes one field back to the source."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from dynasync.mapping.spec import UNSET, FieldMapping, UnmappedPolicy
from dynasync.mapping.transforms import (
    CAST_FUNCS,
    COLUMN_COERCE,
    FIELD_COERCE,
    NORMALISING_CASTS,
    Convert,
    chain,
    multi_reader,
    multi_writer,
    option_reader,
    option_writer,
)
from dynasync.synapses.base import ColumnSpec, ColumnType, LookupRef
from dynasync.udm.model import FieldType

# A reader takes: source values, source labels, UDM values out, references out, problems out.
Reader = Callable[
    [Mapping[str, Any], Mapping[str, str], dict[str, Any], dict[str, LookupRef | None], list[str]], None
]
# A writer takes: UDM values, resolved references, source values out, problems out.
Writer = Callable[[Mapping[str, Any], Mapping[str, Any], dict[str, Any], list[str]], None]

_MISSING: Any = object()
_TEXT_COLUMNS = (ColumnType.STRING, ColumnType.TEXT)


def _option_policy(mapping: FieldMapping) -> UnmappedPolicy:
    return mapping.unmapped or UnmappedPolicy.LABEL


def read_converter(mapping: FieldMapping, column: ColumnSpec, where: str) -> Convert:
    """Build source value -> UDM value for a non-lookup column (option map, casts, field type)."""
    assert mapping.type is not None
    steps: list[Convert] = []
    labels = dict(column.options)
    numeric_target = mapping.type in (FieldType.INTEGER, FieldType.BIGINT)
    if column.type is ColumnType.MULTICHOICE:
        return multi_reader(option_reader(mapping.options, labels, _option_policy(mapping)))
    if column.type is ColumnType.CHOICE and not numeric_target:
        steps.append(option_reader(mapping.options, labels, _option_policy(mapping)))
    steps.extend(CAST_FUNCS[c] for c in mapping.casts)
    coerce = FIELD_COERCE.get(mapping.type)
    if coerce is not None:
        steps.append(coerce)
    return chain(steps)


def write_converter(mapping: FieldMapping, column: ColumnSpec, where: str) -> Convert:
    """Build UDM value -> source value for a non-lookup column, in the source's shape (option ints...)."""
    assert mapping.type is not None
    labels = dict(column.options)
    if column.type is ColumnType.MULTICHOICE:
        return multi_writer(option_writer(mapping.options, labels, _option_policy(mapping)))
    if column.type is ColumnType.CHOICE:
        if mapping.type in (FieldType.INTEGER, FieldType.BIGINT):
            return FIELD_COERCE[mapping.type]
        return option_writer(mapping.options, labels, _option_policy(mapping))
    steps: list[Convert] = [CAST_FUNCS[c] for c in mapping.casts if c in NORMALISING_CASTS]
    coerce = COLUMN_COERCE.get(column.type)
    if coerce is not None:
        steps.append(coerce)
    return chain(steps)


# UDM field type -> the value type its read conversion returns unchanged (FIELD_COERCE of a value of exactly
# this type is the value itself), so a column read with no option map or cast can pass such a value as is.
_PASSTHROUGH: Mapping[FieldType, type[Any]] = {
    FieldType.STRING: str,
    FieldType.TEXT: str,
    FieldType.INTEGER: int,
    FieldType.BIGINT: int,
    FieldType.DECIMAL: Decimal,
    FieldType.FLOAT: float,
    FieldType.BOOLEAN: bool,
    FieldType.DATETIME: dt.datetime,  # aware ones only; see compile_readers
    FieldType.DATE: dt.date,
}


def passthrough(mapping: FieldMapping, column: ColumnSpec) -> tuple[str, str, type[Any]] | None:
    """Return (column, field, value type) when values of exactly that type map to the field as they are.

    That holds with no option map, cast or constant involved; the compiled row function then skips the reader.
    """
    if mapping.field is None or mapping.type is None or mapping.casts or mapping.has_constant:
        return None
    if column.type in (ColumnType.MULTICHOICE, ColumnType.CHOICE, ColumnType.LOOKUP):
        return None
    kind = _PASSTHROUGH.get(mapping.type)
    return None if kind is None else (column.name, mapping.field, kind)


def compile_readers(readers: Sequence[tuple[Reader, tuple[str, str, type[Any]] | None]], name: str) -> Reader:
    """Generate one function running ``readers`` in order, with pass-through fields inlined.

    A pass-through field whose value has the exact type is copied; anything else (absent, None, another type)
    goes through its reader, so the result always equals running the readers one by one. Column and field names
    enter the source only as ``repr`` literals.
    """
    space: dict[str, Any] = {"MISSING": _MISSING, "datetime": dt.datetime}
    lines = ["def read(values, labels, out, refs, problems):", "    get = values.get"]
    for i, (reader, fast) in enumerate(readers):
        space[f"r{i}"] = reader
        call = f"r{i}(values, labels, out, refs, problems)"
        if fast is None:
            lines.append(f"    {call}")
            continue
        source, target, kind = fast
        space[f"t{i}"] = kind
        check = f"type(v) is t{i}" + (" and v.tzinfo is not None" if kind is dt.datetime else "")
        lines += [f"    v = get({source!r}, MISSING)", f"    if {check}:", f"        out[{target!r}] = v",
                  "    elif v is not MISSING:", f"        {call}"]  # fmt: skip
    if len(lines) == 2:
        lines.append("    pass")
    exec(compile("\n".join(lines), f"<mapping reader of {name}>", "exec"), space)
    read: Reader = space["read"]
    return read


def scalar_reader(mapping: FieldMapping, column: ColumnSpec, where: str) -> Reader:
    """Build the reader of one non-lookup column into one UDM field."""
    source, target = column.name, mapping.field
    assert target is not None
    convert = read_converter(mapping, column, where)
    default = _udm_default(mapping)
    # A choice the metadata did not list (added after activation) can still use the label the source sent.
    label_fallback = column.type is ColumnType.CHOICE and mapping.unmapped in (None, UnmappedPolicy.LABEL)

    def read(
        values: Mapping[str, Any],
        labels: Mapping[str, str],
        out: dict[str, Any],
        refs: dict[str, LookupRef | None],
        problems: list[str],
    ) -> None:
        raw = values.get(source, _MISSING)
        if raw is _MISSING:
            return
        if raw is None:
            out[target] = default
            return
        try:
            out[target] = convert(raw)
        except ValueError as exc:
            if label_fallback and source in labels:
                out[target] = labels[source]
            else:
                problems.append(f"{where}: {exc}")

    return read


def constant_reader(mapping: FieldMapping) -> Reader:
    """Build the reader that sets a UDM field to a fixed value on every row."""
    assert mapping.field is not None and mapping.type is not None
    target = mapping.field
    coerce = FIELD_COERCE.get(mapping.type)
    value = (
        coerce(mapping.constant) if coerce is not None and mapping.constant is not None else mapping.constant
    )

    def read(
        values: Mapping[str, Any],
        labels: Mapping[str, str],
        out: dict[str, Any],
        refs: dict[str, LookupRef | None],
        problems: list[str],
    ) -> None:
        out[target] = value

    return read


def lookup_reader(column: ColumnSpec, group: Sequence[tuple[FieldMapping, str]], where: str) -> Reader:
    """Build the reader of one lookup column into its reference field(s), one per accepted target table.

    ``group`` pairs each reference mapping with the source table it accepts. A value pointing to another table
    follows the strictest ``unmapped`` policy of the group: reject > keep (leave unchanged) > null.
    """
    source = column.name
    accept = {table: mapping.field for mapping, table in group if mapping.field}
    fields = tuple(f for f in accept.values() if f is not None)
    policies = {m.unmapped or UnmappedPolicy.NULL for m, _ in group}
    policy = UnmappedPolicy.NULL
    for strictest in (UnmappedPolicy.KEEP, UnmappedPolicy.REJECT):
        if strictest in policies:
            policy = strictest
    only_table = column.targets[0] if len(column.targets) == 1 else None

    def read(
        values: Mapping[str, Any],
        labels: Mapping[str, str],
        out: dict[str, Any],
        refs: dict[str, LookupRef | None],
        problems: list[str],
    ) -> None:
        raw = values.get(source, _MISSING)
        if raw is _MISSING:
            return
        if raw is None:
            for name in fields:
                refs[name] = None
            return
        if not isinstance(raw, LookupRef):
            if only_table is None or not isinstance(raw, str):
                problems.append(f"{where}: expected a lookup reference, got {raw!r}")
                return
            raw = LookupRef(only_table, raw)
        chosen = accept.get(raw.table)
        if chosen is None:
            if policy is UnmappedPolicy.REJECT:
                problems.append(f"{where}: points to table '{raw.table}', which this mapping does not map")
                return
            if policy is UnmappedPolicy.KEEP:
                return
        for name in fields:
            refs[name] = raw if name == chosen else None

    return read


def scalar_writer(mapping: FieldMapping, column: ColumnSpec, where: str) -> Writer:
    """Build the writer of one UDM field back to one source column."""
    source, field_name = column.name, mapping.field
    assert field_name is not None
    convert = write_converter(mapping, column, where)
    empty_is_null = column.type not in _TEXT_COLUMNS
    default = _MISSING
    if mapping.has_default and mapping.default is not None:
        default = convert(mapping.default)

    def write(
        udm: Mapping[str, Any], refs: Mapping[str, Any], out: dict[str, Any], problems: list[str]
    ) -> None:
        value = udm.get(field_name, _MISSING)
        if value is _MISSING:
            return
        if value is None or (empty_is_null and value == ""):
            out[source] = None if default is _MISSING else default
            return
        try:
            out[source] = convert(value)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")

    return write


def constant_writer(mapping: FieldMapping, column: ColumnSpec) -> Writer:
    """Build the writer that sends a fixed value to a source column on every write."""
    source = column.name
    coerce = COLUMN_COERCE.get(column.type)
    value = (
        coerce(mapping.constant) if coerce is not None and mapping.constant is not None else mapping.constant
    )

    def write(
        udm: Mapping[str, Any], refs: Mapping[str, Any], out: dict[str, Any], problems: list[str]
    ) -> None:
        out[source] = value

    return write


def lookup_writer(column: ColumnSpec, group: Sequence[tuple[FieldMapping, str]], where: str) -> Writer:
    """Build the writer of reference field(s) back to one lookup column as ``LookupRef(table, id)``.

    ``references`` (or, failing that, the UDM values) hold, per UDM reference field, the source row it resolves
    to (``LookupRef`` or a bare id).
    Only fields present are considered; two non-empty references for one column are a problem.
    """
    source = column.name
    pairs = tuple((m.field, table) for m, table in group if m.field)

    def write(
        udm: Mapping[str, Any], refs: Mapping[str, Any], out: dict[str, Any], problems: list[str]
    ) -> None:
        chosen: LookupRef | None = None
        seen = False
        for name, table in pairs:
            value = refs.get(name, _MISSING)
            if value is _MISSING:
                # Callers may also hand resolved references inside the UDM values.
                value = udm.get(name, _MISSING)
            if value is _MISSING:
                continue
            seen = True
            if value is None:
                continue
            if isinstance(value, str):
                value = LookupRef(table, value)
            if not isinstance(value, LookupRef) or value.table != table:
                problems.append(
                    f"{where}: reference '{name}' must resolve to a row of table '{table}', got {value!r}"
                )
                return
            if chosen is not None:
                problems.append(
                    f"{where}: more than one reference is set ({chosen.table} and {table}); keep one"
                )
                return
            chosen = value
        if seen:
            out[source] = chosen

    return write


def _udm_default(mapping: FieldMapping) -> Any:
    if mapping.default is UNSET or mapping.default is None:
        return None
    coerce = FIELD_COERCE.get(mapping.type) if mapping.type is not None else None
    return coerce(mapping.default) if coerce is not None else mapping.default
