"""Check a mapping spec against the discovered source schema and report every problem at once, located."""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from dynasync.errors import MappingError
from dynasync.mapping.errors import MappingValidationError, problem
from dynasync.mapping.spec import (
    ConflictRule,
    Direction,
    EntityMapping,
    FieldMapping,
    Loc,
    MappingSpec,
    UnmappedPolicy,
)
from dynasync.mapping.transforms import (
    COLUMN_COERCE,
    COLUMN_KIND,
    FIELD_ACCEPTS,
    FIELD_COERCE,
    Kind,
    kind_after_casts,
)
from dynasync.names import slug
from dynasync.synapses.base import ColumnSpec, ColumnType, StreamSpec
from dynasync.udm.model import FieldType

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAME_RULE = "letters, digits and _, not starting with a digit"

# A field type to suggest when a mapping forgot one, by source column type.
SUGGESTED_TYPE: dict[ColumnType, FieldType] = {
    ColumnType.STRING: FieldType.STRING,
    ColumnType.TEXT: FieldType.TEXT,
    ColumnType.INTEGER: FieldType.INTEGER,
    ColumnType.BIGINT: FieldType.BIGINT,
    ColumnType.DECIMAL: FieldType.DECIMAL,
    ColumnType.MONEY: FieldType.DECIMAL,
    ColumnType.FLOAT: FieldType.FLOAT,
    ColumnType.BOOLEAN: FieldType.BOOLEAN,
    ColumnType.DATETIME: FieldType.DATETIME,
    ColumnType.DATE: FieldType.DATE,
    ColumnType.CHOICE: FieldType.CHOICE,
    ColumnType.MULTICHOICE: FieldType.MULTICHOICE,
    ColumnType.LOOKUP: FieldType.REFERENCE,
    ColumnType.UUID: FieldType.UUID,
}


def check_mapping(
    spec: MappingSpec, streams: Sequence[StreamSpec], *, synapses: Collection[str] | None = None
) -> None:
    """Raise when the spec has any problem against ``streams``.

    Raises:
        MappingValidationError: listing every problem, in file order.
    """
    problems = validate_mapping(spec, streams, synapses=synapses)
    if problems:
        raise MappingValidationError(problems)


def validate_mapping(
    spec: MappingSpec, streams: Sequence[StreamSpec], *, synapses: Collection[str] | None = None
) -> list[MappingError]:
    """Return every problem of ``spec`` against the source schema ``streams``, in file order.

    ``synapses``: the keys of the synapses there are; when given, a ``synapse_wins`` rule must name one of them
    (a name that matches none would make the rule side with the UDM against every synapse).
    """
    checker = _Checker(spec, {s.name: s for s in streams}, synapses)
    checker.run()
    checker.found.sort(key=lambda pair: pair[0])
    return [p for _, p in checker.found]


def wrong_synapse(spec: MappingSpec, synapse: str, *, what: str) -> MappingError | None:
    """The problem of a mapping (``what``: "draft", "file") naming another synapse than ``synapse``, located."""
    if spec.synapse == synapse:
        return None
    line = spec.loc.line_of("synapse") if spec.loc is not None else 1
    return problem(f"the {what} names synapse '{spec.synapse}', expected '{synapse}'", spec.source, line)


def conflict_synapse_problems(spec: MappingSpec, synapses: Collection[str]) -> list[MappingError]:
    """Return the ``synapse_wins`` rules of ``spec`` that name none of ``synapses`` (the workspace's keys)."""
    checker = _Checker(spec, {}, synapses)
    for entity in spec.entities:
        for mapping in entity.fields:
            checker.trusted_synapse(mapping)
    checker.found.sort(key=lambda pair: pair[0])
    return [p for _, p in checker.found]


def suggest(name: str, candidates: Iterable[str]) -> str:
    """Return `` (did you mean 'x'?)`` for the closest candidate, or an empty string."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def lookup_target_table(spec: MappingSpec, mapping: FieldMapping, column: ColumnSpec) -> str | None:
    """The source table a reference mapping accepts: ``target_table``, else the table mapped to ``reference``."""
    if mapping.target_table is not None:
        return mapping.target_table
    target = spec.entity_named(mapping.reference) if mapping.reference else None
    if target is not None and (not column.targets or target.table in column.targets):
        return target.table
    if len(column.targets) == 1:
        return column.targets[0]
    return target.table if target is not None else None


def column_kind(column: ColumnSpec, target: FieldType | None) -> Kind:
    """The kind a column's value has after option mapping (choices become text unless stored as numbers)."""
    kind = COLUMN_KIND[column.type]
    if kind is Kind.CHOICE and target not in (FieldType.INTEGER, FieldType.BIGINT):
        return Kind.TEXT
    return kind


