"""The store's write half: create, update, delete with the columns the service maintains itself.

Server-maintained: ``createdon``/``modifiedon`` (clock, second precision), ``createdby``/``modifiedby`` (caller),
``ownerid`` (default caller) and ``owninguser``/``owningteam``/``owningbusinessunit``, ``versionnumber`` (one
counter for the whole org, bumped by every create, update and delete), ``statecode``/``statuscode`` (defaults and
pair validation), ``fullname``, ``addressN_composite``, ``exchangerate`` and money ``_base`` twins.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from dynasync.emulator.catalog import EntityDef
from dynasync.emulator.errors import EmulatorError
from dynasync.emulator.store_base import StoreBase
from dynasync.emulator.store_plan import TablePlan
from dynasync.emulator.store_schema import encode_datetime, q, table_name
from dynasync.emulator.values import LookupValue, Row


def not_found(entity: EntityDef, row_id: object) -> EmulatorError:
    """404 ``0x80040217`` for a missing row, worded as the service does."""
    return EmulatorError(404, "0x80040217", f"{entity.logical_name} With Id = {row_id} Does Not Exist")


def version_mismatch() -> EmulatorError:
    """412 for an ``If-Match`` etag that is not the row's current version."""
    return EmulatorError(
        412,
        "0x80060882",
        "The version of the existing record doesn't match the RowVersion property provided.",
    )


def compose_address(values: Mapping[str, object], n: int) -> str | None:
    """The ``addressN_composite`` text: street lines, then ``city, state postal``, then country (CRLF-separated)."""
    get = values.get
    p = f"address{n}_"
    lines = [str(v) for v in (get(p + "line1"), get(p + "line2"), get(p + "line3")) if v]
    city, region, postal, country = (
        get(p + "city"),
        get(p + "stateorprovince"),
        get(p + "postalcode"),
        get(p + "country"),
    )
    city_line = f"{city}, {region}" if city and region else str(city or region or "")
    if postal:
        city_line = f"{city_line} {postal}".strip()
    if city_line:
        lines.append(city_line)
    if country:
        lines.append(str(country))
    return "\r\n".join(lines) if lines else None


