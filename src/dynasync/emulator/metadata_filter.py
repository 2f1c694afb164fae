"""Evaluates an OData ``$filter`` syntax tree in Python over metadata JSON items (metadata is never in SQL)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from decimal import Decimal
from typing import TypeVar

from dynasync.emulator.errors import EmulatorError, not_implemented
from dynasync.emulator.metadata_shapes import is_label
from dynasync.emulator.odata_ast import (
    And,
    Call,
    Compare,
    Lambda,
    Literal,
    Node,
    Not,
    Or,
    Property,
    QueryFunction,
)

PARSE_ERROR_CODE = "0x80060888"
UNKNOWN_PROPERTY = "Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{type}'."
# The service refuses filters on Label properties [V: "does not work on properties of Label"]; wording [I].
LABEL_FILTER = (
    "The property '{name}' of type 'Microsoft.Dynamics.CRM.Label' cannot be used in a $filter query option."
)
INCOMPATIBLE = (
    "A binary operator with incompatible types was detected. Found operand types '{left}' and '{right}' "
    "for operator kind '{op}'."
)
_OP_KIND = {
    "eq": "Equal",
    "ne": "NotEqual",
    "gt": "GreaterThan",
    "ge": "GreaterThanOrEqual",
    "lt": "LessThan",
    "le": "LessThanOrEqual",
}

_MISSING = object()
_Ordered = TypeVar("_Ordered", str, Decimal)


def check_filter(node: Node, properties: Collection[str], type_name: str) -> None:
    """Raise the service's 400 when ``node`` names a property the metadata type does not have.

    Args:
        node: The parsed ``$filter`` expression.
        properties: Structural property names of the type being filtered.
        type_name: The type's name without namespace (``EntityMetadata``), used in the error text.
    """
    if isinstance(node, Property):
        if node.path[0] not in properties:
            raise EmulatorError(
                400, PARSE_ERROR_CODE, UNKNOWN_PROPERTY.format(name=node.path[0], type=type_name)
            )
    elif isinstance(node, Compare | And | Or):
        check_filter(node.left, properties, type_name)
        check_filter(node.right, properties, type_name)
    elif isinstance(node, Not):
        check_filter(node.operand, properties, type_name)
    elif isinstance(node, Call):
        raise not_implemented(f"the $filter function '{node.name}' on metadata")
    elif isinstance(node, QueryFunction):
        raise not_implemented(f"the query function '{node.name}' on metadata")
    elif isinstance(node, Lambda):
        raise not_implemented(f"the lambda operator '{node.kind}' on metadata")


def matches(node: Node, item: Mapping[str, object]) -> bool:
    """Return True when the metadata ``item`` satisfies the ``$filter`` expression ``node``."""
    if isinstance(node, And):
        return matches(node.left, item) and matches(node.right, item)
    if isinstance(node, Or):
        return matches(node.left, item) or matches(node.right, item)
    if isinstance(node, Not):
        return not matches(node.operand, item)
    if isinstance(node, Compare):
        return _compare(node, item)
    if isinstance(node, Property | Literal):
        # A bare boolean property (``$filter=IsCustomEntity``) or literal is a predicate on its own.
        return _operand(node, item) is True
    check_filter(node, (), "")  # raises not_implemented naming the construct
    return False  # pragma: no cover - check_filter always raises for these nodes


def _resolve(path: tuple[str, ...], item: Mapping[str, object]) -> object:
    value: object = item.get(path[0], _MISSING)
    if value is _MISSING:
        return None
    if is_label(value):
        raise EmulatorError(400, PARSE_ERROR_CODE, LABEL_FILTER.format(name=path[0]))
    for part in path[1:]:
        if not isinstance(value, Mapping) or part not in value:
            raise EmulatorError(400, PARSE_ERROR_CODE, UNKNOWN_PROPERTY.format(name=part, type=path[0]))
        value = value[part]
    return value


def _operand(node: Node, item: Mapping[str, object]) -> object:
    if isinstance(node, Property):
        return _resolve(node.path, item)
    if isinstance(node, Literal):
        if isinstance(node.value, uuid.UUID):
            return str(node.value)
        return node.value
    raise not_implemented("this $filter expression on metadata")


def _edm(value: object) -> str:
    if isinstance(value, bool):
        return "Edm.Boolean"
    if isinstance(value, int):
        return "Edm.Int32"
    if isinstance(value, float | Decimal):
        return "Edm.Decimal"
    if isinstance(value, str):
        return "Edm.String"
    return type(value).__name__


def _compare(node: Compare, item: Mapping[str, object]) -> bool:
    left = _operand(node.left, item)
    right = _operand(node.right, item)
    if left is None or right is None:
        if node.op == "eq":
            return left is None and right is None
        if node.op == "ne":
            return not (left is None and right is None)
        return False
    if isinstance(left, bool) != isinstance(right, bool) or isinstance(left, str) != isinstance(right, str):
        raise EmulatorError(
            400,
            PARSE_ERROR_CODE,
            INCOMPATIBLE.format(left=_edm(left), right=_edm(right), op=_OP_KIND[node.op]),
        )
    if isinstance(left, bool) and isinstance(right, bool):
        if node.op in ("eq", "ne"):
            return (left == right) == (node.op == "eq")
        raise EmulatorError(
            400,
            PARSE_ERROR_CODE,
            INCOMPATIBLE.format(left=_edm(left), right=_edm(right), op=_OP_KIND[node.op]),
        )
    if isinstance(left, str) and isinstance(right, str):
        # Metadata string comparisons are case-insensitive, as everywhere in Dataverse.
        return _ordered(node.op, left.lower(), right.lower())
    if isinstance(left, int | float | Decimal) and isinstance(right, int | float | Decimal):
        return _ordered(node.op, Decimal(str(left)), Decimal(str(right)))
    if node.op in ("eq", "ne"):
        return (left == right) == (node.op == "eq")
    raise EmulatorError(
        400, PARSE_ERROR_CODE, INCOMPATIBLE.format(left=_edm(left), right=_edm(right), op=_OP_KIND[node.op])
    )


def _ordered(op: str, left: _Ordered, right: _Ordered) -> bool:
    if op == "eq":
        return left == right
    if op == "ne":
        return left != right
    if op == "gt":
        return left > right
    if op == "ge":
        return left >= right
    if op == "lt":
        return left < right
    return left <= right
