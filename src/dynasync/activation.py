"""Step 6 "Make Synapse Active": replicate the Dynamics schema into the UDM, and keep it fresh ("refresh schema").

Activation discovers the org's tables (columns, option sets, lookups, keys, change tracking), keeps the schema
snapshot, optionally creates and publishes the default mapping, and creates the UDM entity tables of the
published mapping, so users can query them with SQL.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dynasync import setup
from dynasync.errors import ConfigError, MappingError
from dynasync.mapping import FileMappingRepository, MappingSpec, dump_mapping, udm_entities, validate_mapping
from dynasync.mapping.draft_ops import replace_draft
from dynasync.mapping.errors import MappingValidationError
from dynasync.mapping.mirrored_repository import MirroredMappingRepository
from dynasync.names import slug
from dynasync.synapses.base import StreamSpec
from dynasync.synapses.dynamics.defaults import default_mapping
from dynasync.synapses.dynamics.schema import DiscoveryResult, discover
from dynasync.synapses.dynamics.schema_drift import (
    SchemaDrift,
    diff_schemas,
    stream_from_dict,
    stream_to_dict,
)
from dynasync.udm.model import UdmEntity
from dynasync.udm.store import open_store
from dynasync.workspace import ACTIVE, INACTIVE, SynapseRecord, Workspace, now_iso

ORG_TABLES_KEY = "org_tables"  # SynapseRecord.extra: the org's tables at activation
# The standard tables the default mapping covers (activation replicates every table unless told otherwise).
DEFAULT_TABLES = ("account", "contact", "lead", "opportunity", "systemuser")


@dataclass(slots=True)
class ActivationReport:
    """What activation did."""

    synapse: str
    tables: list[str]
    untracked: list[str]
    discovery_summary: str
    mapping_version: int | None = None
    udm_entities: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return dataclasses.asdict(self)


def mapping_repository(ws: Workspace, record: SynapseRecord) -> MirroredMappingRepository:
    """The mapping of a synapse: draft/published YAML files, every save and publish mirrored in the UDM store.

    Each call opens and closes the store itself; ``with mapping_repository(ws, record) as repo:`` holds one
    store open for the whole block.
    """
    url = ws.settings.resolved_udm_url()
    return MirroredMappingRepository(
        FileMappingRepository(ws.settings.mappings_dir, slug(record.name)), lambda: open_store(url)
    )


def load_streams(ws: Workspace, record: SynapseRecord) -> list[StreamSpec]:
    """The schema snapshot taken at activation; ConfigError before activation."""
    data = ws.load_schema(record)
    if data is None:
        raise ConfigError(
            f"Synapse {record.name!r} has no schema yet.",
            remedy="Activate it first: `dynasync synapse activate` (Step 6).",
        )
    return [stream_from_dict(item) for item in data]


async def discover_schema(
    ws: Workspace, record: SynapseRecord, tables: Sequence[str] | None
) -> DiscoveryResult:
    """Read the org's schema: the named tables, or every table when ``tables`` is None or ``["*"]``."""
    wanted = None if not tables or "*" in tables else list(tables)
    async with setup.open_client(ws, record) as client:
        return await discover(client, tables=wanted)


