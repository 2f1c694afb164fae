"""Read and write mapping YAML files (config as code), keeping line numbers for error reports."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from dynasync.errors import MappingError
from dynasync.mapping.spec import Direction, EntityMapping, FieldMapping, MappingSpec
from dynasync.mapping.yaml_models import FORMAT_VERSION, build_spec, conflict_to_yaml
from dynasync.mapping.yaml_nodes import parse_located


def loads_mapping(text: str, source: str = "<string>") -> MappingSpec:
    """Parse mapping YAML text; ``source`` names it in error locations.

    Raises:
        MappingValidationError: every syntax or shape problem, each located at its line.
    """
    data, positions = parse_located(text, source)
    return build_spec(data, positions, source)


def load_mapping(path: str | os.PathLike[str], *, display_name: str | None = None) -> MappingSpec:
    """Read a mapping file; errors name it as ``display_name`` (default: the path as given).

    Raises:
        MappingError: the file cannot be read.
        MappingValidationError: every syntax or shape problem, each located at its line.
    """
    name = display_name or os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(f"cannot read mapping file: {exc.strerror}", location=name) from None
    return loads_mapping(text, name)


class _FlowMap(dict[str, Any]):
    """A mapping rendered on one line: one field mapping per line keeps files short and diffable."""


class _Dumper(yaml.SafeDumper):
    pass


def _flow_map(dumper: yaml.SafeDumper, data: _FlowMap) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True)


def _decimal(dumper: yaml.SafeDumper, data: Decimal) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:float", str(data))


_Dumper.add_representer(_FlowMap, _flow_map)
_Dumper.add_representer(Decimal, _decimal)


def dump_mapping(spec: MappingSpec) -> str:
    """Render a spec as YAML that :func:`loads_mapping` reads back to an equal spec."""
    doc: dict[str, Any] = {"format": FORMAT_VERSION, "synapse": spec.synapse}
    if spec.notes:
        doc["notes"] = list(spec.notes)
    doc["entities"] = [_entity_doc(entity) for entity in spec.entities]
    text = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=4096)
    header = "# dynasync mapping (Sync Studio as code). Edit, then `dynasync mapping publish`.\n"
    return header + text


def save_mapping(spec: MappingSpec, path: str | os.PathLike[str]) -> None:
    """Write a spec as YAML atomically (a crash never leaves half a file)."""
    write_text_atomic(Path(path), dump_mapping(spec))


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _entity_doc(entity: EntityMapping) -> dict[str, Any]:
    doc: dict[str, Any] = {"table": entity.table, "entity": entity.entity}
    if entity.description:
        doc["description"] = entity.description
    if entity.match_keys:
        doc["match_keys"] = list(entity.match_keys)
    if not entity.delete_to_udm or entity.delete_from_udm or entity.recreate_deleted:
        deletes = _FlowMap(to_udm=entity.delete_to_udm, from_udm=entity.delete_from_udm)
        if entity.recreate_deleted:
            deletes["recreate"] = True
        doc["deletes"] = deletes
    doc["fields"] = [_field_doc(f) for f in entity.fields]
    return doc


def _field_doc(mapping: FieldMapping) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if mapping.column is not None:
        doc["column"] = mapping.column
    if mapping.field is not None:
        doc["field"] = mapping.field
    if mapping.type is not None:
        doc["type"] = mapping.type.value
    if mapping.direction is not Direction.BOTH:
        doc["direction"] = mapping.direction.value
    if mapping.reference is not None:
        doc["reference"] = mapping.reference
    if mapping.target_table is not None:
        doc["target_table"] = mapping.target_table
    if mapping.casts:
        doc["casts"] = [c.value for c in mapping.casts]
    if mapping.has_constant:
        doc["constant"] = _plain(mapping.constant)
    if mapping.has_default:
        doc["default"] = _plain(mapping.default)
    conflict = conflict_to_yaml(mapping.conflict)
    if conflict is not None:
        doc["conflict"] = conflict
    if mapping.max_length is not None:
        doc["max_length"] = mapping.max_length
    if mapping.description:
        doc["description"] = mapping.description
    if mapping.unmapped is not None:
        doc["unmapped"] = mapping.unmapped.value
    if mapping.options:
        # Option maps get their own block so each value sits on its own line.
        doc["options"] = dict(mapping.options)
        return doc
    return _FlowMap(doc)


def _plain(value: Any) -> Any:
    # Dates and datetimes dump as YAML timestamps, which the safe loader reads back to the same type.
    if isinstance(value, dt.datetime | dt.date | Decimal | str | int | float | bool) or value is None:
        return value
    raise MappingError(f"cannot write {type(value).__name__} value {value!r} to a mapping file")
