"""A small world for engine tests: fake Dynamics-like tables, a mapping, a file-backed store and an engine."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from dynasync.clock import FrozenClock
from dynasync.engine import Engine, EngineOptions
from dynasync.mapping.spec import ConflictPolicy, Direction, EntityMapping, FieldMapping, MappingSpec
from dynasync.synapses.base import ColumnSpec, ColumnType
from dynasync.udm.model import FieldType
from dynasync.udm.store import UdmStore, open_store

from .fake_synapse import FakeSynapse, make_stream

START = dt.datetime(2024, 3, 1, 9, 0, tzinfo=dt.UTC)

STREAMS = [
    make_stream("systemuser", {"name": ColumnType.STRING}),
    make_stream(
        "account",
        {
            "name": ColumnType.STRING,
            "city": ColumnType.STRING,
            "revenue": ColumnType.MONEY,
            "parentaccountid": (ColumnType.LOOKUP, "account"),
            "ownerid": (ColumnType.LOOKUP, "systemuser"),
            # Maintained by the source (every write moves it), read into the UDM: our writes come back with it.
            "modifiedon": ColumnSpec("modifiedon", ColumnType.DATETIME, creatable=False, updatable=False),
            "notes": ColumnType.TEXT,  # not mapped: never read
        },
    ),
    make_stream(
        "contact",
        {
            "name": ColumnType.STRING,
            "email": ColumnType.STRING,
            "parentcustomerid": (ColumnType.LOOKUP, "account"),
        },
    ),
    make_stream(
        "opportunity",
        {
            "name": ColumnType.STRING,
            "amount": ColumnType.MONEY,
            "customerid": (ColumnType.LOOKUP, "account"),
            "contactid": (ColumnType.LOOKUP, "contact"),
        },
    ),
]


def _f(column: str, field: str, kind: FieldType, reference: str | None = None, **kw: Any) -> FieldMapping:
    return FieldMapping(column=column, field=field, type=kind, reference=reference, **kw)


def make_spec(
    *,
    deletes_to_udm: bool = True,
    deletes_from_udm: bool = False,
    conflict: ConflictPolicy | None = None,
    city_direction: Direction = Direction.BOTH,
) -> MappingSpec:
    """The test mapping: User, Account (self reference), Contact, Opportunity."""
    extra: dict[str, Any] = {"conflict": conflict} if conflict is not None else {}
    return MappingSpec(
        synapse="dyn",
        entities=(
            EntityMapping(
                "systemuser", "User", (_f("name", "name", FieldType.STRING),), delete_to_udm=deletes_to_udm
            ),
            EntityMapping(
                "account",
                "Account",
                (
                    _f("name", "name", FieldType.STRING, **extra),
                    _f("city", "city", FieldType.STRING, direction=city_direction, **extra),
                    _f("revenue", "revenue", FieldType.DECIMAL, **extra),
                    _f("parentaccountid", "parent", FieldType.REFERENCE, "Account"),
                    _f("ownerid", "owner", FieldType.REFERENCE, "User"),
                    _f("modifiedon", "modified_on", FieldType.DATETIME, direction=Direction.TO_UDM),
                ),
                delete_to_udm=deletes_to_udm,
                delete_from_udm=deletes_from_udm,
            ),
            EntityMapping(
                "contact",
                "Contact",
                (
                    _f("name", "name", FieldType.STRING),
                    _f("email", "email", FieldType.STRING),
                    _f("parentcustomerid", "account", FieldType.REFERENCE, "Account"),
                ),
                match_keys=("email",),
                delete_to_udm=deletes_to_udm,
                delete_from_udm=deletes_from_udm,
            ),
            EntityMapping(
                "opportunity",
                "Opportunity",
                (
                    _f("name", "name", FieldType.STRING),
                    _f("amount", "amount", FieldType.DECIMAL),
                    _f("customerid", "account", FieldType.REFERENCE, "Account"),
                    _f("contactid", "contact", FieldType.REFERENCE, "Contact"),
                ),
                delete_to_udm=deletes_to_udm,
                delete_from_udm=deletes_from_udm,
            ),
        ),
    )


class World:
    """A fake source, a store and an engine wired together, sharing one frozen clock."""

    def __init__(
        self,
        tmp: Path,
        *,
        spec: MappingSpec | None = None,
        page_size: int = 50,
        fake_path: Path | None = None,
        store_path: Path | None = None,
        options: EngineOptions | None = None,
        clock: FrozenClock | None = None,
    ) -> None:
        self.clock = clock or FrozenClock(START)
        self.fake = FakeSynapse("dyn", STREAMS, path=fake_path, clock=self.clock, page_size=page_size)
        self.store_url = f"sqlite:///{store_path or tmp / 'udm.db'}"
        self.store: UdmStore = open_store(self.store_url, clock=self.clock)
        self.spec = spec or make_spec()
        self.progress: list[tuple[str, int, int | None]] = []
        self.engine = Engine(
            self.store,
            {"dyn": self.fake},
            [self.spec],
            options=options,
            clock=self.clock,
            progress=lambda e, d, t: self.progress.append((e, d, t)),
            sleep=self._sleep,
        )
        self.slept: list[float] = []

    async def _sleep(self, seconds: float) -> None:
        self.slept.append(seconds)

    def tick(self, seconds: int = 1) -> None:
        self.clock.advance(dt.timedelta(seconds=seconds))

    def sync(self, entities: list[str] | None = None):  # type: ignore[no-untyped-def]
        self.tick()
        return self.engine.run_once(entities)

    def sync_reload(self, entities: list[str] | None = None):  # type: ignore[no-untyped-def]
        """A resync (``dynasync sync --full``)."""
        self.tick()
        return self.engine.run_once(entities, reload=True)

    def udm(self, entity: str, *, include_deleted: bool = False) -> dict[str, dict[str, Any]]:
        return {
            r.id: dict(r.values) for r in self.store.iter_records(entity, include_deleted=include_deleted)
        }

    def link_of(self, table: str, ext_id: str) -> str:
        link = self.store.get_link("dyn", table, ext_id)
        assert link is not None, f"{table} {ext_id} is not linked"
        return link.udm_id

    def close(self) -> None:
        self.store.close()