async def activate(
    ws: Workspace,
    record: SynapseRecord,
    *,
    use_default_mapping: bool,
    tables: Sequence[str] | None = None,
) -> ActivationReport:
    """Replicate the schema into the UDM and make the synapse active.

    Raises:
        AuthError: The synapse is not authenticated (or its tokens were refused), with the remedy.
        MappingValidationError: The published mapping does not fit the discovered schema.
    """
    result = await discover_schema(ws, record, tables)
    _check_requested_tables(tables, result)
    ws.save_schema(record, [stream_to_dict(s) for s in result.streams])
    record.extra[ORG_TABLES_KEY] = sorted(result.collections)  # a refresh compares with it to spot new tables
    report = ActivationReport(
        synapse=record.name,
        tables=sorted(s.name for s in result.streams),
        untracked=list(result.untracked),
        discovery_summary=result.summary(),
    )
    repo = mapping_repository(ws, record)
    if use_default_mapping:
        spec = default_spec(repo.synapse, result.streams)
        problems = publish_problems(ws, record, spec, result.streams)
        if problems:
            raise MappingValidationError(problems)
        report.mapping_version = _publish_default(repo, spec, result.streams)
        report.notes.extend(spec.notes)
    published = repo.published()
    if published is not None:
        report.udm_entities = ensure_udm_entities(ws, published, result.streams)
    elif not use_default_mapping:
        report.notes.append(
            "No mapping is published yet: write one (`dynasync mapping edit`) and publish it, "
            "or activate with --default-mapping."
        )
    record.status = "active"
    record.activated_at = now_iso()
    record.extra.pop("deactivated_at", None)
    ws.save(record)
    return report


def default_spec(synapse_key: str, streams: Sequence[StreamSpec]) -> MappingSpec:
    """The default mapping of the replicated schema, for the synapse with this key."""
    return dataclasses.replace(default_mapping(streams), synapse=synapse_key)


def _publish_default(
    repo: MirroredMappingRepository, spec: MappingSpec, streams: Sequence[StreamSpec]
) -> int | None:
    """Publish the default mapping unless it runs already; None when nothing was published.

    Raises:
        ConfigError: another mapping runs (it would be replaced), or the draft holds unpublished edits.
    """
    text = dump_mapping(spec)
    history = repo.history()
    published = repo.published()
    if published is not None:
        if dump_mapping(published) == text:
            return None
        raise ConfigError(
            f"Synapse {repo.synapse!r} runs its own mapping (version {history[-1].version}); --default-mapping "
            "would replace it.",
            remedy="Activate without --default-mapping to keep it (the schema is replicated again either way). "
            "To run the default mapping on purpose: `dynasync mapping show --default > default.yaml`, then "
            "`dynasync mapping publish --file default.yaml`.",
        )
    replace_draft(repo, text, discard_draft=False)
    return repo.publish(streams, summary="default mapping")


def deactivate(ws: Workspace, record: SynapseRecord) -> None:
    """Pause a synapse: syncs leave it out until it is activated again.

    Its credentials, mapping, links and change-tracking cursors stay, so the next activation resumes where it
    stopped (an expired token meanwhile means a full reload, handled like any expiry).

    Raises:
        ConfigError: the synapse is not active.
    """
    if record.status != "active":
        raise ConfigError(
            f"Synapse {record.name!r} is {record.status}, not active; there is nothing to deactivate.",
            remedy="`dynasync synapse list` shows each synapse's status.",
        )
    record.status = INACTIVE
    record.extra["deactivated_at"] = now_iso()
    ws.save(record)


def _check_requested_tables(tables: Sequence[str] | None, result: DiscoveryResult) -> None:
    """Refuse an activation that would silently leave out a table the user asked for (a typo, usually)."""
    if not tables or "*" in tables:
        return
    found = {s.name for s in result.streams}
    missing = [t for t in tables if t not in found]
    if not missing:
        return
    known = sorted(set(result.collections) | found)
    hints = []
    for table in missing:
        close = difflib.get_close_matches(table.lower(), known, n=1)
        hints.append(f"{table!r} (did you mean {close[0]!r}?)" if close else repr(table))
    raise ConfigError(
        f"Table{'s' if len(missing) > 1 else ''} {', '.join(hints)} not found in the org (or not readable "
        "through the Web API); nothing was activated.",
        remedy="Give logical table names (e.g. account, contact, new_project), or leave out --table to "
        "replicate every table.",
    )


