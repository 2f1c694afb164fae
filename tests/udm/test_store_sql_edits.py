"""Direct SQL edits of entity tables: tracked like store edits (version, field times, log), never lost silently."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from dynasync.udm import store_sql_edits
from dynasync.udm.model import FieldType, UdmEntity, UdmField
from dynasync.udm.store import IncomingRow, UdmStore

from .conftest import account_entity

T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def accounts(store: UdmStore) -> UdmStore:
    store.ensure_entity(account_entity())
    return store


def _sql(store: UdmStore, statement: str, **params: object) -> None:
    """Run a statement the way a person with a SQL client would: its own transaction, outside the store API."""
    with store.engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def _create(store: UdmStore) -> str:
    return (
        store.apply_upserts(
            "account",
            "dynamics",
            "account",
            [IncomingRow("x1", {"name": "A", "employees": 1}, modified_on=T0)],
        )
        .rows[0]
        .udm_id
    )


def test_an_update_gets_a_new_version_field_times_and_a_log_event(accounts: UdmStore) -> None:
    udm_id = _create(accounts)
    before = accounts.get("account", udm_id)
    assert before is not None
    _sql(accounts, "UPDATE udm_account SET name = 'Renamed', revenue = 12.5 WHERE udm_id = :id", id=udm_id)
    after = accounts.get("account", udm_id)
    assert after is not None
    assert after.version == before.version + 1 == accounts.max_version()
    assert after.values["name"] == "Renamed" and after.values["employees"] == 1
    assert (
        after.updated_at is not None
        and before.updated_at is not None
        and after.updated_at > before.updated_at
    )
    times = dict(after.field_updated_at)
    assert times["name"] > T0 and times["revenue"] > T0  # stamped now (real time)
    assert times["employees"] == before.field_updated_at["employees"]  # untouched fields keep theirs
    (event, *_older) = accounts.search_log(entity="account", udm_id=udm_id)
    assert (event.direction, event.synapse, event.action) == ("udm", "sql", "updated")
    changes = {f.field: (f.old, f.new, f.decision) for f in event.fields}
    assert changes["name"] == ("A", "Renamed", store_sql_edits.SQL_DECISION)
    assert set(changes) == {"name", "revenue"}
    assert [r.id for r in accounts.iter_changed("account", after_version=before.version)] == [udm_id]


def test_an_update_that_changes_nothing_is_not_a_change(accounts: UdmStore) -> None:
    udm_id = _create(accounts)
    version = accounts.max_version()
    _sql(accounts, "UPDATE udm_account SET name = name, employees = 1")
    record = accounts.get("account", udm_id)
    assert record is not None and record.version == version == accounts.max_version()
    assert len(accounts.search_log(entity="account", udm_id=udm_id)) == 1  # only the create


def test_the_store_own_writes_never_fire_the_edit_trigger(accounts: UdmStore) -> None:
    udm_id = _create(accounts)
    accounts.upsert("account", {"name": "B"}, udm_id=udm_id)
    late = IncomingRow("x1", {"name": "C", "employees": 2}, modified_on=T0 + dt.timedelta(days=900))
    accounts.apply_upserts("account", "dynamics", "account", [late])
    accounts.apply_deletes("account", "dynamics", "account", ["x1"])
    events = accounts.search_log(entity="account", udm_id=udm_id)
    assert [e.synapse for e in events] == ["dynamics", "dynamics", "udm", "dynamics"]


def test_a_sql_edit_is_the_newest_value_under_latest_update_wins(accounts: UdmStore) -> None:
    udm_id = _create(accounts)
    _sql(accounts, "UPDATE udm_account SET name = 'By SQL'")
    older = IncomingRow("x1", {"name": "From source"}, modified_on=T0 + dt.timedelta(hours=1))
    outcome = accounts.apply_upserts("account", "dynamics", "account", [older]).rows[0]
    (change,) = outcome.changes
    assert change.applied is False and change.decision == "latest_update_wins: udm newer"
    record = accounts.get("account", udm_id)
    assert record is not None and record.values["name"] == "By SQL"


def test_delete_of_a_live_record_is_refused_and_a_soft_delete_syncs(accounts: UdmStore) -> None:
    udm_id = _create(accounts)
    with pytest.raises(sa.exc.DBAPIError, match=r"cannot be removed with DELETE.*udm_deleted = true"):
        _sql(accounts, "DELETE FROM udm_account")
    assert accounts.count("account") == 1
    _sql(accounts, "UPDATE udm_account SET udm_deleted = :yes", yes=True)
    record = accounts.get("account", udm_id)
    assert record is not None and record.deleted and record.version == accounts.max_version()
    assert accounts.search_log(entity="account", udm_id=udm_id)[0].action == "deleted"
    assert accounts.get_link("dynamics", "account", "x1") is not None
    _sql(accounts, "DELETE FROM udm_account")  # purging a deleted record is allowed
    assert accounts.count("account", include_deleted=True) == 0
    # ...and forgets its links: a later change of its row makes a whole new record, not half of the old one
    assert accounts.get_link("dynamics", "account", "x1") is None
    again = IncomingRow("x1", {"name": "Back", "employees": 3}, modified_on=T0 + dt.timedelta(hours=2))
    outcome = accounts.apply_upserts("account", "dynamics", "account", [again]).rows[0]
    assert outcome.action == "created" and outcome.udm_id != udm_id


def test_changing_a_record_id_is_refused(accounts: UdmStore) -> None:
    udm_id = _create(accounts)
    with pytest.raises(sa.exc.DBAPIError, match="udm_id cannot be changed"):
        _sql(accounts, "UPDATE udm_account SET udm_id = 'other' WHERE udm_id = :id", id=udm_id)
    with pytest.raises(sa.exc.DBAPIError, match="udm_id cannot be changed"):  # with a field change too
        _sql(accounts, "UPDATE udm_account SET udm_id = 'other', name = 'x' WHERE udm_id = :id", id=udm_id)
    record = accounts.get("account", udm_id)
    assert record is not None and record.values["name"] == "A"


def test_new_columns_are_tracked_after_the_entity_grows(accounts: UdmStore) -> None:
    udm_id = _create(accounts)
    accounts.ensure_entity(account_entity(tier=UdmField("tier", FieldType.STRING)))
    version = accounts.max_version()
    _sql(accounts, "UPDATE udm_account SET tier = 'Gold'")
    record = accounts.get("account", udm_id)
    assert record is not None and record.values["tier"] == "Gold" and record.version == version + 1


def test_a_store_without_the_triggers_gets_them_when_opened(
    opener: Callable[[], UdmStore], accounts: UdmStore
) -> None:
    udm_id = _create(accounts)
    with accounts.transaction() as tx:  # as a store made before the triggers existed
        for name in store_sql_edits.trigger_names("udm_account"):
            on = " ON udm_account" if tx.connection.dialect.name == "postgresql" else ""
            tx.connection.exec_driver_sql(f"DROP TRIGGER {name}{on}")
    version = accounts.max_version()
    _sql(accounts, "UPDATE udm_account SET name = 'untracked'")
    assert accounts.max_version() == version  # no trigger: not tracked
    reopened = opener()
    _sql(reopened, "UPDATE udm_account SET name = 'tracked'")
    record = reopened.get("account", udm_id)
    assert record is not None and record.version == version + 1


def test_triggers_of_an_older_generation_are_replaced_on_open(
    opener: Callable[[], UdmStore], accounts: UdmStore
) -> None:
    _create(accounts)
    old = "udm_account_sql_edit_0"
    with accounts.transaction() as tx:
        conn = tx.connection
        for name in store_sql_edits.trigger_names("udm_account"):  # as a store of the older dynasync
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"DROP TRIGGER {name} ON udm_account")
            else:
                conn.exec_driver_sql(f"DROP TRIGGER {name}")
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(
                f"CREATE FUNCTION {old}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$"
            )
            conn.exec_driver_sql(
                f"CREATE TRIGGER {old} BEFORE UPDATE ON udm_account FOR EACH ROW EXECUTE FUNCTION {old}()"
            )
        else:
            conn.exec_driver_sql(f"CREATE TRIGGER {old} AFTER UPDATE ON udm_account BEGIN SELECT 1; END")
    reopened = opener()
    with reopened.transaction() as tx:
        present = store_sql_edits.present(tx._live(), "udm_account")
    assert sorted(present) == sorted(store_sql_edits.trigger_names("udm_account"))


def test_an_entity_with_the_longest_name_gets_short_distinct_names_on_both_databases(store: UdmStore) -> None:
    name = "a_custom_table_with_a_long_logical_name_from_dataverse_xyzw"  # 59: the longest allowed
    store.ensure_entity(UdmEntity(name, {"label": UdmField("label", FieldType.STRING)}))
    names = store_sql_edits.trigger_names(f"udm_{name}")
    assert len(set(names)) == 3 and max(map(len, names)) <= 63
    udm_id = store.upsert(name, {"label": "a"}).udm_id
    version = store.max_version()
    _sql(store, f"UPDATE udm_{name} SET label = 'b'")
    record = store.get(name, udm_id)
    assert record is not None and record.version == version + 1
    with store.transaction() as tx:
        assert sorted(store_sql_edits.present(tx._live(), f"udm_{name}")) == sorted(names)


def test_udm_version_is_dynasyncs_and_rows_are_not_inserted_with_sql(accounts: UdmStore) -> None:
    udm_id = _create(accounts)
    version = accounts.max_version()
    for statement in (
        "UPDATE udm_account SET udm_version = 999999",
        "UPDATE udm_account SET name = 'Bypass', udm_version = udm_version + 1",
        "UPDATE udm_account SET udm_version = 0",
        "UPDATE udm_account SET udm_field_times = '{}'",
        "UPDATE udm_account SET udm_source = 'x', name = 'Sneaky'",
    ):
        with pytest.raises(
            sa.exc.DBAPIError,
            match="udm_version, udm_field_times, udm_created_at, udm_updated_at and udm_source are kept",
        ):
            _sql(accounts, statement)
    record = accounts.get("account", udm_id)
    assert record is not None and record.values["name"] == "A" and accounts.max_version() == version
    with pytest.raises(sa.exc.DBAPIError, match=r"rows are not inserted with SQL.*dynasync record new"):
        _sql(
            accounts,
            "INSERT INTO udm_account (udm_id, name, udm_deleted, udm_created_at, udm_updated_at, udm_version, "
            "udm_field_times) VALUES ('11111111-2222-3333-4444-555555555555', 'SQL', :no, :at, :at, 7, '{}')",
            no=False,
            at=T0,
        )
    assert accounts.count("account") == 1
    # The store's own writes (a new record, a new version) pass, in any transaction of its own.
    accounts.upsert("account", {"name": "B"})
    accounts.upsert("account", {"name": "A2"}, udm_id=udm_id)
    assert accounts.count("account") == 2
