"""The YAML boundary: pydantic models of a mapping file and their conversion into the frozen spec."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic import Field as PydField

from dynasync.errors import MappingError
from dynasync.mapping.errors import MappingValidationError, problem
from dynasync.mapping.spec import (
    DEFAULT_CONFLICT,
    UNSET,
    Cast,
    ConflictPolicy,
    ConflictRule,
    Direction,
    EntityMapping,
    FieldMapping,
    Loc,
    MappingSpec,
    ScalarValue,
    UnmappedPolicy,
)
from dynasync.mapping.yaml_nodes import Path, Positions
from dynasync.udm.model import FieldType

FORMAT_VERSION = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldModel(_Strict):
    """One field mapping as written in YAML."""

    column: str | None = None
    field: str | None = None
    type: FieldType | None = None
    direction: Direction = Direction.BOTH
    reference: str | None = None
    target_table: str | None = None
    options: dict[int, ScalarValue] = PydField(default_factory=dict)
    unmapped: UnmappedPolicy | None = None
    casts: list[Cast] = PydField(default_factory=list)
    constant: Any = None
    default: Any = None
    conflict: Any = None
    max_length: int | None = PydField(default=None, ge=1)
    description: str = ""


class DeletesModel(_Strict):
    """Delete propagation: source deletes reach the UDM by default; UDM deletes reach the source if opted in.

    A row deleted in the source is created there again (while another synapse keeps the record) only with
    ``recreate``.
    """

    to_udm: bool = True
    from_udm: bool = False
    recreate: bool = False


class EntityModel(_Strict):
    """One entity mapping as written in YAML."""

    table: str
    entity: str | None = None
    description: str = ""
    match_keys: list[str] = PydField(default_factory=list)
    deletes: DeletesModel = PydField(default_factory=DeletesModel)
    fields: list[FieldModel] = PydField(default_factory=list)


class MappingModel(_Strict):
    """A whole mapping file."""

    format: int = FORMAT_VERSION
    synapse: str
    notes: list[str] = PydField(default_factory=list)
    entities: list[EntityModel] = PydField(default_factory=list)


def build_spec(data: Any, positions: Positions, source: str) -> MappingSpec:
    """Validate parsed YAML data and turn it into a :class:`MappingSpec`.

    Raises:
        MappingValidationError: listing every shape problem (unknown keys, bad enum values...) with its line.
    """
    if not isinstance(data, dict):
        raise MappingValidationError(
            [problem("a mapping file must be a YAML mapping with 'synapse' and 'entities'", source, 1)]
        )
    try:
        model = MappingModel.model_validate(data)
    except ValidationError as exc:
        raise MappingValidationError(_pydantic_problems(exc, positions, source)) from None
    problems: list[MappingError] = []
    if model.format != FORMAT_VERSION:
        problems.append(
            problem(
                f"mapping format {model.format} is not supported (this dynasync reads format {FORMAT_VERSION})",
                source,
                positions.line(("format",)),
            )
        )
    entities = tuple(
        _entity(entity, ("entities", i), positions, source, problems)
        for i, entity in enumerate(model.entities)
    )
    if problems:
        raise MappingValidationError(problems)
    return MappingSpec(
        synapse=model.synapse,
        entities=entities,
        notes=tuple(model.notes),
        source=source,
        loc=_loc((), positions),
    )


def _loc(path: Path, positions: Positions) -> Loc:
    line, column = positions.at.get(path, (positions.line(path) or 1, 1))
    keys = positions.keys_of(path)
    # Option map entries are keyed by number; keep their lines as "options.<value>" for precise reports.
    depth = len(path) + 1
    for sub, (sub_line, _) in positions.at.items():
        if len(sub) == depth + 1 and sub[:depth] == (*path, "options"):
            keys[f"options.{sub[depth]}"] = sub_line
    return Loc(line=line, column=column, keys=keys)


def _entity(
    model: EntityModel, path: Path, positions: Positions, source: str, problems: list[MappingError]
) -> EntityMapping:
    fields = tuple(
        _field(f, (*path, "fields", i), positions, source, problems) for i, f in enumerate(model.fields)
    )
    return EntityMapping(
        table=model.table,
        entity=model.entity or "",
        fields=fields,
        match_keys=tuple(model.match_keys),
        delete_to_udm=model.deletes.to_udm,
        delete_from_udm=model.deletes.from_udm,
        recreate_deleted=model.deletes.recreate,
        description=model.description,
        loc=_loc(path, positions),
    )


def _field(
    model: FieldModel, path: Path, positions: Positions, source: str, problems: list[MappingError]
) -> FieldMapping:
    given = model.model_fields_set
    conflict = DEFAULT_CONFLICT
    if model.conflict is not None:
        try:
            conflict = parse_conflict(model.conflict)
        except ValueError as exc:
            problems.append(problem(str(exc), source, positions.line((*path, "conflict"))))
    return FieldMapping(
        column=model.column,
        field=model.field,
        type=model.type,
        direction=model.direction,
        reference=model.reference,
        target_table=model.target_table,
        options=dict(model.options),
        # `unmapped: null` reads as YAML null; written without quotes it still means the `null` policy.
        unmapped=UnmappedPolicy.NULL if "unmapped" in given and model.unmapped is None else model.unmapped,
        casts=tuple(model.casts),
        constant=model.constant if "constant" in given else UNSET,
        default=model.default if "default" in given else UNSET,
        conflict=conflict,
        max_length=model.max_length,
        description=model.description,
        loc=_loc(path, positions),
    )


_CONFLICT_HELP = (
    "conflict must be 'latest_update_wins', 'udm_wins', 'reject_empty', {synapse_wins: <synapse>}, "
    "or a list combining one rule with 'reject_empty'"
)


def parse_conflict(raw: Any) -> ConflictPolicy:
    """Parse the YAML form of a conflict policy.

    Raises:
        ValueError: with a message naming the accepted forms.
    """
    items = raw if isinstance(raw, list) else [raw]
    rule: ConflictRule | None = None
    synapse: str | None = None
    reject_empty = False
    for item in items:
        if item == "reject_empty":
            reject_empty = True
            continue
        if isinstance(item, str) and item in (ConflictRule.LATEST_UPDATE_WINS, ConflictRule.UDM_WINS):
            new_rule, new_synapse = ConflictRule(item), None
        elif (
            isinstance(item, dict)
            and list(item) == ["synapse_wins"]
            and isinstance(item["synapse_wins"], str)
        ):
            new_rule, new_synapse = ConflictRule.SYNAPSE_WINS, item["synapse_wins"]
        else:
            raise ValueError(f"{_CONFLICT_HELP}; got {item!r}")
        if rule is not None:
            raise ValueError(f"conflict names two rules ({rule.value} and {new_rule.value}); keep one")
        rule, synapse = new_rule, new_synapse
    return ConflictPolicy(
        rule=rule or ConflictRule.LATEST_UPDATE_WINS, synapse=synapse, reject_empty=reject_empty
    )


def conflict_to_yaml(policy: ConflictPolicy) -> Any:
    """Render a conflict policy in its shortest YAML form (None for the default)."""
    if policy == DEFAULT_CONFLICT:
        return None
    rule: Any = (
        {"synapse_wins": policy.synapse} if policy.rule is ConflictRule.SYNAPSE_WINS else policy.rule.value
    )
    if not policy.reject_empty:
        return rule
    if policy.rule is ConflictRule.LATEST_UPDATE_WINS:
        return "reject_empty"
    return [rule, "reject_empty"]


def _pydantic_problems(exc: ValidationError, positions: Positions, source: str) -> list[MappingError]:
    found: list[tuple[int, MappingError]] = []
    for error in exc.errors():
        path: Path = tuple(p for p in error["loc"] if isinstance(p, str | int))
        data_path = _known_prefix(path, positions)
        where = _render_path(data_path if data_path else path)
        line = positions.line(path)
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = f"unknown key '{path[-1]}'"
            where = _render_path(path[:-1])
        elif error["type"] == "missing":
            message = f"missing required key '{path[-1]}'"
            where = _render_path(path[:-1])
        text = f"{where}: {message}" if where else message
        found.append((line or 0, problem(text, source, line)))
    found.sort(key=lambda pair: pair[0])
    return [p for _, p in found]


def _known_prefix(path: Path, positions: Positions) -> Path:
    probe = path
    while probe and probe not in positions.at:
        probe = probe[:-1]
    return probe


def _render_path(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out
