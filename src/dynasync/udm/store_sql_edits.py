"""Direct SQL edits of UDM entity tables, kept in step with the store by database triggers.

The UDM is there to be queried with SQL, and people will also change it with SQL. The store's own writes always
give a changed record a new ``udm_version``; a plain ``UPDATE udm_account SET phone = ...`` would not, so the
write-back (which follows versions) would never send the change, and a later source edit could overwrite it
unseen. The triggers act only on writes that are not the store's: the store raises the ``ds_writer`` flag for
the length of each of its write transactions (migration 6). Each entity table carries three triggers:

- an update that changes a field or the deleted flag takes the next version from ``ds_sequence``, stamps
  ``udm_updated_at``, ``udm_source`` and the changed fields' times in ``udm_field_times`` (so "latest update
  wins" sees the edit as the newest value), and logs the change in ``ds_log`` (direction ``udm``, synapse
  ``sql``, the values as the database holds them);
- changing ``udm_id`` (links and log entries name it) or ``udm_version`` (the write-back follows it: a version
  set by hand would hide the record, or every later change) is refused;
- an ``INSERT`` is refused: a row made with SQL would have no version history, field times or log entry; create
  records with ``dynasync record new`` or the store API;
- a ``DELETE`` of a live record is refused with a message saying how to delete it so that the deletion syncs
  (``UPDATE ... SET udm_deleted = true`` or ``dynasync record delete``); deleting an already-deleted record
  (purging it) is allowed and forgets its links and tombstones too, so a later change of its row in a system
  makes a new record rather than half of the old one.

The triggers name every field column, so they are rebuilt whenever the entity gains columns.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from dynasync.udm import store_tables as t
from dynasync.udm.store_session import Session

SQL_SOURCE = "sql"
"""The ``synapse`` (and ``udm_source``) a SQL edit is logged under."""

SQL_DECISION = "edited with SQL"
KEY_REFUSED = (
    "dynasync: udm_id cannot be changed, because the record's links and log entries name it; "
    "create a new record (dynasync record new) instead"
)
VERSION_REFUSED = (
    "dynasync: udm_version, udm_field_times, udm_created_at, udm_updated_at and udm_source are kept by dynasync "
    "(the write-back and the conflict rules follow them); leave them out of the UPDATE, which sets them itself"
)
_KEPT = ("udm_version", "udm_field_times", "udm_created_at", "udm_updated_at", "udm_source")
INSERT_REFUSED = (
    "dynasync: rows are not inserted with SQL (they would have no links, field times or log entry); create the "
    "record with dynasync record new, then change it with SQL if you like"
)
DELETE_REFUSED = (
    "dynasync: a live UDM record cannot be removed with DELETE, because the deletion would not sync; "
    "run UPDATE ... SET udm_deleted = true (or dynasync record delete <id>) instead"
)

Quote = Callable[[str], str]

GENERATION = 5
"""Part of every trigger's name: a dynasync whose triggers differ raises it, and stores re-install on open."""


_KINDS = ("_sql_edit_", "_sql_delete_", "_sql_insert_")
_WRITER_DOWN = "(SELECT active FROM ds_writer WHERE id = 1) = 0"  # not the store's own write


def trigger_names(table: str) -> tuple[str, str, str]:
    """(update, delete, insert) trigger names of an entity table (also its plpgsql functions' names)."""
    edit, delete, insert = (t.identifier(table, f"{kind}{GENERATION}") for kind in _KINDS)
    return edit, delete, insert


def install(session: Session, info: t.EntityInfo) -> None:
    """Create (or re-create) the SQL-edit triggers of an entity table for its current columns."""
    quote: Quote = session.conn.dialect.identifier_preparer.quote
    table = info.table.name
    for old in present(session, table):
        if session.dialect == "postgresql":
            session.conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {quote(old)} ON {quote(table)}")
            session.conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {quote(old)}()")
        else:
            session.conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {quote(old)}")
    fields = [c.name for c in info.table.columns if not c.name.startswith("udm_")]
    build = _postgresql if session.dialect == "postgresql" else _sqlite
    for statement in build(quote, table, info.entity.name, fields):
        session.conn.exec_driver_sql(statement)


def ensure(session: Session) -> list[str]:
    """Install the triggers of every catalog entity whose table lacks this generation's; return those entities.

    Stores made before the triggers existed (or by an older generation) get them when next opened.
    """
    done: list[str] = []
    for entity, table in session.conn.execute(sa.select(t.catalog.c.entity, t.catalog.c.table_name)).all():
        if set(trigger_names(table)) - set(present(session, table)):
            install(session, session.info(entity))
            done.append(entity)
    return done


