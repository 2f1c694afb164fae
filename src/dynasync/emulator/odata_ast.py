"""The syntax tree of an OData ``$filter`` expression, shared by the parser, the SQL compiler and metadata filters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal as TypingLiteral

LiteralKind = TypingLiteral[
    "string", "int", "decimal", "float", "bool", "null", "guid", "datetime", "date", "enum"
]
CompareOp = TypingLiteral["eq", "ne", "gt", "ge", "lt", "le"]


@dataclass(frozen=True, slots=True)
class Literal:
    """A constant: ``'text'``, ``5``, ``1.5``, ``true``, ``null``, a GUID, ``2024-01-01T00:00:00Z``, an enum.

    ``value`` holds the Python value (str, int, Decimal, float, bool, None, uuid.UUID, datetime, date, or for
    enums the member name, e.g. ``"UserOwned"`` from ``Microsoft.Dynamics.CRM.OwnershipTypes'UserOwned'``).
    """

    value: object
    kind: LiteralKind


@dataclass(frozen=True, slots=True)
class Property:
    """A property path.

    Examples: ``("name",)``, ``("_parentcustomerid_value",)``, ``("primarycontactid", "fullname")``,
    ``("CanCreateAttributes", "Value")``, or a lambda variable path ``("t", "subject")``.
    """

    path: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Compare:
    """``left op right``."""

    op: CompareOp
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class And:
    """``left and right``."""

    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Or:
    """``left or right``."""

    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Not:
    """``not operand``."""

    operand: Node


@dataclass(frozen=True, slots=True)
class Call:
    """An OData string function: ``contains``, ``startswith`` or ``endswith`` (the only ones Dataverse has)."""

    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class QueryFunction:
    """A Dataverse query function, ``Microsoft.Dynamics.CRM.<name>(PropertyName='x', ...)``.

    ``values`` holds PropertyValue / PropertyValue1, PropertyValue2 / PropertyValues in order, as Python values.
    """

    name: str
    property: str
    values: tuple[object, ...]


@dataclass(frozen=True, slots=True)
class Lambda:
    """``nav/any(v: predicate)`` or ``nav/all(v: predicate)``; ``any()`` without a predicate tests non-emptiness."""

    navigation: str
    kind: TypingLiteral["any", "all"]
    variable: str | None
    predicate: Node | None


Node = Literal | Property | Compare | And | Or | Not | Call | QueryFunction | Lambda
