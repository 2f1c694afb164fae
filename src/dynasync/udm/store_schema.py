"""Entity schema management of the UDM store: create tables, add columns, refuse type changes, keep the catalog."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from dynasync.errors import StoreError
from dynasync.udm import store_codec as codec
from dynasync.udm import store_sql_edits
from dynasync.udm import store_tables as t
from dynasync.udm.model import FieldType, UdmEntity
from dynasync.udm.store_session import Session
from dynasync.udm.store_types import EntityChange


def _validate(entity: UdmEntity) -> None:
    t.check_name("entity", entity.name)
    for key, field in entity.fields.items():
        t.check_name("field", field.name)
        if key != field.name:
            raise StoreError(
                f"UDM entity {entity.name}: field key {key!r} differs from its name {field.name!r}"
            )
        if field.type is FieldType.STRING and field.max_length is not None and field.max_length <= 0:
            raise StoreError(f"UDM field {entity.name}.{field.name}: max_length must be positive")
    lowered = [k.lower() for k in entity.fields]
    if len(set(lowered)) != len(lowered):
        raise StoreError(f"UDM entity {entity.name} has field names differing only in case")
    for key in entity.match_keys:
        if key not in entity.fields:
            raise StoreError(f"UDM entity {entity.name}: match key {key!r} is not one of its fields")


def _quote(session: Session, name: str) -> str:
    return session.conn.dialect.identifier_preparer.quote(name)


def _column_ddl(session: Session, field_name: str, type_: Any) -> str:
    return f"{_quote(session, field_name)} {type_.compile(dialect=session.conn.dialect)}"


def ensure_entity(session: Session, entity: UdmEntity) -> EntityChange:
    """Create the entity's table, or add columns for new fields; refuse changed field types.

    Fields missing from ``entity`` keep their column (and data) and are marked retired in the catalog; they
    come back when a later definition names them again with the same type.
    """
    _validate(entity)
    existing = session.load_info(entity.name)
    now = session.now()
    if existing is None:
        return _create(session, entity, now)
    errors: list[str] = []
    added: list[str] = []
    widened: list[tuple[str, int]] = []
    fields = dict(existing.fields)
    for name, field in entity.fields.items():
        old = fields.get(name)
        if old is None:
            added.append(name)
            fields[name] = t.CatalogField(field)
            continue
        before, after = old.field, field
        old_len = before.max_length or codec.DEFAULT_STRING_LENGTH
        new_len = after.max_length or codec.DEFAULT_STRING_LENGTH
        if after.type is FieldType.STRING and before.type is FieldType.STRING and new_len < old_len:
            # A field never shortens (its data might not fit): another mapping or synapse needs the length.
            fields[name] = t.CatalogField(before)
            continue
        if before.type != after.type:
            errors.append(
                f"{entity.name}.{name}: {codec.type_label(before.type, before.max_length)} -> "
                f"{codec.type_label(after.type, after.max_length)}"
            )
            continue
        if after.type is FieldType.STRING and new_len > old_len:
            widened.append((name, new_len))
        fields[name] = t.CatalogField(field)
    if errors:
        raise StoreError(
            "UDM field type changes are not applied automatically: " + "; ".join(errors),
            remedy="Keep the old type, or add a new field under another name and migrate the data yourself.",
        )
    for name, cf in list(fields.items()):
        if name not in entity.fields and not cf.retired:
            fields[name] = t.CatalogField(cf.field, retired=True)
    info = t.build_info(entity.name, fields, tuple(entity.match_keys), session.dialect)
    table = _quote(session, info.entity.table)
    for name in added:
        ddl = _column_ddl(session, name, info.table.c[name].type)
        session.conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {ddl}")
    if added:
        store_sql_edits.install(session, info)  # the triggers name every field column
    if session.dialect == "postgresql":
        for name, length in widened:
            session.conn.exec_driver_sql(
                f"ALTER TABLE {table} ALTER COLUMN {_quote(session, name)} TYPE VARCHAR({length})"
            )
    # SQLite does not enforce VARCHAR lengths, so widening there only updates the catalog.
    _ensure_match_index(session, info)
    definition = codec.dumps(t.encode_definition(entity.name, fields, tuple(entity.match_keys)))
    session.conn.execute(
        sa.update(t.catalog)
        .where(t.catalog.c.entity == entity.name)
        .values(definition=definition, updated_at=now)
    )
    session.pending[entity.name] = info
    return EntityChange(entity=entity.name, created=False, added_fields=tuple(added))


def _create(session: Session, entity: UdmEntity, now: Any) -> EntityChange:
    fields = {k: t.CatalogField(f) for k, f in entity.fields.items()}
    info = t.build_info(entity.name, fields, tuple(entity.match_keys), session.dialect)
    taken = session.conn.execute(
        sa.select(t.catalog.c.entity).where(sa.func.lower(t.catalog.c.table_name) == info.entity.table)
    ).first()
    if taken is not None:
        raise StoreError(
            f"UDM entity {entity.name!r} would use table {info.entity.table}, already used by entity {taken[0]!r}",
            remedy="Entity names must differ in more than letter case.",
        )
    if sa.inspect(session.conn).has_table(info.entity.table):
        raise StoreError(
            f"table {info.entity.table} exists but is not in the UDM catalog; refusing to adopt it",
            remedy="Drop or rename the table, or choose another entity name.",
        )
    info.table.create(session.conn)
    _ensure_match_index(session, info)
    store_sql_edits.install(session, info)
    definition = codec.dumps(t.encode_definition(entity.name, fields, tuple(entity.match_keys)))
    session.conn.execute(
        sa.insert(t.catalog).values(
            entity=entity.name, table_name=info.entity.table, definition=definition, updated_at=now
        )
    )
    session.pending[entity.name] = info
    return EntityChange(entity=entity.name, created=True, added_fields=tuple(entity.fields))


def _ensure_match_index(session: Session, info: t.EntityInfo) -> None:
    index = t.match_key_index(info)
    if index is not None:
        # IF NOT EXISTS instead of checkfirst: reflecting expression indexes warns on SQLite.
        session.conn.execute(sa.schema.CreateIndex(index, if_not_exists=True))


def entities(session: Session) -> dict[str, UdmEntity]:
    """Return every entity in the catalog (current fields only), by name."""
    out: dict[str, UdmEntity] = {}
    for name in session.conn.execute(sa.select(t.catalog.c.entity).order_by(t.catalog.c.entity)).scalars():
        out[name] = session.info(name).entity
    return out


def hash_values(session: Session, entity: str, values: Mapping[str, Any]) -> str:
    """Return the echo hash of ``values`` after coercing them to the entity's field types."""
    info = session.info(entity)
    return codec.hash_canonical(coerce_values(info, values))