def present(session: Session, table: str) -> list[str]:
    """Names of the SQL-edit triggers (any generation) on ``table``."""
    if session.dialect == "postgresql":
        sql = (
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgrelid = "
            "(SELECT c.oid FROM pg_class c WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace)"
        )
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?"
    names = [str(row[0]) for row in session.conn.exec_driver_sql(sql, (table,)).all()]
    return [name for name in names if any(kind in name for kind in _KINDS)]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sqlite(quote: Quote, table: str, entity: str, fields: list[str]) -> list[str]:
    # An AFTER trigger updates its own row again (recursive triggers are off, and the new version would stop the
    # WHEN clause anyway). Times: the store's DATETIME text, and ISO 8601 UTC in the field-time JSON.
    name = quote(table)
    edit, delete, insert = (quote(n) for n in trigger_names(table))
    stamp = "strftime('%Y-%m-%d %H:%M:%f', 'now') || '000'"
    iso = "strftime('%Y-%m-%dT%H:%M:%f', 'now') || '+00:00'"
    moved = [(f, f"NEW.{quote(f)} IS NOT OLD.{quote(f)}") for f in fields]
    deleted_moved = "NEW.udm_deleted IS NOT OLD.udm_deleted"
    times = " UNION ALL ".join(f"SELECT {_literal(f)} AS k, {iso} AS v WHERE {cond}" for f, cond in moved)
    items = " UNION ALL ".join(
        f"SELECT json_array({_literal(f)}, NEW.{quote(f)}, OLD.{quote(f)}, NEW.{quote(f)}, "
        f"{_literal(SQL_DECISION)}) AS item WHERE {cond}"
        for f, cond in [*moved, ("udm_deleted", deleted_moved)]
    )
    patch = f"(SELECT json_group_object(k, v) FROM ({times}))" if times else "'{}'"
    any_moved = " OR ".join(
        [cond for _f, cond in moved]
        + [deleted_moved, "NEW.udm_id IS NOT OLD.udm_id"]
        + [f"NEW.{c} IS NOT OLD.{c}" for c in _KEPT]
    )
    kept_moved = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in _KEPT)
    seq = f"SELECT value FROM {t.sequence.name} WHERE name = {_literal(t.VERSION_SEQUENCE)}"
    return [
        f"""CREATE TRIGGER {edit} AFTER UPDATE ON {name} FOR EACH ROW
WHEN {_WRITER_DOWN} AND ({any_moved})
BEGIN
  SELECT RAISE(ABORT, {_literal(KEY_REFUSED)}) WHERE NEW.udm_id IS NOT OLD.udm_id;
  SELECT RAISE(ABORT, {_literal(VERSION_REFUSED)}) WHERE {kept_moved};
  UPDATE {t.sequence.name} SET value = value + 1 WHERE name = {_literal(t.VERSION_SEQUENCE)};
  UPDATE {name} SET udm_version = ({seq}), udm_updated_at = {stamp}, udm_source = {_literal(SQL_SOURCE)},
    udm_field_times = json_patch(udm_field_times, {patch})
  WHERE udm_id = NEW.udm_id;
  INSERT INTO {t.log.name} (run_id, at, direction, synapse, ext_table, ext_id, entity, udm_id, action, outcome,
    fields)
  VALUES (NULL, {stamp}, 'udm', {_literal(SQL_SOURCE)}, NULL, NULL, {_literal(entity)}, NEW.udm_id,
    CASE WHEN NEW.udm_deleted AND NOT OLD.udm_deleted THEN 'deleted' ELSE 'updated' END, NULL,
    (SELECT json_group_array(json(item)) FROM ({items})));
END""",
        f"""CREATE TRIGGER {delete} BEFORE DELETE ON {name} FOR EACH ROW
BEGIN
  SELECT RAISE(ABORT, {_literal(DELETE_REFUSED)}) WHERE NOT OLD.udm_deleted;
  DELETE FROM {t.links.name} WHERE entity = {_literal(entity)} AND udm_id = OLD.udm_id AND {_WRITER_DOWN};
  DELETE FROM {t.tombstones.name} WHERE entity = {_literal(entity)} AND udm_id = OLD.udm_id AND {_WRITER_DOWN};
END""",
        f"""CREATE TRIGGER {insert} BEFORE INSERT ON {name} FOR EACH ROW WHEN {_WRITER_DOWN}
BEGIN
  SELECT RAISE(ABORT, {_literal(INSERT_REFUSED)});
END""",
    ]