@dataclass
class _Checker:
    spec: MappingSpec
    streams: dict[str, StreamSpec]
    synapses: Collection[str] | None = None
    found: list[tuple[int, MappingError]] = field(default_factory=list)

    def add(self, line: int | None, message: str, remedy: str | None = None) -> None:
        self.found.append((line or 0, problem(message, self.spec.source, line, remedy=remedy)))

    def run(self) -> None:
        if not self.spec.synapse or not _NAME.match(self.spec.synapse):
            self.add(
                self._line(self.spec.loc, "synapse"),
                f"synapse name {self.spec.synapse!r} is not a valid name ({_NAME_RULE})",
            )
        tables: dict[str, EntityMapping] = {}
        entities: dict[str, EntityMapping] = {}
        for entity in self.spec.entities:
            first = tables.get(entity.table)
            if first is not None:
                self.add(
                    self._line(entity.loc, "table"),
                    f"table '{entity.table}' is mapped twice (first at line {self._line(first.loc, 'table')})",
                )
            tables.setdefault(entity.table, entity)
            if entity.entity:
                other = entities.get(entity.entity)
                if other is not None:
                    self.add(
                        self._line(entity.loc, "entity"),
                        f"UDM entity '{entity.entity}' is already mapped from table '{other.table}' "
                        f"(line {self._line(other.loc, 'entity')}); map each entity from one table per synapse",
                    )
                entities.setdefault(entity.entity, entity)
            self._entity(entity)

    @staticmethod
    def _line(loc: Loc | None, key: str | None = None) -> int | None:
        if loc is None:
            return None
        return loc.line_of(key) if key else loc.line

    def _entity(self, entity: EntityMapping) -> None:
        line = self._line(entity.loc)
        if not entity.entity:
            self.add(line, f"table '{entity.table}' has no UDM entity (add `entity: <Name>`)")
        elif not _NAME.match(entity.entity):
            self.add(
                self._line(entity.loc, "entity"),
                f"UDM entity name {entity.entity!r} is not a valid name ({_NAME_RULE})",
            )
        stream = self.streams.get(entity.table)
        if stream is None:
            self.add(
                self._line(entity.loc, "table"),
                f"table '{entity.table}' does not exist in the synapse schema{suggest(entity.table, self.streams)}",
            )
        reads: dict[str, FieldMapping] = {}
        writes: dict[str, list[FieldMapping]] = {}
        for mapping in entity.fields:
            self._field(entity, stream, mapping)
            if mapping.field and mapping.direction.reads and (mapping.column or mapping.has_constant):
                previous = reads.get(mapping.field)
                if previous is not None:
                    self.add(
                        self._line(mapping.loc, "field"),
                        f"UDM field '{mapping.field}' of '{entity.entity}' is already mapped from "
                        f"{previous.label} (line {self._line(previous.loc)})",
                    )
                reads.setdefault(mapping.field, mapping)
            if mapping.column and mapping.direction.writes:
                writes.setdefault(mapping.column, []).append(mapping)
        for column, group in writes.items():
            self._write_duplicates(entity, column, group)
        names = {m.field for m in entity.fields if m.field and m.direction.reads}
        for key in entity.match_keys:
            if key not in names:
                self.add(
                    self._line(entity.loc, "match_keys"),
                    f"match key '{key}' is not a mapped field of '{entity.entity}'{suggest(key, names)}",
                )

    def _write_duplicates(self, entity: EntityMapping, column: str, group: list[FieldMapping]) -> None:
        if len(group) < 2:
            return
        targets = [m.target_table for m in group]
        polymorphic = all(m.type is FieldType.REFERENCE for m in group) and None not in targets
        if polymorphic and len(set(targets)) == len(targets):
            return
        for mapping in group[1:]:
            self.add(
                self._line(mapping.loc, "column"),
                f"column '{entity.table}.{column}' is written back by more than one field mapping "
                f"(first: {group[0].label}, line {self._line(group[0].loc)}); keep one with direction "
                "from_udm/both, or give each polymorphic lookup its own target_table",
            )

    def trusted_synapse(self, mapping: FieldMapping) -> None:
        """A ``synapse_wins`` rule must name a synapse there is (checked when the synapses are known)."""
        trusted = mapping.conflict.synapse
        if (
            mapping.conflict.rule is ConflictRule.SYNAPSE_WINS
            and trusted is not None
            and self.synapses is not None
            and trusted not in self.synapses
        ):
            self.add(
                self._line(mapping.loc, "conflict"),
                f"conflict synapse_wins names '{trusted}', which is no synapse here"
                f"{suggest(slug(trusted), self.synapses)}"  # a display name: the key it probably meant
                f"; synapses are named by their key: {', '.join(sorted(self.synapses))}",
            )

    def _field(self, entity: EntityMapping, stream: StreamSpec | None, mapping: FieldMapping) -> None:
        loc = mapping.loc
        self.trusted_synapse(mapping)
        if not mapping.field and not (mapping.column and mapping.has_constant):
            self.add(self._line(loc), f"field mapping {mapping.label} has no UDM field (add `field: <name>`)")
        elif mapping.field and not _NAME.match(mapping.field):
            self.add(
                self._line(loc, "field"),
                f"UDM field name {mapping.field!r} is not a valid name ({_NAME_RULE})",
            )
        if mapping.column is None and not mapping.has_constant:
            self.add(self._line(loc), f"field mapping for '{mapping.field}' needs a 'column' or a 'constant'")
        if mapping.has_constant:
            if mapping.column is None and mapping.direction.writes:
                self.add(
                    self._line(loc, "direction"),
                    f"constant for '{mapping.field}' has no column to write; use direction: to_udm",
                )
            if mapping.column is not None and mapping.direction is not Direction.FROM_UDM:
                self.add(
                    self._line(loc, "constant"),
                    f"a constant with a column is written to the source; set direction: from_udm on {mapping.label}",
                )
        column = None
        if stream is not None and mapping.column is not None:
            column = stream.columns.get(mapping.column)
            if column is None:
                self.add(
                    self._line(loc, "column"),
                    f"column '{mapping.column}' does not exist on table '{stream.name}'"
                    f"{suggest(mapping.column, stream.columns)}",
                )
        if mapping.type is None:
            if mapping.field:
                hint = f"; try `type: {SUGGESTED_TYPE[column.type].value}`" if column is not None else ""
                self.add(self._line(loc), f"UDM field '{mapping.field}' has no type{hint}")
            return
        if column is not None and stream is not None:
            self._column(entity, stream, column, mapping)
        self._values(mapping, column)

    def _column(
        self, entity: EntityMapping, stream: StreamSpec, column: ColumnSpec, mapping: FieldMapping
    ) -> None:
        loc = mapping.loc
        where = f"{stream.name}.{column.name}"
        if mapping.direction.reads and not column.readable and not mapping.has_constant:
            self.add(self._line(loc, "column"), f"column '{where}' cannot be read; use direction: from_udm")
        if mapping.direction.writes and not (column.creatable or column.updatable):
            self.add(
                self._line(loc, "direction") if "direction" in (loc.keys if loc else {}) else self._line(loc),
                f"column '{where}' is read-only (neither creatable nor updatable); "
                f"direction '{mapping.direction.value}' would write it (use direction: to_udm)",
            )
        assert mapping.type is not None
        if column.type is ColumnType.LOOKUP or mapping.type is FieldType.REFERENCE:
            self._lookup(entity, stream, column, mapping)
            return
        if mapping.options and column.type not in (ColumnType.CHOICE, ColumnType.MULTICHOICE):
            self.add(
                self._line(loc, "options"),
                f"options apply to choice columns; '{where}' is {column.type.value}",
            )
        if column.type in (ColumnType.CHOICE, ColumnType.MULTICHOICE):
            self._options(where, column, mapping)
        elif mapping.unmapped is not None:
            self.add(
                self._line(loc, "unmapped"), f"'unmapped' applies to choice and lookup columns, not '{where}'"
            )
        if column.type is ColumnType.MULTICHOICE:
            ok = mapping.type in (FieldType.MULTICHOICE, FieldType.STRING, FieldType.TEXT)
            if not ok or mapping.casts:
                self.add(
                    self._line(loc, "type"),
                    f"multi-select column '{where}' maps to a multichoice (or string) field without casts",
                )
            return
        kind, cast_problem = kind_after_casts(column_kind(column, mapping.type), mapping.casts)
        if cast_problem:
            self.add(self._line(loc, "casts"), f"{mapping.label}: {cast_problem}")
        elif kind not in FIELD_ACCEPTS[mapping.type] and not (
            kind is Kind.CHOICE and mapping.type in (FieldType.STRING, FieldType.TEXT)
        ):
            what = f"{column.type.value}, {kind.value} after casts" if mapping.casts else column.type.value
            hint = "" if mapping.casts else _cast_hint(kind, mapping.type)
            self.add(
                self._line(loc, "type"),
                f"column '{where}' ({what}) does not fit UDM field '{mapping.field}' of type "
                f"{mapping.type.value}{hint}",
            )

    def _options(self, where: str, column: ColumnSpec, mapping: FieldMapping) -> None:
        loc = mapping.loc
        if mapping.type in (FieldType.INTEGER, FieldType.BIGINT) and mapping.options:
            self.add(
                self._line(loc, "options"),
                f"an integer field stores raw option numbers; drop 'options' on {where}",
            )
        if mapping.unmapped is UnmappedPolicy.LABEL and mapping.type in (FieldType.INTEGER, FieldType.BIGINT):
            self.add(
                self._line(loc, "unmapped"), f"unmapped: label needs a choice or string field for {where}"
            )
        known = {value for value, _ in column.options}
        if not known:
            return  # the source gave no option list; values cannot be checked
        listing = ", ".join(f"{v} {label}" for v, label in column.options[:12])
        more = ", ..." if len(column.options) > 12 else ""
        for value in mapping.options:
            if value not in known:
                self.add(
                    self._line(loc, f"options.{value}") if loc else None,
                    f"option value {value} does not exist in the option set of '{where}' (values: {listing}{more})",
                )

    def _lookup(
        self, entity: EntityMapping, stream: StreamSpec, column: ColumnSpec, mapping: FieldMapping
    ) -> None:
        loc = mapping.loc
        where = f"{stream.name}.{column.name}"
        if column.type is not ColumnType.LOOKUP:
            self.add(
                self._line(loc, "type"),
                f"a reference field needs a lookup column; '{where}' is {column.type.value}",
            )
            return
        if mapping.type is not FieldType.REFERENCE:
            self.add(
                self._line(loc, "type"),
                f"lookup column '{where}' must map to a field of type reference naming the target UDM entity",
            )
            return
        if mapping.unmapped is UnmappedPolicy.LABEL:
            self.add(
                self._line(loc, "unmapped"),
                "lookups take unmapped: null, reject or keep (label is for choices)",
            )
        if mapping.casts or mapping.options:
            self.add(self._line(loc), f"lookup '{where}' takes no casts or options")
        if not mapping.reference:
            self.add(self._line(loc), f"reference field '{mapping.field}' needs `reference: <UDM entity>`")
            return
        table = lookup_target_table(self.spec, mapping, column)
        if table is None:
            self.add(
                self._line(loc, "reference"),
                f"lookup '{where}' points at UDM entity '{mapping.reference}', which no table maps",
            )
            return
        key = "target_table" if mapping.target_table is not None else "reference"
        if column.targets and table not in column.targets:
            self.add(
                self._line(loc, key),
                f"lookup '{where}' cannot point to table '{table}' (its targets: {', '.join(column.targets)})"
                f"{suggest(table, column.targets)}",
            )
            return
        mapped = self.spec.entity_for_table(table)
        if mapped is None:
            self.add(
                self._line(loc, key),
                f"lookup '{where}' targets table '{table}', which is not mapped to any UDM entity "
                f"(map '{table}' or remove this field)",
            )
        elif mapped.entity != mapping.reference:
            self.add(
                self._line(loc, "reference"),
                f"lookup '{where}' targets table '{table}', which maps to '{mapped.entity}', not '{mapping.reference}'",
            )

    def _values(self, mapping: FieldMapping, column: ColumnSpec | None) -> None:
        assert mapping.type is not None
        convert = FIELD_COERCE.get(mapping.type)
        for key, value, present in (
            ("default", mapping.default, mapping.has_default),
            ("constant", mapping.constant, mapping.has_constant and mapping.column is None),
        ):
            if not present or value is None or convert is None:
                continue
            try:
                convert(value)
            except ValueError as exc:
                self.add(
                    self._line(mapping.loc, key),
                    f"{key} for '{mapping.field}' does not fit type {mapping.type.value}: {exc}",
                )
        if (
            mapping.has_constant
            and mapping.column is not None
            and column is not None
            and mapping.constant is not None
        ):
            coerce = COLUMN_COERCE.get(column.type)
            if coerce is not None:
                try:
                    coerce(mapping.constant)
                except ValueError as exc:
                    self.add(
                        self._line(mapping.loc, "constant"), f"constant for column '{column.name}': {exc}"
                    )


def _cast_hint(kind: Kind, target: FieldType) -> str:
    if kind is Kind.TEXT and target in (FieldType.DECIMAL, FieldType.FLOAT):
        return " (add `casts: [number]`)"
    if kind is Kind.TEXT and target in (FieldType.INTEGER, FieldType.BIGINT):
        return " (add `casts: [integer]`)"
    if target in (FieldType.STRING, FieldType.TEXT):
        return " (add `casts: [string]`)"
    if kind is Kind.DATETIME and target is FieldType.DATE:
        return " (add `casts: [date_only]`)"
    return ""
