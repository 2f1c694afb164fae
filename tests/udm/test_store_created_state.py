"""Links made by fast creates keep their read state in the ``created`` log event, stored once, handed out whole."""

from __future__ import annotations

import datetime as dt
import decimal

import sqlalchemy as sa

from dynasync.engine import echo
from dynasync.udm.store import IncomingRow, UdmStore
from dynasync.udm.store_types import CREATED_STATE

from .conftest import account_entity

WHEN = dt.datetime(2024, 4, 30, 8, 15, tzinfo=dt.UTC)


def _rows() -> list[IncomingRow]:
    values = [
        {"name": "Acme", "revenue": decimal.Decimal("1250.50"), "lastcontact": WHEN, "active": True},
        {"name": "Bolt", "revenue": None, "lastcontact": None, "active": False, "tags": "a;b"},
    ]
    return [
        IncomingRow(f"x{i}", v, modified_on=WHEN, external_version=str(i), hash=echo.encode_values(v))
        for i, v in enumerate(values)
    ]


def _raw_states(store: UdmStore) -> dict[str, str | None]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT ext_id, last_read_hash FROM ds_links ORDER BY ext_id")).all()
    return {r[0]: r[1] for r in rows}


def test_created_links_point_at_the_log_and_every_reader_hands_out_the_values_form(store: UdmStore) -> None:
    store.ensure_entity(account_entity())
    rows = _rows()
    result = store.apply_upserts("account", "crm", "account", rows)
    assert [r.action for r in result.rows] == ["created", "created"]
    assert _raw_states(store) == {"x0": CREATED_STATE, "x1": CREATED_STATE}  # stored once, in the log
    expected = {row.external_id: row.hash for row in rows}
    by_ext = store.get_links("crm", "account", ["x0", "x1"])
    assert {k: lk.last_read_hash for k, lk in by_ext.items()} == expected
    one = store.get_link("crm", "account", "x0")
    assert one is not None and one.last_read_hash == expected["x0"]
    udm0 = result.rows[0].udm_id
    assert [lk.last_read_hash for lk in store.links_for_record("account", udm0)] == [expected["x0"]]
    found = store.link_for_record("crm", "account", udm0)
    assert found is not None and found.last_read_hash == expected["x0"]
    by_udm = store.get_links_for_records("crm", "account", [r.udm_id for r in result.rows])
    assert {lk.external_id: lk.last_read_hash for lk in by_udm.values()} == expected
    assert {lk.external_id: lk.last_read_hash for lk in store.iter_links("crm", "account")} == expected


def test_a_redelivered_row_is_unchanged_without_rewriting_its_link(store: UdmStore) -> None:
    store.ensure_entity(account_entity())
    store.apply_upserts("account", "crm", "account", _rows())
    again = store.apply_upserts("account", "crm", "account", _rows())
    assert [r.action for r in again.rows] == ["unchanged", "unchanged"]
    assert _raw_states(store) == {"x0": CREATED_STATE, "x1": CREATED_STATE}


def test_a_changed_row_gets_its_own_explicit_state(store: UdmStore) -> None:
    store.ensure_entity(account_entity())
    store.apply_upserts("account", "crm", "account", _rows())
    values = {"name": "Acme Corp", "revenue": decimal.Decimal("1250.50"), "lastcontact": WHEN, "active": True}
    text = echo.encode_values(values)
    later = WHEN + dt.timedelta(hours=1)
    changed = store.apply_upserts(
        "account", "crm", "account", [IncomingRow("x0", {"name": "Acme Corp"}, modified_on=later, hash=text)]
    )
    assert changed.rows[0].action == "updated"
    assert _raw_states(store)["x0"] == text
    link = store.get_link("crm", "account", "x0")
    assert link is not None and link.last_read_hash == text
    # The created event still shows what the source held at first.
    created = [e for e in store.search_log(external_id="x0") if e.action == "created"]
    assert {f.field: f.new for f in created[0].fields}["name"] == "Acme"


def test_the_created_event_shows_the_values_as_the_log_always_did(store: UdmStore) -> None:
    store.ensure_entity(account_entity())
    store.apply_upserts("account", "crm", "account", _rows())
    [event] = store.search_log(external_id="x0")
    shown = {f.field: (f.source, f.old, f.new, f.decision) for f in event.fields}
    assert shown == {
        "name": ("Acme", None, "Acme", "create"),
        "revenue": ("1250.5", None, "1250.5", "create"),
        "lastcontact": ("2024-04-30T08:15:00+00:00", None, "2024-04-30T08:15:00+00:00", "create"),
        "active": (True, None, True, "create"),
    }


def test_without_its_log_event_a_created_link_has_no_state(store: UdmStore) -> None:
    # The log cleared by hand: every field then counts as changed (a comparison, never a lost value).
    store.ensure_entity(account_entity())
    store.apply_upserts("account", "crm", "account", _rows())
    with store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM ds_log"))
    link = store.get_link("crm", "account", "x1")
    assert link is not None and link.last_read_hash is None
    again = store.apply_upserts("account", "crm", "account", _rows())
    assert [r.action for r in again.rows] == ["unchanged", "unchanged"]
    assert _raw_states(store) == {row.external_id: row.hash for row in _rows()}