class WriteMixin(StoreBase):
    """Create, update, delete and bulk insert."""

    # -- org defaults (small tables; read per write) ----------------------------------------------------

    def _scalar(self, sql: str, params: Sequence[object] = ()) -> Any:
        row = self._conn.execute(sql, params).fetchone()
        return row[0] if row else None

    def _default_business_unit(self) -> uuid.UUID | None:
        if "businessunit" not in self.catalog.entities:
            return None
        value = self._scalar(
            'SELECT "businessunitid" FROM "e_businessunit" WHERE "parentbusinessunitid" IS NULL '
            'ORDER BY "createdon", "businessunitid" LIMIT 1'
        )
        return uuid.UUID(value) if value else None

    def _base_currency(self) -> uuid.UUID | None:
        value = None
        if "organization" in self.catalog.entities:
            value = self._scalar('SELECT "basecurrencyid" FROM "e_organization" LIMIT 1')
        if value is None and "transactioncurrency" in self.catalog.entities:
            value = self._scalar(
                'SELECT "transactioncurrencyid" FROM "e_transactioncurrency" ORDER BY "createdon" LIMIT 1'
            )
        return uuid.UUID(value) if value else None

    def _exchange_rate(self, currency: uuid.UUID) -> Decimal:
        value = self._scalar(
            'SELECT "exchangerate" FROM "e_transactioncurrency" WHERE "transactioncurrencyid" = ?',
            (str(currency),),
        )
        return Decimal(repr(value)) if value else Decimal(1)

    def _owner_business_unit(self, owner: LookupValue) -> uuid.UUID | None:
        if owner.entity not in ("systemuser", "team") or owner.entity not in self.catalog.entities:
            return None
        pk = "systemuserid" if owner.entity == "systemuser" else "teamid"
        value = self._scalar(
            f'SELECT "businessunitid" FROM {table_name(owner.entity)} WHERE "{pk}" = ?', (str(owner.id),)
        )
        return uuid.UUID(value) if value else None

    def _admin_caller(self) -> uuid.UUID | None:
        value = self._scalar("SELECT value FROM ds_meta WHERE key = 'admin_user_id'")
        return uuid.UUID(value) if value else None

    # -- derived columns --------------------------------------------------------------------------------

    def _derive(
        self, plan: TablePlan, row: dict[str, object], changed: set[str], cache: dict[Any, Any]
    ) -> None:
        """Recompute derived columns of ``row`` (a full row of store values) whose inputs are in ``changed``."""
        attrs = plan.attributes
        if plan.computed_fullname and ("firstname" in changed or "lastname" in changed):
            first, last = row.get("firstname"), row.get("lastname")
            row["fullname"] = f"{first} {last}" if first and last else (first or last or None)
        for n, composite, parts in plan.addresses:
            if not parts.isdisjoint(changed):
                row[composite] = compose_address(row, n)
        if "ownerid" in changed and "ownerid" in attrs:
            owner = row.get("ownerid")
            if isinstance(owner, LookupValue):
                if "owninguser" in attrs:
                    row["owninguser"] = owner if owner.entity == "systemuser" else None
                if "owningteam" in attrs:
                    row["owningteam"] = owner if owner.entity == "team" else None
                if "owningbusinessunit" in attrs:
                    key = ("bu", owner.id)
                    if key not in cache:
                        cache[key] = self._owner_business_unit(owner) or self._default_business_unit()
                    bu = cache[key]
                    row["owningbusinessunit"] = LookupValue("businessunit", bu) if bu else None
        money = plan.money
        if money and "exchangerate" in attrs and "transactioncurrencyid" in attrs:
            currency = row.get("transactioncurrencyid")
            if "transactioncurrencyid" in changed:
                if isinstance(currency, LookupValue):
                    key = ("rate", currency.id)
                    if key not in cache:
                        cache[key] = self._exchange_rate(currency.id)
                    row["exchangerate"] = cache[key]
                else:
                    row["exchangerate"] = None
            rate = row.get("exchangerate")
            for attribute in money:
                base = f"{attribute.logical_name}_base"
                if base in attrs and (
                    attribute.logical_name in changed or "transactioncurrencyid" in changed
                ):
                    value = row.get(attribute.logical_name)
                    if value is None or not isinstance(rate, Decimal) or rate == 0:
                        row[base] = None
                    else:
                        amount = value if isinstance(value, Decimal) else Decimal(str(value))
                        amount = amount.quantize(
                            Decimal(1).scaleb(-(attribute.precision or 2)), rounding=ROUND_HALF_UP
                        )
                        row[base] = (amount / rate).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)

    def _check_state(self, e: EntityDef, row: Mapping[str, object], row_id: uuid.UUID) -> None:
        state_attr, status_attr = e.attributes.get("statecode"), e.attributes.get("statuscode")
        if state_attr is None or status_attr is None:
            return
        state, status = row.get("statecode"), row.get("statuscode")
        state_option = next((o for o in state_attr.options if o.value == state), None)
        if state_option is None:
            allowed = ",".join(str(o.value) for o in state_attr.options)
            raise EmulatorError(
                400,
                "0x8004431A",
                f"A validation error occurred. The value {state} of 'statecode' on record of type "
                f"'{e.logical_name}' is outside the valid range. Accepted Values: {allowed}",
            )
        if not any(o.value == status and o.state == state for o in status_attr.options):
            raise EmulatorError(
                400,
                "0x80048408",
                f"{status} is not a valid status code for state code {e.schema_name}State."
                f"{state_option.invariant_name or state_option.label} on {e.logical_name} with Id {row_id}.",
            )

    def _default_status(self, e: EntityDef, state: object) -> int | None:
        state_attr = e.attributes.get("statecode")
        if state_attr is None:
            return None
        option = next((o for o in state_attr.options if o.value == state), None)
        return option.default_status if option else None

    # -- create -----------------------------------------------------------------------------------------

    def _prepare_create(
        self,
        plan: TablePlan,
        values: Mapping[str, object],
        caller: uuid.UUID | None,
        row_id: uuid.UUID | None,
        cache: dict[Any, Any],
    ) -> dict[str, object]:
        e = plan.entity
        attrs = plan.attributes
        row: dict[str, object] = dict(plan.bool_defaults)
        row.update(values)
        given = row.get(e.primary_id)
        if row_id is None:
            row_id = (
                given if isinstance(given, uuid.UUID) else (uuid.UUID(str(given)) if given else uuid.uuid4())
            )
        row[e.primary_id] = row_id
        now = cache.setdefault("now", self._now())
        user = LookupValue("systemuser", caller) if caller is not None else None
        if "createdon" in attrs:
            override = values.get("overriddencreatedon")
            row.setdefault("createdon", now)
            if isinstance(override, dt.datetime) and "overriddencreatedon" in attrs:
                # Migration: createdon takes the given time and overriddencreatedon records the real one.
                row["createdon"], row["overriddencreatedon"] = override, now
        if "modifiedon" in attrs:
            row.setdefault("modifiedon", now)
        for name in ("createdby", "modifiedby"):
            if name in attrs:
                row.setdefault(name, user)
        if "ownerid" in attrs and row.get("ownerid") is None:
            row["ownerid"] = user
        if "transactioncurrencyid" in attrs and row.get("transactioncurrencyid") is None:
            if "base_currency" not in cache:
                cache["base_currency"] = self._base_currency()
            if cache["base_currency"] is not None:
                row["transactioncurrencyid"] = LookupValue("transactioncurrency", cache["base_currency"])
        if "statecode" in attrs:
            row.setdefault("statecode", 0)
            if row.get("statecode") is None:
                row["statecode"] = 0
            if row.get("statuscode") is None:
                row["statuscode"] = self._default_status(e, row["statecode"])
            self._check_state(e, row, row_id)
        if "versionnumber" in attrs:
            row["versionnumber"] = self._next_version()
        self._derive(plan, row, set(row), cache)
        return row

    def _insert(self, plan: TablePlan, rows: Sequence[Mapping[str, object]]) -> None:
        present: set[str] = set()
        for row in rows:
            present.update(row)
        sql, encode = plan.insert_plan(tuple(n for n in plan.attributes if n in present))
        try:
            self._conn.executemany(sql, [encode(row) for row in rows])  # type: ignore[arg-type]
        except sqlite3.IntegrityError as exc:
            raise self._integrity_error(plan.entity, exc) from None
        if self._conn.execute(
            "SELECT 1 FROM ds_tombstones WHERE entity = ? LIMIT 1", (plan.entity.logical_name,)
        ).fetchone():
            # A re-created id is a change again, not a delete.
            self._conn.executemany(
                "DELETE FROM ds_tombstones WHERE entity = ? AND id = ?",
                [(plan.entity.logical_name, str(row[plan.pk])) for row in rows],
            )

    def _integrity_error(self, e: EntityDef, exc: sqlite3.IntegrityError) -> EmulatorError:
        text = str(exc)
        columns = {part.strip().split(".")[-1] for part in text.partition(":")[2].split(",")}
        if columns == {e.primary_id}:
            return EmulatorError(412, "0x80040237", "Cannot insert duplicate key.")
        for key in e.keys:
            if columns == set(key.attributes):
                labels = ", ".join(e.attributes[a].display_name for a in key.attributes if a in e.attributes)
                return EmulatorError(
                    412,
                    "0x80060892",
                    f"A record that has the attribute values {labels} already exists. The entity key "
                    f"{key.schema_name or key.logical_name} requires that this set of attributes contains unique "
                    "values. Select unique values and try again.",
                )
        return EmulatorError(400, "0x80040237", f"Cannot insert duplicate key. ({text})")

    def create(
        self,
        entity: str,
        values: Mapping[str, object],
        *,
        caller: uuid.UUID | None,
        id: uuid.UUID | None = None,
    ) -> Row:
        """Insert one row and return it as stored (with every server-maintained column).

        Raises:
            EmulatorError: 412 ``0x80040237`` duplicate id, 412 ``0x80060892`` duplicate alternate key,
                400 ``0x80048408`` invalid status for the state.
        """
        e = self.entity_def(entity)
        plan = self.plan(entity)
        with self.transaction():
            caller = caller if caller is not None else self._admin_caller()
            row = self._prepare_create(plan, values, caller, id, {})
            self._insert(plan, [row])
            row_id = row[e.primary_id]
            assert isinstance(row_id, uuid.UUID)
            result = self._get_row(plan, row_id, None)
        assert result is not None
        return result

    def insert_many(
        self, entity: str, rows: Sequence[Mapping[str, object]], *, caller: uuid.UUID | None = None
    ) -> int:
        """Bulk-insert rows (seeding path): same server-maintained columns as :meth:`create`, one statement.

        System columns given in ``rows`` (``createdon``, ``modifiedon``, ``ownerid``, ``statecode``...) are kept,
        so seeds can spread creation times. Returns the number of rows inserted.
        """
        plan = self.plan(entity)
        with self.transaction():
            caller = caller if caller is not None else self._admin_caller()
            cache: dict[Any, Any] = {}
            prepared = [self._prepare_create(plan, values, caller, None, cache) for values in rows]
            self._insert(plan, prepared)
        return len(prepared)

    # -- update -----------------------------------------------------------------------------------------

    def update(
        self,
        entity: str,
        id: uuid.UUID,
        values: Mapping[str, object],
        *,
        caller: uuid.UUID | None,
        if_match: int | None = None,
    ) -> Row:
        """Change the given columns of one row and return the row as stored afterwards.

        Raises:
            EmulatorError: 404 ``0x80040217`` missing row, 412 ``0x80060882`` version mismatch, 400 ``0x80048408``.
        """
        e = self.entity_def(entity)
        plan = self.plan(entity)
        with self.transaction():
            current = self._get_row(plan, id, None)
            if current is None:
                raise not_found(e, id)
            if if_match is not None and current.get("versionnumber") != if_match:
                raise version_mismatch()
            caller = caller if caller is not None else self._admin_caller()
            changes = {k: v for k, v in values.items() if k != e.primary_id}
            given_pk = values.get(e.primary_id)
            if given_pk is not None and str(given_pk) != str(id):
                raise EmulatorError(
                    400, "0x80040203", f"The primary key {e.primary_id} of a row cannot be changed."
                )
            row = dict(current)
            row.update(changes)
            changed = set(changes)
            if "statecode" in changes and "statuscode" not in changes:
                row["statuscode"] = self._default_status(e, row["statecode"])
                changed.add("statuscode")
            if changed & {"statecode", "statuscode"}:
                self._check_state(e, row, id)
            if "modifiedon" in e.attributes:
                row["modifiedon"] = self._now()
                changed.add("modifiedon")
            if "modifiedby" in e.attributes:
                row["modifiedby"] = LookupValue("systemuser", caller) if caller else None
                changed.add("modifiedby")
            if "versionnumber" in e.attributes:
                row["versionnumber"] = self._next_version()
                changed.add("versionnumber")
            before = dict(row)
            self._derive(plan, row, changed, {})
            changed |= {k for k, v in row.items() if before.get(k) is not v}
            self._update_columns(plan, id, {k: row[k] for k in changed if k in plan.attributes})
            result = self._get_row(plan, id, None)
        assert result is not None
        return result

    def _update_columns(self, plan: TablePlan, row_id: uuid.UUID, values: Mapping[str, object]) -> None:
        encoded = plan.encode(values)
        if not encoded:
            return
        assignments = ", ".join(f"{q(k)} = ?" for k in encoded)
        try:
            self._conn.execute(
                f"UPDATE {plan.table} SET {assignments} WHERE {q(plan.pk)} = ?",
                [*encoded.values(), str(row_id)],
            )
        except sqlite3.IntegrityError as exc:
            raise self._integrity_error(plan.entity, exc) from None

    # -- delete -----------------------------------------------------------------------------------------

    def delete(
        self, entity: str, id: uuid.UUID, *, caller: uuid.UUID | None, if_match: int | None = None
    ) -> None:
        """Delete a row, cascading per relationship (Cascade deletes children, RemoveLink clears their lookup).

        Raises:
            EmulatorError: 404 missing row, 412 version mismatch, 405 ``0x80040227`` for a Restrict relationship.
        """
        e = self.entity_def(entity)
        with self.transaction():
            version = self._raw_version(e, id) if "versionnumber" in e.attributes else None
            if version is None and not self._fetch(
                f"SELECT 1 FROM {table_name(e.logical_name)} WHERE {q(e.primary_id)} = ?", (str(id),)
            ):
                raise not_found(e, id)
            if if_match is not None and version != if_match:
                raise version_mismatch()
            self._delete_tree(e, id, self._now(), set())

    def _delete_tree(self, e: EntityDef, row_id: uuid.UUID, now: dt.datetime, seen: set[uuid.UUID]) -> None:
        seen.add(row_id)
        for relationship in self.catalog.relationships_from(e.logical_name):
            children = self._relationship_children(relationship, row_id)
            if not children:
                continue
            child = self.entity_def(relationship.referencing_entity)
            if relationship.cascade_delete == "Cascade":
                for child_id in children:
                    if uuid.UUID(child_id) not in seen:
                        self._delete_tree(child, uuid.UUID(child_id), now, seen)
            elif relationship.cascade_delete == "Restrict":
                raise EmulatorError(
                    405,
                    "0x80040227",
                    f"The {e.logical_name} cannot be deleted because it is referenced by "
                    f"{relationship.referencing_entity} records ({relationship.schema_name}).",
                )
            else:
                lookup = relationship.referencing_attribute
                stamp = ', "modifiedon" = ?' if "modifiedon" in child.attributes else ""
                for child_id in children:
                    params: list[object] = [encode_datetime(now)] if stamp else []
                    version = ', "versionnumber" = ?' if "versionnumber" in child.attributes else ""
                    if version:
                        params.append(self._next_version())
                    self._conn.execute(
                        f"UPDATE {table_name(child.logical_name)} SET {q(lookup)} = NULL, {q(lookup + '__t')} = NULL"
                        f"{stamp}{version} WHERE {q(child.primary_id)} = ?",
                        [*params, child_id],
                    )
        self._conn.execute(
            f"DELETE FROM {table_name(e.logical_name)} WHERE {q(e.primary_id)} = ?", (str(row_id),)
        )
        self._conn.execute(
            "INSERT OR REPLACE INTO ds_tombstones (entity, id, versionnumber, deleted_at) VALUES (?, ?, ?, ?)",
            (e.logical_name, str(row_id), self._next_version(), int(now.timestamp())),
        )

    # -- reads used by writes (implemented by the read half) --------------------------------------------

    def _get_row(self, plan: TablePlan, row_id: uuid.UUID, select: Sequence[str] | None) -> Row | None:
        raise NotImplementedError  # pragma: no cover - provided by OrgStore
