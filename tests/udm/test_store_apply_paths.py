"""The page apply's fast creates store exactly what the general path stores; codec shortcuts equal the long way."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
import sqlalchemy as sa

from db_targets import PG_URL, Target
from dynasync.clock import FrozenClock
from dynasync.udm import store_apply, store_batch
from dynasync.udm import store_codec as codec
from dynasync.udm.model import FieldType, UdmField
from dynasync.udm.store import ApplyResult, IncomingRow, UdmStore, open_store

from .conftest import account_entity, contact_entity

T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
SEED_IDS = [str(uuid.UUID(int=i + 1)) for i in range(6)]


@pytest.fixture
def twins(target: Target, clock: FrozenClock, tmp_path: Any) -> Iterator[tuple[UdmStore, UdmStore]]:
    """Two empty stores of the target's kind (two files, or two PostgreSQL schemas) on one frozen clock."""
    if target.kind == "sqlite":
        a = open_store(f"sqlite:///{tmp_path}/a.db", clock=clock)
        b = open_store(f"sqlite:///{tmp_path}/b.db", clock=clock)
        yield a, b
        a.close()
        b.close()
        return
    other = f"udmtest_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{other}"'))
    a = open_store(target.url, schema=target.schema, clock=clock)
    b = open_store(PG_URL, schema=other, clock=clock)
    try:
        yield a, b
    finally:
        a.close()
        b.close()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{other}" CASCADE'))
        admin.dispose()


def seed(store: UdmStore) -> None:
    """The same starting state in both stores: records with fixed ids, some linked (by match key), one deleted."""
    store.ensure_entity(account_entity(when=UdmField("when", FieldType.DATETIME)))
    store.ensure_entity(contact_entity())
    values: list[dict[str, Any]] = [
        {"name": "Linked", "accountnumber": "L-1", "employees": 5},
        {"name": "Echoed", "accountnumber": "L-2", "revenue": decimal.Decimal("10.5")},
        {"name": "Free", "accountnumber": "FREE-1"},  # attachable by match key
        {"name": "Taken", "accountnumber": "TAKEN-1"},  # matches, but linked to another dynamics row
        {"name": "Deleted", "accountnumber": "GONE-1"},
        {"name": "Vanishing", "accountnumber": "V-1"},
    ]
    for udm_id, vals in zip(SEED_IDS, values, strict=True):
        store.upsert("account", vals, udm_id=udm_id, changed_at=T0 - dt.timedelta(days=1))
    store.apply_upserts(
        "account",
        "dynamics",
        "account",
        [
            IncomingRow("e-linked", {"name": "Linked", "accountnumber": "L-1", "employees": 5}, T0, "1"),
            IncomingRow("e-echo", {"name": "Echoed", "accountnumber": "L-2"}, T0, "1"),
            IncomingRow("e-taken", {"name": "Taken", "accountnumber": "TAKEN-1"}, T0, "1"),
            IncomingRow("e-vanish", {"name": "Vanishing", "accountnumber": "V-1"}, T0, "1"),
        ],
        run_id="seed",
    )
    store.mark_written(
        "dynamics",
        "account",
        "e-echo",
        entity="account",
        udm_id=SEED_IDS[1],
        values={"name": "Echoed"},
        udm_version=store.max_version(),
        hash="written-hash",
    )
    store.mark_deleted("account", SEED_IDS[4], run_id="seed")
    # A record purged by hand (SQL may remove only deleted records): its link re-creates it.
    store.mark_deleted("account", SEED_IDS[5], run_id="seed")
    with store.transaction() as tx:
        tx.connection.execute(sa.text("DELETE FROM udm_account WHERE udm_id = :id"), {"id": SEED_IDS[5]})


