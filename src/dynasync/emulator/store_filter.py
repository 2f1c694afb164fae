"""Compiles a ``$filter`` syntax tree into an SQL condition over the store's tables, with the service's semantics.

Strings compare case-insensitively; a comparison with null is true only for ``eq null`` / ``ne null``; rows whose
condition is unknown (null) are excluded, as in SQL Server. Lookup traversal (``primarycontactid/fullname``)
becomes a scalar subquery, lambdas (``contact_customer_accounts/any(c: ...)``) become ``EXISTS``.
"""

from __future__ import annotations

import datetime as dt

from dynasync.emulator.catalog import AttributeDef, EntityDef
from dynasync.emulator.errors import EmulatorError, not_implemented
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
from dynasync.emulator.store_filter_base import (
    Expr,
    FilterContext,
    edm_of,
    property_not_found,
    resolve_column,
    resolve_stored,
    sql_server_like,
)
from dynasync.emulator.store_functions import QueryFunctionsMixin
from dynasync.emulator.store_schema import (
    K_BOOL,
    K_DATE,
    K_DATETIME,
    K_DECIMAL,
    K_FLOAT,
    K_INT,
    K_LOOKUP,
    K_MONEY,
    K_MULTI,
    K_TEXT,
    K_UUID,
    encode_datetime,
    encode_money,
    q,
    storage_kind,
    table_name,
)