def _postgresql(quote: Quote, table: str, entity: str, fields: list[str]) -> list[str]:
    # A BEFORE trigger sets the new version and times on the row being written; one plpgsql function per table
    # (its text names the table's columns). to_jsonb keeps each value's own JSON type in the log.
    name = quote(table)
    edit_fn, delete_fn, insert_fn = (quote(n) for n in trigger_names(table))
    checks = "\n".join(
        f"""  IF NEW.{quote(f)} IS DISTINCT FROM OLD.{quote(f)} THEN
    items := items || jsonb_build_array(jsonb_build_array({_literal(f)}, to_jsonb(NEW.{quote(f)}),
      to_jsonb(OLD.{quote(f)}), to_jsonb(NEW.{quote(f)}), {_literal(SQL_DECISION)}));
    times := times || jsonb_build_object({_literal(f)}, stamp);
  END IF;"""
        for f in fields
    )
    return [
        f"""CREATE OR REPLACE FUNCTION {edit_fn}() RETURNS trigger LANGUAGE plpgsql AS $body$
DECLARE
  items jsonb := '[]'::jsonb;
  times jsonb := '{{}}'::jsonb;
  stamp text := to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00';
BEGIN
  IF NOT {_WRITER_DOWN} THEN
    RETURN NEW;
  END IF;
  IF NEW.udm_id IS DISTINCT FROM OLD.udm_id THEN
    RAISE EXCEPTION {_literal(KEY_REFUSED)};
  END IF;
  IF {" OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in _KEPT)} THEN
    RAISE EXCEPTION {_literal(VERSION_REFUSED)};
  END IF;
{checks}
  IF NEW.udm_deleted IS DISTINCT FROM OLD.udm_deleted THEN
    items := items || jsonb_build_array(jsonb_build_array('udm_deleted', to_jsonb(NEW.udm_deleted),
      to_jsonb(OLD.udm_deleted), to_jsonb(NEW.udm_deleted), {_literal(SQL_DECISION)}));
  END IF;
  IF items = '[]'::jsonb THEN
    RETURN NEW;
  END IF;
  UPDATE {t.sequence.name} SET value = value + 1 WHERE name = {_literal(t.VERSION_SEQUENCE)}
    RETURNING value INTO NEW.udm_version;
  NEW.udm_updated_at := clock_timestamp();
  NEW.udm_source := {_literal(SQL_SOURCE)};
  NEW.udm_field_times := (NEW.udm_field_times::jsonb || times)::text;
  INSERT INTO {t.log.name} (run_id, at, direction, synapse, ext_table, ext_id, entity, udm_id, action, outcome,
    fields)
  VALUES (NULL, clock_timestamp(), 'udm', {_literal(SQL_SOURCE)}, NULL, NULL, {_literal(entity)}, NEW.udm_id,
    CASE WHEN NEW.udm_deleted AND NOT OLD.udm_deleted THEN 'deleted' ELSE 'updated' END, NULL, items::text);
  RETURN NEW;
END
$body$""",
        f"""CREATE OR REPLACE FUNCTION {delete_fn}() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
  IF NOT OLD.udm_deleted THEN
    RAISE EXCEPTION {_literal(DELETE_REFUSED)};
  END IF;
  IF {_WRITER_DOWN} THEN
    DELETE FROM {t.links.name} WHERE entity = {_literal(entity)} AND udm_id = OLD.udm_id;
    DELETE FROM {t.tombstones.name} WHERE entity = {_literal(entity)} AND udm_id = OLD.udm_id;
  END IF;
  RETURN OLD;
END
$body$""",
        f"""CREATE OR REPLACE FUNCTION {insert_fn}() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
  IF {_WRITER_DOWN} THEN
    RAISE EXCEPTION {_literal(INSERT_REFUSED)};
  END IF;
  RETURN NEW;
END
$body$""",
        f"CREATE TRIGGER {edit_fn} BEFORE UPDATE ON {name} FOR EACH ROW EXECUTE FUNCTION {edit_fn}()",
        f"CREATE TRIGGER {delete_fn} BEFORE DELETE ON {name} FOR EACH ROW EXECUTE FUNCTION {delete_fn}()",
        f"CREATE TRIGGER {insert_fn} BEFORE INSERT ON {name} FOR EACH ROW EXECUTE FUNCTION {insert_fn}()",
    ]
