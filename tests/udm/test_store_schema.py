"""Schema contract of the UDM store: tables per entity, catalog, migrations, added columns, refused type changes."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Callable
from unittest import mock

import pytest
import sqlalchemy as sa

from db_targets import Target
from dynasync.clock import FrozenClock
from dynasync.errors import StoreError
from dynasync.udm import migrations
from dynasync.udm import store_tables as t
from dynasync.udm.model import FieldType, UdmEntity, UdmField
from dynasync.udm.store import IncomingRow, UdmStore, open_store

from .conftest import account_entity, contact_entity


def test_ensure_entity_creates_a_typed_table(store: UdmStore) -> None:
    change = store.ensure_entity(account_entity())
    assert change.created and "revenue" in change.added_fields
    columns = {c["name"]: c for c in sa.inspect(store.engine).get_columns("udm_account")}
    for name in (
        "udm_id",
        "udm_deleted",
        "udm_created_at",
        "udm_updated_at",
        "udm_version",
        "udm_field_times",
    ):
        assert name in columns
    assert isinstance(columns["employees"]["type"], sa.Integer)
    assert isinstance(columns["big"]["type"], sa.BigInteger)
    assert isinstance(columns["revenue"]["type"], sa.Numeric)
    assert isinstance(columns["name"]["type"], sa.String) and columns["name"]["type"].length == 100
    assert isinstance(columns["founded"]["type"], sa.Date)
    # ensure again: nothing to do
    again = store.ensure_entity(account_entity())
    assert not again.created and again.added_fields == ()


def test_values_round_trip_in_canonical_form(store: UdmStore) -> None:
    store.ensure_entity(account_entity())
    cet = dt.timezone(dt.timedelta(hours=2))
    key = uuid.uuid4()
    outcome = store.upsert(
        "account",
        {
            "name": "Contoso",
            "revenue": decimal.Decimal("1234.5678"),
            "employees": "42",
            "big": 2**40,
            "score": 0.25,
            "active": True,
            "lastcontact": dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=cet),
            "founded": dt.date(1999, 12, 31),
            "industry": 7,
            "tags": (3, 1, 2),
            "extkey": key,
            "notes": "long " * 100,
        },
    )
    record = store.get("account", outcome.udm_id)
    assert record is not None
    v = record.values
    assert v["name"] == "Contoso" and v["employees"] == 42 and v["big"] == 2**40 and v["score"] == 0.25
    assert v["revenue"] == decimal.Decimal("1234.5678") and isinstance(v["revenue"], decimal.Decimal)
    assert v["active"] is True
    assert v["lastcontact"] == dt.datetime(2024, 1, 2, 1, 4, 5, 123456, tzinfo=dt.UTC)
    assert v["lastcontact"].utcoffset() == dt.timedelta(0)
    assert v["founded"] == dt.date(1999, 12, 31)
    assert v["industry"] == "7" and v["tags"] == "1;2;3" and v["extkey"] == str(key)
    assert v["parent"] is None
    assert record.version == outcome.version and record.created_at is not None


def test_bad_values_are_refused_with_the_field_named(store: UdmStore) -> None:
    store.ensure_entity(account_entity())
    with pytest.raises(StoreError, match=r"account\.employees"):
        store.upsert("account", {"employees": "many"})
    with pytest.raises(StoreError, match=r"account\.name.*maximum length 100"):
        store.upsert("account", {"name": "x" * 101})
    with pytest.raises(StoreError, match=r"account\.lastcontact.*naive"):
        store.upsert("account", {"lastcontact": dt.datetime(2024, 1, 1)})
    with pytest.raises(StoreError, match="no field 'nope'"):
        store.upsert("account", {"nope": 1})
    assert store.count("account") == 0
    result = store.apply_upserts(
        "account",
        "dynamics",
        "account",
        [IncomingRow("a1", {"employees": 2**40}), IncomingRow("a2", {"employees": 5})],
    )
    assert [r.action for r in result.rows] == ["failed", "created"]
    assert "out of range" in (result.rows[0].error or "")
    assert store.count("account") == 1


def test_new_field_adds_a_column_and_keeps_data(store: UdmStore) -> None:
    store.ensure_entity(account_entity())
    first = store.upsert("account", {"name": "A"})
    change = store.ensure_entity(
        account_entity(website=UdmField("website", FieldType.STRING, max_length=300))
    )
    assert change.added_fields == ("website",) and not change.created
    assert "website" in {c["name"] for c in sa.inspect(store.engine).get_columns("udm_account")}
    store.upsert("account", {"website": "https://example.com"}, udm_id=first.udm_id)
    record = store.get("account", first.udm_id)
    assert (
        record is not None
        and record.values["name"] == "A"
        and record.values["website"] == "https://example.com"
    )


def test_type_change_is_refused_naming_entity_field_and_types(store: UdmStore) -> None:
    store.ensure_entity(account_entity())
    changed = account_entity(employees=UdmField("employees", FieldType.STRING))
    with pytest.raises(StoreError) as info:
        store.ensure_entity(changed)
    assert "account.employees" in info.value.message
    assert "integer -> string(4000)" in info.value.message
    assert store.entity("account").fields["employees"].type is FieldType.INTEGER
    # A shorter string (another synapse's column, say) keeps the longer field: its data still fits.
    store.upsert("account", {"name": "n" * 90})
    store.ensure_entity(account_entity(name=UdmField("name", FieldType.STRING, max_length=10)))
    assert store.entity("account").fields["name"].max_length == 100


def test_widening_a_string_is_allowed(store: UdmStore) -> None:
    store.ensure_entity(account_entity())
    store.ensure_entity(account_entity(name=UdmField("name", FieldType.STRING, max_length=500)))
    outcome = store.upsert("account", {"name": "n" * 400})
    record = store.get("account", outcome.udm_id)
    assert record is not None and len(record.values["name"]) == 400


def test_removed_field_keeps_its_column_and_can_return(store: UdmStore) -> None:
    store.ensure_entity(account_entity())
    kept = store.upsert("account", {"name": "A", "notes": "keep me"})
    slim = account_entity()
    slim_fields = {k: v for k, v in slim.fields.items() if k != "notes"}
    store.ensure_entity(UdmEntity("account", slim_fields, match_keys=slim.match_keys))
    assert "notes" not in store.entity("account").fields
    with pytest.raises(StoreError):
        store.ensure_entity(
            UdmEntity("account", {**slim_fields, "notes": UdmField("notes", FieldType.INTEGER)})
        )
    store.ensure_entity(account_entity())
    record = store.get("account", kept.udm_id)
    assert record is not None and record.values["notes"] == "keep me"


def test_invalid_names_are_refused(store: UdmStore) -> None:
    with pytest.raises(StoreError, match="not a valid SQL identifier"):
        store.ensure_entity(UdmEntity("bad name", {}))
    with pytest.raises(StoreError, match="reserved prefix"):
        store.ensure_entity(UdmEntity("x", {"udm_id": UdmField("udm_id", FieldType.STRING)}))
    with pytest.raises(StoreError, match="match key"):
        store.ensure_entity(UdmEntity("x", {"a": UdmField("a", FieldType.STRING)}, match_keys=("b",)))
    with pytest.raises(StoreError, match="unknown UDM entity"):
        store.get("nothing", "x")


def test_catalog_survives_reopen(store: UdmStore, opener: Callable[[], UdmStore]) -> None:
    store.ensure_entity(account_entity())
    store.ensure_entity(contact_entity())
    outcome = store.upsert("contact", {"email": "a@b.c"})
    store.close()
    again = opener()
    assert set(again.entities()) == {"account", "contact"}
    assert again.entity("account") == account_entity()
    record = again.get("contact", outcome.udm_id)
    assert record is not None and record.values["email"] == "a@b.c"


def test_migrations_are_idempotent_and_recorded(store: UdmStore, opener: Callable[[], UdmStore]) -> None:
    latest = migrations.latest_version()
    assert store.schema_version() == latest
    second = opener()
    assert second.schema_version() == latest
    with second.engine.begin() as conn:
        assert migrations.migrate(conn, dt.datetime.now(dt.UTC)) == []
        rows = conn.execute(sa.text("SELECT version FROM ds_schema_version")).scalars().all()
    assert sorted(rows) == [int(m.VERSION) for m in migrations.MIGRATIONS]


def test_migrated_schema_matches_the_tables_the_code_uses(store: UdmStore) -> None:
    inspector = sa.inspect(store.engine)
    for table in t.metadata.tables.values():
        actual = {c["name"] for c in inspector.get_columns(table.name)}
        assert actual == {c.name for c in table.columns}, table.name


def test_schema_newer_than_the_code_is_refused(store: UdmStore, opener: Callable[[], UdmStore]) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO ds_schema_version (version, name, applied_at) VALUES (9999, 'future', :at)"),
            {"at": dt.datetime(2030, 1, 1)},
        )
    with pytest.raises(StoreError, match="newer than this dynasync"):
        opener()


def test_migration_4_rekeys_links_and_log_keeping_every_row(target: Target, clock: FrozenClock) -> None:
    """A store made by version 3 (links and log in use) upgrades to lean indexes with nothing lost."""
    engine = target.engine()
    with engine.begin() as conn:
        v3 = [m for m in migrations.MIGRATIONS if int(m.VERSION) <= 3]
        with mock.patch.object(migrations, "MIGRATIONS", tuple(v3)):
            assert migrations.migrate(conn, clock.now()) == [1, 2, 3]
    with engine.begin() as conn:
        now = clock.now().replace(tzinfo=None) if target.kind == "sqlite" else clock.now()
        for i in range(3):
            conn.execute(
                sa.text(
                    "INSERT INTO ds_links (synapse, ext_table, ext_id, entity, udm_id, last_read_hash, "
                    "external_version, synced_version, created_at, updated_at) "
                    "VALUES ('crm', 'account', :ext, 'Account', :udm, :state, '7', 3, :now, :now)"
                ),
                {"ext": f"ext-{i}", "udm": f"udm-{i}", "state": f'={{"n":{i}}}', "now": now},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO ds_log (run_id, at, direction, synapse, ext_table, ext_id, entity, udm_id, action, "
                    "fields) VALUES ('r', :now, 'in', 'crm', 'account', :ext, 'Account', :udm, 'created', '{}')"
                ),
                {"ext": f"ext-{i}", "udm": f"udm-{i}", "now": now},
            )
    engine.dispose()
    store = open_store(target.url, schema=target.schema, clock=clock)
    try:
        assert store.schema_version() == migrations.latest_version()
        links = store.links_for_record("Account", "udm-1")
        assert [(lk.synapse, lk.external_id, lk.last_read_hash, lk.synced_version) for lk in links] == [
            ("crm", "ext-1", '={"n":1}', 3)
        ]
        assert store.get_link("crm", "account", "ext-2") is not None
        events = store.search_log(external_id="ext-0")
        assert [(e.udm_id, e.action) for e in events] == [("udm-0", "created")]
        inspector = sa.inspect(store.engine)
        assert "ix_ds_links_udm" not in {ix["name"] for ix in inspector.get_indexes("ds_links")}
        unique = inspector.get_unique_constraints("ds_links")
        assert [u["column_names"] for u in unique] == [["entity", "udm_id", "synapse"]]
        external = {ix["name"]: ix["column_names"] for ix in inspector.get_indexes("ds_log")}[
            "ix_ds_log_external"
        ]
        assert external == ["ext_id", "id"]
        # The rebuilt key still refuses a second link of one record to the same synapse.
        with pytest.raises(StoreError):
            store.link("crm", "account", "ext-other", "Account", "udm-1")
    finally:
        store.close()