def publish_problems(
    ws: Workspace, record: SynapseRecord, spec: MappingSpec, streams: Sequence[StreamSpec]
) -> list[MappingError]:
    """Return every problem publishing ``spec`` for ``record`` would meet.

    The mapping itself against the schema, the synapses its rules name, and (once the mapping itself is
    sound) the UDM fields it shares with the UDM and with the other synapses.
    """
    problems = validate_mapping(spec, streams, synapses=ws.synapse_keys())
    return problems or udm_fit_problems(ws, record, spec, streams)


def udm_fit_problems(
    ws: Workspace, record: SynapseRecord, spec: MappingSpec, streams: Sequence[StreamSpec]
) -> list[MappingError]:
    """Return where ``spec`` gives a UDM field another type than the UDM has, or another synapse maps.

    The UDM does not change a field's type by itself (its data would not fit), and two synapses must agree on
    the entities they share: such a mapping is refused before it is published, located at the field.
    """
    mine = {e.name: e for e in udm_entities(spec, streams)}
    theirs: dict[str, tuple[str, UdmEntity]] = {}
    for other in ws.synapses():
        if other.name == record.name or other.status not in (ACTIVE, INACTIVE):
            continue
        published = mapping_repository(ws, other).published()
        for entity in udm_entities(published, load_streams(ws, other)) if published is not None else ():
            theirs.setdefault(entity.name, (f"synapse {other.name!r}", entity))
    with open_store(ws.settings.resolved_udm_url()) as store:
        stored = store.entities()
    problems: list[MappingError] = []
    for name, entity in mine.items():
        held = [(f"the UDM table of {name}", stored[name])] if name in stored else []
        if name in theirs:
            held.append(theirs[name])
        for where, other_entity in held:
            for field_name, new in entity.fields.items():
                old = other_entity.fields.get(field_name)
                if old is None or (old.type, old.reference) == (new.type, new.reference):
                    continue
                problems.append(
                    MappingError(
                        f"UDM field '{name}.{field_name}' would be {new.type.value}, but it is {old.type.value} in "
                        f"{where}; a field keeps its type (map the column to a new field, or keep the type)",
                        location=_field_location(spec, name, field_name),
                    )
                )
    return problems


def _field_location(spec: MappingSpec, entity: str, field_name: str) -> str | None:
    for mapping in spec.entities:
        if mapping.entity != entity:
            continue
        for fm in mapping.fields:
            if fm.field == field_name:
                line = fm.loc.line_of("type") if fm.loc is not None else None
                return f"{spec.source}:{line}" if spec.source and line else spec.source
    return spec.source


def ensure_udm_entities(ws: Workspace, spec: MappingSpec, streams: Sequence[StreamSpec]) -> list[str]:
    """Create (or extend) the UDM entity tables of a mapping (sized from the schema); returns the entity names."""
    entities = udm_entities(spec, streams)
    with open_store(ws.settings.resolved_udm_url()) as store:
        for entity in entities:
            store.ensure_entity(entity)
    return [e.name for e in entities]


async def refresh_schema(
    ws: Workspace, record: SynapseRecord, *, add_tables: Sequence[str] = ()
) -> SchemaDrift:
    """Re-read the schema of the replicated tables (plus ``add_tables``), report drift, keep the new snapshot.

    Tables the org has gained since the activation are reported (at every refresh, until added), not
    replicated: an org has many tables, and which ones to sync is the user's choice.

    Raises:
        ConfigError: a table to add is not in the org.
    """
    old = load_streams(ws, record)
    wanted = sorted({s.name for s in old} | set(add_tables))
    result = await discover_schema(ws, record, wanted)
    _check_requested_tables(list(add_tables), result)
    drift = diff_schemas(old, result.streams)
    in_org = sorted(result.collections)
    seen = record.extra.get(ORG_TABLES_KEY)
    if isinstance(seen, list):
        drift.new_in_org = sorted(set(in_org) - set(seen) - set(wanted))
    else:  # activated before the org's tables were noted: from now on
        record.extra[ORG_TABLES_KEY] = in_org
        ws.save(record)
    ws.save_schema(record, [stream_to_dict(s) for s in result.streams])
    return drift
