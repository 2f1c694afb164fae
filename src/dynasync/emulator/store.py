"""The emulated org's data: one SQLite table per Dataverse table, queries, change tracking and schema changes.

Rows are ``dict[str, object]`` by logical name (see ``docs/dev/contracts.md`` for value types). Writes live in
:mod:`dynasync.emulator.store_write`, connection and DDL in :mod:`dynasync.emulator.store_base`, ``$filter``
compilation in :mod:`dynasync.emulator.store_filter`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from dynasync.emulator.catalog import AttributeDef, EntityDef
from dynasync.emulator.errors import EmulatorError, not_implemented
from dynasync.emulator.odata_ast import Compare, Literal, Node, Property
from dynasync.emulator.store_admin import DEFAULT_EXPIRY_DAYS, AdminMixin
from dynasync.emulator.store_filter import FilterCompiler, FilterContext, resolve_stored
from dynasync.emulator.store_plan import TablePlan
from dynasync.emulator.store_schema import (
    K_TEXT,
    encode_uuid,
    q,
    storage_kind,
    table_name,
)
from dynasync.emulator.store_write import not_found, version_mismatch
from dynasync.emulator.values import LookupValue, Row

__all__ = ["DEFAULT_EXPIRY_DAYS", "LookupValue", "OrgStore", "Row", "not_found", "version_mismatch"]


class OrgStore(AdminMixin):
    """All rows of one emulated org. Thread-safe; see ``docs/dev/contracts.md`` for the method contract."""

    # -- names and plans --------------------------------------------------------------------------------

    def _names(
        self, plan: TablePlan, select: Sequence[str] | None, extra: Sequence[str] = ()
    ) -> tuple[str, ...]:
        if select is None or "*" in select:
            return tuple(plan.attributes)
        names: dict[str, None] = {plan.pk: None}
        money = False
        for name in select:
            attribute = resolve_stored(plan.entity, name)
            names[attribute.logical_name] = None
            money = money or attribute.type == "Money"
        if money and "transactioncurrencyid" in plan.attributes:
            names["transactioncurrencyid"] = None  # the service returns the currency with any money column
        if "versionnumber" in plan.attributes:
            names["versionnumber"] = None
        for name in extra:
            names[name] = None
        return tuple(names)

    def _get_row(self, plan: TablePlan, row_id: uuid.UUID, select: Sequence[str] | None) -> Row | None:
        select_plan = plan.select_plan(self._names(plan, select))
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {select_plan.sql_columns} FROM {plan.table} AS t0 WHERE t0.{q(plan.pk)} = ?",
                (str(row_id),),
            ).fetchall()
        return select_plan.decode(rows)[0] if rows else None

    # -- single rows ------------------------------------------------------------------------------------

    def get(self, entity: str, id: uuid.UUID, *, select: Sequence[str] | None = None) -> Row | None:
        """The row with this primary id, or None."""
        return self._get_row(self.plan(entity), id, select)

    def require(self, entity: str, id: uuid.UUID, *, select: Sequence[str] | None = None) -> Row:
        """The row with this primary id; 404 ``0x80040217`` when missing."""
        row = self.get(entity, id, select=select)
        if row is None:
            raise not_found(self.entity_def(entity), id)
        return row

    def find(
        self, entity: str, key: uuid.UUID | Mapping[str, object], *, select: Sequence[str] | None = None
    ) -> Row | None:
        """The row addressed by a primary id or by a declared alternate key (names logical or ``_x_value``).

        Raises:
            EmulatorError: 400 when the names are not the primary key or a declared alternate key.
        """
        e = self.entity_def(entity)
        if isinstance(key, uuid.UUID):
            return self.get(entity, key, select=select)
        values = {(n[1:-6] if n.startswith("_") and n.endswith("_value") else n): v for n, v in key.items()}
        if set(values) == {e.primary_id}:
            try:
                return self.get(entity, uuid.UUID(str(values[e.primary_id])), select=select)
            except ValueError:
                raise key_error(e) from None
        declared = next((k for k in e.keys if set(k.attributes) == set(values)), None)
        if declared is None:
            raise key_error(e)
        plan = self.plan(entity)
        clauses: list[str] = []
        params: list[object] = []
        for name, value in values.items():
            attribute = plan.attributes[name]
            if value is None:
                clauses.append(f"t0.{q(name)} IS NULL")
                continue
            if attribute.is_lookup:
                params.append(encode_uuid(value.id if isinstance(value, LookupValue) else value))
            else:
                params.append(plan.encoders[name](value))
            clauses.append(f"t0.{q(name)} = ?")
        select_plan = plan.select_plan(self._names(plan, select))
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {select_plan.sql_columns} FROM {plan.table} AS t0 WHERE {' AND '.join(clauses)} LIMIT 1",
                params,
            ).fetchall()
        return select_plan.decode(rows)[0] if rows else None

    def primary_name_of(self, entity: str, id: uuid.UUID) -> str | None:
        """The primary name column's value of a row (None when the row or the column is missing)."""
        e = self.catalog.entity(entity)
        if e is None or not e.primary_name:
            return None
        rows = self._fetch(
            f"SELECT {q(e.primary_name)} FROM {table_name(entity)} WHERE {q(e.primary_id)} = ?", (str(id),)
        )
        return rows[0][0] if rows else None

    # -- queries ----------------------------------------------------------------------------------------

    def _context(self, caller: uuid.UUID | None) -> FilterContext:
        business_unit = None
        if caller is not None and "systemuser" in self.catalog.entities:
            value = self._scalar(
                'SELECT "businessunitid" FROM "e_systemuser" WHERE "systemuserid" = ?', (str(caller),)
            )
            business_unit = uuid.UUID(value) if value else None
        return FilterContext(self.catalog, caller, business_unit, self._now())

    def _where(
        self, plan: TablePlan, filter: Node | None, caller: uuid.UUID | None
    ) -> tuple[str, list[object]]:
        if filter is None:
            return "1", []
        compiler = FilterCompiler(self._context(caller), plan.entity)
        sql = compiler.compile(filter)
        return sql, compiler.params

    def _order_terms(
        self, plan: TablePlan, orderby: Sequence[tuple[str, bool]]
    ) -> list[tuple[str, bool, AttributeDef]]:
        terms: list[tuple[str, bool, AttributeDef]] = []
        for name, descending in orderby:
            if "/" in name:
                raise not_implemented(f"$orderby on a related table's column ('{name}')")
            attribute = resolve_stored(plan.entity, name)
            terms.append((self._order_sql(attribute), descending, attribute))
        if all(a.logical_name != plan.pk for _, _, a in terms):
            terms.append((f"t0.{q(plan.pk)}", False, plan.attributes[plan.pk]))
        return terms

    def _order_sql(self, attribute: AttributeDef) -> str:
        """Lookups sort by the related row's primary name (as the service does), strings case-insensitively."""
        column = f"t0.{q(attribute.logical_name)}"
        if storage_kind(attribute) == K_TEXT:
            return f"{column} COLLATE NOCASE"
        if attribute.is_lookup:
            names = []
            for target in attribute.targets:
                t = self.catalog.entity(target)
                if t is not None and t.primary_name:
                    names.append(
                        f"(SELECT n.{q(t.primary_name)} FROM {table_name(target)} AS n "
                        f"WHERE n.{q(t.primary_id)} = {column})"
                    )
            return f"COALESCE({', '.join(names)}, NULL) COLLATE NOCASE" if names else column
        return column

    def page_key(
        self, entity: str, row: Mapping[str, object], orderby: Sequence[tuple[str, bool]]
    ) -> list[object]:
        """Keyset values of ``row`` for ``query(after=...)``.

        Each order value (for lookups: the related row's primary name), then the primary id.
        """
        plan = self.plan(entity)
        values: list[object] = []
        for _, _, attribute in self._order_terms(plan, orderby):
            value = row.get(attribute.logical_name)
            if attribute.is_lookup:
                value = (
                    self.primary_name_of(value.entity, value.id) if isinstance(value, LookupValue) else None
                )
            values.append(value)
        return values

    def _keyset(
        self, plan: TablePlan, terms: list[tuple[str, bool, AttributeDef]], after: Sequence[object]
    ) -> tuple[str, list[object]]:
        if len(after) != len(terms):
            raise EmulatorError(400, "0x80041129", "Order by columns do not match those in paging cookie.")
        encoded: list[object] = []
        for (_, _, attribute), value in zip(terms, after, strict=True):
            if value is None or attribute.is_lookup:
                encoded.append(value)
            else:
                encoded.append(plan.encoders[attribute.logical_name](value))
        ors: list[str] = []
        params: list[object] = []
        for i, (sql, descending, _) in enumerate(terms):
            ands: list[str] = []
            for j in range(i):
                if encoded[j] is None:
                    ands.append(f"{terms[j][0]} IS NULL")
                else:
                    ands.append(f"{terms[j][0]} = ?")
                    params.append(encoded[j])
            value = encoded[i]
            if value is None:
                if descending:
                    continue  # nulls come last when descending: nothing sorts after a null
                ands.append(f"{sql} IS NOT NULL")
            elif descending:
                ands.append(f"({sql} < ? OR {sql} IS NULL)")
                params.append(value)
            else:
                ands.append(f"{sql} > ?")
                params.append(value)
            ors.append("(" + " AND ".join(ands) + ")")
        return ("(" + " OR ".join(ors) + ")" if ors else "0"), params

    def _query_parts(
        self,
        plan: TablePlan,
        filter: Node | None,
        orderby: Sequence[tuple[str, bool]],
        after: Sequence[object] | None,
        caller: uuid.UUID | None,
    ) -> tuple[str, list[object], str, list[tuple[str, bool, AttributeDef]]]:
        terms = self._order_terms(plan, orderby)
        where, params = self._where(plan, filter, caller)
        if after is not None:
            keyset, keyset_params = self._keyset(plan, terms, after)
            where = f"{where} AND {keyset}"
            params = [*params, *keyset_params]
        order = ", ".join(f"{sql} {'DESC' if desc else 'ASC'}" for sql, desc, _ in terms)
        return where, params, order, terms

    def query(
        self,
        entity: str,
        *,
        filter: Node | None = None,
        orderby: Sequence[tuple[str, bool]] = (),
        after: Sequence[object] | None = None,
        limit: int | None = None,
        select: Sequence[str] | None = None,
        caller: uuid.UUID | None = None,
    ) -> list[Row]:
        """Rows matching ``filter`` in ``orderby`` order (primary id as the final tiebreaker), after a keyset.

        Raises:
            EmulatorError: 400 for unknown names or type mismatches, 501 for unsupported filter features.
        """
        plan = self.plan(entity)
        where, params, order, terms = self._query_parts(plan, filter, orderby, after, caller)
        select_plan = plan.select_plan(self._names(plan, select, [a.logical_name for _, _, a in terms]))
        sql = f"SELECT {select_plan.sql_columns} FROM {plan.table} AS t0 WHERE {where} ORDER BY {order}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return select_plan.decode(rows)

    def _wire_names(
        self, plan: TablePlan, columns: Sequence[str], extra: Sequence[str]
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        shown = tuple(resolve_stored(plan.entity, c).logical_name for c in columns)
        hidden: dict[str, None] = {}
        for name in ("versionnumber", *extra, plan.pk):
            if name in plan.attributes:
                hidden[name] = None
        return shown, tuple(hidden)

    def query_wire(
        self,
        entity: str,
        *,
        columns: Sequence[str],
        filter: Node | None = None,
        orderby: Sequence[tuple[str, bool]] = (),
        after: Sequence[object] | None = None,
        limit: int | None = None,
        caller: uuid.UUID | None = None,
    ) -> tuple[list[dict[str, Any]], list[object] | None]:
        """Like :meth:`query`, but rows come JSON-ready for the Web API (the fast path for plain reads).

        Each row is ``{"@odata.etag": 'W/"n"', <wire name>: <JSON value>, ...}`` with exactly ``columns`` (logical
        or ``_x_value`` names, in output order): GUIDs and lookups as lower-case text, DateTime as
        ``YYYY-MM-DDTHH:MM:SSZ``, DateOnly as ``YYYY-MM-DD``, money as an ``orjson.Fragment`` number with 4
        decimals, multi-select as ``"1,2"``. Also returns the keyset for ``after=`` of the next page (the
        :meth:`page_key` of the last row), or None when no rows came back.
        """
        plan = self.plan(entity)
        where, params, order, terms = self._query_parts(plan, filter, orderby, after, caller)
        shown, hidden = self._wire_names(plan, columns, [a.logical_name for _, _, a in terms])
        wire_plan = plan.wire_plan(shown, hidden)
        sql = f"SELECT {wire_plan.sql_columns} FROM {plan.table} AS t0 WHERE {where} ORDER BY {order}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            raw = self._conn.execute(sql, params).fetchall()
        if not raw:
            return [], None
        last = raw[-1]
        key: list[object] = []
        for _, _, attribute in terms:
            value = last[wire_plan.hidden[attribute.logical_name]]
            if attribute.is_lookup and value is not None:
                value = self.primary_name_of(
                    last[wire_plan.hidden[attribute.logical_name] + 1], uuid.UUID(value)
                )
            key.append(value)
        return wire_plan.decode(raw), key

    def changed_rows_wire(
        self,
        entity: str,
        *,
        columns: Sequence[str],
        since: int,
        upto: int,
        after_version: int | None = None,
        limit: int | None = None,
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Like :meth:`changed_rows` with wire rows (see :meth:`query_wire`); also returns the last row's version."""
        plan = self.plan(entity)
        shown, hidden = self._wire_names(plan, columns, [])
        wire_plan = plan.wire_plan(shown, hidden)
        sql = (
            f"SELECT {wire_plan.sql_columns} FROM {plan.table} AS t0 WHERE t0.versionnumber > ? "
            "AND t0.versionnumber <= ? ORDER BY t0.versionnumber"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            raw = self._conn.execute(sql, (max(since, after_version or 0), upto)).fetchall()
        if not raw:
            return [], None
        return wire_plan.decode(raw), int(raw[-1][wire_plan.hidden["versionnumber"]])

    def count(self, entity: str, filter: Node | None = None, *, caller: uuid.UUID | None = None) -> int:
        """Number of rows matching ``filter`` (no cap; the Web API layer applies the service's 5,000 cap)."""
        plan = self.plan(entity)
        where, params = self._where(plan, filter, caller)
        return int(self._fetch(f"SELECT COUNT(*) FROM {plan.table} AS t0 WHERE {where}", params)[0][0])

    # -- change tracking --------------------------------------------------------------------------------

    def changed_rows(
        self,
        entity: str,
        *,
        since: int,
        upto: int,
        after_version: int | None = None,
        limit: int | None = None,
        select: Sequence[str] | None = None,
    ) -> list[Row]:
        """Rows created or updated with ``since < versionnumber <= upto``, by version (``since=0``: all rows).

        Rows changed after ``upto`` are left for the next delta, so paging under a fixed ``upto`` is stable.
        """
        plan = self.plan(entity)
        low = max(since, after_version or 0)
        select_plan = plan.select_plan(self._names(plan, select))
        sql = (
            f"SELECT {select_plan.sql_columns} FROM {plan.table} AS t0 WHERE t0.versionnumber > ? "
            "AND t0.versionnumber <= ? ORDER BY t0.versionnumber"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._conn.execute(sql, (low, upto)).fetchall()
        return select_plan.decode(rows)

    def deleted_ids(
        self,
        entity: str,
        *,
        since: int,
        upto: int,
        after_version: int | None = None,
        limit: int | None = None,
    ) -> list[tuple[uuid.UUID, int]]:
        """Rows deleted with ``since < version <= upto`` as ``(id, version of the delete)``, by version."""
        self.entity_def(entity)
        sql = (
            "SELECT id, versionnumber FROM ds_tombstones WHERE entity = ? AND versionnumber > ? "
            "AND versionnumber <= ? ORDER BY versionnumber"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = self._fetch(sql, (entity, max(since, after_version or 0), upto))
        return [(uuid.UUID(r[0]), int(r[1])) for r in rows]

    def purge_tombstones(self, older_than_seconds: int) -> int:
        """Forget deletes older than the given age (what change-tracking expiry does); returns how many."""
        cutoff = int(self._now().timestamp()) - older_than_seconds
        with self.transaction():
            return self._conn.execute("DELETE FROM ds_tombstones WHERE deleted_at < ?", (cutoff,)).rowcount

    def app_user(self, app_id: uuid.UUID | str) -> Row | None:
        """The application user (systemuser) registered for an app (client) id, or None."""
        rows = self.query("systemuser", filter=_eq("applicationid", app_id), limit=1)
        return rows[0] if rows else None

    def user_by_object_id(self, object_id: uuid.UUID | str) -> Row | None:
        """The systemuser whose ``azureactivedirectoryobjectid`` is this Entra object id, or None."""
        rows = self.query("systemuser", filter=_eq("azureactivedirectoryobjectid", object_id), limit=1)
        return rows[0] if rows else None

    def table_counts(self) -> dict[str, int]:
        """Row count of every table (for the control plane and RetrieveTotalRecordCount)."""
        return {name: self.count(name) for name in self.catalog.entities}


def _eq(column: str, value: uuid.UUID | str) -> Node:
    return Compare("eq", Property((column,)), Literal(uuid.UUID(str(value)), "guid"))


def key_error(entity: EntityDef) -> EmulatorError:
    """400 for a key segment whose names are not a declared key of the table."""
    t = f"Microsoft.Dynamics.CRM.{entity.logical_name}"
    return EmulatorError(
        400,
        "0x80060890",
        f"The key in the request URI is not valid for resource '{t}'. Ensure that the names and number of key "
        f"properties match the declared or alternate key properties for the resource '{t}'.",
    )
