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
from typing import Any

from dynasync.emulator.catalog import EntityDef
from dynasync.emulator.errors import EmulatorError
from dynasync.emulator.store_derive import DeriveMixin
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


class WriteMixin(DeriveMixin):
    """Create, update, delete and bulk insert."""

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
            if "statecode" in values or "statuscode" in values:  # defaults are valid by construction
                self._check_state(e, row, row_id)
        if "versionnumber" in attrs:
            row["versionnumber"] = self._next_version()
        self._derive(plan, row, row.keys(), cache)
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
