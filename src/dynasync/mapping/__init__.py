"""Sync Studio mappings: Dynamics tables and columns to UDM entities and fields."""

from __future__ import annotations

from dynasync.mapping.compile import CompiledEntity, CompiledMapping, FromUdm, ToUdm, compile_mapping
from dynasync.mapping.errors import MappingValidationError, format_problem
from dynasync.mapping.repository import FileMappingRepository, MappingRepository, PublishedVersion
from dynasync.mapping.spec import (
    Cast,
    ConflictPolicy,
    ConflictRule,
    Direction,
    EntityMapping,
    FieldMapping,
    Loc,
    MappingSpec,
    UnmappedPolicy,
)
from dynasync.mapping.udm_schema import udm_entities
from dynasync.mapping.validate import check_mapping, validate_mapping
from dynasync.mapping.yaml_io import dump_mapping, load_mapping, loads_mapping, save_mapping

__all__ = [
    "Cast",
    "CompiledEntity",
    "CompiledMapping",
    "ConflictPolicy",
    "ConflictRule",
    "Direction",
    "EntityMapping",
    "FieldMapping",
    "FileMappingRepository",
    "FromUdm",
    "Loc",
    "MappingRepository",
    "MappingSpec",
    "MappingValidationError",
    "PublishedVersion",
    "ToUdm",
    "UnmappedPolicy",
    "check_mapping",
    "compile_mapping",
    "dump_mapping",
    "format_problem",
    "load_mapping",
    "loads_mapping",
    "save_mapping",
    "udm_entities",
    "validate_mapping",
]