def page() -> list[IncomingRow]:
    """A page touching every branch: creates, duplicates, attach, taken key, echo, unchanged, failures."""
    rows = [
        IncomingRow(
            f"new-{i}",
            {
                "name": f"New {i}",
                "accountnumber": f"N-{i}",
                "revenue": decimal.Decimal(f"{i}.25"),
                "employees": i,
                "big": 2**40 + i,
                "score": i / 3,
                "active": i % 2 == 0,
                "lastcontact": dt.datetime(2024, 1, 1, 8, tzinfo=dt.timezone(dt.timedelta(hours=2))),
                "founded": dt.date(2000, 1, 1 + i % 28),
                "industry": "Retail",
                "tags": ("b", "a") if i % 3 else "c;a;c",
                "extkey": uuid.UUID(int=i).hex,
                "notes": None,
                "when": f"2024-02-0{1 + i % 9}T10:00:00Z",
            },
            modified_on=T0 + dt.timedelta(minutes=i),
            external_version=str(i),
            hash=None if i % 2 else f"h{i}",
        )
        for i in range(40)
    ]
    rows += [
        IncomingRow("dup", {"name": "First", "accountnumber": "D-1"}, T0, "1"),
        IncomingRow("attach", {"name": "Attached", "accountnumber": "free-1"}, T0, "2"),
        IncomingRow("taken2", {"name": "Not attached", "accountnumber": "TAKEN-1"}, T0, "3"),
        IncomingRow("gone", {"name": "Deleted key", "accountnumber": "GONE-1"}, T0, "4"),
        IncomingRow("e-linked", {"name": "Linked", "accountnumber": "L-1", "employees": 5}, T0, "1"),
        IncomingRow("e-echo", {"name": "Echoed"}, T0, "2", hash="written-hash"),
        IncomingRow("e-vanish", {"name": "Back"}, T0 + dt.timedelta(hours=1), "2"),
        IncomingRow("e-taken", {"employees": 9}, T0 + dt.timedelta(hours=1), None),
        IncomingRow("bad", {"name": "x" * 101}, T0),
        IncomingRow("e-linked", {"name": "x" * 101}, T0),  # fails, but is linked: reports its record
        IncomingRow("unknown", {"nope": 1}, T0),
        IncomingRow("naive", {"name": "N"}, dt.datetime(2024, 5, 1)),
        IncomingRow("dup", {"name": "Second", "accountnumber": "D-1"}, T0 + dt.timedelta(seconds=1), "2"),
        IncomingRow("dup", {"name": "Second", "accountnumber": "D-1"}, T0 + dt.timedelta(seconds=1), "3"),
        IncomingRow("no-time", {"name": "Now"}),
    ]
    return rows


def apply(
    store: UdmStore, rows: Sequence[IncomingRow], fast: bool, monkeypatch: pytest.MonkeyPatch
) -> ApplyResult:
    monkeypatch.setattr(store_apply, "FAST_CREATES", fast)
    with store.transaction() as tx:
        result = tx.apply_upserts("account", "dynamics", "account", rows, run_id="run")
        tx.put_cursor("dynamics", "account", {"page": 1})
    return result


def snapshot(store: UdmStore, result: ApplyResult) -> dict[str, Any]:
    """Everything the page changed, with the UDM ids of new records replaced by their external ids."""
    names: dict[str, str] = {}
    for row in result.rows:
        if row.udm_id and row.udm_id not in SEED_IDS:
            names.setdefault(row.udm_id, f"new:{row.external_id}")

    def n(udm_id: str | None) -> str | None:
        return None if udm_id is None else names.get(udm_id, udm_id)

    records = sorted(
        (
            (
                n(r.id),
                dict(r.values),
                r.deleted,
                r.version,
                r.created_at,
                r.updated_at,
                dict(r.field_updated_at),
            )
            for r in store.iter_records("account", include_deleted=True)
        ),
        key=repr,
    )
    links = sorted(
        (
            (lk.external_id, lk.entity, n(lk.udm_id), lk.last_read_hash, lk.last_written_hash,
             lk.external_version, lk.synced_version, lk.created_at, lk.updated_at)
            for lk in store.iter_links("dynamics", "account")
        ),
        key=repr,
    )  # fmt: skip
    events = [
        (e.run_id, e.at, e.direction, e.synapse, e.table, e.external_id, e.entity, n(e.udm_id), e.action,
         e.outcome, e.fields)
        for e in store.search_log(entity="account", limit=1000)
    ]  # fmt: skip
    by_record = {
        n(r[0]): [(e.action, e.fields) for e in store.search_log(entity="account", udm_id=r[0], limit=100)]
        for r in ((rec.id,) for rec in store.iter_records("account", include_deleted=True))
    }
    outcomes = [(r.external_id, n(r.udm_id), r.action, r.version, r.changes, r.error) for r in result.rows]
    return {
        "outcomes": outcomes,
        "records": records,
        "links": links,
        "events": events,
        "by_record": by_record,
        "max_version": store.max_version(),
        "count": store.count("account", include_deleted=True),
    }


