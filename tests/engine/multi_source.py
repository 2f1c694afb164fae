"""Two fake systems with different schemas (a CRM and an ERP) feeding one UDM Account entity: the fixture of
the multi-source engine tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from dynasync.clock import FrozenClock
from dynasync.engine import Engine, RunReport
from dynasync.engine.report import SynapseCounts
from dynasync.mapping.spec import (
    DEFAULT_CONFLICT,
    ConflictPolicy,
    Direction,
    EntityMapping,
    FieldMapping,
    MappingSpec,
)
from dynasync.synapses.base import ColumnSpec, ColumnType
from dynasync.udm.model import FieldType
from dynasync.udm.store import UdmStore, open_store

from .fake_synapse import FakeSynapse, make_stream
from .harness import START

# Two systems with different schemas for the same real-world companies.
CRM, ERP = "crm", "erp"
STAMP = ColumnSpec("modifiedon", ColumnType.DATETIME, creatable=False, updatable=False)
CRM_TABLE = make_stream(
    "account",
    {
        "accountnumber": ColumnType.STRING,
        "name": ColumnType.STRING,
        "city": ColumnType.STRING,
        "modifiedon": STAMP,
    },
)
ERP_TABLE = make_stream(
    "company",
    {"code": ColumnType.STRING, "title": ColumnType.STRING, "town": ColumnType.STRING, "modifiedon": STAMP},
)
# UDM field -> column of each system.
CRM_COLUMNS = {"number": "accountnumber", "name": "name", "city": "city"}
ERP_COLUMNS = {"number": "code", "name": "title", "city": "town"}
COLUMNS = {CRM: CRM_COLUMNS, ERP: ERP_COLUMNS}
TABLES = {CRM: "account", ERP: "company"}
TABLE_ROW = {CRM: "c-1", ERP: "e-1"}  # the row of the shared company in each system


def account_mapping(
    synapse: str,
    *,
    conflict: ConflictPolicy | None = None,
    delete_to_udm: bool = True,
    delete_from_udm: bool = False,
    recreate_deleted: bool = False,
    direction: Direction = Direction.BOTH,
) -> MappingSpec:
    """One system's table mapped to the UDM entity Account, matched on the account number."""
    policy = conflict or DEFAULT_CONFLICT
    fields = [
        # The match key keeps the default rule; the other fields get the policy under test.
        FieldMapping(
            column,
            field,
            FieldType.STRING,
            direction=direction,
            conflict=DEFAULT_CONFLICT if field == "number" else policy,
        )
        for field, column in COLUMNS[synapse].items()
    ]
    # The row's modification time, maintained by the system: read into the UDM, never written.
    fields.append(FieldMapping("modifiedon", "modified_on", FieldType.DATETIME, direction=Direction.TO_UDM))
    entity = EntityMapping(
        TABLES[synapse],
        "Account",
        tuple(fields),
        match_keys=("number",),
        delete_to_udm=delete_to_udm,
        delete_from_udm=delete_from_udm,
        recreate_deleted=recreate_deleted,
    )
    return MappingSpec(synapse=synapse, entities=(entity,))


