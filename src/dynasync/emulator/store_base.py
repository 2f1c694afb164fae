"""The store's foundation: the SQLite connection, transactions, table plans, DDL and the org-wide row version."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from dynasync.clock import Clock, SystemClock
from dynasync.emulator.catalog import AttributeDef, Catalog, EntityDef, KeyDef, RelationshipDef
from dynasync.emulator.errors import EmulatorError
from dynasync.emulator.standard_tables import standard_catalog
from dynasync.emulator.store_filter import sql_server_like
from dynasync.emulator.store_persist import (
    attribute_from_json,
    entity_from_json,
    key_from_json,
    relationship_from_json,
)
from dynasync.emulator.store_plan import TablePlan
from dynasync.emulator.store_schema import column_ddl, q, stored_attributes, table_name

# Lookups to these tables are not indexed: deleting users, teams, units or currencies is rare, and each index
# slows bulk inserts. Lookups between business tables are indexed (cascades, lambdas, related lists).
_UNINDEXED_TARGETS = frozenset({"systemuser", "team", "businessunit", "transactioncurrency", "organization"})

_META_DDL = (
    "CREATE TABLE IF NOT EXISTS ds_meta (key TEXT PRIMARY KEY, value TEXT)",
    "CREATE TABLE IF NOT EXISTS ds_tombstones (entity TEXT NOT NULL, id TEXT NOT NULL, "
    "versionnumber INTEGER NOT NULL, deleted_at INTEGER NOT NULL, PRIMARY KEY (entity, id))",
    "CREATE INDEX IF NOT EXISTS ds_tombstones_version ON ds_tombstones (entity, versionnumber)",
    "CREATE TABLE IF NOT EXISTS ds_schema (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, "
    "body TEXT NOT NULL)",
)


def unknown_entity(entity: str) -> EmulatorError:
    """The 404 for a table the org does not have."""
    return EmulatorError(404, "0x80060888", f"Resource not found for the segment '{entity}'.")


class StoreBase:
    """Connection, locking and schema management shared by the read and write halves of the store."""

    def __init__(
        self, catalog: Catalog | None = None, path: str | None = None, clock: Clock | None = None
    ) -> None:
        self.catalog = catalog if catalog is not None else standard_catalog()
        self.clock: Clock = clock or SystemClock()
        self.path = path
        self._lock = threading.RLock()
        self._depth = 0
        self._plans: dict[str, TablePlan] = {}
        self._conn = sqlite3.connect(path or ":memory:", check_same_thread=False, isolation_level=None)
        if path:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA cache_size=-262144")
        self._conn.execute("PRAGMA temp_store=MEMORY")
        self._conn.create_function("dv_like", 2, sql_server_like, deterministic=True)
        with self._lock:
            for ddl in _META_DDL:
                self._conn.execute(ddl)
            self._replay_schema()
            for entity in self.catalog.entities.values():
                self._ensure_table(entity)
            self._version = self._max_version()

    # -- transactions -----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the block atomically; nested blocks are savepoints (an inner failure undoes only the inner block).

        The store lock is held for the whole block, so other threads wait instead of interleaving.
        """
        with self._lock:
            depth = self._depth
            if depth == 0:
                self._conn.execute("BEGIN IMMEDIATE")
            else:
                self._conn.execute(f"SAVEPOINT sp{depth}")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if depth == 0:
                    self._conn.execute("ROLLBACK")
                else:
                    self._conn.execute(f"ROLLBACK TO sp{depth}")
                    self._conn.execute(f"RELEASE sp{depth}")
                raise
            self._depth -= 1
            if depth == 0:
                self._conn.execute(
                    "INSERT OR REPLACE INTO ds_meta (key, value) VALUES ('version', ?)", (str(self._version),)
                )
                self._conn.execute("COMMIT")
            else:
                self._conn.execute(f"RELEASE sp{depth}")

    @property
    def version(self) -> int:
        """The org-wide row version last handed out (``versionnumber`` of the newest change)."""
        with self._lock:
            return self._version

    def _next_version(self) -> int:
        self._version += 1
        return self._version

    def _now(self) -> dt.datetime:
        return self.clock.now().astimezone(dt.UTC).replace(microsecond=0)

    def _max_version(self) -> int:
        best = 0
        row = self._conn.execute("SELECT value FROM ds_meta WHERE key = 'version'").fetchone()
        if row:
            best = int(row[0])
        row = self._conn.execute("SELECT MAX(versionnumber) FROM ds_tombstones").fetchone()
        best = max(best, row[0] or 0)
        for entity in self.catalog.entities.values():
            if "versionnumber" in entity.attributes:
                row = self._conn.execute(
                    f"SELECT MAX(versionnumber) FROM {table_name(entity.logical_name)}"
                ).fetchone()
                best = max(best, row[0] or 0)
        return best

    def close(self) -> None:
        """Close the database (the store is unusable afterwards)."""
        with self._lock:
            self._conn.close()

    # -- plans and tables -------------------------------------------------------------------------------

    def entity_def(self, entity: str) -> EntityDef:
        """The catalog definition of a table; 404 when the org has no such table."""
        definition = self.catalog.entity(entity)
        if definition is None:
            raise unknown_entity(entity)
        return definition

    def plan(self, entity: str) -> TablePlan:
        """The read/write plan of a table (cached)."""
        plan = self._plans.get(entity)
        if plan is None:
            plan = TablePlan.of(self.entity_def(entity))
            self._plans[entity] = plan
        return plan

    def _ensure_table(self, entity: EntityDef) -> None:
        table = table_name(entity.logical_name)
        columns = [ddl for a in stored_attributes(entity) for ddl in column_ddl(a)]
        self._conn.execute(f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(columns)})")
        existing = {r[1] for r in self._conn.execute(f"PRAGMA table_info({table})")}
        for attribute in stored_attributes(entity):
            if attribute.logical_name not in existing:
                for ddl in column_ddl(attribute):
                    self._conn.execute(
                        f"ALTER TABLE {table} ADD COLUMN {ddl.replace(' NOT NULL PRIMARY KEY', '')}"
                    )
        if "versionnumber" in entity.attributes:
            self._index(entity, "version", ["versionnumber"])
        for attribute in stored_attributes(entity):
            if attribute.is_lookup and not set(attribute.targets) <= _UNINDEXED_TARGETS:
                self._index(entity, attribute.logical_name, [attribute.logical_name])
        for key in entity.keys:
            self._key_index(entity, key)
        self._plans.pop(entity.logical_name, None)

    def _index(self, entity: EntityDef, suffix: str, columns: Sequence[str], *, unique: bool = False) -> None:
        name = q(f"ix_{entity.logical_name}_{suffix}")
        cols = ", ".join(q(c) for c in columns)
        self._conn.execute(
            f"CREATE {'UNIQUE ' if unique else ''}INDEX IF NOT EXISTS {name} ON {table_name(entity.logical_name)} ({cols})"
        )

    def _key_index(self, entity: EntityDef, key: KeyDef) -> None:
        self._index(entity, f"key_{key.logical_name}", key.attributes, unique=True)

    # -- persisted custom definitions -------------------------------------------------------------------

    def _persist(self, kind: str, body: dict[str, Any]) -> None:
        self._conn.execute("INSERT INTO ds_schema (kind, body) VALUES (?, ?)", (kind, json.dumps(body)))

    def _replay_schema(self) -> None:
        for kind, body_text in self._conn.execute("SELECT kind, body FROM ds_schema ORDER BY seq").fetchall():
            body = json.loads(body_text)
            if kind == "entity":
                entity = entity_from_json(body)
                if entity.logical_name not in self.catalog.entities:
                    self.catalog.add_entity(entity)
            elif kind == "attribute":
                target = self.catalog.entity(body["entity"])
                if target is not None and body["attribute"]["logical_name"] not in target.attributes:
                    target.add(attribute_from_json(body["attribute"]))
            elif kind == "relationship":
                relationship = relationship_from_json(body)
                if all(r.schema_name != relationship.schema_name for r in self.catalog.relationships):
                    self.catalog.relationships.append(relationship)
            elif kind == "key":
                target = self.catalog.entity(body["entity"])
                if target is not None and all(
                    k.logical_name != body["key"]["logical_name"] for k in target.keys
                ):
                    target.keys.append(key_from_json(body["key"]))
            elif kind == "change_tracking":
                target = self.catalog.entity(body["entity"])
                if target is not None:
                    target.change_tracking = bool(body["on"])

    # -- shared helpers ---------------------------------------------------------------------------------

    def _fetch(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def _lookup_sql(self, attribute: AttributeDef) -> tuple[str, str]:
        assert attribute.is_lookup
        return q(attribute.logical_name), q(attribute.logical_name + "__t")

    def _raw_version(self, entity: EntityDef, row_id: uuid.UUID) -> int | None:
        rows = self._fetch(
            f"SELECT versionnumber FROM {table_name(entity.logical_name)} WHERE {q(entity.primary_id)} = ?",
            (str(row_id),),
        )
        return rows[0][0] if rows else None

    def _relationship_children(self, relationship: RelationshipDef, parent: uuid.UUID) -> list[str]:
        return [
            r[0]
            for r in self._conn.execute(
                f"SELECT {q(self.entity_def(relationship.referencing_entity).primary_id)} "
                f"FROM {table_name(relationship.referencing_entity)} WHERE {q(relationship.referencing_attribute)} = ? "
                f"AND {q(relationship.referencing_attribute + '__t')} = ?",
                (str(parent), relationship.referenced_entity),
            )
        ]
