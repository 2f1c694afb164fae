"""Several synapses feeding one UDM entity end to end: attach by match key, fan-out, conflicts, deletes, creates."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from dynasync.clock import FrozenClock
from dynasync.engine import Engine, RunReport
from dynasync.mapping.spec import (
    ConflictPolicy,
    ConflictRule,
    Direction,
    EntityMapping,
    FieldMapping,
    MappingSpec,
)
from dynasync.synapses.base import ColumnType, LookupRef
from dynasync.udm.model import FieldType
from dynasync.udm.store import open_store

from .fake_synapse import FakeSynapse, make_stream
from .harness import START
from .multi_source import (
    COLUMNS,
    CRM,
    CRM_TABLE,
    ERP,
    ERP_TABLE,
    TABLE_ROW,
    Duo,
    account_mapping,
    assert_quiet,
    counts,
    linked_pair,
    no_sleep,
    settle,
)


@pytest.fixture
def duo(tmp_path: Path) -> Iterator[Duo]:
    d = Duo(tmp_path)
    yield d
    d.close()


# -- (1) one real-world record from two systems ------------------------------------------------------------------


def test_same_record_in_two_synapses_becomes_one_udm_record_with_two_links(duo: Duo) -> None:
    duo.insert(CRM, "c-1", "N-100", "Acme", "Oslo")
    duo.insert(CRM, "c-2", "N-200", "Crm Only", "Bergen")
    duo.tick(5)
    # The ERP spells the key in lower case (match keys compare case-insensitively) and has a newer name.
    duo.insert(ERP, "e-1", "n-100", "Acme Ltd", "Oslo")
    report = duo.sync()
    crm, erp = counts(report, CRM), counts(report, ERP)
    assert (crm.created, crm.updated, erp.created, erp.updated) == (2, 0, 0, 1), report.to_dict()
    records = duo.udm()
    assert len(records) == 2
    udm_id = duo.udm_id(CRM, "c-1")
    assert duo.udm_id(ERP, "e-1") == udm_id
    assert duo.links(udm_id) == {(CRM, "account", "c-1"), (ERP, "company", "e-1")}
    # The ERP's values are newer: they win in the UDM and reach the CRM; the CRM-only company reaches the ERP.
    assert records[udm_id] == {"number": "n-100", "name": "Acme Ltd", "city": "Oslo"}
    assert duo.row(CRM, "c-1") == records[udm_id]
    assert (crm.written_updated, crm.written_created, erp.written_created, erp.written_updated) == (
        1,
        0,
        1,
        0,
    )
    (copy,) = set(duo.rows(ERP)) - {"e-1"}
    assert duo.row(ERP, copy) == {"number": "N-200", "name": "Crm Only", "city": "Bergen"}
    assert duo.udm_id(ERP, copy) == duo.udm_id(CRM, "c-2")
    # The transactions log tells the ERP row was attached to the existing record, not created.
    events = duo.store.search_log(entity="Account", udm_id=udm_id, synapse=ERP)
    assert [e.action for e in events if e.direction == "in"] == ["attached"]
    settle(duo)
    assert len(duo.udm()) == 2 and len(duo.rows(CRM)) == 2 and len(duo.rows(ERP)) == 2


def test_synapse_connected_later_attaches_to_the_records_already_loaded(duo: Duo) -> None:
    duo.insert(CRM, "c-1", "N-100", "Acme", "Oslo")
    duo.insert(ERP, "e-1", "N-100", "Acme", "Oslo")
    # At first only the CRM is connected.
    crm_only = Engine(duo.store, {CRM: duo.fakes[CRM]}, [account_mapping(CRM)], clock=duo.clock)
    duo.tick()
    report = crm_only.run_once()
    assert counts(report, CRM).created == 1 and report.writes == 0, report.to_dict()
    udm_id = duo.udm_id(CRM, "c-1")
    # Then the ERP joins: its full load attaches to the existing record instead of creating a duplicate.
    report = duo.sync()
    assert (counts(report, ERP).created, counts(report, CRM).created) == (0, 0), report.to_dict()
    assert duo.udm_id(ERP, "e-1") == udm_id and len(duo.udm()) == 1
    assert duo.links(udm_id) == {(CRM, "account", "c-1"), (ERP, "company", "e-1")}
    assert duo.writes_sent() == {CRM: 0, ERP: 0}
    settle(duo)


def test_duplicate_in_one_synapse_is_never_attached_to_the_same_record(duo: Duo) -> None:
    duo.insert(CRM, "c-1", "N-100", "Acme", "Oslo")
    duo.insert(ERP, "e-1", "N-100", "Acme", "Oslo")
    duo.insert(ERP, "e-2", "N-100", "Acme (duplicate)", "Oslo")
    report = duo.sync()
    # One ERP row attaches to the CRM's record; its duplicate becomes a record of its own, which the CRM receives.
    acme = duo.udm_id(CRM, "c-1")
    assert duo.udm_id(ERP, "e-1") == acme and duo.udm_id(ERP, "e-2") != acme
    assert (counts(report, ERP).created, counts(report, CRM).written_created) == (1, 1), report.to_dict()
    assert sorted(r["name"] for r in duo.udm().values()) == ["Acme", "Acme (duplicate)"]
    assert sorted(r["name"] for r in duo.rows(CRM).values()) == ["Acme", "Acme (duplicate)"]
    assert all(len(duo.links(udm_id)) == 2 for udm_id in duo.udm())
    settle(duo)


def test_attach_that_changes_nothing_is_not_counted_as_an_update(duo: Duo) -> None:
    # Same values and the same modification time in both systems: attaching the ERP row changes no value.
    duo.insert(CRM, "c-1", "N-100", "Acme", "Oslo")
    duo.insert(ERP, "e-1", "N-100", "Acme", "Oslo")
    report = duo.sync()
    assert duo.udm_id(ERP, "e-1") == duo.udm_id(CRM, "c-1")
    assert report.writes == 0
    assert counts(report, ERP).updated == 0, report.to_dict()
    assert report.udm_changes == 1, report.to_dict()
    # The new link is still found in the log by the ERP's external id.
    attached = duo.store.search_log(synapse=ERP, external_id="e-1")
    assert [(e.action, e.udm_id, e.fields) for e in attached] == [("attached", duo.udm_id(CRM, "c-1"), ())]


# -- (2) a change in one system fans out to the other --------------------------------------------------------------


def test_change_in_one_synapse_is_written_to_the_other_and_not_echoed_back(duo: Duo) -> None:
    udm_id = linked_pair(duo)
    before = duo.writes_sent()
    duo.tick()
    duo.edit(CRM, "c-1", city="Paris")
    report = duo.sync()
    crm, erp = counts(report, CRM), counts(report, ERP)
    assert (crm.updated, erp.updated, crm.written_updated, erp.written_updated) == (1, 0, 0, 1), (
        report.to_dict()
    )
    assert duo.udm()[udm_id]["city"] == "Paris"
    assert duo.row(ERP, "e-1")["city"] == "Paris"
    # Only the changed column goes to the ERP, guarded by the ERP row's last known version; nothing to the CRM.
    op = duo.fakes[ERP].write_ops[-1]
    assert dict(op.values) == {"town": "Paris"} and op.id == "e-1" and op.if_match is not None
    assert duo.writes_sent() == {CRM: before[CRM], ERP: before[ERP] + 1}
    # The ERP's copy of our write comes back as an echo: not applied again, not written anywhere.
    echo = duo.sync()
    assert counts(echo, ERP).echoes == 1 and echo.udm_changes == 0 and echo.writes == 0, echo.to_dict()
    assert_quiet(duo)
    assert duo.row(CRM, "c-1") == duo.row(ERP, "e-1") == {"number": "N-100", "name": "Acme", "city": "Paris"}


def test_edits_of_different_fields_in_both_synapses_merge(duo: Duo) -> None:
    udm_id = linked_pair(duo)
    duo.tick()
    duo.edit(CRM, "c-1", city="Paris")
    duo.edit(ERP, "e-1", name="Acme Holding")
    sent = duo.writes_sent()
    report = duo.sync()
    assert report.writes == 2 and report.udm_changes == 2, report.to_dict()
    merged = {"number": "N-100", "name": "Acme Holding", "city": "Paris"}
    assert duo.udm()[udm_id] == merged and duo.row(CRM, "c-1") == merged and duo.row(ERP, "e-1") == merged
    # Each side receives only the other side's field: neither edit is overwritten by a stale value.
    assert [dict(op.values) for op in duo.fakes[CRM].write_ops[sent[CRM] :]] == [{"name": "Acme Holding"}]
    assert [dict(op.values) for op in duo.fakes[ERP].write_ops[sent[ERP] :]] == [{"town": "Paris"}]
    settle(duo)


def test_same_new_value_in_both_synapses_is_not_a_conflict(duo: Duo) -> None:
    udm_id = linked_pair(duo)
    duo.tick()
    duo.edit(CRM, "c-1", city="Rome")
    duo.tick()
    duo.edit(ERP, "e-1", city="Rome")
    report = duo.sync()
    assert report.writes == 0 and duo.udm()[udm_id]["city"] == "Rome", report.to_dict()
    assert_quiet(duo)


# -- (3) conflicting edits of one field in one cycle ---------------------------------------------------------------


@pytest.mark.parametrize(("first", "last"), [(CRM, ERP), (ERP, CRM)])
def test_latest_update_wins_between_synapses(duo: Duo, first: str, last: str) -> None:
    udm_id = linked_pair(duo)
    duo.tick()
    duo.edit(first, TABLE_ROW[first], city=f"{first} city")
    duo.tick(3)
    duo.edit(last, TABLE_ROW[last], city=f"{last} city")
    sent = duo.writes_sent()
    report = duo.sync()
    winner = f"{last} city"
    assert duo.udm()[udm_id]["city"] == winner
    assert duo.row(CRM, "c-1")["city"] == duo.row(ERP, "e-1")["city"] == winner
    # Only the loser's side is written, with the winning value.
    loser_column = COLUMNS[first]["city"]
    assert [dict(op.values) for op in duo.fakes[first].write_ops[sent[first] :]] == [{loser_column: winner}]
    assert duo.writes_sent()[last] == sent[last]
    assert counts(report, first).written_updated == 1 and counts(report, last).written_updated == 0
    # The log names each decision's winner and why; the ERP is read after the CRM.
    decision, winning = duo.decisions(udm_id, ERP, "city")[0]
    if last == ERP:  # its newer value replaces the CRM's in the UDM
        assert decision.startswith("erp wins: latest_update_wins") and winning == winner, decision
    else:  # its older value loses to the CRM's, already in the UDM
        assert decision.startswith("udm wins: latest_update_wins") and winning == winner, decision
        assert counts(report, ERP).skipped == 1, report.to_dict()
    settle(duo)


@pytest.mark.parametrize("trusted", [CRM, ERP])
def test_selected_synapse_wins_over_a_newer_edit(tmp_path: Path, trusted: str) -> None:
    policy = ConflictPolicy(ConflictRule.SYNAPSE_WINS, synapse=trusted)
    duo = Duo(tmp_path, crm=account_mapping(CRM, conflict=policy), erp=account_mapping(ERP, conflict=policy))
    try:
        udm_id = linked_pair(duo)
        other = ERP if trusted == CRM else CRM
        duo.tick()
        duo.edit(trusted, TABLE_ROW[trusted], city="Trusted City")
        duo.tick(30)  # the other system's edit is newer: latest update wins would pick it
        duo.edit(other, TABLE_ROW[other], city="Newer City")
        sent = duo.writes_sent()
        report = duo.sync()
        assert duo.udm()[udm_id]["city"] == "Trusted City"
        assert duo.row(CRM, "c-1")["city"] == duo.row(ERP, "e-1")["city"] == "Trusted City"
        assert [dict(op.values) for op in duo.fakes[other].write_ops[sent[other] :]] == [
            {COLUMNS[other]["city"]: "Trusted City"}
        ]
        assert duo.writes_sent()[trusted] == sent[trusted], report.to_dict()
        # Both decisions are logged. The CRM is read first: when it is the trusted one, the ERP's value then meets
        # the trusted value and is refused; otherwise its edit is taken (nothing contested it yet) and the
        # trusted ERP value replaces it right after...
        decision, kept = duo.decisions(udm_id, other, "city")[0]
        if trusted == CRM:
            assert (decision, kept) == (
                f"udm wins: synapse_wins ({trusted} selected, not {other})",
                "Trusted City",
            )
        else:
            assert decision.startswith(f"{other} wins: no conflict") and kept == "Newer City", decision
        # ...and the trusted system's value was taken.
        accepted, winning = duo.decisions(udm_id, trusted, "city")[0]
        assert accepted.startswith(f"{trusted} wins: synapse_wins") and winning == "Trusted City", accepted
        settle(duo)
    finally:
        duo.close()


def test_selected_synapse_rule_lets_a_lone_edit_elsewhere_through(tmp_path: Path) -> None:
    policy = ConflictPolicy(ConflictRule.SYNAPSE_WINS, synapse=ERP)
    duo = Duo(tmp_path, crm=account_mapping(CRM, conflict=policy), erp=account_mapping(ERP, conflict=policy))
    try:
        udm_id = linked_pair(duo)
        duo.tick(60)
        duo.edit(CRM, "c-1", city="Paris")  # the ERP did not touch the field: there is nothing to settle
        duo.sync()
        assert duo.row(CRM, "c-1")["city"] == "Paris"  # the user's edit is not reverted...
        assert duo.udm()[udm_id]["city"] == "Paris"  # ...it reaches the UDM...
        assert duo.row(ERP, "e-1")["city"] == "Paris"  # ...and the other system
    finally:
        duo.close()


def test_edit_in_a_later_cycle_wins_despite_a_slow_source_clock(tmp_path: Path) -> None:
    duo = Duo(tmp_path, erp_clock=FrozenClock(START - dt.timedelta(minutes=10)))
    try:
        udm_id = linked_pair(duo)
        duo.tick(60)
        duo.edit(CRM, "c-1", city="Paris")
        duo.sync()
        settle(duo)
        assert duo.row(ERP, "e-1")["city"] == "Paris"
        duo.tick(60)  # a minute later the ERP user changes the city (its clock is ten minutes slow)
        duo.edit(ERP, "e-1", city="Berlin")
        duo.sync()
        assert duo.row(ERP, "e-1")["city"] == "Berlin"
        assert duo.udm()[udm_id]["city"] == "Berlin"
        assert duo.row(CRM, "c-1")["city"] == "Berlin"
    finally:
        duo.close()


def test_reject_empty_keeps_the_value_everywhere(tmp_path: Path) -> None:
    policy = ConflictPolicy(reject_empty=True)
    duo = Duo(tmp_path, crm=account_mapping(CRM, conflict=policy), erp=account_mapping(ERP, conflict=policy))
    try:
        udm_id = linked_pair(duo)
        duo.tick()
        duo.edit(CRM, "c-1", city=None)
        sent = duo.writes_sent()
        duo.sync()
        assert duo.udm()[udm_id]["city"] == "Oslo"
        assert duo.writes_sent()[ERP] == sent[ERP] and duo.row(ERP, "e-1")["city"] == "Oslo"
        # The system that sent the empty value gets the kept value back.
        assert [dict(op.values) for op in duo.fakes[CRM].write_ops[sent[CRM] :]] == [{"city": "Oslo"}]
        assert duo.row(CRM, "c-1")["city"] == "Oslo"
        decision, winning = duo.decisions(udm_id, CRM, "city")[0]
        assert decision.startswith("udm wins: reject_empty") and winning == "Oslo", decision
        settle(duo)
    finally:
        duo.close()


# -- (4) deletes ---------------------------------------------------------------------------------------------------


def test_delete_reaches_the_other_synapse_when_it_opted_in(tmp_path: Path) -> None:
    duo = Duo(tmp_path, erp=account_mapping(ERP, delete_from_udm=True))
    try:
        udm_id = linked_pair(duo)
        duo.fakes[CRM].delete("account", "c-1")
        report = duo.sync()
        assert counts(report, CRM).deleted == 1 and counts(report, ERP).written_deleted == 1, report.to_dict()
        assert udm_id not in duo.udm() and udm_id in duo.udm(include_deleted=True)
        assert duo.rows(ERP) == {}
        out = [
            e
            for e in duo.store.search_log(entity="Account", udm_id=udm_id, synapse=ERP)
            if e.direction == "out"
        ]
        assert [(e.action, e.outcome, e.external_id) for e in out] == [("delete", "ok", "e-1")]
        # The ERP's tombstone of our delete comes back: no second delete, no resurrection, then nothing at all.
        echo = duo.sync()
        assert echo.udm_changes == 0 and echo.writes == 0 and counts(echo, ERP).deleted == 0, echo.to_dict()
        assert duo.links(udm_id) == set()
        assert_quiet(duo)
        assert duo.rows(CRM) == {} and duo.rows(ERP) == {}
    finally:
        duo.close()


def test_delete_leaves_the_other_synapse_alone_when_it_did_not_opt_in(duo: Duo) -> None:
    udm_id = linked_pair(duo)
    duo.fakes[CRM].delete("account", "c-1")
    report = duo.sync()
    assert counts(report, CRM).deleted == 1 and report.writes == 0, report.to_dict()
    assert udm_id not in duo.udm() and udm_id in duo.udm(include_deleted=True)
    assert duo.rows(ERP) == {"e-1": {"number": "N-100", "name": "Acme", "city": "Oslo"}}
    assert duo.links(udm_id) == {(ERP, "company", "e-1")}  # the CRM's row is gone, and so is its link
    assert_quiet(duo)
    assert "e-1" in duo.rows(ERP)


def test_row_deleted_in_one_synapse_is_not_created_there_again_when_the_other_revives_it(duo: Duo) -> None:
    udm_id = linked_pair(duo)
    duo.fakes[CRM].delete("account", "c-1")
    duo.sync()
    assert udm_id in duo.udm(include_deleted=True) and udm_id not in duo.udm()
    # The ERP still has the company and edits it: the UDM record lives on...
    duo.tick(60)
    duo.edit(ERP, "e-1", city="Paris")
    report = duo.sync()
    assert duo.udm()[udm_id]["city"] == "Paris"
    # ...but the row the CRM user deleted is not brought back (deletes.recreate is off by default).
    assert duo.rows(CRM) == {} and counts(report, CRM).written_created == 0, report.to_dict()
    crm = counts(report, CRM)
    assert crm.skipped == 1 and [i.kind for i in crm.issues] == ["skipped"], report.to_dict()
    assert "deletes.recreate is off" in crm.issues[0].reason
    assert duo.links(udm_id) == {(ERP, "company", "e-1")}
    settle(duo)
    assert duo.rows(CRM) == {}


def test_recreate_brings_a_deleted_row_back_once_the_record_changes(tmp_path: Path) -> None:
    duo = Duo(tmp_path, crm=account_mapping(CRM, recreate_deleted=True))
    try:
        udm_id = linked_pair(duo)
        duo.fakes[CRM].delete("account", "c-1")
        duo.sync()
        duo.tick(60)
        duo.edit(ERP, "e-1", city="Paris")
        report = duo.sync()
        assert counts(report, CRM).written_created == 1, report.to_dict()
        (row,) = duo.rows(CRM).values()
        assert row == {"number": "N-100", "name": "Acme", "city": "Paris"}
        assert {s for s, _t, _e in duo.links(udm_id)} == {CRM, ERP}
        settle(duo)
        # Deleted again: a new tombstone, and brought back again on the next change.
        (new_id,) = duo.rows(CRM)
        duo.fakes[CRM].delete("account", new_id)
        duo.sync()
        duo.tick(60)
        duo.edit(ERP, "e-1", city="Rome")
        assert counts(duo.sync(), CRM).written_created == 1
        assert [r["city"] for r in duo.rows(CRM).values()] == ["Rome"]
    finally:
        duo.close()


def test_delete_not_taken_into_the_udm_when_to_udm_is_off(tmp_path: Path) -> None:
    duo = Duo(
        tmp_path,
        crm=account_mapping(CRM, delete_to_udm=False),
        erp=account_mapping(ERP, delete_from_udm=True),
    )
    try:
        udm_id = linked_pair(duo)
        duo.fakes[CRM].delete("account", "c-1")
        report = duo.sync()
        crm = counts(report, CRM)
        assert (crm.deleted, crm.skipped, report.writes) == (0, 1, 0), report.to_dict()
        assert "to_udm is off" in crm.issues[0].reason
        assert duo.udm()[udm_id] == {"number": "N-100", "name": "Acme", "city": "Oslo"}
        assert "e-1" in duo.rows(ERP)
        assert duo.links(udm_id) == {(ERP, "company", "e-1")}
        assert_quiet(duo)
        assert duo.rows(CRM) == {}  # nothing changed since: the CRM row is not re-created
    finally:
        duo.close()


# -- (5) a record only one system has --------------------------------------------------------------------------


@pytest.mark.parametrize("crm_writes", [True, False])
def test_record_only_in_second_synapse_reaches_the_udm_and_the_first(
    tmp_path: Path, crm_writes: bool
) -> None:
    crm_mapping = account_mapping(CRM, direction=Direction.BOTH if crm_writes else Direction.TO_UDM)
    duo = Duo(tmp_path, crm=crm_mapping)
    try:
        duo.insert(ERP, "e-9", "N-900", "Globex", "Lyon")
        report = duo.sync()
        erp, crm = counts(report, ERP), counts(report, CRM)
        assert (erp.created, crm.created) == (1, 0), report.to_dict()
        udm_id = duo.udm_id(ERP, "e-9")
        assert duo.udm() == {udm_id: {"number": "N-900", "name": "Globex", "city": "Lyon"}}
        assert erp.written_created == 0 and erp.written_updated == 0  # the ERP already holds it
        if crm_writes:
            assert crm.written_created == 1
            (ext_id,) = duo.rows(CRM)
            assert duo.row(CRM, ext_id) == {"number": "N-900", "name": "Globex", "city": "Lyon"}
            assert duo.udm_id(CRM, ext_id) == udm_id
            assert duo.links(udm_id) == {(CRM, "account", ext_id), (ERP, "company", "e-9")}
        else:
            assert crm.written_created == 0 and duo.rows(CRM) == {}
            assert duo.writes_sent() == {CRM: 0, ERP: 0}
        settle(duo)
        assert len(duo.udm()) == 1 and len(duo.rows(CRM)) == (1 if crm_writes else 0)
    finally:
        duo.close()


# -- references between entities fed by both systems --------------------------------------------------------------

CRM_CONTACT = make_stream(
    "contact",
    {
        "name": ColumnType.STRING,
        "email": ColumnType.STRING,
        "parentcustomerid": (ColumnType.LOOKUP, "account"),
    },
)
ERP_PERSON = make_stream(
    "person",
    {"fullname": ColumnType.STRING, "mail": ColumnType.STRING, "companyid": (ColumnType.LOOKUP, "company")},
)


def with_contacts(synapse: str, table: str, name: str, email: str, account: str) -> MappingSpec:
    """The system's Account mapping plus its people table mapped to Contact (matched on email)."""
    base = account_mapping(synapse)
    fields = (
        FieldMapping(name, "name", FieldType.STRING),
        FieldMapping(email, "email", FieldType.STRING),
        FieldMapping(account, "account", FieldType.REFERENCE, reference="Account"),
    )
    contact = EntityMapping(table, "Contact", fields, match_keys=("email",))
    return dataclasses.replace(base, entities=(*base.entities, contact))