_OPS = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_FLIP = {"eq": "eq", "ne": "ne", "gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}
_OP_KIND = {
    "eq": "Equal",
    "ne": "NotEqual",
    "gt": "GreaterThan",
    "ge": "GreaterThanOrEqual",
    "lt": "LessThan",
    "le": "LessThanOrEqual",
}
_LITERAL_EDM = {
    "string": "Edm.String",
    "int": "Edm.Int32",
    "decimal": "Edm.Decimal",
    "float": "Edm.Double",
    "bool": "Edm.Boolean",
    "guid": "Edm.Guid",
    "datetime": "Edm.DateTimeOffset",
    "date": "Edm.Date",
    "enum": "Edm.Enum",
}
_NUMERIC = {K_INT, K_MONEY, K_DECIMAL, K_FLOAT}


class FilterCompiler(QueryFunctionsMixin):
    """Turns one filter tree into ``(sql, params)`` for the table aliased ``t0``."""

    def __init__(self, context: FilterContext, entity: EntityDef) -> None:
        self.context = context
        self.root = entity
        self.params: list[object] = []
        self.scopes: list[tuple[str, EntityDef, str]] = []  # lambda variable, entity, alias
        self._aliases = 0

    def compile(self, node: Node) -> str:
        """Return the SQL condition; parameters accumulate in ``self.params``."""
        return self._bool(node, self.root, "t0")

    def _alias(self) -> str:
        self._aliases += 1
        return f"t{self._aliases}"

    def _p(self, value: object) -> str:
        self.params.append(value)
        return "?"

    # -- boolean nodes ----------------------------------------------------------------------------------

    def _bool(self, node: Node, entity: EntityDef, alias: str) -> str:
        if isinstance(node, And):
            return f"({self._bool(node.left, entity, alias)} AND {self._bool(node.right, entity, alias)})"
        if isinstance(node, Or):
            return f"({self._bool(node.left, entity, alias)} OR {self._bool(node.right, entity, alias)})"
        if isinstance(node, Not):
            return f"(NOT {self._bool(node.operand, entity, alias)})"
        if isinstance(node, Compare):
            return self._compare(node, entity, alias)
        if isinstance(node, Call):
            return self._string_function(node, entity, alias)
        if isinstance(node, QueryFunction):
            return self._query_function(node, entity, alias)
        if isinstance(node, Lambda):
            return self._lambda(node, entity, alias)
        if isinstance(node, Literal) and node.kind == "bool":
            return "1" if node.value else "0"
        if isinstance(node, Property):
            expr = self._property(node, entity, alias)
            if expr.kind == K_BOOL:
                return f"({expr.sql} = 1)"
        raise EmulatorError(
            400, "0x80060888", "The $filter expression must evaluate to a single boolean value."
        )

    # -- operands ---------------------------------------------------------------------------------------

    def _property(self, node: Property, entity: EntityDef, alias: str) -> Expr:
        path = list(node.path)
        for variable, scope_entity, scope_alias in reversed(self.scopes):
            if path[0] == variable:
                if len(path) == 1:
                    raise not_implemented("comparing a lambda variable itself (use v/<column>)")
                return self._path(path[1:], scope_entity, scope_alias)
        return self._path(path, entity, alias)

    def _path(self, path: list[str], entity: EntityDef, alias: str) -> Expr:
        name = path[0]
        if len(path) == 1:
            attribute = resolve_column(entity, name)
            return Expr(f"{alias}.{q(attribute.logical_name)}", storage_kind(attribute), attribute)
        lookup, target = self._navigation(entity, name)
        target_entity = self.context.catalog.entity(target)
        if target_entity is None:  # pragma: no cover - catalog integrity
            raise property_not_found(entity, name)
        if len(path) == 2 and path[1] == target_entity.primary_id:
            return Expr(f"{alias}.{q(lookup.logical_name)}", K_LOOKUP, lookup)
        sub = self._alias()
        inner = self._path(path[1:], target_entity, sub)
        sql = (
            f"(SELECT {inner.sql} FROM {table_name(target)} AS {sub} "
            f"WHERE {sub}.{q(target_entity.primary_id)} = {alias}.{q(lookup.logical_name)})"
        )
        return Expr(sql, inner.kind, inner.attribute)

    def _navigation(self, entity: EntityDef, name: str) -> tuple[AttributeDef, str]:
        for attribute in entity.attributes.values():
            if attribute.is_lookup and name in attribute.navigation:
                return attribute, attribute.navigation[name]
        if any(
            r.referenced_navigation == name
            for r in self.context.catalog.relationships_from(entity.logical_name)
        ):
            raise EmulatorError(
                400,
                "0x80060888",
                f"The collection-valued navigation property '{name}' can only be used in a lambda (any/all).",
            )
        raise property_not_found(entity, name)

    def _operand(self, node: Node, entity: EntityDef, alias: str) -> Expr | Literal:
        if isinstance(node, Literal):
            return node
        if isinstance(node, Property):
            return self._property(node, entity, alias)
        raise EmulatorError(400, "0x80060888", "A comparison operand must be a property or a literal.")

    # -- comparisons ------------------------------------------------------------------------------------

    def _compare(self, node: Compare, entity: EntityDef, alias: str) -> str:
        left = self._operand(node.left, entity, alias)
        right = self._operand(node.right, entity, alias)
        op: str = node.op
        if isinstance(left, Literal) and isinstance(right, Expr):
            left, right, op = right, left, _FLIP[op]
        if isinstance(left, Literal) and isinstance(right, Literal):
            raise not_implemented("comparing two literals in $filter")
        assert isinstance(left, Expr)
        if isinstance(right, Expr):
            if not _compatible(left.kind, right.kind):
                raise _incompatible(edm_of(left), edm_of(right), op)
            collate = " COLLATE NOCASE" if left.kind == K_TEXT else ""
            return f"({left.sql}{collate} {_OPS[op]} {right.sql})"
        if right.kind == "null":
            if op == "eq":
                return f"({left.sql} IS NULL)"
            if op == "ne":
                return f"({left.sql} IS NOT NULL)"
            return "0"
        if left.kind == K_MULTI:
            raise not_implemented(
                "comparison operators on multi-select choice columns (use Microsoft.Dynamics.CRM.ContainValues)"
            )
        value = self._convert(left, right, op)
        collate = " COLLATE NOCASE" if left.kind == K_TEXT else ""
        return f"({left.sql}{collate} {_OPS[op]} {self._p(value)})"

    def _convert(self, column: Expr, literal: Literal, op: str) -> object:
        kind, value, lk = column.kind, literal.value, literal.kind
        bad = _incompatible(edm_of(column), _LITERAL_EDM.get(lk, "Edm.String"), op)
        if kind == K_TEXT:
            if lk != "string":
                raise bad
            return value
        if kind in (K_UUID, K_LOOKUP):
            if lk != "guid":
                raise bad
            return str(value)
        if kind == K_BOOL:
            if lk != "bool":
                raise bad
            return 1 if value else 0
        if kind in _NUMERIC:
            if lk not in ("int", "decimal", "float"):
                raise bad
            if kind == K_MONEY:
                return encode_money(value, 4)
            if kind == K_INT:
                return value if isinstance(value, int) else float(str(value))
            return float(str(value))
        if kind == K_DATETIME:
            if lk not in ("datetime", "date"):
                raise bad
            return encode_datetime(value)
        if kind == K_DATE:
            if lk == "datetime":
                assert isinstance(value, dt.datetime)
                return value.astimezone(dt.UTC).date().isoformat()
            if lk != "date":
                raise bad
            assert isinstance(value, dt.date)
            return value.isoformat()
        raise bad  # pragma: no cover - every kind handled above

    # -- functions --------------------------------------------------------------------------------------

    def _string_function(self, node: Call, entity: EntityDef, alias: str) -> str:
        column = self._operand(node.args[0], entity, alias)
        pattern = node.args[1]
        if (
            not isinstance(column, Expr)
            or column.kind != K_TEXT
            or not isinstance(pattern, Literal)
            or pattern.kind != "string"
        ):
            raise EmulatorError(
                400,
                "0x80060888",
                f"No function signature for the function with name '{node.name}' matches the specified arguments. "
                f"The function signatures considered are: {node.name}(Edm.String Nullable=true, Edm.String).",
            )
        text = str(pattern.value)
        like = {"contains": f"%{text}%", "startswith": f"{text}%", "endswith": f"%{text}"}[node.name]
        if "[" in like:
            # SQL Server bracket classes: evaluated by the registered dv_like function.
            return f"(dv_like({self._p(like)}, {column.sql}) = 1)"
        return f"({column.sql} LIKE {self._p(like)})"

    def _lambda(self, node: Lambda, entity: EntityDef, alias: str) -> str:
        if "/" in node.navigation:
            raise EmulatorError(
                400, "0x80060888", "Lambda operators on a collection under a lookup are not supported."
            )
        relationship = next(
            (
                r
                for r in self.context.catalog.relationships_from(entity.logical_name)
                if r.referenced_navigation == node.navigation
            ),
            None,
        )
        if relationship is None:
            self._navigation(entity, node.navigation)  # raises "not found" or names the single-valued case
            raise EmulatorError(
                400,
                "0x80060888",
                f"The navigation property '{node.navigation}' is not a collection; any/all need one.",
            )
        child = self.context.catalog.entity(relationship.referencing_entity)
        assert child is not None
        sub = self._alias()
        link = (
            f"{sub}.{q(relationship.referencing_attribute)} = {alias}.{q(entity.primary_id)} "
            f"AND {sub}.{q(relationship.referencing_attribute + '__t')} = {self._p(entity.logical_name)}"
        )
        head = f"SELECT 1 FROM {table_name(child.logical_name)} AS {sub} WHERE {link}"
        if node.predicate is None:
            return f"EXISTS ({head})"
        assert node.variable is not None
        self.scopes.append((node.variable, child, sub))
        try:
            predicate = self._bool(node.predicate, entity, alias)
        finally:
            self.scopes.pop()
        if node.kind == "any":
            return f"EXISTS ({head} AND {predicate})"
        return f"NOT EXISTS ({head} AND COALESCE({predicate}, 0) = 0)"


def _compatible(a: str, b: str) -> bool:
    if a == b:
        return True
    ids = {K_UUID, K_LOOKUP}
    return (a in _NUMERIC and b in _NUMERIC and K_MONEY not in (a, b)) or (a in ids and b in ids)


def _incompatible(left: str, right: str, op: str) -> EmulatorError:
    return EmulatorError(
        400,
        "0x80060888",
        f"A binary operator with incompatible types was detected. Found operand types '{left}' and '{right}' "
        f"for operator kind '{_OP_KIND[op]}'.",
    )


__all__ = [
    "Expr",
    "FilterCompiler",
    "FilterContext",
    "property_not_found",
    "resolve_column",
    "resolve_stored",
    "sql_server_like",
]
