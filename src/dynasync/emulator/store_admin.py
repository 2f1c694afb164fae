"""The store's administrative half: schema changes (custom tables, columns, keys) and facts about the org."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence

from dynasync.emulator.catalog import AttributeDef, EntityDef, KeyDef, RelationshipDef
from dynasync.emulator.errors import EmulatorError
from dynasync.emulator.standard_tables import relationships_of
from dynasync.emulator.store_persist import (
    attribute_to_json,
    entity_to_json,
    key_to_json,
    relationship_to_json,
)
from dynasync.emulator.store_write import WriteMixin

DEFAULT_EXPIRY_DAYS = 7


class AdminMixin(WriteMixin):
    """Schema changes persisted across restarts, and the org's well-known rows."""

    # -- schema changes ---------------------------------------------------------------------------------

    def add_entity(
        self, entity: EntityDef, relationships: Sequence[RelationshipDef] | None = None
    ) -> EntityDef:
        """Create a (custom) table, persist its definition and add its lookups' relationships."""
        with self.transaction():
            self.catalog.add_entity(entity)
            self._persist("entity", entity_to_json(entity))
            self._ensure_table(entity)
            for relationship in (
                relationships if relationships is not None else relationships_of(self.catalog, entity)
            ):
                self._add_relationship(relationship)
        return entity

    def add_attribute(
        self, entity: str, attribute: AttributeDef, relationships: Sequence[RelationshipDef] | None = None
    ) -> AttributeDef:
        """Add a column to a table (and, for a lookup, its relationships), persisted across restarts."""
        e = self.entity_def(entity)
        with self.transaction():
            e.add(attribute)
            self.catalog.metadata_version += 1
            self._persist("attribute", {"entity": entity, "attribute": attribute_to_json(attribute)})
            self._ensure_table(e)
            if attribute.is_lookup:
                derived = relationships
                if derived is None:
                    derived = [
                        r
                        for r in relationships_of(self.catalog, e)
                        if r.referencing_attribute == attribute.logical_name
                    ]
                for relationship in derived:
                    self._add_relationship(relationship)
        return attribute

    def add_key(self, entity: str, key: KeyDef) -> KeyDef:
        """Declare an alternate key (a unique index; 412 ``0x80060892`` if existing rows collide)."""
        e = self.entity_def(entity)
        with self.transaction():
            try:
                self._key_index(e, key)
            except sqlite3.IntegrityError as exc:
                raise EmulatorError(
                    412, "0x80060892", f"The alternate key {key.logical_name} cannot be created: {exc}"
                ) from None
            e.keys.append(key)
            self.catalog.metadata_version += 1
            self._persist("key", {"entity": entity, "key": key_to_json(key)})
        return key

    def _add_relationship(self, relationship: RelationshipDef) -> None:
        if any(r.schema_name == relationship.schema_name for r in self.catalog.relationships):
            return
        self.catalog.relationships.append(relationship)
        self._persist("relationship", relationship_to_json(relationship))

    def set_change_tracking(self, entity: str, on: bool) -> None:
        """Turn change tracking on (or off) for a table, persisted."""
        e = self.entity_def(entity)
        with self.transaction():
            e.change_tracking = on
            self.catalog.metadata_version += 1
            self._persist("change_tracking", {"entity": entity, "on": on})

    # -- org facts --------------------------------------------------------------------------------------

    def _uuid_scalar(self, sql: str, params: Sequence[object] = ()) -> uuid.UUID | None:
        with self._lock:
            value = self._scalar(sql, params)
        return uuid.UUID(value) if value else None

    @property
    def organization_id(self) -> uuid.UUID | None:
        """The organization row's id (None before seeding)."""
        return self._uuid_scalar('SELECT "organizationid" FROM "e_organization" ORDER BY "createdon" LIMIT 1')

    @property
    def business_unit_id(self) -> uuid.UUID | None:
        """The root business unit's id."""
        with self._lock:
            return self._default_business_unit()

    @property
    def base_currency_id(self) -> uuid.UUID | None:
        """The organization's base currency."""
        with self._lock:
            return self._base_currency()

    @property
    def admin_user_id(self) -> uuid.UUID | None:
        """The systemuser the seed made org administrator (the default caller)."""
        with self._lock:
            return self._admin_caller()

    def set_admin_user(self, user_id: uuid.UUID) -> None:
        """Record which systemuser is the org administrator."""
        with self.transaction():
            self._conn.execute(
                "INSERT OR REPLACE INTO ds_meta (key, value) VALUES ('admin_user_id', ?)", (str(user_id),)
            )

    @property
    def change_tracking_expiry_days(self) -> int:
        """``organization.expirechangetrackingindays`` (default 7 when unset)."""
        with self._lock:
            value = self._scalar('SELECT "expirechangetrackingindays" FROM "e_organization" LIMIT 1')
        return int(value) if value is not None else DEFAULT_EXPIRY_DAYS
