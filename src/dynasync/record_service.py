"""UDM records edited by hand (``dynasync record``): show one, change fields, create one, delete one.

An edit here is a UDM-side change like any other: the store gives the record a new version, stamps each changed
field with its change time and logs the event with source ``udm``. The next sync's write-back sends it to every
synapse whose mapping writes the field, and a later edit of the same field in a source system is settled by the
field's conflict policy. Input is checked whole before anything is written: every unknown field, unreadable
value and missing referenced record is reported at once, and nothing changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dynasync.activation import load_streams, mapping_repository
from dynasync.engine.bindings import write_fields_of
from dynasync.engine.policy import always_applies
from dynasync.errors import ConfigError
from dynasync.mapping import MappingSpec, compile_mapping
from dynasync.sync_service import locate_record, open_udm
from dynasync.udm.model import FieldType, UdmEntity, UdmRecord
from dynasync.udm.store import Link, UdmStore
from dynasync.workspace import ACTIVE, INACTIVE, SynapseRecord, Workspace

BY_HAND = "set by hand in the UDM (dynasync record)"
# An edit by hand is the user's explicit word: it applies whatever time a source stamped on the field last.
_by_hand = always_applies(BY_HAND)
EMPTY_HINT = "`field=` (nothing after '=') clears a field"
# Field types whose values a mapping may refuse to write although the UDM holds them (option maps, lengths)
_CHECKED_ON_WRITE = frozenset({FieldType.CHOICE, FieldType.MULTICHOICE, FieldType.STRING, FieldType.TEXT})


@dataclass(frozen=True, slots=True)
class FieldEdit:
    """One field an edit changed: its value before and after."""

    field: str
    old: Any
    new: Any


@dataclass(frozen=True, slots=True)
class RecordView:
    """A UDM record with its links to source rows."""

    entity: str
    record: UdmRecord
    links: list[Link]


@dataclass(frozen=True, slots=True)
class RecordEdit:
    """What an edit did: ``created``, ``updated``, ``unchanged`` or ``deleted``, and the fields it changed.

    ``destinations`` are the active synapses whose published mapping takes the change (writes one of the changed
    fields, or propagates the delete); ``kept_local`` the changed fields no such mapping writes.
    """

    entity: str
    udm_id: str
    action: str
    version: int
    changes: list[FieldEdit]
    destinations: list[str] = field(default_factory=list)
    kept_local: list[str] = field(default_factory=list)


def parse_assignments(pairs: Sequence[str]) -> dict[str, str | None]:
    """Read ``field=value`` arguments (``field=`` clears the field); raise ConfigError naming every bad one."""
    values: dict[str, str | None] = {}
    problems: list[str] = []
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            problems.append(f"{pair!r} is not field=value")
        elif name in values:
            problems.append(f"field {name!r} is given twice")
        else:
            values[name] = value if value != "" else None
    if problems:
        raise ConfigError(
            f"Cannot read the field values: {'; '.join(problems)}.",
            remedy=f"Give each field once as field=value, e.g. phone=+1-555-0100 ({EMPTY_HINT}).",
        )
    if not values:
        raise ConfigError("No field values given.", remedy="Give one or more field=value arguments.")
    return values


def entity_named(store: UdmStore, name: str) -> UdmEntity:
    """The UDM entity called ``name`` (case-insensitive); raise ConfigError listing the known ones."""
    entities = store.entities()
    found = entities.get(name) or next((e for k, e in entities.items() if k.lower() == name.lower()), None)
    if found is None:
        raise ConfigError(
            f"There is no UDM entity {name!r}.",
            remedy=f"Known entities: {', '.join(sorted(entities)) or 'none yet (publish a mapping first)'}.",
        )
    return found


def show_record(ws: Workspace, record_id: str, *, entity: str | None = None) -> RecordView:
    """Find a record by UDM id or source id and return it with its links."""
    with open_udm(ws) as store:
        record = _locate(store, record_id, entity)
        return RecordView(record.entity, record, store.links_for_record(record.entity, record.id))


def set_fields(
    ws: Workspace, record_id: str, assignments: Sequence[str], *, entity: str | None = None
) -> RecordEdit:
    """Change fields of an existing, live record; the next sync writes the change back."""
    values = parse_assignments(assignments)
    with open_udm(ws) as store:
        record = _locate(store, record_id, entity)
        if record.deleted:
            raise ConfigError(
                f"{record.entity} {record.id} is deleted; its fields are not changed.",
                remedy="Create a new record instead: `dynasync record new`.",
            )
        mappings = _published(ws)
        unwritable = _write_problems(ws, mappings, record.entity, values)
        values = _checked(store, entity_named(store, record.entity), values, unwritable)
        outcome = store.upsert(record.entity, values, udm_id=record.id, source="udm", policy=_by_hand)
    changes = [FieldEdit(c.field, c.old, c.new) for c in outcome.changes]
    edit = RecordEdit(record.entity, record.id, outcome.action, outcome.version, changes)
    return _with_destinations(mappings, edit)


def create_record(ws: Workspace, entity: str, assignments: Sequence[str]) -> RecordEdit:
    """Create a UDM record; the next sync creates it in every synapse whose mapping writes the entity.

    Raises:
        ConfigError: bad values, or the match-key fields equal a live record's (the record exists already:
            change it with ``record set`` rather than have two).
    """
    values = parse_assignments(assignments)
    mappings = _published(ws)
    with open_udm(ws) as store:
        target = entity_named(store, entity)
        values = _checked(store, target, values, _write_problems(ws, mappings, target.name, values))
        if target.match_keys and all(values.get(k) not in (None, "") for k in target.match_keys):
            twin = store.find_by_match_key(target.name, values)
            if twin is not None:
                keys = ", ".join(f"{k}={values[k]}" for k in target.match_keys)
                raise ConfigError(
                    f"{target.name} {twin.id} already has {keys} (the match key); no record was created.",
                    remedy=f"Change that record with `dynasync record set {twin.id} field=value ...`.",
                )
        outcome = store.upsert(target.name, values, source="udm", policy=_by_hand)
    changes = [FieldEdit(k, None, v) for k, v in values.items() if v is not None]
    edit = RecordEdit(target.name, outcome.udm_id, outcome.action, outcome.version, changes)
    return _with_destinations(mappings, edit)


def delete_record(ws: Workspace, record_id: str, *, entity: str | None = None) -> RecordEdit:
    """Mark a record deleted; it reaches a synapse only where that mapping's ``deletes.from_udm`` is on."""
    with open_udm(ws) as store:
        record = _locate(store, record_id, entity)
        if record.deleted:
            raise ConfigError(f"{record.entity} {record.id} is already deleted.", remedy="Nothing to do.")
        store.mark_deleted(record.entity, record.id, source="udm")
        after = store.get(record.entity, record.id)
    version = after.version if after is not None else record.version
    return _with_destinations(_published(ws), RecordEdit(record.entity, record.id, "deleted", version, []))


