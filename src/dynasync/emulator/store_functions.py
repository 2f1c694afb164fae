"""Dataverse query functions in ``$filter`` (``Microsoft.Dynamics.CRM.In``, ``LastXDays``, ``EqualUserId``...) as SQL."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal, InvalidOperation

from dynasync.emulator.catalog import EntityDef
from dynasync.emulator.errors import EmulatorError, not_implemented
from dynasync.emulator.odata_ast import QueryFunction
from dynasync.emulator.store_dates import DATE_FUNCTIONS, date_range
from dynasync.emulator.store_filter_base import Expr, FilterContext, edm_of, resolve_stored
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
)


class QueryFunctionsMixin:
    """Compiles :class:`QueryFunction` nodes; the compiler provides the context and parameter list."""

    context: FilterContext

    def _p(self, value: object) -> str:
        raise NotImplementedError  # pragma: no cover - provided by FilterCompiler

    def _query_function(self, node: QueryFunction, entity: EntityDef, alias: str) -> str:
        # Query functions name columns by logical name (PropertyName='ownerid'); _x_value is accepted too.
        attribute = resolve_stored(entity, node.property)
        column = Expr(f"{alias}.{q(attribute.logical_name)}", storage_kind(attribute), attribute)
        name = node.name
        if name in DATE_FUNCTIONS:
            if column.kind not in (K_DATETIME, K_DATE):
                raise EmulatorError(
                    400, "0x80060888", f"The function '{name}' can only be used on date and time columns."
                )
            start, end = date_range(name, node.values, self.context.now)
            parts: list[str] = []
            for bound, op in ((start, ">="), (end, "<")):
                if bound is not None:
                    value = bound.date().isoformat() if column.kind == K_DATE else encode_datetime(bound)
                    parts.append(f"{column.sql} {op} {self._p(value)}")
            return "(" + " AND ".join(parts) + ")" if parts else f"({column.sql} IS NOT NULL)"
        if name in ("In", "NotIn"):
            if not node.values:
                raise EmulatorError(400, "0x80060888", f"The function '{name}' requires at least one value.")
            marks = ", ".join(self._p(self._value(column, v)) for v in node.values)
            return f"({column.sql} {'NOT ' if name == 'NotIn' else ''}IN ({marks}))"
        if name in ("Between", "NotBetween"):
            if len(node.values) != 2:
                raise EmulatorError(400, "0x80060888", f"The function '{name}' requires exactly two values.")
            lo, hi = (self._p(self._value(column, v)) for v in node.values)
            return f"({column.sql} {'NOT ' if name == 'NotBetween' else ''}BETWEEN {lo} AND {hi})"
        if name in ("ContainValues", "DoesNotContainValues"):
            if column.kind != K_MULTI:
                raise EmulatorError(
                    400,
                    "0x80060888",
                    f"The function '{name}' can only be used on multi-select choice columns.",
                )
            tests = " OR ".join(
                f"(',' || {column.sql} || ',') LIKE {self._p(f'%,{int(str(v))},%')}" for v in node.values
            )
            if name == "ContainValues":
                return f"({column.sql} IS NOT NULL AND ({tests}))"
            return f"({column.sql} IS NULL OR NOT ({tests}))"
        if name in ("EqualUserId", "NotEqualUserId", "EqualBusinessId", "NotEqualBusinessId"):
            who = self.context.caller if "User" in name else self.context.caller_business_unit
            if who is None:
                return "0" if name.startswith("Equal") else f"({column.sql} IS NOT NULL)"
            op = "=" if name.startswith("Equal") else "<>"
            return f"({column.sql} {op} {self._p(str(who))})"
        raise not_implemented(f"the query function Microsoft.Dynamics.CRM.{name}")

    def _value(self, column: Expr, raw: object) -> object:
        """Convert a query-function value (usually a JSON string) to the column's SQL value."""
        kind = column.kind
        text = str(raw)
        try:
            if kind == K_TEXT:
                return text
            if kind in (K_UUID, K_LOOKUP):
                return str(raw if isinstance(raw, uuid.UUID) else uuid.UUID(text))
            if kind == K_INT:
                return int(text)
            if kind == K_BOOL:
                return 1 if text.lower() in ("true", "1") else 0
            if kind == K_MONEY:
                return encode_money(Decimal(text), 4)
            if kind in (K_DECIMAL, K_FLOAT):
                return float(Decimal(text))
            if kind == K_DATETIME:
                return encode_datetime(
                    raw
                    if isinstance(raw, dt.datetime)
                    else dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
                )
            if kind == K_DATE:
                return dt.date.fromisoformat(text[:10]).isoformat()
        except (ValueError, InvalidOperation):
            pass
        raise EmulatorError(
            400, "0x80060888", f"Cannot convert the literal '{text}' to the expected type '{edm_of(column)}'."
        )

    # -- lambdas ----------------------------------------------------------------------------------------