def value_problems(session: Session, entity: str, values: Mapping[str, Any]) -> dict[str, str]:
    """Why each value cannot be stored in its field of ``entity`` (by field; unknown fields included)."""
    info = session.info(entity)
    problems: dict[str, str] = {}
    for name, value in values.items():
        if name not in info.entity.fields:
            problems[name] = f"{info.entity.name} has no such field"
            continue
        try:
            info.coercers[name](value)
        except (ValueError, TypeError, ArithmeticError) as exc:
            problems[name] = str(exc)
    return problems


def coerce_values(info: t.EntityInfo, values: Mapping[str, Any]) -> dict[str, Any]:
    """Coerce values to their canonical form; raise StoreError naming the field for an unknown field or bad value."""
    coercers = info.coercers
    try:
        # Fast path (one comprehension per row); the loop below only runs to name the failing field.
        return {name: coercers[name](value) for name, value in values.items()}
    except (KeyError, ValueError, TypeError, ArithmeticError):
        pass
    out: dict[str, Any] = {}
    for name, value in values.items():
        fn = coercers.get(name)
        if fn is None:
            raise StoreError(f"UDM entity {info.entity.name} has no field {name!r}")
        try:
            out[name] = fn(value)
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise StoreError(f"UDM field {info.entity.name}.{name}: {exc}") from exc
    return out