def _published(ws: Workspace) -> list[tuple[SynapseRecord, MappingSpec]]:
    """The published mapping of every synapse that syncs, or will once activated again (paused)."""
    out: list[tuple[SynapseRecord, MappingSpec]] = []
    for record in ws.synapses():
        spec = mapping_repository(ws, record).published() if record.status in (ACTIVE, INACTIVE) else None
        if spec is not None:
            out.append((record, spec))
    return out


def _with_destinations(mappings: Sequence[tuple[SynapseRecord, MappingSpec]], edit: RecordEdit) -> RecordEdit:
    """``edit`` with the synapses that will take it and the changed fields none of them writes."""
    changed = {c.field for c in edit.changes}
    written: set[str] = set()
    for record, spec in mappings:
        paused = record.status == INACTIVE
        for mapping in spec.entities:
            if mapping.entity != edit.entity:
                continue
            fields = write_fields_of(mapping)
            takes = mapping.delete_from_udm if edit.action == "deleted" else bool(changed & fields)
            if takes:
                when = ", paused: written once it is activated again" if paused else ""
                edit.destinations.append(f"{record.name} ({mapping.table}{when})")
            written |= fields
    edit.kept_local.extend(sorted(changed - written))
    return edit


def _locate(store: UdmStore, record_id: str, entity: str | None) -> UdmRecord:
    name = entity_named(store, entity).name if entity is not None else None
    found = store.get(*locate_record(store, record_id, name))
    assert found is not None  # located just now, in this process's only connection to the store
    return found


def _write_problems(
    ws: Workspace,
    mappings: Sequence[tuple[SynapseRecord, MappingSpec]],
    entity: str,
    values: Mapping[str, str | None],
) -> dict[str, str]:
    """Return, by field, what the synapses' mappings could not write of ``values``.

    An option with no entry in the option map, or text longer than the Dynamics column: refused now rather than
    failing at the next sync, when the edit would already be in the UDM.
    """
    problems: dict[str, str] = {}
    for record, spec in mappings:
        mapping = next((e for e in spec.entities if e.entity == entity), None)
        if mapping is None:
            continue
        streams = load_streams(ws, record)
        stream = next((s for s in streams if s.name == mapping.table), None)
        if stream is None:
            continue
        compiled = compile_mapping(spec, streams).for_entity(entity)
        for fm in mapping.fields:
            name = fm.field
            value = values.get(name) if name else None
            if name is None or value is None or not fm.direction.writes or fm.type not in _CHECKED_ON_WRITE:
                continue
            where = f"{record.name} {mapping.table}.{fm.column}"
            for problem in compiled.from_udm({name: value}).problems:
                problems.setdefault(name, f"{problem.split(': ', 1)[-1]} ({where})")
            column = stream.columns.get(fm.column or "")
            if column is not None and column.max_length is not None and len(value) > column.max_length:
                problems.setdefault(
                    name,
                    f"text of {len(value)} characters exceeds the {column.max_length} that {where} holds",
                )
    return problems


def _checked(
    store: UdmStore,
    entity: UdmEntity,
    values: Mapping[str, str | None],
    unwritable: Mapping[str, str] | None = None,
) -> dict[str, str | None]:
    """The values to write, references as the UDM ids they name.

    Raises:
        ConfigError: naming every unknown field, value its field cannot hold and missing referenced record, and
            every value a synapse's mapping could not write (``unwritable``, by field).
    """
    # One problem per field: what the UDM cannot hold comes before what a synapse could not take.
    by_field = store.value_problems(entity.name, values)
    for name, why in (unwritable or {}).items():
        by_field.setdefault(name, why)
    problems = [f"{name}: {why}" for name, why in by_field.items()]
    out = dict(values)
    for name, value in values.items():
        field = entity.fields.get(name)
        if field is None or field.type is not FieldType.REFERENCE or value is None or field.reference is None:
            continue
        out[name] = udm_id = value.strip().strip("{}").lower()
        target = store.get(field.reference, udm_id)
        if target is None or target.deleted:
            problems.append(f"{name}: no live {field.reference} record has the UDM id {value!r}")
    if problems:
        raise ConfigError(
            f"{entity.name}: {len(problems)} field value(s) cannot be used: {'; '.join(problems)}. "
            "Nothing was changed.",
            remedy=f"Fields of {entity.name}: {', '.join(sorted(entity.fields))}. {EMPTY_HINT}; datetimes "
            "need a time zone (2024-05-01T12:00:00Z); a reference takes the UDM id of the record it points to.",
        )
    return out