class Duo:
    """Two fake systems, one UDM store and one engine syncing both into the entity Account."""

    def __init__(
        self,
        tmp: Path,
        *,
        crm: MappingSpec | None = None,
        erp: MappingSpec | None = None,
        erp_clock: FrozenClock | None = None,
    ) -> None:
        self.clock = FrozenClock(START)
        # The ERP may run on its own (skewed) clock; everything else shares the CRM's.
        self.erp_clock = erp_clock
        self.fakes = {
            CRM: FakeSynapse(CRM, [CRM_TABLE], clock=self.clock),
            ERP: FakeSynapse(ERP, [ERP_TABLE], clock=erp_clock or self.clock),
        }
        self.store: UdmStore = open_store(f"sqlite:///{tmp / 'udm.db'}", clock=self.clock)
        self.engine = Engine(
            self.store,
            dict(self.fakes),
            [crm or account_mapping(CRM), erp or account_mapping(ERP)],
            clock=self.clock,
            sleep=no_sleep,
        )

    def tick(self, seconds: int = 1) -> None:
        """Let time pass on every clock."""
        self.clock.advance(dt.timedelta(seconds=seconds))
        if self.erp_clock is not None:
            self.erp_clock.advance(dt.timedelta(seconds=seconds))

    def sync(self) -> RunReport:
        """Run one cycle a second later; every cycle must finish without an entity error."""
        self.tick()
        report = self.engine.run_once()
        assert report.ok, report.to_dict()
        return report

    def insert(self, synapse: str, ext_id: str, number: str, name: str, city: str | None) -> None:
        """Create a row as a user of that system would, given in UDM terms."""
        self.fakes[synapse].insert(
            TABLES[synapse], self.columns(synapse, number=number, name=name, city=city), id=ext_id
        )

    def edit(self, synapse: str, ext_id: str, **fields: Any) -> None:
        """Change a row as a user of that system would, given in UDM terms."""
        self.fakes[synapse].update(TABLES[synapse], ext_id, self.columns(synapse, **fields))

    @staticmethod
    def columns(synapse: str, **fields: Any) -> dict[str, Any]:
        """UDM field values as one system's column values."""
        return {COLUMNS[synapse][name]: value for name, value in fields.items()}

    def row(self, synapse: str, ext_id: str) -> dict[str, Any]:
        """One system's row in UDM terms (without its modification time)."""
        values = self.fakes[synapse].rows(TABLES[synapse])[ext_id]
        return {field: values.get(column) for field, column in COLUMNS[synapse].items()}

    def rows(self, synapse: str) -> dict[str, dict[str, Any]]:
        """Every row of one system in UDM terms."""
        return {ext_id: self.row(synapse, ext_id) for ext_id in self.fakes[synapse].rows(TABLES[synapse])}

    def udm_id(self, synapse: str, ext_id: str) -> str:
        """The UDM record a system's row is linked to."""
        link = self.store.get_link(synapse, TABLES[synapse], ext_id)
        assert link is not None, f"{synapse} {ext_id} is not linked"
        return link.udm_id

    def udm(self, *, include_deleted: bool = False) -> dict[str, dict[str, Any]]:
        """Every Account record: UDM id -> the synced fields."""
        return {
            r.id: {k: r.values.get(k) for k in CRM_COLUMNS}
            for r in self.store.iter_records("Account", include_deleted=include_deleted)
        }

    def links(self, udm_id: str) -> set[tuple[str, str, str]]:
        """(synapse, table, external id) of every link of one record."""
        return {(k.synapse, k.table, k.external_id) for k in self.store.links_for_record("Account", udm_id)}

    def writes_sent(self) -> dict[str, int]:
        """Write operations each system has received so far."""
        return {name: len(fake.write_ops) for name, fake in self.fakes.items()}

    def decisions(self, udm_id: str, synapse: str, field: str) -> list[tuple[str, Any]]:
        """(decision, winning value) of one field in the log events read from one synapse, newest first."""
        events = self.store.search_log(entity="Account", udm_id=udm_id, synapse=synapse)
        return [
            (f.decision, f.winning)
            for e in events
            if e.direction == "in"
            for f in e.fields
            if f.field == field
        ]

    def close(self) -> None:
        """Close the store."""
        self.store.close()


async def no_sleep(seconds: float) -> None:
    return None


def counts(report: RunReport, synapse: str) -> SynapseCounts:
    """One synapse's counts for Account in a run."""
    return report.entities["Account"].synapses[synapse]


def assert_quiet(duo: Duo) -> None:
    """A cycle with nothing new anywhere reads nothing into the UDM and writes nothing anywhere."""
    before = duo.writes_sent()
    report = duo.sync()
    assert report.udm_changes == 0 and report.writes == 0, report.to_dict()
    assert duo.writes_sent() == before


def settle(duo: Duo) -> None:
    """Run the echo cycle of the previous writes, then check the next cycle is quiet."""
    echo = duo.sync()
    assert echo.udm_changes == 0 and echo.writes == 0, echo.to_dict()
    assert_quiet(duo)


def linked_pair(duo: Duo) -> str:
    """The same company in both systems (the ERP's row saved later), synced into one record; return its id."""
    duo.insert(CRM, "c-1", "N-100", "Acme", "Oslo")
    duo.tick(5)
    duo.insert(ERP, "e-1", "N-100", "Acme", "Oslo")
    duo.sync()
    settle(duo)
    udm_id = duo.udm_id(CRM, "c-1")
    assert duo.udm_id(ERP, "e-1") == udm_id
    return udm_id