def test_fast_and_general_paths_store_the_same(
    twins: tuple[UdmStore, UdmStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, general = twins
    seed(fast)
    seed(general)
    rows = page()
    got = snapshot(fast, apply(fast, rows, True, monkeypatch))
    want = snapshot(general, apply(general, rows, False, monkeypatch))
    assert got == want
    actions = {o[0]: o[2] for o in got["outcomes"]}
    assert (
        actions["new-0"] == "created" and actions["attach"] == "attached" and actions["taken2"] == "created"
    )
    assert actions["e-echo"] == "echo" and actions["e-vanish"] == "created" and actions["naive"] == "failed"
    failed_linked = [o for o in got["outcomes"] if o[0] == "e-linked" and o[2] == "failed"]
    assert failed_linked and failed_linked[0][1] == SEED_IDS[0]
    assert [o[2] for o in got["outcomes"] if o[0] == "dup"] == ["created", "updated", "unchanged"]
    # The same page again: every row is now linked (echoes and re-deliveries), both paths still agree.
    again_fast = snapshot(fast, apply(fast, rows, True, monkeypatch))
    again_general = snapshot(general, apply(general, rows, False, monkeypatch))
    assert again_fast == again_general
    assert {o[2] for o in again_fast["outcomes"] if o[0].startswith("new-")} == {"unchanged"}


def test_created_log_lists_each_non_null_value(store: UdmStore) -> None:
    store.ensure_entity(account_entity())
    row = IncomingRow("x1", {"name": "A", "revenue": decimal.Decimal("1.50"), "notes": None}, T0)
    udm_id = store.apply_upserts("account", "dynamics", "account", [row], run_id="r").rows[0].udm_id
    (event,) = store.search_log(entity="account", udm_id=udm_id)
    assert event.action == "created"
    assert [(f.field, f.source, f.old, f.new, f.winning, f.decision) for f in event.fields] == [
        ("name", "A", None, "A", "A", "create"),
        ("revenue", "1.5", None, "1.5", "1.5", "create"),
    ]


def test_new_ids_are_time_ordered_uuids() -> None:
    ids = store_batch.new_ids(300) + store_batch.new_ids(2)
    source = store_batch._IdSource()
    source._last = (2**48 - 1) << 80 | 7 << 76 | 2 << 62 | (2**48 - 3)  # far future: the counter carries
    carried = source.take(5)
    for batch in (ids, carried):
        assert batch == sorted(batch) and len(set(batch)) == len(batch)
        assert all(uuid.UUID(i).version == 7 and str(uuid.UUID(i)) == i for i in batch)
    assert [uuid.UUID(i).int for i in carried] == list(range(source._last - 4, source._last + 1))


def test_created_times_equal_encode_times_and_hold_one_default() -> None:
    when = dt.datetime(2024, 5, 1, 12, 30, 1, 5, tzinfo=dt.UTC)
    for fields in (["b", "a_1", "A", "z9"], ["only"]):
        assert codec.created_times(when) == codec.encode_times(dict.fromkeys(fields, when))
    assert codec.decode_times(codec.created_times(when)) == {codec.DEFAULT_TIME: when}


def test_the_default_time_covers_fields_with_a_value_only() -> None:
    created = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    later = created + dt.timedelta(days=1)
    times = codec.decode_times(codec.encode_times({codec.DEFAULT_TIME: created, "b": later}))
    assert codec.field_time(times, "a", "x") == created  # set when the record was created
    assert codec.field_time(times, "b", "y") == later  # changed since: its own time
    assert codec.field_time(times, "c", None) is None  # never given a value: any value wins
    assert codec.field_times(times, {"a": "x", "b": None, "c": None}) == {"a": created, "b": later}


SAMPLES: dict[FieldType, list[Any]] = {
    FieldType.DECIMAL: [
        decimal.Decimal("1.5"),
        decimal.Decimal("123456.78"),
        decimal.Decimal("1e-12"),
        decimal.Decimal("-0"),
        decimal.Decimal("12345678901234567.123456"),
        decimal.Decimal("3.14159265358979323846"),
        decimal.Decimal("1E+2"),
        2.5,
        "7.125",
    ],
    FieldType.INTEGER: [0, -(2**31), 2**31 - 1, True, "12", 3.0],
    FieldType.BIGINT: [2**40, -5],
    FieldType.FLOAT: [1.5, 2, decimal.Decimal("0.5")],
    FieldType.BOOLEAN: [True, False, 1, "yes"],
    FieldType.DATE: [dt.date(2024, 1, 2), "2024-01-03"],
    FieldType.DATETIME: [
        dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC),
        dt.datetime(2024, 1, 2, 3, 4, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        "2024-01-02T03:04:05Z",
    ],
    FieldType.MULTICHOICE: ["", "a", "b;a", "a;a", ";a", ("z", "y")],
    FieldType.STRING: ["abc", 5],
    FieldType.UUID: [uuid.UUID(int=7), str(uuid.UUID(int=8)).upper()],
}


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
@pytest.mark.parametrize("field_type", list(SAMPLES))
def test_coercer_shortcuts_give_the_general_result(dialect: str, field_type: FieldType) -> None:
    field = UdmField("f", field_type, max_length=10 if field_type is FieldType.STRING else None)
    fast = codec.coercer(field, dialect)
    general: Callable[[Any], Any] = codec._general_coercer(field, dialect)
    for value in SAMPLES[field_type]:
        got, want = fast(value), general(value)
        assert (got, type(got), str(got)) == (want, type(want), str(want)), value
    assert fast(None) is None


def test_plain_sql_link_reads_equal_the_typed_ones(store: UdmStore, clock: FrozenClock) -> None:
    store.ensure_entity(account_entity())
    rows = [IncomingRow(f"x{i}", {"name": f"n{i}"}, T0, str(i)) for i in range(7)]
    result = store.apply_upserts("account", "dynamics", "account", rows)
    clock.advance(dt.timedelta(seconds=1.5))
    store.mark_written(
        "dynamics", "account", "x3", entity="account", udm_id=result.rows[3].udm_id, values={}, udm_version=9
    )
    ids = [f"x{i}" for i in range(8)]
    typed = {i: store.get_link("dynamics", "account", i) for i in ids}
    assert store.get_links("dynamics", "account", ids) == {k: v for k, v in typed.items() if v is not None}
    assert list(store.iter_links("dynamics", "account")) == [typed[i] for i in sorted(ids) if typed[i]]
    by_record = store.get_links_for_records("dynamics", "account", [r.udm_id for r in result.rows])
    assert by_record == {v.udm_id: v for v in typed.values() if v is not None}
    x3 = typed["x3"]
    assert x3 is not None and x3.updated_at == T0 + dt.timedelta(seconds=1.5)  # the clock started at T0
    assert x3.created_at is not None and x3.created_at.tzinfo is dt.UTC


def test_text_with_a_nul_character_fails_only_its_row(store: UdmStore) -> None:
    # PostgreSQL text cannot hold NUL: the row is refused with the reason, the rest of the page is applied.
    # SQLite keeps such text as it is.
    store.ensure_entity(account_entity())
    rows = [IncomingRow("x1", {"name": "bad\x00name"}), IncomingRow("x2", {"name": "fine"})]
    result = store.apply_upserts("account", "dynamics", "account", rows)
    by_id = {r.external_id: r for r in result.rows}
    assert by_id["x2"].action == "created"
    if store.engine.dialect.name == "postgresql":
        assert by_id["x1"].action == "failed" and "NUL character" in (by_id["x1"].error or "")
    else:
        assert by_id["x1"].action == "created"
        record = store.get("account", by_id["x1"].udm_id)
        assert record is not None and record.values["name"] == "bad\x00name"


def test_text_with_an_unpaired_surrogate_fails_only_its_row(store: UdmStore) -> None:
    # No database and no JSON can hold it: the row is refused naming the field, the rest of the page is applied.
    store.ensure_entity(account_entity())
    rows = [
        IncomingRow("x1", {"name": "bad\ud800name", "accountnumber": "A1"}),
        IncomingRow("x2", {"name": "fine é"}),
    ]
    result = store.apply_upserts("account", "dynamics", "account", rows)
    by_id = {r.external_id: r for r in result.rows}
    assert by_id["x2"].action == "created"
    assert by_id["x1"].action == "failed"
    assert "name: text has an unpaired surrogate" in (by_id["x1"].error or "")
    assert store.count("account") == 1