def test_references_are_translated_between_the_synapses(tmp_path: Path) -> None:
    clock = FrozenClock(START)
    crm = FakeSynapse(CRM, [CRM_TABLE, CRM_CONTACT], clock=clock)
    erp = FakeSynapse(ERP, [ERP_TABLE, ERP_PERSON], clock=clock)
    specs = [
        with_contacts(CRM, "contact", "name", "email", "parentcustomerid"),
        with_contacts(ERP, "person", "fullname", "mail", "companyid"),
    ]
    store = open_store(f"sqlite:///{tmp_path / 'udm.db'}", clock=clock)
    engine = Engine(store, {CRM: crm, ERP: erp}, specs, clock=clock, sleep=no_sleep)

    def sync() -> RunReport:
        clock.advance(dt.timedelta(seconds=1))
        report = engine.run_once()
        assert report.ok, report.to_dict()
        return report

    try:
        crm.insert("account", {"accountnumber": "N-1", "name": "Acme", "city": "Oslo"}, id="c-1")
        erp.insert("company", {"code": "N-1", "title": "Acme", "town": "Oslo"}, id="e-1")
        crm.insert("account", {"accountnumber": "N-2", "name": "Beta", "city": "Bergen"}, id="c-2")
        sync()
        sync()
        # A person of the ERP's Acme reaches the CRM as a contact of the CRM's Acme row.
        erp.insert(
            "person", {"fullname": "Pat", "mail": "pat@x.io", "companyid": LookupRef("company", "e-1")}
        )
        report = sync()
        assert report.entities["Contact"].synapses[CRM].written_created == 1, report.to_dict()
        ((contact_id, contact),) = crm.rows("contact").items()
        assert contact == {
            "name": "Pat",
            "email": "pat@x.io",
            "parentcustomerid": LookupRef("account", "c-1"),
        }
        sync()
        # The person moves to Beta, a company the ERP only has as the copy the engine made of the CRM's row.
        beta = store.get_link(CRM, "account", "c-2")
        assert beta is not None
        erp_beta = store.link_for_record(ERP, "Account", beta.udm_id)
        assert erp_beta is not None
        (person_id,) = erp.rows("person")
        erp.update("person", person_id, {"companyid": LookupRef("company", erp_beta.external_id)})
        sync()
        assert crm.rows("contact")[contact_id]["parentcustomerid"] == LookupRef("account", "c-2")
        echo = sync()
        assert echo.writes == 0 and echo.udm_changes == 0, echo.to_dict()
        quiet = sync()
        assert quiet.writes == 0 and quiet.udm_changes == 0, quiet.to_dict()
    finally:
        store.close()
